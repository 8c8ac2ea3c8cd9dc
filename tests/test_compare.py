"""The paired bootstrap comparison of two runs (protocols/compare.py)."""

import subprocess
import sys

import numpy as np
import pytest

from clustercnn_jax.protocols import compare
from tests.conftest import ROOT


def test_paired_difference_against_a_plain_loop():
  rng = np.random.default_rng(0)
  a = [rng.uniform(0, 10, n) for n in (3, 5, 1, 8)]
  b = [e + rng.normal(0, 1, len(e)) for e in a]
  r = compare.paired_difference(a, b, resamples=2000, seed=1)
  pooled_a, pooled_b = np.concatenate(a), np.concatenate(b)
  assert r["mae_a"] == pytest.approx(pooled_a.mean())
  assert r["difference"] == pytest.approx(pooled_a.mean() - pooled_b.mean())
  # The same resamples, drawn and pooled one at a time.
  draws = np.random.default_rng(1).integers(0, 4, (2000, 4))
  diffs = [np.concatenate([a[i] for i in d]).mean() - np.concatenate([b[i] for i in d]).mean()
           for d in draws]
  assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))


def test_interval_excludes_zero_only_for_a_real_difference():
  rng = np.random.default_rng(0)
  base = [rng.uniform(0, 10, 12) for _ in range(40)]
  worse = compare.paired_difference([e + 1.0 for e in base], base)
  assert worse["ci_low"] > 0.5 and worse["difference"] == pytest.approx(1.0)
  noise = compare.paired_difference([e + rng.normal(0, 1, 12) for e in base], base)
  assert noise["ci_low"] < 0 < noise["ci_high"]


def write_run(directory, ages, predictions):
  directory.mkdir(parents=True)
  np.savez(directory / "predictions.npz", ages=ages, predictions=predictions, person_ids=[])


def test_folds_pair_by_name_and_resample_people(tmp_path):
  for fold, ages in ((1, [10.0, 12.0]), (2, [30.0]), (3, [5.0, 6.0, 7.0])):
    ages = np.array(ages)
    write_run(tmp_path / "a" / f"fold_{fold:02d}", ages, ages + 2)
    if fold != 3:  # B has not finished fold 3: only folds 1 and 2 count
      write_run(tmp_path / "b" / f"fold_{fold:02d}", ages, ages - 1)
  r = compare.compare(str(tmp_path / "a"), str(tmp_path / "b"), resamples=100)
  assert (r["unit"], r["runs"], r["units"], r["predictions"]) == ("person", 2, 2, 3)
  assert r["difference"] == pytest.approx(1.0)

  write_run(tmp_path / "c" / "fold_01", np.array([11.0, 12.0]), np.array([10.0, 12.0]))
  with pytest.raises(ValueError, match="different examples"):
    compare.compare(str(tmp_path / "a"), str(tmp_path / "c"))
  with pytest.raises(FileNotFoundError, match="no predictions.npz"):
    compare.compare(str(tmp_path / "a"), str(tmp_path / "missing"))


def test_cli_prints_the_table(tmp_path):
  ages = np.arange(20.0)
  write_run(tmp_path / "a", ages, ages + 1)
  write_run(tmp_path / "b", ages, ages)
  out = subprocess.run([sys.executable, "-m", "clustercnn_jax.protocols.compare",
                        str(tmp_path / "a"), str(tmp_path / "b"), "--names=cluster,ablation",
                        f"--output={tmp_path / 'r.json'}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert "| cluster MAE | ablation MAE |" in out.stdout and "+1.00" in out.stdout
  assert "| 1 | 20 | 20 |" in out.stdout  # one run, 20 images resampled
  assert (tmp_path / "r.json").exists()
