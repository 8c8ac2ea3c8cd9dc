"""Two runs on the same test examples: the paired difference of their MAE and its 95%
bootstrap interval, resampling people (FG-NET folds) or images.

  python -m clustercnn_jax.protocols.compare A_DIR B_DIR [--names=cluster,ablation]
  python -m clustercnn_jax.protocols.compare A_S0,A_S1,A_S2 B_S0,B_S1,B_S2

A_DIR and B_DIR are protocol directories (fold_NN/ or split_N/ sub-directories, as
fgnet_lopo and random_splits write them) or single run workdirs. Only runs finished
in both count; their test examples must be the same (same ages, in the same order).
With fold sub-directories each fold is one person and people are resampled (the
unit FG-NET's leave one person out draws); otherwise images are. The interval is a
percentile bootstrap of MAE(A) - MAE(B) over all pooled predictions: it excludes 0
when A and B differ by more than the choice of people (or images) explains.

That interval holds two trained models fixed, so it says nothing of how much another
training seed would move either. Comma-separated lists compare settings rather than
runs: several training runs (seeds) of each, on the same test examples. The difference
is then that of the mean MAE over each setting's runs, and each bootstrap resample
draws runs within each setting as well as people or images (shared by A and B, which
keeps the pairing): the interval covers the seed-to-seed spread too, as far as a few
runs can show it (with three runs per setting it is still on the narrow side).
"""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from absl import app, flags

from clustercnn_jax import cli, files
from clustercnn_jax.results import PREDICTIONS_FILE, load_predictions

FLAGS = flags.FLAGS
PLURAL = {"person": "people", "image": "images"}


def define_flags() -> None:
  flags.DEFINE_string("names", "A,B", "Names of the two runs in the table: 'cluster,ablation'.")
  flags.DEFINE_enum("unit", "auto", ["auto", "person", "image"],
                    "What the bootstrap resamples; auto: people when the runs are folds.")
  flags.DEFINE_integer("resamples", 10000, "Bootstrap resamples.")
  flags.DEFINE_integer("seed", 0, "Bootstrap seed.")
  flags.DEFINE_string("output", "", "Also write the result to this .json file.")


def paired_difference(errors_a: Sequence[np.ndarray], errors_b: Sequence[np.ndarray],
                      resamples: int = 10000, seed: int = 0) -> Dict:
  """MAE(A), MAE(B), their difference and its 95% percentile-bootstrap interval, where
  ``errors_*[g]`` are the absolute errors of resampling unit g (a person, or one image)."""
  return seeded_difference([errors_a], [errors_b], resamples, seed)


def seeded_difference(runs_a: Sequence[Sequence[np.ndarray]],
                      runs_b: Sequence[Sequence[np.ndarray]], resamples: int = 10000,
                      seed: int = 0, chunk: int = 500) -> Dict:
  """Mean MAE over A's training runs minus B's, and its 95% two-level bootstrap interval,
  where ``runs_*[r][g]`` are run r's absolute errors on unit g. Each resample draws units
  (the same for every run, so A and B stay paired) and, within each setting, runs."""
  units = {len(run) for run in list(runs_a) + list(runs_b)}
  if len(units) != 1 or not units.pop() or not len(runs_a) or not len(runs_b):
    raise ValueError(f"Need the same, non-zero number of units in every run; got "
                     f"{[len(r) for r in runs_a]} and {[len(r) for r in runs_b]}.")
  count = np.array([len(e) for e in runs_a[0]], np.float64)
  for run in list(runs_a) + list(runs_b):
    if not np.array_equal(count, [len(e) for e in run]):
      raise ValueError("A and B have different numbers of predictions in some unit.")
  sums = [np.array([[np.sum(e) for e in run] for run in runs], np.float64)
          for runs in (runs_a, runs_b)]
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, len(count), (resamples, len(count)))
  picks = [rng.integers(0, len(s), (resamples, len(s))) for s in sums]
  diffs = np.empty(resamples)
  for lo in range(0, resamples, chunk):
    d = draws[lo:lo + chunk]
    rows = np.arange(len(d))[:, None]
    n = count[d].sum(1)[:, None]
    mae = [(np.stack([run[d].sum(1) for run in s], 1) / n)[rows, p[lo:lo + chunk]].mean(1)
           for s, p in zip(sums, picks)]  # per resample: the drawn runs' mean pooled MAE
    diffs[lo:lo + chunk] = mae[0] - mae[1]
  ci_low, ci_high = np.percentile(diffs, [2.5, 97.5])
  run_mae_a, run_mae_b = (s.sum(1) / count.sum() for s in sums)
  mae_a, mae_b = run_mae_a.mean(), run_mae_b.mean()
  return {"units": len(count), "predictions": int(count.sum()), "mae_a": float(mae_a),
          "mae_b": float(mae_b), "difference": float(mae_a - mae_b), "ci_low": float(ci_low),
          "ci_high": float(ci_high), "run_mae_a": run_mae_a.tolist(),
          "run_mae_b": run_mae_b.tolist()}


def finished_runs(directory: str) -> Dict[str, str]:
  """Sub-run name -> predictions file: the run itself (a workdir, or an ``evaluate`` report
  directory), else its fold_NN / split_N sub-directories."""
  own = files.path(directory) / PREDICTIONS_FILE
  if own.exists():  # a workdir's report/ sub-directories are not sub-runs
    return {".": str(own)}
  return {p.parent.name: str(p)
          for p in sorted(files.path(directory).glob(f"*/{PREDICTIONS_FILE}"))}


def load_errors(settings: Sequence[Sequence[str]], unit: str = "auto"
                ) -> Tuple[List[List[List[np.ndarray]]], str, List[str]]:
  """Absolute errors per setting, run and resampling unit (``errors[s][r][g]``), the unit
  used and the sub-runs (folds, splits) paired: those every run has finished."""
  runs = [[finished_runs(d) for d in dirs] for dirs in settings]
  for dirs, found in zip(settings, runs):
    for d, f in zip(dirs, found):
      if not f:
        raise FileNotFoundError(f"{d}: no {PREDICTIONS_FILE} in it or in its sub-directories; "
                                "pass a finished run's workdir or a protocol directory.")
  flat_dirs = [d for dirs in settings for d in dirs]
  flat_runs = [f for found in runs for f in found]
  common = sorted(set.intersection(*(set(f) for f in flat_runs)))
  if not common:
    raise ValueError(f"{' and '.join(flat_dirs)} have no finished run in common "
                     f"({'; '.join(str(sorted(f)[:5]) for f in flat_runs)}).")
  if unit == "auto":
    unit = "person" if all(name.startswith("fold_") for name in common) else "image"
  errors = [[[] for _ in dirs] for dirs in settings]
  for name in common:
    ages = None
    for s, found in enumerate(runs):
      for r, f in enumerate(found):
        z = load_predictions(f[name])
        if ages is None:
          ages, first = z["ages"], f[name]
        elif not np.array_equal(z["ages"], ages):
          raise ValueError(f"{name}: the runs were tested on different examples "
                           f"({first} vs {f[name]}).")
        e = np.abs(z["predictions"] - z["ages"])
        errors[s][r] += [e] if unit == "person" else list(e[:, None])
  return errors, unit, common


def load_paired_errors(dir_a: str, dir_b: str, unit: str = "auto"
                       ) -> Tuple[List[np.ndarray], List[np.ndarray], str, List[str]]:
  """Absolute errors of A and B per resampling unit, the unit used and the runs paired."""
  ((errors_a,), (errors_b,)), unit, common = load_errors([[dir_a], [dir_b]], unit)
  return errors_a, errors_b, unit, common


def markdown(result: Dict, names: Sequence[str]) -> str:
  a, b = names
  runs_a, runs_b = len(result["run_mae_a"]), len(result["run_mae_b"])
  if runs_a == runs_b == 1:
    return "\n".join([
        f"| runs | {PLURAL[result['unit']]} | predictions | {a} MAE | {b} MAE | {a} − {b} | 95% CI |",
        "|---|---|---|---|---|---|---|",
        f"| {result['runs']} | {result['units']} | {result['predictions']} | "
        f"{result['mae_a']:.2f} | {result['mae_b']:.2f} | {result['difference']:+.2f} | "
        f"[{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] |"]) + "\n"

  def spread(maes):
    sd = f" ± {np.std(maes, ddof=1):.2f}" if len(maes) > 1 else ""
    return f"{np.mean(maes):.2f}{sd}"

  return "\n".join([
      f"| runs | seeds ({a} / {b}) | {PLURAL[result['unit']]} | predictions | "
      f"{a} MAE (mean ± sd) | {b} MAE | {a} − {b} | 95% CI (seeds and {PLURAL[result['unit']]}) |",
      "|---|---|---|---|---|---|---|---|",
      f"| {result['runs']} | {runs_a} / {runs_b} | {result['units']} | {result['predictions']} | "
      f"{spread(result['run_mae_a'])} | {spread(result['run_mae_b'])} | "
      f"{result['difference']:+.2f} | [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] |",
      "",
      f"{a}, run by run: {', '.join(f'{m:.2f}' for m in result['run_mae_a'])}; "
      f"{b}: {', '.join(f'{m:.2f}' for m in result['run_mae_b'])}."]) + "\n"


def compare(dirs_a: Union[str, Sequence[str]], dirs_b: Union[str, Sequence[str]],
            unit: str = "auto", resamples: int = 10000, seed: int = 0) -> Dict:
  """A against B, where each is a run (a directory) or a setting (a list of runs)."""
  settings = [[d] if isinstance(d, str) else list(d) for d in (dirs_a, dirs_b)]
  (runs_a, runs_b), unit, common = load_errors(settings, unit)
  result = seeded_difference(runs_a, runs_b, resamples, seed)
  return {**result, "unit": unit, "runs": len(common), "a": dirs_a, "b": dirs_b}


def main(argv: List[str]) -> Optional[int]:
  if len(argv) != 3:
    raise app.UsageError("Usage: python -m clustercnn_jax.protocols.compare A_DIR B_DIR "
                         "(or A_SEED0,A_SEED1,... B_SEED0,B_SEED1,...)")
  names = FLAGS.names.split(",")
  if len(names) != 2:
    raise app.UsageError("--names takes two names: --names=cluster,ablation")
  dirs_a, dirs_b = ([d for d in arg.split(",") if d] for arg in argv[1:])
  result = compare(dirs_a if len(dirs_a) > 1 else dirs_a[0],
                   dirs_b if len(dirs_b) > 1 else dirs_b[0], FLAGS.unit, FLAGS.resamples,
                   FLAGS.seed)
  print(markdown(result, names))
  if FLAGS.output:
    files.write_json(FLAGS.output, {**result, "names": names})
  return 0


if __name__ == "__main__":
  cli.run(main, define_flags)
