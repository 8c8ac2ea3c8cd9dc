"""The FG-NET TFDS builder on the real data in ../shared, and the LOPO protocol."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, cli_flags

SHARED_FGNET = os.path.join(ROOT, "..", "shared", "data", "fgnet")
needs_fgnet = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_FGNET, "FGNET")),
                                 reason="../shared/data/fgnet is not present")


@pytest.fixture(scope="module")
def fgnet_data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


@needs_fgnet
def test_builds_all_1002_images_of_82_people(fgnet_data_dir):
  from clustercnn_jax.data import builders

  ds, report = builders.load("fgnet", "crop72", fgnet_data_dir, SHARED_FGNET)
  assert ds.images.shape == (1002, 90, 90, 3) and ds.images.dtype == np.uint8
  assert len(np.unique(ds.person_ids)) == 82
  assert ds.ages.min() == 0 and ds.ages.max() == 69
  assert report["read"] == 1002 and report["kept"] == 1002 and report["skipped"] == {}
  # 001A02.JPG is the first file: person 1, age 2. Its eyes sit where the crop puts them:
  # the crop is symmetric about the eyes, so the two halves of the face are alike.
  assert ds.ages[0] == 2 and ds.person_ids[0] == 1
  face = ds.images[:, 20:70, 20:70].astype(float).mean(0)
  assert np.abs(face[:, :25] - face[:, 25:][:, ::-1]).mean() < 12


@needs_fgnet
def test_missing_manual_data_says_what_to_put_where(tmp_path):
  from clustercnn_jax.data import builders
  from clustercnn_jax.data.builders.common import MissingManualDataError

  with pytest.raises(MissingManualDataError, match="FGNET.zip"):
    builders.load("fgnet", "crop72", str(tmp_path / "tfds"), str(tmp_path))


def test_lopo_aggregate_pools_finished_folds(tmp_path):
  from PIL import Image

  from clustercnn_jax.protocols import fgnet_lopo

  for fold, err in ((3, 1.0), (9, 3.0)):  # 10 and 30 predictions
    d = tmp_path / f"fold_{fold:02d}"
    d.mkdir()
    ages = np.arange(10 * (fold // 3)) * 2.0
    np.savez(d / "predictions.npz", ages=ages, predictions=ages + err)
  result = fgnet_lopo.aggregate(str(tmp_path))
  assert result["finished_folds"] == [3, 9] and not result["complete"]
  assert result["num_examples"] == 40 and result["mae"] == pytest.approx((10 + 90) / 40)
  md = (tmp_path / "lopo_results.md").read_text()
  assert "2 of 82 folds, incomplete" in md and "**2.50**" in md
  assert Image.open(tmp_path / "lopo_results.png").size[0] > 500


def test_builder_skips_and_counts_bad_files(tmp_path):
  """Bad names, a corrupt JPEG and a .pts with the wrong number of points: counted, no crash."""
  from PIL import Image

  from clustercnn_jax.data import builders

  root = tmp_path / "manual" / "FGNET"
  (root / "images").mkdir(parents=True)
  (root / "points").mkdir()
  rng = np.random.default_rng(0)
  pts = np.zeros((68, 2))
  pts[27:32] = [100, 120]
  pts[32:37] = [160, 120]
  for name in ("001A05.JPG", "001A20.JPG", "002A33b.JPG"):
    Image.fromarray(rng.integers(0, 255, (300, 260, 3), np.uint8)).save(root / "images" / name)
    body = "\n".join(f"{x} {y}" for x, y in pts)
    (root / "points" / (name[:-4].lower() + ".pts")).write_text(
        f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
  (root / "points" / "001a20.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n3 4\n5 6\n}\n")
  (root / "images" / "002A40.JPG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
  (root / "images" / "notes.jpg").write_bytes(b"x")
  ds, report = builders.load("fgnet", "crop72", str(tmp_path / "tfds"), str(tmp_path / "manual"))
  assert report["read"] == 5 and report["kept"] == 3
  assert report["skipped"] == {"unparsable file name": 1, "unreadable image": 1}
  assert report["notes"] == {"bad or missing landmarks": 1, "no face or eyes found: centre crop": 1}
  assert sorted(ds.ages.tolist()) == [5, 20, 33]


@needs_fgnet
@pytest.mark.slow
def test_lopo_protocol_runs_and_resumes_fold_by_fold(tmp_path, fgnet_data_dir):
  overrides = {"data.data_dir": fgnet_data_dir, "data.manual_dir": SHARED_FGNET}
  cmd = [sys.executable, "-m", "clustercnn_jax.protocols.fgnet_lopo",
         "--config=configs/fgnet.py:runlocal", f"--workdir={tmp_path}", "--folds=3,5",
         *cli_flags(overrides)]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  assert "2 of 82 folds, incomplete" in run.stdout
  with np.load(tmp_path / "fold_03" / "predictions.npz") as z:
    assert set(z["person_ids"].tolist()) == {3}
  again = subprocess.run(cmd[:5] + ["--folds=3"] + cmd[6:], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
  assert "1 runs requested, 1 already finished" in again.stderr
  md = (tmp_path / "lopo_results.md").read_text()
  assert "MAE over" in md and "| age | count | MAE |" in md


def test_share_data_needs_runs_that_differ_in_their_split_only(tmp_path, tiny_config):
  from clustercnn_jax.protocols import sweep

  with pytest.raises(ValueError, match="differ in data.split only"):
    sweep(tiny_config, str(tmp_path), [("a", {"data.split.seed": 1}), ("b", {"seed": 2})],
          dict, "study", share_data=True)


@needs_fgnet
@pytest.mark.slow
def test_lopo_folds_read_the_dataset_once_and_match_a_fold_run_alone(tmp_path, fgnet_data_dir,
                                                                   monkeypatch):
  from clustercnn_jax import data, train
  from clustercnn_jax.protocols import fgnet_lopo
  from configs import fgnet

  config = fgnet.get_config("runlocal")
  config.data.data_dir, config.data.manual_dir = fgnet_data_dir, SHARED_FGNET
  reads = []
  read = data._builder_dataset
  monkeypatch.setattr(data, "_builder_dataset", lambda c: reads.append(1) or read(c))
  fgnet_lopo.run(config, str(tmp_path / "lopo"), [3, 5])
  assert len(reads) == 1  # not once a fold
  alone = config.copy_and_resolve_references()
  alone.data.split.test_person = 3
  train.train_and_evaluate(alone, str(tmp_path / "alone"))
  assert len(reads) == 2
  with np.load(tmp_path / "lopo" / "fold_03" / "predictions.npz") as a, \
       np.load(tmp_path / "alone" / "predictions.npz") as b:
    assert set(a["person_ids"].tolist()) == {3}
    for k in a.files:
      np.testing.assert_array_equal(a[k], b[k])
