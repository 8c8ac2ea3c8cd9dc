"""The cluster-module-against-ablation study: its chance-corrected cluster agreement
against plain counting, and the study's resumable sweep at test size."""

import itertools
import os

import numpy as np
import pytest

from clustercnn_jax.protocols import ablation


def rand_index_by_pairs(a, b):
  """The adjusted Rand index from its definition, pair by pair (Hubert & Arabie, 1985)."""
  n = len(a)
  pairs = list(itertools.combinations(range(n), 2))
  together_a = np.array([a[i] == a[j] for i, j in pairs])
  together_b = np.array([b[i] == b[j] for i, j in pairs])
  index = np.sum(together_a & together_b)
  expected = together_a.sum() * together_b.sum() / len(pairs)
  best = (together_a.sum() + together_b.sum()) / 2
  return (index - expected) / (best - expected)


def test_adjusted_rand_index_matches_its_pairwise_definition():
  assert ablation.adjusted_rand_index([0, 0, 1, 1], [5, 5, 2, 2]) == 1.0  # names don't matter
  assert ablation.adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
  rng = np.random.default_rng(0)
  for _ in range(5):
    a, b = rng.integers(0, 3, 40), rng.integers(0, 4, 40)
    assert ablation.adjusted_rand_index(a, b) == pytest.approx(rand_index_by_pairs(a, b))
  modes = rng.integers(0, 4, 2000)
  assert abs(ablation.adjusted_rand_index(rng.integers(0, 5, 2000), modes)) < 0.01  # chance


@pytest.mark.slow
def test_the_study_trains_both_settings_per_seed_and_resumes(tmp_path):
  from configs import demo

  config = demo.get_config("opposed,runlocal")
  out = ablation.run(config, str(tmp_path), [0, 1])
  assert out["finished_seeds"] == [0, 1]
  for name in ("cluster_seed0", "ablation_seed0", "cluster_seed1", "ablation_seed1"):
    assert os.path.exists(tmp_path / name / "predictions.npz")
  assert len(out["run_mae_a"]) == len(out["run_mae_b"]) == 2
  assert out["ci_low"] <= out["difference"] <= out["ci_high"]
  assert len(out["adjusted_rand_index"]) == 2
  assert all(-1 <= r <= 1 for r in out["adjusted_rand_index"])
  assert "Adjusted Rand index" in open(tmp_path / "ablation_results.md").read()
  again = ablation.run(config, str(tmp_path), [0, 1])  # every run finished: only reads
  assert again["difference"] == out["difference"]


def final_train_metric(workdir, key):
  import json

  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [r[key] for r in rows if key in r][-1]


@pytest.mark.slow
def test_centroids_moved_by_the_nearest_stay_apart_where_sampled_ones_collapse(tmp_path):
  """The mechanism behind the study's finding, at its own size (about 40 s a run): with
  sampled updates the centroids collapse (S_w/S_b above 5 at the end; 10-21 in the
  study), with nearest updates they stay apart (below 2; 0.4-0.6) and their clusters are
  closer to the generator's modes."""
  from clustercnn_jax import results, train
  from configs import demo

  out = {}
  for update in ("assigned", "nearest"):
    config = demo.get_config("opposed")
    config.model.cluster.centroid_update = update
    workdir = str(tmp_path / update)
    train.train_and_evaluate(config, workdir)
    clusters = results.load_predictions(workdir)["clusters"]
    out[update] = (final_train_metric(workdir, "train/sw_sb"),
                   ablation.adjusted_rand_index(clusters, ablation.hidden_modes(config)))
  assert out["assigned"][0] > 5 and out["nearest"][0] < 2, out
  assert out["nearest"][1] > out["assigned"][1] + 0.05, out


@pytest.mark.slow
def test_the_module_beats_its_ablation_where_the_features_keep_the_modes_apart(tmp_path):
  """The study's positive control, seed 0 at its own size (about 45 s a run): on opposed
  modes with features that cannot learn (``configs/demo.py:opposed,frozen``) one shared
  layer cannot map every mode, one branch per cluster can. The paper's module wins by
  more than a year (1.39 in the study), with an interval that excludes 0; centroids moved
  by the nearest assignment win too and recover the modes (adjusted Rand index 0.78,
  against 0.50 for the paper's sampled update)."""
  from clustercnn_jax import results, train
  from clustercnn_jax.protocols import compare
  from configs import demo

  config = demo.get_config("opposed,frozen")
  paper = ablation.run(config, str(tmp_path / "paper"), [0])
  assert paper["difference"] < -1.0 and paper["ci_high"] < 0, paper
  assert paper["adjusted_rand_index"][0] > 0.3, paper

  nearest_config = demo.get_config("opposed,frozen")
  nearest_config.model.cluster.centroid_update = "nearest"
  nearest = str(tmp_path / "nearest")
  train.train_and_evaluate(nearest_config, nearest)
  out = compare.compare(nearest, ablation.run_dir(str(tmp_path / "paper"), "ablation", 0))
  assert out["difference"] < -1.0 and out["ci_high"] < 0, out
  rand_index = ablation.adjusted_rand_index(results.load_predictions(nearest)["clusters"],
                                            ablation.hidden_modes(nearest_config))
  assert rand_index > 0.6, rand_index
