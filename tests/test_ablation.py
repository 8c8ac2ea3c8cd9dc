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
