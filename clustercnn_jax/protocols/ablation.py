"""The cluster module against its ablation over several training seeds, on one test set.

  python -m clustercnn_jax.protocols.ablation --config=configs/demo.py:opposed \\
      --workdir=DIR [--seeds=0-2]

Seed N trains twice, in WORKDIR/cluster_seedN and WORKDIR/ablation_seedN
(``model.cluster.enabled`` True and False, ``seed=N``); finished runs are skipped, so it
resumes where it stopped. The summary is the difference of the two settings' mean MAE
with a bootstrap interval that resamples seeds and test images (``protocols.compare``)
and, on synthetic faces, how well each run's clusters recover the generator's hidden
modes: the adjusted Rand index (1 the same partition, 0 what chance gives).
"""

from typing import Any, Dict, List, Sequence

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from clustercnn_jax import cli, files, results
from clustercnn_jax.protocols import compare, parse_ranges, sweep

FLAGS = flags.FLAGS
SETTINGS = (("cluster", True), ("ablation", False))


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Study directory (one sub-directory per run).")
  flags.DEFINE_string("seeds", "0-2", "Training seeds: '0-2' or '0,3'.")
  config_flags.DEFINE_config_file("config", None, "e.g. configs/demo.py:opposed.",
                                  lock_config=True)
  flags.mark_flags_as_required(["config", "workdir"])
  flags.adopt_module_key_flags(cli)


def adjusted_rand_index(labels_a: Sequence[int], labels_b: Sequence[int]) -> float:
  """Agreement of two partitions of the same items, corrected for chance (Hubert & Arabie)."""
  _, a = np.unique(np.asarray(labels_a), return_inverse=True)
  _, b = np.unique(np.asarray(labels_b), return_inverse=True)
  table = np.zeros((a.max() + 1, b.max() + 1))
  np.add.at(table, (a, b), 1)
  pairs = lambda n: n * (n - 1) / 2
  index, rows, cols = pairs(table).sum(), pairs(table.sum(1)).sum(), pairs(table.sum(0)).sum()
  expected = rows * cols / pairs(len(a))
  best = (rows + cols) / 2
  return 1.0 if best == expected else float((index - expected) / (best - expected))


def hidden_modes(config: ml_collections.ConfigDict) -> np.ndarray:
  """The synthetic test set's generating modes, in test-set order."""
  from clustercnn_jax.data import synthetic

  c = config.data.synthetic
  return synthetic.ages_and_modes(c.num_test, seed=2 * c.seed + 1,
                                  max_age=min(c.max_age, config.max_age))[1]


def run_dir(workdir: str, setting: str, seed: int) -> str:
  return files.join(workdir, f"{setting}_seed{seed}")


def summarise(config: ml_collections.ConfigDict, workdir: str, seeds: List[int]) -> Dict:
  both = [s for s in seeds
          if all(results.has_predictions(run_dir(workdir, n, s)) for n, _ in SETTINGS)]
  if not both:
    return {"finished_seeds": []}
  out: Dict[str, Any] = {"finished_seeds": both, **compare.compare(
      *[[run_dir(workdir, n, s) for s in both] for n, _ in SETTINGS])}
  lines = [f"# The cluster module against its ablation, {len(both)} seeds", "",
           compare.markdown(out, [n for n, _ in SETTINGS])]
  if config.data.name == "synthetic":
    modes = hidden_modes(config)
    out["adjusted_rand_index"] = [
        adjusted_rand_index(results.load_predictions(run_dir(workdir, "cluster", s))["clusters"],
                            modes) for s in both]
    lines += [f"Adjusted Rand index of the clusters against the generator's "
              f"{len(np.unique(modes))} modes, seed by seed: "
              + ", ".join(f"{r:.2f}" for r in out["adjusted_rand_index"]) + "."]
  files.write_json(files.join(workdir, "ablation_results.json"), out)
  files.write_text(files.join(workdir, "ablation_results.md"), "\n".join(lines) + "\n")
  return out


def run(config: ml_collections.ConfigDict, workdir: str, seeds: List[int]) -> Dict:
  """Trains each unfinished (setting, seed); returns the summary (``{'stopped_at': ...}``
  on SIGTERM: the run resumes on the next call)."""
  runs = [(f"{n}_seed{s}", {"seed": s, "model.cluster.enabled": on})
          for s in seeds for n, on in SETTINGS]
  return sweep(config, workdir, runs, lambda: summarise(config, workdir, seeds), "ablation")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup()
  summary = run(FLAGS.config, FLAGS.workdir, parse_ranges(FLAGS.seeds))
  if summary.get("finished_seeds"):
    print(files.read_text(files.join(FLAGS.workdir, "ablation_results.md")))


if __name__ == "__main__":
  cli.run(main, define_flags)
