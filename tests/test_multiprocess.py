"""Two processes on localhost train as one process does, as a TPU pod or multi-node GPU
job runs: ``jax.distributed.initialize`` with JAX's CPU collectives (gloo), each process
reading only its part of every global batch (``main --multihost``)."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from clustercnn_jax import api
from conftest import ROOT, RUNLOCAL, cli_flags
from test_train import assert_trees_close

OVERRIDES = {"num_train_steps": 4, "model.dropout_rate": 0.3}  # cluster module on (runlocal)


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


@pytest.mark.slow
def test_two_processes_train_as_one_and_their_checkpoint_restores_in_one(tmp_path):
  """2 processes x 2 devices against 1 process x 4 devices, same global batch: equal
  parameters, BatchNorm statistics and centroids (1e-5); the pair's checkpoint is
  restored here, in a single process."""
  port = free_port()
  pair = [subprocess.Popen(
      command(tmp_path / "pair", "--multihost", f"--coordinator_address=127.0.0.1:{port}",
              "--num_processes=2", f"--process_id={i}"),
      cwd=ROOT, env=env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  single = subprocess.run(command(tmp_path / "single"), cwd=ROOT, env=env(4),
                          capture_output=True, text=True, timeout=300)
  outputs = []
  for i, p in enumerate(pair):
    try:
      out, err = p.communicate(timeout=300)
    finally:
      p.kill()
    assert p.returncode == 0, f"process {i}:\n{err[-3000:]}"
    assert f"process {i} of 2, 2 local / 4 global devices" in err
    outputs.append(out.strip().splitlines()[-1])  # gloo prints its connections first
  assert single.returncode == 0, single.stderr[-3000:]
  assert "process 0 of 1, 4 local / 4 global devices" in single.stderr
  # Both processes evaluate the same model on the whole test set, as the single one does.
  assert outputs[0] == outputs[1] == single.stdout.strip().splitlines()[-1]
  assert outputs[0].startswith("test MAE")

  _, _, pair_vars = api.load(str(tmp_path / "pair"))
  _, _, single_vars = api.load(str(tmp_path / "single"))
  assert np.abs(np.asarray(pair_vars["clusters"]["cluster"]["centroids"])).sum() > 0
  assert_trees_close(pair_vars, single_vars, atol=1e-5)
