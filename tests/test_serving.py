"""The saved serving function: the checkpoint's outputs, made once, rebuilt when stale."""

import json
import logging
import os
import shutil

import numpy as np
import pytest

import clustercnn_jax
from clustercnn_jax import files, serving, train_state, workdirs
from clustercnn_jax.data import synthetic


@pytest.fixture
def workdir(trained_workdir, tmp_path):
  """A copy of the trained workdir, so that each test may damage its own."""
  out = str(tmp_path / "w")
  shutil.copytree(trained_workdir, out, ignore=shutil.ignore_patterns(serving.ARTIFACT_DIR))
  return out


@pytest.fixture(scope="module")
def crops():
  return synthetic.generate(13, 32, seed=4).images


def no_restore(*args, **kwargs):
  raise AssertionError("the checkpoint was restored")


def test_served_outputs_are_the_checkpoints_and_later_loads_skip_it(workdir, crops,
                                                                    monkeypatch):
  direct = clustercnn_jax.load(workdir, batch_size=8)
  served = clustercnn_jax.load(workdir, batch_size=8, serving=True)
  want, got = direct.outputs(crops), served.outputs(crops)
  assert sorted(got) == sorted(want)
  for k in want:
    np.testing.assert_allclose(got[k], want[k], atol=1e-5, err_msg=k)
  step = serving.latest_step(workdir)
  path = serving.artifact_path(workdir, step)
  assert os.path.exists(path)
  assert json.load(open(path + ".json"))["step"] == step

  monkeypatch.setattr(train_state, "load_model", no_restore)
  again = clustercnn_jax.load(workdir, batch_size=4, serving=True)
  np.testing.assert_allclose(again.predict(crops), want["age"], atol=1e-5)
  assert again.clusters(crops).index.tolist() == direct.clusters(crops).index.tolist()
  with pytest.raises(ValueError, match="without serving=True"):
    again.embed(crops)


def test_a_changed_config_or_a_damaged_file_is_rebuilt(workdir, crops, caplog):
  want = clustercnn_jax.load(workdir, serving=True).predict(crops)
  path = serving.artifact_path(workdir, serving.latest_step(workdir))
  config_path = os.path.join(workdir, "config.json")
  with open(config_path, "a") as f:
    f.write("\n")  # the same config, other bytes: stale all the same
  mtime = os.path.getmtime(path)
  np.testing.assert_allclose(clustercnn_jax.load(workdir, serving=True).predict(crops),
                             want, atol=1e-5)
  assert os.path.getmtime(path) > mtime  # rewritten

  with open(path, "wb") as f:
    f.write(b"not an export")
  with caplog.at_level(logging.WARNING):
    got = clustercnn_jax.load(workdir, serving=True).predict(crops)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert "cannot be read" in caplog.text
  assert serving.read(workdir, serving.latest_step(workdir)) is not None  # repaired


def test_changed_code_makes_the_artifact_stale(workdir, crops, monkeypatch):
  clustercnn_jax.load(workdir, serving=True).predict(crops)
  step = serving.latest_step(workdir)
  assert serving.read(workdir, step) is not None
  monkeypatch.setattr(serving, "code_digest", lambda: "another formulation")
  assert serving.read(workdir, step) is None


def test_an_unwritable_workdir_still_predicts(workdir, crops, monkeypatch, caplog):
  def refuse(path, data):
    raise PermissionError(13, "Permission denied", path)

  monkeypatch.setattr(files, "write_bytes", refuse)
  with caplog.at_level(logging.WARNING):
    got = clustercnn_jax.load(workdir, serving=True).predict(crops)
  assert "Cannot save the serving function" in caplog.text
  np.testing.assert_allclose(got, clustercnn_jax.load(workdir).predict(crops), atol=1e-5)
  assert not os.path.exists(serving.artifact_path(workdir, serving.latest_step(workdir)))


def test_no_checkpoint_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match="No finished checkpoint"):
    serving.latest_step(str(tmp_path))


def test_the_latest_step_skips_a_checkpoint_being_written(tmp_path):
  # orbax writes a step under a temporary name and renames it when finished.
  for name in ("6", "12", "18.orbax-checkpoint-tmp-1700000000"):
    os.makedirs(tmp_path / "checkpoints" / name)
  assert workdirs.finished_steps(str(tmp_path)) == [6, 12]
  assert serving.latest_step(str(tmp_path)) == 12
