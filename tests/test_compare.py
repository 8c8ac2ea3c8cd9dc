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


def test_seeded_difference_against_a_plain_loop():
  """Two levels, drawn one resample at a time: people (shared by A and B), then runs
  within each setting; the statistic is the drawn runs' mean pooled MAE."""
  rng = np.random.default_rng(0)
  counts = (3, 5, 1, 8)
  runs_a = [[rng.uniform(0, 10, n) for n in counts] for _ in range(2)]
  runs_b = [[rng.uniform(0, 10, n) for n in counts] for _ in range(3)]
  r = compare.seeded_difference(runs_a, runs_b, resamples=300, seed=4, chunk=7)

  def pooled(run, units):
    return np.concatenate([run[i] for i in units]).mean()

  assert r["run_mae_b"] == pytest.approx([pooled(run, range(4)) for run in runs_b])
  assert r["difference"] == pytest.approx(np.mean([pooled(run, range(4)) for run in runs_a])
                                          - np.mean(r["run_mae_b"]))
  draws_rng = np.random.default_rng(4)
  draws = draws_rng.integers(0, 4, (300, 4))
  picks_a, picks_b = draws_rng.integers(0, 2, (300, 2)), draws_rng.integers(0, 3, (300, 3))
  diffs = [np.mean([pooled(runs_a[j], d) for j in pa]) - np.mean([pooled(runs_b[j], d) for j in pb])
           for d, pa, pb in zip(draws, picks_a, picks_b)]
  assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))


def test_seed_spread_widens_the_interval():
  """One pair of runs that differ by a constant 0.9 years looks certain; three seeds per
  setting whose MAE moves by more than that between seeds do not."""
  rng = np.random.default_rng(0)
  base = [rng.uniform(2, 10, 1) for _ in range(500)]
  one = compare.paired_difference([e + 0.9 for e in base], base, resamples=2000)
  assert one["ci_low"] == pytest.approx(0.9) and one["ci_high"] == pytest.approx(0.9)
  runs_a = [[e + shift for e in base] for shift in (0.9, -0.6, 0.3)]
  runs_b = [[e + shift for e in base] for shift in (0.0, 0.1, -0.1)]
  r = compare.seeded_difference(runs_a, runs_b, resamples=2000)
  assert r["difference"] == pytest.approx(0.2)
  assert r["ci_low"] < 0 < r["ci_high"]


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


def test_settings_of_several_seeds_pair_folds_and_print_each_run(tmp_path):
  ages = {1: np.array([10.0, 12.0]), 2: np.array([30.0]), 3: np.array([5.0, 6.0, 7.0])}
  offsets = {"a0": 2.0, "a1": 4.0, "b0": 1.0, "b1": -1.0, "b2": 0.5}
  for name, offset in offsets.items():
    for fold, a in ages.items():
      if not (name == "b2" and fold == 3):  # one run of B has not finished fold 3
        write_run(tmp_path / name / f"fold_{fold:02d}", a, a + offset)
  a, b = [str(tmp_path / n) for n in ("a0", "a1")], [str(tmp_path / n) for n in ("b0", "b1", "b2")]
  r = compare.compare(a, b, resamples=200)
  assert (r["unit"], r["runs"], r["units"], r["predictions"]) == ("person", 2, 2, 3)
  assert r["run_mae_a"] == pytest.approx([2.0, 4.0]) and r["mae_b"] == pytest.approx(2.5 / 3)
  assert r["difference"] == pytest.approx(3.0 - 2.5 / 3)
  # Every person errs alike, so the spread is all seeds': from A's best run against B's
  # worst (drawn with probability 1/4 × (2/3)^3, above 2.5%) to below A's worst against
  # B's best (1/4 × 1/27, under 2.5%).
  assert r["ci_low"] == pytest.approx(2.0 - 1.0) and 3.0 < r["ci_high"] < 4.0 - 0.5

  write_run(tmp_path / "c" / "fold_01", ages[1] + 1, ages[1])
  with pytest.raises(ValueError, match="different examples"):
    compare.compare(a, [b[0], str(tmp_path / "c")])

  out = subprocess.run([sys.executable, "-m", "clustercnn_jax.protocols.compare", ",".join(a),
                        ",".join(b), "--names=cluster,ablation", "--resamples=200"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert "| 2 | 2 / 3 | 2 | 3 | 3.00 ± 1.41 | 0.83 ± 0.29 | +2.17 |" in out.stdout
  assert "cluster, run by run: 2.00, 4.00; ablation: 1.00, 1.00, 0.50." in out.stdout


def test_ensemble_averages_fold_by_fold_and_writes_the_protocol_tables(tmp_path):
  from clustercnn_jax.protocols import ensemble
  rng = np.random.default_rng(0)
  ages = {fold: rng.uniform(0, 60, n) for fold, n in ((1, 4), (2, 1), (3, 6))}
  offsets = {"a": 2.0, "b": -1.0, "c": 5.0}
  for name, offset in offsets.items():
    for fold, a in ages.items():
      if not (name == "c" and fold == 3):  # C has not finished fold 3: folds 1-2 count
        write_run(tmp_path / name / f"fold_{fold:02d}", a, a + offset)
  members = [str(tmp_path / n) for n in offsets]
  r = ensemble.ensemble(members, str(tmp_path / "ens"))
  assert r["runs"] == ["fold_01", "fold_02"] and r["num_examples"] == 5
  assert r["member_mae"] == pytest.approx([2.0, 1.0, 5.0])
  assert r["mae"] == pytest.approx(2.0)  # the mean offset, (2 - 1 + 5) / 3
  with np.load(tmp_path / "ens" / "fold_01" / "predictions.npz") as z:
    np.testing.assert_allclose(z["predictions"], ages[1] + 2.0)
  assert "**2.00** years" in (tmp_path / "ens" / "lopo_results.md").read_text()
  # The ensemble is a run like the others: compare pairs it with a member.
  c = compare.compare(str(tmp_path / "ens"), str(tmp_path / "b"), resamples=100)
  assert c["difference"] == pytest.approx(1.0) and c["unit"] == "person"

  assert ensemble.ensemble(members[:2], str(tmp_path / "ens_ab"))["num_examples"] == 11
  with pytest.raises(ValueError, match="do not share"):  # its fold_03 would count too
    ensemble.ensemble(members, str(tmp_path / "ens_ab"))
  write_run(tmp_path / "d" / "fold_01", ages[1] + 1, ages[1])
  with pytest.raises(ValueError, match="other examples"):
    ensemble.ensemble([members[0], str(tmp_path / "d")], str(tmp_path / "ens_ad"))


def test_ensemble_cli_on_single_runs(tmp_path):
  ages = np.arange(20.0)
  write_run(tmp_path / "a", ages, ages + 1)
  write_run(tmp_path / "b", ages, ages - 3)
  out = subprocess.run([sys.executable, "-m", "clustercnn_jax.protocols.ensemble",
                        f"--output={tmp_path / 'ens'}", str(tmp_path / "a"), str(tmp_path / "b")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert "| **mean of the 2** | **1.00** |" in out.stdout
  assert (tmp_path / "ens" / "results.png").exists()
  c = compare.compare(str(tmp_path / "ens"), str(tmp_path / "a"), resamples=100)
  assert (c["unit"], c["difference"]) == ("image", pytest.approx(0.0))
