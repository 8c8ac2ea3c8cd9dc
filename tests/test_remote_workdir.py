"""Workdirs in a bucket (gs://), as on a TPU pod: a run, its resume, load, evaluate, LOPO folds.

The bucket is faked at the two layers that reach storage, both onto one local
directory: fsspec's "gcs" file system, which ``etils.epath`` (ours and orbax's
metadata) uses for gs:// paths, and the TensorStore spec orbax writes arrays with.
The tests run from an empty working directory: a plain ``open("gs://...")`` or
``os.makedirs`` anywhere would leave a "gs:" folder there, which is checked.
"""

import json
import os

import numpy as np
import pytest

from conftest import ROOT

BUCKET = "gs://test-bucket"


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
  """A local directory standing in for gs:// (the bucket's objects under ``store/``)."""
  import importlib

  import fsspec
  from etils.epath import backend
  from fsspec.implementations.dirfs import DirFileSystem
  from fsspec.implementations.local import LocalFileSystem
  from orbax.checkpoint._src.path import gcs_utils

  store = tmp_path / "store"
  store.mkdir()

  class FakeGCS(DirFileSystem):
    protocol = ("gs", "gcs")
    cachable = False

    def __init__(self, *args, **kwargs):
      super().__init__(path=str(store), fs=LocalFileSystem())

  fsspec.register_implementation("gcs", FakeGCS, clobber=True)
  fsspec.register_implementation("gs", FakeGCS, clobber=True)
  backend.fsspec_backend._get_filesystem.cache_clear()
  monkeypatch.setattr(gcs_utils, "get_kvstore_for_gcs", lambda p: {
      "driver": "file", "path": str(store / p[len("gs://"):])})
  monkeypatch.setattr(gcs_utils, "is_hierarchical_namespace_enabled", lambda p: False)
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  yield store
  backend.fsspec_backend._get_filesystem.cache_clear()
  known = importlib.import_module("fsspec.registry")._registry  # the module, not its proxy
  known.pop("gcs", None)
  known.pop("gs", None)
  assert not os.listdir(cwd), f"local files written for a gs:// path: {os.listdir(cwd)}"


def test_the_fake_bucket_is_not_the_local_disk(fake_gcs):
  from clustercnn_jax import files

  files.write_json(f"{BUCKET}/a/b.json", {"x": 1})
  assert files.read_json(f"{BUCKET}/a/b.json") == {"x": 1}
  assert (fake_gcs / "test-bucket" / "a" / "b.json").exists()
  assert not os.path.exists(f"{BUCKET}/a/b.json")  # not where plain open() would look
  assert [p.name for p in files.path(f"{BUCKET}/a").iterdir()] == ["b.json"]


@pytest.mark.slow
def test_run_resume_load_evaluate_in_a_bucket(fake_gcs, tiny_config):
  from clustercnn_jax import checkpoint, evaluate, files, load, train

  workdir = f"{BUCKET}/runs/tiny"
  assert train.train_and_evaluate(tiny_config, workdir, stop_after_steps=3) == {"stopped_at": 3}
  final = train.train_and_evaluate(tiny_config, workdir)
  assert final["steps"] == 6
  local = fake_gcs / "test-bucket" / "runs" / "tiny"
  names = set(os.listdir(local))
  assert {"config.json", "checkpoints", "results.json", "predictions.npz",
          "metrics.jsonl"} <= names
  assert any(n.startswith("events.out.tfevents") for n in names)
  lines = [json.loads(line) for line in files.read_text(f"{workdir}/metrics.jsonl").splitlines()]
  steps = [m["step"] for m in lines if "train/loss" in m]
  assert steps == list(range(1, 7)), steps  # the resumed run appended to the first's lines
  assert checkpoint.load_config(workdir).model.cluster.num_clusters == tiny_config.model.cluster.num_clusters

  model = load(workdir)
  saved = files.load_npz(f"{workdir}/predictions.npz")
  result = evaluate.evaluate(model, model.config, f"{workdir}/report")
  assert result["mae"] == pytest.approx(final["test_mae"], abs=1e-3)
  assert result["num_examples"] == len(saved["ages"])
  assert {"summary.md", "metrics.json", "predictions.npz", "ages.png"} <= set(
      os.listdir(local / "report"))


SHARED_FGNET = os.path.join(ROOT, "..", "shared", "data", "fgnet")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_FGNET, "FGNET")),
                    reason="../shared/data/fgnet is not present")
def test_two_lopo_folds_and_compare_in_a_bucket(fake_gcs, tmp_path):
  from clustercnn_jax.protocols import compare, ensemble, fgnet_lopo
  from configs import fgnet

  config = fgnet.get_config("runlocal")
  config.data.manual_dir = SHARED_FGNET
  config.data.data_dir = str(tmp_path / "tfds")
  workdir = f"{BUCKET}/lopo"
  agg = fgnet_lopo.run(config, workdir, [3, 5])
  assert agg["finished_folds"] == [3, 5]
  local = fake_gcs / "test-bucket" / "lopo"
  assert {"fold_03", "fold_05", "lopo_results.json", "lopo_results.md",
          "lopo_results.png"} <= set(os.listdir(local))
  # Finished folds are found in the bucket and skipped.
  assert fgnet_lopo.run(config, workdir, [3])["finished_folds"] == [3, 5]
  mean = ensemble.ensemble([workdir, workdir], f"{BUCKET}/ensemble")
  assert mean["mae"] == pytest.approx(agg["mae"])
  paired = compare.compare(workdir, f"{BUCKET}/ensemble", resamples=100)
  assert paired["runs"] == 2 and paired["unit"] == "person"
  assert paired["difference"] == pytest.approx(0.0, abs=1e-6)
  assert np.isfinite(paired["ci_low"])


def test_pretrained_weights_from_a_bucket_are_copied_once(fake_gcs, tmp_path, monkeypatch):
  from clustercnn_jax import files, pretrained

  monkeypatch.setattr(pretrained, "WEIGHTS_CACHE", str(tmp_path / "weights"))
  files.write_bytes(f"{BUCKET}/weights/mobilenet_v2-b0353104.pth", b"not really a checkpoint")
  local = pretrained.resolve("mobilenet_v2", f"{BUCKET}/weights/mobilenet_v2-b0353104.pth")
  assert local == str(tmp_path / "weights" / "mobilenet_v2-b0353104.pth")
  with open(local, "rb") as f:
    assert f.read() == b"not really a checkpoint"
  with pytest.raises(FileNotFoundError, match="no such file in the bucket"):
    pretrained.resolve("mobilenet_v2", f"{BUCKET}/weights/missing.pth")
