"""Scalars to TensorBoard event files (tensorboardX, no TensorFlow) and metrics.jsonl.

Event files and metrics.jsonl grow by appending, which object stores (gs://) do not
offer: for a remote workdir both are written in a local staging directory and copied
whole into the workdir at most every ``sync_secs`` and on close.
"""

import json
import os
import shutil
import tempfile
import time
from typing import Mapping

import numpy as np
from absl import logging

from clustercnn_jax import files

METRICS_FILE = "metrics.jsonl"


class MetricWriter:
  """Writes scalars to ``workdir`` on process 0; a no-op elsewhere."""

  def __init__(self, workdir: str, enabled: bool = True, sync_secs: float = 60.0):
    self._enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter  # imported here: only process 0 needs it

    self._workdir = workdir
    self._remote = files.is_remote(workdir)
    self._sync_secs, self._synced = sync_secs, time.time()
    if self._remote:
      self._local = tempfile.mkdtemp(prefix="clustercnn_jax_metrics_")
      remote_metrics = files.join(workdir, METRICS_FILE)
      if files.exists(remote_metrics):  # a resumed run appends to what is there
        with open(os.path.join(self._local, METRICS_FILE), "w") as f:
          f.write(files.read_text(remote_metrics))
      logging.info("Remote workdir: TensorBoard events and %s are staged in %s and copied "
                   "to %s every %.0fs and at the end.", METRICS_FILE, self._local, workdir,
                   sync_secs)
    else:
      self._local = os.fspath(files.makedirs(workdir))
    self._tb = SummaryWriter(logdir=self._local, flush_secs=30)
    self._jsonl = open(os.path.join(self._local, METRICS_FILE), "a")

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    for k, v in clean.items():
      self._tb.add_scalar(k, v, global_step=step)
    self._jsonl.write(json.dumps({"step": step, **clean}) + "\n")
    self._jsonl.flush()
    if self._remote and time.time() - self._synced > self._sync_secs:
      self.flush()

  def flush(self) -> None:
    if self._enabled:
      self._tb.flush()
      self._jsonl.flush()
      self._sync()

  def _sync(self) -> None:
    """Copies the staged files into the remote workdir (each whole, each atomically)."""
    if not self._remote:
      return
    for name in os.listdir(self._local):
      with open(os.path.join(self._local, name), "rb") as f:
        files.write_bytes(files.join(self._workdir, name), f.read())
    self._synced = time.time()

  def close(self) -> None:
    if self._enabled:
      self._tb.close()
      self._jsonl.close()
      self._sync()
      if self._remote:
        shutil.rmtree(self._local, ignore_errors=True)
