"""Evaluation protocols: each trains and evaluates through train.py, one workdir per run."""

import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import jax
from absl import logging


def parse_ranges(spec: str) -> List[int]:
  """'0-4' -> [0, 1, 2, 3, 4]; '1,3-5' -> [1, 3, 4, 5] (sorted, unique)."""
  out = []
  for part in spec.split(","):
    lo, _, hi = part.strip().partition("-")
    out += list(range(int(lo), int(hi or lo) + 1))
  return sorted(set(out))


def metric_tables(m: Dict[str, Any]) -> List[str]:
  """Markdown lines: CS(θ) for θ = 0..10, then MAE per age decade."""
  lines = ["| θ | " + " | ".join(str(t) for t in m["cs"]) + " |",
           "|---|" + "---|" * len(m["cs"]),
           "| CS(θ) | " + " | ".join(f"{v:.3f}" for v in m["cs"].values()) + " |", "",
           "| age | count | MAE |", "|---|---|---|"]
  return lines + [f"| {k} | {v['count']} | {v['mae']:.2f} |" for k, v in m["mae_by_decade"].items()]


def sweep(config: Any, workdir: str, runs: Sequence[Tuple[str, Dict[str, Any]]],
          aggregate: Callable[[], Dict], protocol: str, share_data: bool = False) -> Dict:
  """Trains each run of a protocol, (sub-directory, config overrides), that has not
  finished, re-aggregating after each; returns the aggregate, or ``{'stopped_at': ...}``
  on SIGTERM (the run resumes on the next call). Finished runs are skipped, so a
  protocol resumes where it stopped. ``share_data``: the runs differ in ``data.split``
  only, so the dataset is read once and each run splits it (a small dataset: it stays in
  memory throughout)."""
  from clustercnn_jax import data, files, results, train  # here: train imports the models
  from clustercnn_jax.progress import format_seconds, release_memory, resident_mb

  if share_data and any(not k.startswith("data.split.") for _, o in runs for k in o):
    raise ValueError(f"{protocol}: share_data needs runs that differ in data.split only.")
  files.makedirs(workdir)
  todo = [(name, o) for name, o in runs
          if not results.has_predictions(files.join(workdir, name))]
  logging.info("%s: %d runs requested, %d already finished.", protocol, len(runs),
               len(runs) - len(todo))
  t0 = time.time()
  source = data.load_source(config) if share_data and todo else None
  for i, (name, overrides) in enumerate(todo):
    run_config = config.copy_and_resolve_references()
    run_config.update_from_flattened_dict(overrides)
    result = train.train_and_evaluate(run_config, files.join(workdir, name), protocol=True,
                                      source=source)
    if "stopped_at" in result:
      return result
    # Each run compiles its own steps and splits its own data; drop both, so that resident
    # memory after run 82 is what it was after run 1.
    jax.clear_caches()
    release_memory()
    done = i + 1
    agg = aggregate()
    so_far = agg.get("mae", agg.get("mae_mean"))  # a study of two settings has none
    logging.info("%s %s: MAE %.2f on %d images | %d of %d done%s | ETA %s | RSS %.0f MiB",
                 protocol, name, result["test_mae"], result["num_test"], done, len(todo),
                 "" if so_far is None else f", MAE so far {so_far:.2f}",
                 format_seconds((time.time() - t0) / done * (len(todo) - done)), resident_mb())
  return aggregate()
