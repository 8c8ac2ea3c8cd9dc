"""Devices and processes: 1 device, 8 devices, and two processes of 4 devices on
localhost (as a TPU pod or multi-node GPU job runs: ``jax.distributed.initialize`` with
JAX's CPU collectives, gloo, each process reading only its part of every global batch,
``main --multihost``) train the same model."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from clustercnn_jax.train_state import load_model
from conftest import ROOT, RUNLOCAL, cli_flags
from test_train import assert_trees_close

OVERRIDES = {"num_train_steps": 4, "model.dropout_rate": 0.3}  # dropout keyed per example


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def command(workdir, *extra):
  return [sys.executable, "-m", "clustercnn_jax.main", f"--config={RUNLOCAL}",
          f"--workdir={workdir}", *cli_flags(OVERRIDES), *extra]


def env(devices):
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def last_line(text):
  return text.strip().splitlines()[-1]  # gloo prints its connections first


@pytest.mark.slow
def test_one_device_eight_devices_and_two_processes_train_the_same_model(tmp_path):
  """Same global batches, cluster module and dropout on: the same parameters, BatchNorm
  statistics and centroids; the pair's checkpoint restores here, in a single process.

  Tolerance: 5e-5 between 1 and 8 devices after 4 Adam steps at lr 2e-3: cross-device
  sums (pmean of gradients, sync BatchNorm) reduce in another order, which moves float32
  results by a few ulps per step, and Adam's normalised update amplifies them a little.
  1e-5 between 8 devices in one process and 4 in each of two.
  """
  port = free_port()
  pair = [subprocess.Popen(
      command(tmp_path / "pair", "--multihost", f"--coordinator_address=127.0.0.1:{port}",
              "--num_processes=2", f"--process_id={i}"),
      cwd=ROOT, env=env(4), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  single = {d: subprocess.run(command(tmp_path / f"d{d}"), cwd=ROOT, env=env(d),
                              capture_output=True, text=True, timeout=300) for d in (1, 8)}
  outputs = []
  for i, p in enumerate(pair):
    try:
      out, err = p.communicate(timeout=300)
    finally:
      p.kill()
    assert p.returncode == 0, f"process {i}:\n{err[-3000:]}"
    assert f"process {i} of 2, 4 local / 8 global devices" in err
    outputs.append(last_line(out))
  for d, result in single.items():
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"process 0 of 1, {d} local / {d} global devices" in result.stderr
  # Both processes evaluate the same model on the whole test set, as one process does.
  assert outputs[0] == outputs[1] == last_line(single[8].stdout)
  assert outputs[0].startswith("test MAE")

  runs = {name: load_model(str(tmp_path / name))[2] for name in ("d1", "d8", "pair")}
  assert np.abs(np.asarray(runs["d1"]["clusters"]["cluster"]["centroids"])).sum() > 0
  assert_trees_close(runs["d1"], runs["d8"], atol=5e-5)
  assert_trees_close(runs["d8"], runs["pair"], atol=1e-5)
