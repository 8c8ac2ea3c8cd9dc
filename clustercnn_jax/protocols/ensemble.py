"""The mean prediction of several runs on the same test examples, written as a run of
its own, so that compare, the tables and the figures take an ensemble like any run.

  python -m clustercnn_jax.protocols.ensemble --output=DIR RUN_A RUN_B [RUN_C ...]

Each RUN is a protocol directory (fold_NN/ or split_N/ sub-directories, as fgnet_lopo
and random_splits write them) or a single run's workdir, as for compare. Only runs
finished in every member count; their test examples must be the same. DIR gets the
same layout (DIR/fold_NN/predictions.npz, ...) and the protocol's tables and figure
(lopo_results.*, splits_results.*, or results.json and results.png for single runs).
Averaging expected ages of models trained apart is our extension, not the paper's.
"""

import re
from typing import Dict, List, Optional, Sequence

import numpy as np
from absl import app, flags

from clustercnn_jax import cli, files, losses, plots
from clustercnn_jax.protocols import fgnet_lopo, random_splits
from clustercnn_jax.protocols.compare import finished_runs
from clustercnn_jax.results import (PREDICTIONS_FILE, RESULTS_FILE, load_predictions,
                                    save_json)

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("output", None, "Directory the ensemble's predictions and tables go to.")
  flags.mark_flag_as_required("output")


def ensemble(members: Sequence[str], output: str) -> Dict:
  """Averages the members' predictions run by run into ``output``; returns the MAE of
  the ensemble and of each member over the runs they share."""
  if len(members) < 2:
    raise ValueError(f"An ensemble needs at least two runs; got {list(members)}.")
  runs = []
  for d in members:
    runs.append(finished_runs(d))
    if not runs[-1]:
      raise FileNotFoundError(f"{d}: no {PREDICTIONS_FILE} in it or in its sub-directories; "
                              "pass a finished run's workdir or a protocol directory.")
  common = sorted(set.intersection(*(set(r) for r in runs)))
  if not common:
    raise ValueError(f"{list(members)} have no finished run in common.")
  stale = sorted(set(finished_runs(output)) - set(common)) if files.path(output).is_dir() else []
  if stale:
    raise ValueError(f"{output} already holds runs these members do not share ({stale[:5]}); "
                     "pass an empty or new --output.")
  ages, member_preds, mean_preds = [], [[] for _ in members], []
  for name in common:
    loaded = [load_predictions(r[name]) for r in runs]
    for d, z in zip(members[1:], loaded[1:]):
      if not (np.array_equal(z["ages"], loaded[0]["ages"])
              and np.array_equal(z["person_ids"], loaded[0]["person_ids"])):
        raise ValueError(f"{name}: {d} was tested on other examples than {members[0]}.")
    preds = np.stack([z["predictions"] for z in loaded])
    mean_preds.append(preds.mean(0))
    files.save_npz(files.join(output, name, PREDICTIONS_FILE), ages=loaded[0]["ages"],
                   predictions=mean_preds[-1], person_ids=loaded[0]["person_ids"])
    ages.append(loaded[0]["ages"])
    for m, p in zip(member_preds, preds):
      m.append(p)
  ages, mean_preds = np.concatenate(ages), np.concatenate(mean_preds)
  result = {"members": list(members), "runs": common,
            "member_mae": [losses.mae(np.concatenate(p), ages) for p in member_preds],
            **losses.age_metrics(mean_preds, ages)}
  save_json(output, "ensemble.json", result)
  _write_protocol_tables(output, common, mean_preds, ages)
  return result


def _write_protocol_tables(output: str, common: List[str], preds: np.ndarray,
                           ages: np.ndarray) -> None:
  """The tables and figure the members' protocol writes, now for the ensemble."""
  if all(re.fullmatch(r"fold_\d+", n) for n in common):
    fgnet_lopo.aggregate(output)
  elif all(re.fullmatch(r"split_\d+", n) for n in common):
    random_splits.summarise(output, [int(n.split("_")[1]) for n in common])
  elif common == ["."]:
    save_json(output, RESULTS_FILE, {"test_mae": losses.mae(preds, ages),
                                     **losses.age_metrics(preds, ages)})
    plots.age_figure(preds, ages, files.join(output, "results.png"), "ensemble")


def markdown(result: Dict) -> str:
  lines = ["| run | MAE |", "|---|---|"]
  lines += [f"| {d} | {m:.2f} |" for d, m in zip(result["members"], result["member_mae"])]
  lines += [f"| **mean of the {len(result['members'])}** | **{result['mae']:.2f}** |", "",
            f"{len(result['runs'])} run(s) in common, {result['num_examples']} predictions."]
  return "\n".join(lines) + "\n"


def main(argv: List[str]) -> Optional[int]:
  if len(argv) < 3:
    raise app.UsageError("Usage: python -m clustercnn_jax.protocols.ensemble --output=DIR "
                         "RUN_A RUN_B [...]")
  result = ensemble(argv[1:], FLAGS.output)
  print(markdown(result))
  print(f"Written to {FLAGS.output}.")
  return 0


if __name__ == "__main__":
  cli.run(main, define_flags)
