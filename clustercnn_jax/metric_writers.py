"""Scalars to TensorBoard event files (tensorboardX, no TensorFlow) and metrics.jsonl."""

import json
import os
from typing import Mapping

import numpy as np


class MetricWriter:
  """Writes scalars to ``workdir`` on process 0; a no-op elsewhere."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter  # imported here: only process 0 needs it

    os.makedirs(workdir, exist_ok=True)
    self._tb = SummaryWriter(logdir=workdir, flush_secs=30)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    for k, v in clean.items():
      self._tb.add_scalar(k, v, global_step=step)
    self._jsonl.write(json.dumps({"step": step, **clean}) + "\n")
    self._jsonl.flush()

  def flush(self) -> None:
    if self._enabled:
      self._tb.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self._enabled:
      self._tb.close()
      self._jsonl.close()
