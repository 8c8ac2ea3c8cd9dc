"""Two runs on the same test examples: the paired difference of their MAE and its 95%
bootstrap interval, resampling people (FG-NET folds) or images.

  python -m clustercnn_jax.protocols.compare A_DIR B_DIR [--names=cluster,ablation]

A_DIR and B_DIR are protocol directories (fold_NN/ or split_N/ sub-directories, as
fgnet_lopo and random_splits write them) or single run workdirs. Only runs finished
in both count; their test examples must be the same (same ages, in the same order).
With fold sub-directories each fold is one person and people are resampled (the
unit FG-NET's leave one person out draws); otherwise images are. The interval is a
percentile bootstrap of MAE(A) - MAE(B) over all pooled predictions: it excludes 0
when A and B differ by more than the choice of people (or images) explains.
"""

import glob
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import app, flags

from clustercnn_jax.results import PREDICTIONS_FILE

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
                      resamples: int = 10000, seed: int = 0) -> Dict[str, float]:
  """MAE(A), MAE(B), their difference and its 95% percentile-bootstrap interval, where
  ``errors_*[g]`` are the absolute errors of resampling unit g (a person, or one image)."""
  if len(errors_a) != len(errors_b) or not len(errors_a):
    raise ValueError(f"Need the same, non-zero number of units; got {len(errors_a)} and "
                     f"{len(errors_b)}.")
  sum_a = np.array([np.sum(e) for e in errors_a], np.float64)
  sum_b = np.array([np.sum(e) for e in errors_b], np.float64)
  count = np.array([len(e) for e in errors_a], np.float64)
  if not np.array_equal(count, [len(e) for e in errors_b]):
    raise ValueError("A and B have different numbers of predictions in some unit.")
  draws = np.random.default_rng(seed).integers(0, len(count), (resamples, len(count)))
  n = count[draws].sum(1)
  diffs = (sum_a[draws].sum(1) - sum_b[draws].sum(1)) / n
  lo, hi = np.percentile(diffs, [2.5, 97.5])
  mae_a, mae_b = sum_a.sum() / count.sum(), sum_b.sum() / count.sum()
  return {"units": len(count), "predictions": int(count.sum()), "mae_a": float(mae_a),
          "mae_b": float(mae_b), "difference": float(mae_a - mae_b), "ci_low": float(lo),
          "ci_high": float(hi)}


def finished_runs(directory: str) -> Dict[str, str]:
  """Sub-run name -> predictions file: the run itself (a workdir, or an ``evaluate`` report
  directory), else its fold_NN / split_N sub-directories."""
  own = os.path.join(directory, PREDICTIONS_FILE)
  if os.path.exists(own):  # a workdir's report/ sub-directories are not sub-runs
    return {".": own}
  return {os.path.basename(os.path.dirname(p)): p
          for p in glob.glob(os.path.join(directory, "*", PREDICTIONS_FILE))}


def load_paired_errors(dir_a: str, dir_b: str, unit: str = "auto"
                       ) -> Tuple[List[np.ndarray], List[np.ndarray], str, List[str]]:
  """Absolute errors of A and B per resampling unit, the unit used and the runs paired."""
  runs_a, runs_b = finished_runs(dir_a), finished_runs(dir_b)
  for d, runs in ((dir_a, runs_a), (dir_b, runs_b)):
    if not runs:
      raise FileNotFoundError(f"{d}: no {PREDICTIONS_FILE} in it or in its sub-directories; "
                              "pass a finished run's workdir or a protocol directory.")
  common = sorted(set(runs_a) & set(runs_b))
  if not common:
    raise ValueError(f"{dir_a} and {dir_b} have no finished run in common "
                     f"({sorted(runs_a)[:5]}... vs {sorted(runs_b)[:5]}...).")
  if unit == "auto":
    unit = "person" if all(name.startswith("fold_") for name in common) else "image"
  errors_a, errors_b = [], []
  for name in common:
    with np.load(runs_a[name]) as za, np.load(runs_b[name]) as zb:
      if not np.array_equal(za["ages"], zb["ages"]):
        raise ValueError(f"{name}: A and B were tested on different examples "
                         f"({runs_a[name]} vs {runs_b[name]}).")
      ea = np.abs(za["predictions"] - za["ages"])
      eb = np.abs(zb["predictions"] - zb["ages"])
    if unit == "person":
      errors_a.append(ea)
      errors_b.append(eb)
    else:
      errors_a += list(ea[:, None])
      errors_b += list(eb[:, None])
  return errors_a, errors_b, unit, common


def markdown(result: Dict, names: Sequence[str]) -> str:
  a, b = names
  return "\n".join([
      f"| runs | {PLURAL[result['unit']]} | predictions | {a} MAE | {b} MAE | {a} − {b} | 95% CI |",
      "|---|---|---|---|---|---|---|",
      f"| {result['runs']} | {result['units']} | {result['predictions']} | "
      f"{result['mae_a']:.2f} | {result['mae_b']:.2f} | {result['difference']:+.2f} | "
      f"[{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] |"]) + "\n"


def compare(dir_a: str, dir_b: str, unit: str = "auto", resamples: int = 10000,
            seed: int = 0) -> Dict:
  errors_a, errors_b, unit, common = load_paired_errors(dir_a, dir_b, unit)
  result = paired_difference(errors_a, errors_b, resamples, seed)
  return {**result, "unit": unit, "runs": len(common), "a": dir_a, "b": dir_b}


def main(argv: List[str]) -> Optional[int]:
  if len(argv) != 3:
    raise app.UsageError("Usage: python -m clustercnn_jax.protocols.compare A_DIR B_DIR")
  names = FLAGS.names.split(",")
  if len(names) != 2:
    raise app.UsageError("--names takes two names: --names=cluster,ablation")
  result = compare(argv[1], argv[2], FLAGS.unit, FLAGS.resamples, FLAGS.seed)
  print(markdown(result, names))
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      json.dump({**result, "names": names}, f, indent=2)
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
