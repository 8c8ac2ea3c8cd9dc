"""Reruns on a workdir: a changed config is refused before anything is written; the step
budget, intervals and paths to the same data may change; a run that died before its first
checkpoint starts afresh."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest


def tree_digest(root):
  """Every file under ``root`` by relative path, with its SHA-1."""
  out = {}
  for d, _, names in os.walk(root):
    for n in names:
      p = os.path.join(d, n)
      with open(p, "rb") as f:
        out[os.path.relpath(p, root)] = hashlib.sha1(f.read()).hexdigest()
  return out


@pytest.fixture
def own_trained_workdir(tmp_path, tiny_config):
  """A tiny trained run of this test's own (the refusal tests must be free to fail)."""
  from clustercnn_jax import train

  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config, workdir)
  return workdir


def test_a_changed_model_is_refused_and_the_workdir_is_unchanged(own_trained_workdir,
                                                                tiny_config):
  from clustercnn_jax import load, train

  faces = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), np.uint8)
  before_ages = load(own_trained_workdir).predict(faces)
  before = tree_digest(own_trained_workdir)
  changed = tiny_config.copy_and_resolve_references()
  changed.model.cluster.num_clusters = 3 if tiny_config.model.cluster.num_clusters != 3 else 4
  changed.learning_rate = 0.5
  with pytest.raises(ValueError, match=r"2 field\(s\) differ") as err:
    train.train_and_evaluate(changed, own_trained_workdir)
  assert "model.cluster.num_clusters" in str(err.value) and "learning_rate" in str(err.value)
  assert "new --workdir" in str(err.value)
  assert tree_digest(own_trained_workdir) == before  # byte for byte
  np.testing.assert_array_equal(load(own_trained_workdir).predict(faces), before_ages)


def test_a_longer_budget_resumes_and_updates_config_json(own_trained_workdir, tiny_config):
  from clustercnn_jax import checkpoint, train

  longer = tiny_config.copy_and_resolve_references()
  longer.num_train_steps = tiny_config.num_train_steps + 2
  longer.log_every_steps = 2
  result = train.train_and_evaluate(longer, own_trained_workdir)
  assert result["steps"] == longer.num_train_steps
  assert checkpoint.load_config(own_trained_workdir).num_train_steps == longer.num_train_steps


def test_a_run_that_died_before_its_first_checkpoint_starts_afresh(tmp_path, tiny_config):
  from clustercnn_jax import checkpoint, train

  workdir = str(tmp_path / "died")
  other = tiny_config.copy_and_resolve_references()
  other.model.cluster.num_clusters = 4
  checkpoint.save_config(workdir, other)  # what a crash before the first save leaves
  os.makedirs(os.path.join(workdir, "checkpoints"))
  result = train.train_and_evaluate(tiny_config, workdir)
  assert result["steps"] == tiny_config.num_train_steps
  assert checkpoint.load_config(workdir).model.cluster.num_clusters == tiny_config.model.cluster.num_clusters


def test_a_failed_start_writes_nothing(tmp_path, tiny_config):
  from clustercnn_jax import train

  bad = tiny_config.copy_and_resolve_references()
  bad.data.synthetic.num_train = 0  # fails while the data are made, before any state
  workdir = tmp_path / "never"
  with pytest.raises(Exception):
    train.train_and_evaluate(bad, str(workdir))
  assert not workdir.exists() or not os.listdir(workdir)


def test_a_second_run_in_a_busy_workdir_is_refused_until_the_first_dies(tmp_path,
                                                                      tiny_config):
  from clustercnn_jax import train, workdirs

  workdir = str(tmp_path / "run")
  hold = ("import sys, time\nfrom clustercnn_jax import workdirs\n"
          "with workdirs.exclusive(sys.argv[1]):\n  print('held', flush=True)\n  time.sleep(600)")
  holder = subprocess.Popen([sys.executable, "-c", hold, workdir], stdout=subprocess.PIPE)
  try:
    assert holder.stdout.readline().strip() == b"held"
    before = tree_digest(workdir)
    with pytest.raises(workdirs.WorkdirInUse, match=f"in use by process {holder.pid} on "):
      train.train_and_evaluate(tiny_config, workdir)
    assert tree_digest(workdir) == before  # nothing of the second run's written
  finally:
    holder.kill()  # as a crash would: no chance to clean up
    holder.communicate()
  result = train.train_and_evaluate(tiny_config, workdir)  # the kernel dropped the lock
  assert result["steps"] == tiny_config.num_train_steps


def test_the_lock_is_per_workdir_and_released_on_exit(tmp_path):
  from clustercnn_jax import workdirs

  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  with workdirs.exclusive(a), workdirs.exclusive(b):  # two workdirs: no conflict
    with pytest.raises(workdirs.WorkdirInUse, match="pass another --workdir"):
      with workdirs.exclusive(a):
        pass
    with workdirs.exclusive(a, enabled=False):  # a pod's other hosts take no lock
      pass
  with workdirs.exclusive(a):  # released
    (tmp_path / "a" / "config.json").write_text("{}")
  assert sorted(os.listdir(a)) == [workdirs.LOCK_FILE, "config.json"]
  assert not os.path.exists(b)  # created for nothing: removed again


def test_a_workdir_that_is_a_file_is_a_clear_error(tmp_path, tiny_config):
  from clustercnn_jax import train

  path = tmp_path / "notes.txt"
  path.write_text("x")
  with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
    train.train_and_evaluate(tiny_config, str(path))
  assert path.read_text() == "x"


def test_resume_differences_allow_budget_intervals_and_same_paths(tmp_path, tiny_config,
                                                                 monkeypatch):
  from clustercnn_jax import config_checks

  data = tmp_path / "data"
  data.mkdir()
  monkeypatch.chdir(tmp_path)
  saved = tiny_config.copy_and_resolve_references()
  saved.data.manual_dir = str(data)
  new = saved.copy_and_resolve_references()
  new.data.manual_dir = "./data/"  # the same folder, spelt from elsewhere
  new.num_train_steps, new.num_epochs = 100, 9.0
  new.log_every_steps, new.checkpoint_every_steps, new.grain_workers = 7, 9, 2
  assert config_checks.resume_differences(saved, new) == []
  new.data.manual_dir = str(tmp_path)  # another folder
  new.image_size = 40
  assert [k for k, _, _ in config_checks.resume_differences(saved, new)] == [
      "data.manual_dir", "image_size"]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "fgnet", "FGNET")),
    reason="../shared/data/fgnet is not present")
def test_a_single_fold_says_it_is_one_fold_of_the_protocol(tmp_path):
  import json
  import subprocess
  import sys

  from conftest import ROOT

  fgnet = os.path.join(ROOT, "..", "shared", "data", "fgnet")
  run = subprocess.run(
      [sys.executable, "-m", "clustercnn_jax.main", "--config=configs/fgnet.py:runlocal",
       f"--workdir={tmp_path / 'fold'}", f"--config.data.manual_dir={fgnet}",
       f"--config.data.data_dir={tmp_path / 'tfds'}", "--config.data.split.test_person=7"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  note = "fold 7 of 82; the protocol is `python -m clustercnn_jax.protocols.fgnet_lopo`"
  assert note in run.stdout and note in run.stderr  # printed and logged
  with open(tmp_path / "fold" / "results.json") as f:
    assert json.load(f)["fold"] == note


@pytest.mark.parametrize("field,value", [("max_age", 60), ("model.cluster.enabled", False)])
def test_a_config_json_that_no_longer_matches_its_checkpoint_names_the_arrays(
    own_trained_workdir, field, value):
  """The checkpoint's metadata is read only when orbax refuses the restore (it keeps some
  of it per read), and then names what differs instead of orbax's first complaint."""
  import json

  from clustercnn_jax import load

  path = os.path.join(own_trained_workdir, "config.json")
  with open(path) as f:
    saved = json.load(f)
  section, _, key = field.rpartition(".")
  node = saved
  for part in filter(None, section.split(".")):
    node = node[part]
  node[key] = value
  with open(path, "w") as f:
    json.dump(saved, f)
  with pytest.raises(ValueError, match="do not match its checkpoint.*Was config.json edited"):
    load(own_trained_workdir)


def test_input_differences_name_what_the_model_saw(tiny_config):
  """A model fine-tuned from another learnt its features on some input: the fields that
  make that input, and only those, are compared."""
  from clustercnn_jax import config_checks

  source = tiny_config.copy_and_resolve_references()
  config = tiny_config.copy_and_resolve_references()
  config.learning_rate, config.num_epochs = 0.5, 3.0  # training, not input
  assert config_checks.input_differences(source, config) == []
  config.image_size, config.face.alpha = 160, 3.0
  assert config_checks.input_differences(source, config) == [
      ("image_size", source.image_size, 160), ("face.alpha", source.face.alpha, 3.0)]
