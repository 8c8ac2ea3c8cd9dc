"""Repeated random 80/20 splits (MORPH II: seeds 0-4, as in the paper): mean and std of MAE.

  python -m clustercnn_jax.protocols.random_splits --config=configs/morph.py --workdir=/tmp/morph \\
      --config.data.manual_dir=/path/to/morph [--seeds=0-4] [--config.data.split.by_person=True]

Works for any config with ``data.split.kind='random'`` (morph2, utkface,
face_age_folder): split N sets ``data.split.seed = N``, trains in
WORKDIR/split_N and is skipped once finished; the summary (JSON and Markdown)
is rewritten after each.
"""

from typing import Dict, List

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from clustercnn_jax import cli, files, losses, plots, results
from clustercnn_jax.protocols import metric_tables, parse_ranges, sweep

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags, defined only when run as a program, so that the protocol
  modules can be imported together (their flags share names)."""
  flags.DEFINE_string("workdir", None, "Protocol directory (one sub-directory per split).")
  flags.DEFINE_string("seeds", "0-4", "Split seeds: '0-4' or '0,2'.")
  config_flags.DEFINE_config_file("config", None, "configs/morph.py or configs/utkface.py.",
                                  lock_config=True)
  flags.mark_flags_as_required(["config", "workdir"])
  flags.adopt_module_key_flags(cli)  # --compilation_cache, --verbose in --help


def summarise(workdir: str, seeds: List[int]) -> Dict:
  per_split, preds, ages = {}, [], []
  for s in seeds:
    run = files.join(workdir, f"split_{s}")
    if results.has_predictions(run):
      z = results.load_predictions(run)
      per_split[s] = losses.age_metrics(z["predictions"], z["ages"])
      preds.append(z["predictions"])
      ages.append(z["ages"])
  if not per_split:
    return {"finished_splits": []}
  maes = np.array([m["mae"] for m in per_split.values()])
  pooled = losses.age_metrics(np.concatenate(preds), np.concatenate(ages))
  result = {"finished_splits": sorted(per_split), "mae_mean": float(maes.mean()),
            "mae_std": float(maes.std(ddof=1)) if len(maes) > 1 else 0.0,
            "pooled": pooled, "per_split": per_split}
  files.write_json(files.join(workdir, "splits_results.json"), result)
  title = f"{len(per_split)} random split{'s' if len(per_split) > 1 else ''}"
  lines = [f"# {title}", "",
           f"MAE **{result['mae_mean']:.2f} ± {result['mae_std']:.2f}** (mean ± std over splits)",
           "", "| seed | test images | MAE | CS(5) |", "|---|---|---|---|"]
  lines += [f"| {s} | {m['num_examples']} | {m['mae']:.2f} | {m['cs'][5]:.3f} |"
            for s, m in per_split.items()]
  lines += ["", f"All {pooled['num_examples']} test predictions together:", "",
            *metric_tables(pooled)]
  files.write_text(files.join(workdir, "splits_results.md"), "\n".join(lines) + "\n")
  plots.age_figure(np.concatenate(preds), np.concatenate(ages),
                   files.join(workdir, "splits_results.png"),
                   f"{title}, all test predictions")
  return result


def run(config: ml_collections.ConfigDict, workdir: str, seeds: List[int]) -> Dict:
  """Trains and evaluates each unfinished split of ``seeds`` in WORKDIR/split_N; returns the
  summary (``{'stopped_at': ...}`` on SIGTERM: the split resumes on the next run)."""
  if config.data.split.kind != "random":
    raise ValueError(f"random_splits sweeps data.split.seed of a random split; this config's "
                     f"split is {config.data.split.kind!r} (use --config.data.split.kind=random).")
  return sweep(config, workdir, [(f"split_{s}", {"data.split.seed": s}) for s in seeds],
               lambda: summarise(workdir, seeds), "random splits")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup()
  summary = run(FLAGS.config, FLAGS.workdir, parse_ranges(FLAGS.seeds))
  if summary.get("finished_splits"):
    print(files.read_text(files.join(FLAGS.workdir, "splits_results.md")))


if __name__ == "__main__":
  cli.run(main, define_flags)
