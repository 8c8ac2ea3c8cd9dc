"""Evaluating a trained model, on its own test split or other data, with a report."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from clustercnn_jax import evaluate, report
from clustercnn_jax.predictor import load
from clustercnn_jax.protocols import compare
from conftest import ROOT


def test_report_on_its_own_test_split_matches_training(trained_workdir, tmp_path):
  """The report's MAE is the one training wrote (same faces, same model); the cluster
  figures are there, and every number in metrics.json is recomputable from the files."""
  predictor = load(trained_workdir)
  result = evaluate.evaluate(predictor, predictor.config.copy_and_resolve_references(),
                             str(tmp_path / "report"))
  with open(os.path.join(trained_workdir, "results.json")) as f:
    assert result["mae"] == pytest.approx(json.load(f)["test_mae"], abs=1e-3)
  names = sorted(os.path.basename(p) for p in result["files"])
  assert names == ["ages.png", "cluster_montage.png", "clusters_by_age.png", "metrics.json",
                   "predictions.npz", "summary.md"]
  with open(tmp_path / "report" / "metrics.json") as f:
    m = json.load(f)
  assert sum(m["cluster_counts"]) == m["num_examples"] == 64
  assert m["mean_predictor_mae"] > 0 and "CS(θ)" in (tmp_path / "report" / "summary.md").read_text()
  # The report's predictions pair with the training run's (a workdir's own file wins over
  # its report/ sub-directory).
  errors_a, errors_b, unit, _ = compare.load_paired_errors(str(tmp_path / "report"),
                                                           trained_workdir)
  assert unit == "image" and len(errors_a) == 64
  np.testing.assert_allclose(np.concatenate(errors_a), np.concatenate(errors_b), atol=1e-3)

  # eval_flip, an evaluation setting: each age is the mean over the face and its mirror.
  config = predictor.config.copy_and_resolve_references()
  config.eval.flip = True
  flipped = evaluate.evaluate(predictor, config, str(tmp_path / "flip"))
  faces = evaluate.dataset_for(config, "test").images
  expected = (predictor.predict(faces) + predictor.predict(faces[:, :, ::-1])) / 2
  with np.load(tmp_path / "flip" / "predictions.npz") as z:
    np.testing.assert_allclose(z["predictions"], expected, atol=1e-4)
  assert flipped["mae"] != pytest.approx(result["mae"], abs=1e-4)



def test_other_data_and_model_fields(trained_workdir, tmp_path):
  predictor = load(trained_workdir)
  config = predictor.config.copy_and_resolve_references()
  config.data.synthetic.seed = 5  # other faces: all of them
  result = evaluate.evaluate(predictor, config, str(tmp_path / "r"), split="all")
  assert result["num_examples"] == config.data.synthetic.num_train + config.data.synthetic.num_test
  config.image_size = 48  # describes the model, not the data
  with pytest.raises(ValueError, match="image_size"):
    evaluate.evaluate(predictor, config, str(tmp_path / "bad"))


def test_montage_rows_hold_the_nearest_faces(tmp_path):
  rng = np.random.default_rng(0)
  faces = rng.integers(0, 255, (30, 8, 8, 3), dtype=np.uint8)
  ages = rng.uniform(0, 60, 30)
  assign = np.arange(30) % 3
  path = report.cluster_montage(faces, ages, assign, rng.uniform(size=30), 3,
                                str(tmp_path / "m.png"), per_row=4)
  assert os.path.getsize(path) > 1000


def test_cli_overrides_the_data_of_the_saved_config(trained_workdir, tmp_path):
  out = subprocess.run([sys.executable, "-m", "clustercnn_jax.evaluate",
                        f"--workdir={trained_workdir}", "--split=all",
                        "--config.data.synthetic.seed=3", f"--out={tmp_path / 'rep'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "synthetic (all): MAE" in out.stdout and "cluster_montage.png" in out.stdout


def test_workdirs_saved_before_a_field_existed_still_load(trained_workdir, tmp_path):
  """config_upgrades fills the fields an older config.json lacks with their former
  behaviour, so older workdirs keep predicting the same ages."""
  import shutil

  from clustercnn_jax import config_upgrades

  old = tmp_path / "old"
  shutil.copytree(trained_workdir, old)
  with open(old / "config.json") as f:
    saved = json.load(f)
  for field, value in config_upgrades.ADDED:
    *parents, leaf = field.split(".")
    node = saved
    for name in parents:
      node = node[name]
    assert node.pop(leaf) == value  # today's default is the former behaviour
  with open(old / "config.json", "w") as f:
    json.dump(saved, f)
  crops = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
  np.testing.assert_allclose(load(str(old)).predict(crops), load(trained_workdir).predict(crops),
                             atol=1e-5)


def test_a_workdir_saved_before_the_config_was_regrouped_predicts_as_it_did(tmp_path):
  """tests/data/workdir_a69f581 was trained and saved by commit a69f581, whose config was
  flat (model.num_clusters, eval_flip, ...); config_upgrades maps it onto today's groups and
  the model predicts the ages it predicted then."""
  import shutil

  from clustercnn_jax import checkpoint

  old = tmp_path / "old"
  shutil.copytree(os.path.join(os.path.dirname(__file__), "data", "workdir_a69f581"), old)
  with open(old / "config.json") as f:
    assert "num_clusters" in json.load(f)["model"]  # the layout before the regroup
  config = checkpoint.load_config(str(old))
  assert config.model.cluster.num_clusters == 3 and config.eval.flip is False
  with np.load(old / "expected.npz") as z:
    crops, ages = z["crops"], z["ages"]
  np.testing.assert_allclose(load(str(old)).predict(crops), ages, atol=1e-5)


def test_a_retired_setting_names_the_commit_that_had_it(tmp_path):
  from clustercnn_jax import config_upgrades

  saved = ml_collections.ConfigDict({"model": {"assign_temperature": 0.5}})
  with pytest.raises(ValueError, match="assign_temperature=0.5.*git checkout a69f581"):
    config_upgrades.upgrade(saved)
