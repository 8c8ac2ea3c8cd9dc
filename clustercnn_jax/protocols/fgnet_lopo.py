"""FG-NET leave one person out: 82 folds, MAE over all 1,002 predictions.

  python -m clustercnn_jax.protocols.fgnet_lopo --config=configs/fgnet.py --workdir=/tmp/lopo
  python -m clustercnn_jax.protocols.fgnet_lopo --config=configs/fgnet.py:frozen ...  # CPU budget
  python -m clustercnn_jax.protocols.fgnet_lopo ... --folds=1-10        # a subset of folds
  python -m clustercnn_jax.protocols.fgnet_lopo ... --aggregate_only     # just the table

Fold N sets ``data.split.test_person = N`` and trains in WORKDIR/fold_NN (resumable: an interrupted fold continues
from its last checkpoint, a finished fold is skipped). After every fold the
aggregate is recomputed from all finished folds and written to
WORKDIR/lopo_results.json, .md (tables) and .png (figures).
"""

from typing import Dict, List

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from clustercnn_jax import cli, files, losses, plots, results
from clustercnn_jax.protocols import metric_tables, parse_ranges, sweep

NUM_PEOPLE = 82
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags, defined only when run as a program, so that the protocol
  modules can be imported together (their flags share names)."""
  flags.DEFINE_string("workdir", None, "Protocol directory (one sub-directory per fold).")
  flags.DEFINE_string("folds", "1-82", "Folds (held-out person ids) to run: '1-82', '3,7,9'.")
  flags.DEFINE_bool("aggregate_only", False, "Only recompute the table from finished folds.")
  config_flags.DEFINE_config_file("config", None, "configs/fgnet.py or a variant "
                                  "(configs/fgnet.py:frozen).", lock_config=True)
  flags.mark_flags_as_required(["config", "workdir"])
  flags.adopt_module_key_flags(cli)  # --compilation_cache, --verbose in --help


def parse_folds(spec: str) -> List[int]:
  folds = parse_ranges(spec)
  bad = [f for f in folds if not 1 <= f <= NUM_PEOPLE]
  if bad:
    raise ValueError(f"--folds: {bad} outside 1..{NUM_PEOPLE}.")
  return folds


def fold_name(fold: int) -> str:
  return f"fold_{fold:02d}"


def fold_dir(workdir: str, fold: int) -> str:
  return files.join(workdir, fold_name(fold))


def aggregate(workdir: str) -> Dict:
  """Metrics over every prediction of the finished folds."""
  ages, preds, finished = [], [], []
  for fold in range(1, NUM_PEOPLE + 1):
    if results.has_predictions(fold_dir(workdir, fold)):
      z = results.load_predictions(fold_dir(workdir, fold))
      ages.append(z["ages"])
      preds.append(z["predictions"])
      finished.append(fold)
  if not finished:
    return {"finished_folds": []}
  ages, preds = np.concatenate(ages), np.concatenate(preds)
  result = {"finished_folds": finished, "num_folds": len(finished),
            "complete": len(finished) == NUM_PEOPLE, **losses.age_metrics(preds, ages)}
  files.write_json(files.join(workdir, "lopo_results.json"), result)
  files.write_text(files.join(workdir, "lopo_results.md"), markdown(result))
  plots.age_figure(preds, ages, files.join(workdir, "lopo_results.png"),
                   f"FG-NET leave one person out: {len(finished)} of {NUM_PEOPLE} folds")
  return result


def markdown(r: Dict) -> str:
  lines = [f"# FG-NET leave one person out ({r['num_folds']} of {NUM_PEOPLE} folds"
           f"{'' if r['complete'] else ', incomplete'})", "",
           f"MAE over {r['num_examples']} predictions: **{r['mae']:.2f}** years", "",
           *metric_tables(r)]
  return "\n".join(lines) + "\n"


def run(config: ml_collections.ConfigDict, workdir: str, folds: List[int]) -> Dict:
  """Trains and evaluates each unfinished fold of ``folds`` in its ``fold_dir``; returns the
  aggregate (``{'stopped_at': ...}`` on SIGTERM: the fold resumes on the next run)."""
  if config.data.split.kind != "person":
    raise ValueError("fgnet_lopo holds out one person per fold: the config needs "
                     "data.split.kind='person' (configs/fgnet.py sets it).")
  return sweep(config, workdir,
               [(fold_name(f), {"data.split.test_person": f}) for f in folds],
               lambda: aggregate(workdir), "FG-NET LOPO", share_data=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup()
  workdir = FLAGS.workdir
  if FLAGS.aggregate_only:
    agg = aggregate(workdir)
  else:
    agg = run(FLAGS.config, workdir, parse_folds(FLAGS.folds))
    if "stopped_at" in agg:
      return
  if agg["finished_folds"]:
    print(markdown(agg))
  else:
    print("No finished folds yet.")


if __name__ == "__main__":
  cli.run(main, define_flags)
