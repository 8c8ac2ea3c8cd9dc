"""Results as data: one manifest per recipe in ``results/``, and the tables made from them.

  results/<recipe>.json              command, commit, config, MAE, CS(0..10), MAE per
                                     decade, n, the mean predictor, wall time, reruns
  results/<recipe>.predictions.npz   its test ages and predictions (``protocols.compare``
                                     takes them: paired intervals without retraining)
  docs/results.md                    generated: python -m clustercnn_jax.manifests

A figure quoted anywhere in the docs comes from a manifest; ``tests/test_manifests.py``
fails when docs/results.md and the manifests disagree.
"""

import datetime
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional

import numpy as np

from clustercnn_jax import files, losses, recipes
from clustercnn_jax.protocols import metric_tables
from clustercnn_jax.protocols.compare import finished_runs
from clustercnn_jax.results import load_predictions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "results")
DOC = os.path.join(ROOT, "docs", "results.md")


def pooled(run_dir: str) -> Dict[str, Any]:
  """Every finished prediction of a run or protocol directory, pooled, with its metrics
  and the MAE of each sub-run (fold or split)."""
  found = finished_runs(run_dir)
  if not found:
    raise FileNotFoundError(f"{run_dir}: no finished run in it.")
  loaded = {name: load_predictions(p) for name, p in sorted(found.items())}
  ages = np.concatenate([z["ages"] for z in loaded.values()])
  preds = np.concatenate([z["predictions"] for z in loaded.values()])
  pids = [z["person_ids"] for z in loaded.values()]
  m = losses.age_metrics(preds, ages)
  m["mean_predictor_mae"] = losses.mae(np.full(len(ages), float(np.mean(ages))), ages)
  m["sub_runs"] = len(loaded)
  return {"metrics": m, "ages": ages, "predictions": preds,
          "person_ids": np.concatenate(pids) if all(len(p) for p in pids) else np.zeros(0)}


def commit() -> str:
  """HEAD, with '+changes' when tracked files differ from it (the run's code is not HEAD's)."""
  git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True,
                                  check=True).stdout.strip()
  try:
    head = git("rev-parse", "--short", "HEAD")
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def manifest_path(name: str, results_dir: str = RESULTS_DIR) -> str:
  return os.path.join(results_dir, f"{name}.json")


def load(name: str, results_dir: str = RESULTS_DIR) -> Optional[Dict[str, Any]]:
  path = manifest_path(name, results_dir)
  return files.read_json(path) if os.path.exists(path) else None


def load_all(results_dir: str = RESULTS_DIR) -> List[Dict[str, Any]]:
  """The manifests of every recipe that has one, in the recipes' order."""
  return [m for m in (load(n, results_dir) for n in recipes.RECIPES) if m is not None]


def spread(manifest: Dict[str, Any]) -> Optional[float]:
  """The standard deviation of the MAE over the manifest's reruns (None below two)."""
  runs = manifest.get("reruns", [])
  return float(np.std(runs, ddof=1)) if len(runs) > 1 else None


def write(recipe: recipes.Recipe, run_dir: str, config: Any, wall_time_s: float,
          results_dir: str = RESULTS_DIR, rerun: bool = False) -> Dict[str, Any]:
  """The manifest of a finished recipe whose final stage is ``run_dir``. A manifest already
  there keeps its reruns and this run's MAE joins them; with ``rerun`` (another seed) that
  is all, otherwise this run becomes the manifest's figure and predictions."""
  p = pooled(run_dir)
  old = load(recipe.name, results_dir) or {}
  m = p["metrics"]
  if rerun and old:
    old["reruns"] = [*old["reruns"], round(m["mae"], 4)]
    files.write_text(manifest_path(recipe.name, results_dir), _json(old))
    return old
  manifest = {
      "recipe": recipe.name, "title": recipe.title, "dataset": recipe.dataset,
      "protocol": recipe.protocol, "command": recipe.command, "commit": commit(),
      "date": datetime.date.today().isoformat(), "machine": machine(),
      "mae": m["mae"], "cs": m["cs"], "mae_by_decade": m["mae_by_decade"],
      "num_examples": m["num_examples"], "sub_runs": m["sub_runs"],
      "mean_predictor_mae": m["mean_predictor_mae"],
      "wall_time_s": round(wall_time_s, 1),
      "reruns": [*old.get("reruns", []), round(m["mae"], 4)],
      "predictions": f"{recipe.name}.predictions.npz",
      "config": config.to_dict() if hasattr(config, "to_dict") else config,
  }
  os.makedirs(results_dir, exist_ok=True)
  files.save_npz(os.path.join(results_dir, manifest["predictions"]), ages=p["ages"],
                 predictions=p["predictions"], person_ids=p["person_ids"])
  files.write_text(manifest_path(recipe.name, results_dir), _json(manifest))
  return manifest


def _json(obj: Any) -> str:
  return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def machine() -> str:
  import jax

  d = jax.devices()[0]
  if d.platform == "cpu":
    return f"{os.cpu_count()}-core CPU"
  return f"{jax.device_count()} x {d.device_kind}"


def _minutes(seconds: float) -> str:
  return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _by_threshold(cs: Dict[str, float]) -> Dict[str, float]:
  """CS(θ) in order of θ (a manifest's JSON keys are strings, sorted as text)."""
  return dict(sorted(cs.items(), key=lambda kv: float(kv[0])))


def render(manifests: List[Dict[str, Any]]) -> str:
  """docs/results.md: the headline table, then each recipe's CS(θ) and MAE per decade."""
  lines = ["# Results", "",
           "Generated from `results/*.json` by `python -m clustercnn_jax.manifests`; do not "
           "edit by hand. Each row is one recipe: `python -m clustercnn_jax.reproduce NAME "
           "--workdir=DIR` reruns it and says whether it lands inside the spread. The "
           "predictions of each are in `results/NAME.predictions.npz`, for "
           "`python -m clustercnn_jax.protocols.compare`.", "",
           "| recipe | dataset | protocol | MAE | spread (sd, reruns) | n | mean predictor | "
           "wall time | machine | commit |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for m in manifests:
    sd = spread(m)
    lines.append(
        f"| `{m['recipe']}` | {m['dataset']} | {m['protocol']} | **{m['mae']:.2f}** | "
        f"{'%.2f' % sd if sd is not None else '–'} ({len(m['reruns'])}) | "
        f"{m['num_examples']} | {m['mean_predictor_mae']:.2f} | "
        f"{_minutes(m['wall_time_s'])} | {m['machine']} | {m['commit']} |")
  for m in manifests:
    lines += ["", f"## `{m['recipe']}`: {m['title']}", "", f"`{m['command']}`", "",
              f"MAE {m['mae']:.2f} over {m['num_examples']} predictions "
              f"({m['sub_runs']} run{'s' if m['sub_runs'] > 1 else ''} pooled); reruns: "
              f"{', '.join(f'{r:.2f}' for r in m['reruns'])}.", "",
              *metric_tables({**m, "cs": _by_threshold(m["cs"])})]
  return "\n".join(lines) + "\n"


def main(argv: List[str]) -> int:
  check = "--check" in argv
  found = load_all()
  text = render(found)
  if check:
    same = os.path.exists(DOC) and open(DOC).read() == text
    print(f"{DOC}: {'up to date' if same else 'differs from results/: regenerate it'}")
    return 0 if same else 1
  os.makedirs(os.path.dirname(DOC), exist_ok=True)
  files.write_text(DOC, text)
  print(f"wrote {DOC} from {len(found)} manifests in {RESULTS_DIR}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
