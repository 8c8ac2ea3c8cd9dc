"""One command per headline result: run a recipe's whole chain and check it against its
manifest.

  python -m clustercnn_jax.reproduce                       # the recipes, with their figures
  python -m clustercnn_jax.reproduce fgnet_from_utkface --workdir=DIR \\
      [--data_root=../shared/data]

Each stage runs in DIR/<stage> (UTKFace pretraining, then the 82 FG-NET folds
from it, say) and is resumable: rerun the same command after an interruption and
finished stages and folds are skipped. Recipes that start with the same stage share
it when given the same DIR (``utkface_partial``, ``fgnet_from_utkface`` and
``utkface_on_fgnet`` train one UTKFace model between them). It ends by printing the
result next to the manifest's (``results/<recipe>.json``) and whether it lands
inside the spread of the manifest's reruns. ``--runlocal`` runs the same chain at
test size (seconds per stage; two folds of a LOPO); ``--write_manifest`` records the
result in results/ (then regenerate docs/results.md: python -m clustercnn_jax.manifests).
"""

import time
from typing import Any, Dict, List, Optional

import ml_collections
import numpy as np
from absl import flags, logging

from clustercnn_jax import cli, config_checks, files, manifests, recipes, results, train, workdirs
from clustercnn_jax.protocols import fgnet_lopo, random_splits

FLAGS = flags.FLAGS
RUNLOCAL_FOLDS = [1, 2]
RUNLOCAL_SEEDS = [0]


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "The recipe's directory (one sub-directory per stage).")
  flags.DEFINE_string("data_root", "../shared/data", "The folder holding each dataset's "
                      "download: fgnet/ (FGNET/), utkface/ (UTKFace/), morph/.")
  flags.DEFINE_bool("runlocal", False, "The same chain at test size (seconds per stage).")
  flags.DEFINE_bool("write_manifest", False, "Record the result in results/<recipe>.json.")
  flags.DEFINE_integer("seed", 0, "config.seed of every stage: another seed is a rerun, whose "
                       "MAE joins the manifest's spread.")


def run_stage(stage: recipes.Stage, workdir: str, *, data_root: str, runlocal: bool = False,
              extra: Optional[Dict[str, Any]] = None) -> Any:
  """Runs one stage in ``workdir/<stage>`` (resuming, skipping what is finished) and adds
  the time it took to the stage's record; returns its config, or None when it stopped
  early (SIGTERM)."""
  t0 = time.time()
  config = _run_stage(stage, workdir, data_root=data_root, runlocal=runlocal, extra=extra)
  add_wall_time(files.join(workdir, stage.name), time.time() - t0)
  return config


def _run_stage(stage: recipes.Stage, workdir: str, *, data_root: str, runlocal: bool,
               extra: Optional[Dict[str, Any]]) -> Any:
  init_from = files.join(workdir, stage.init_from) if stage.init_from else ""
  config = recipes.stage_config(stage, data_root=data_root, init_from=init_from,
                                runlocal=runlocal, extra=extra)
  out = files.join(workdir, stage.name)
  if stage.protocol == "evaluate":
    # Always evaluated again (a minute): a retrained model never leaves a stale figure.
    return evaluate_model(config, out)
  if stage.protocol == "train":
    if finished(out, config):
      logging.info("Stage %s finished earlier in %s: skipped.", stage.name, out)
      return config
    result = train.train_and_evaluate(config, out)
  elif stage.protocol == "lopo":
    folds = RUNLOCAL_FOLDS if runlocal else list(range(1, fgnet_lopo.NUM_PEOPLE + 1))
    result = fgnet_lopo.run(config, out, folds)
  else:
    result = random_splits.run(config, out, RUNLOCAL_SEEDS if runlocal else list(range(5)))
  return None if "stopped_at" in result else config


def evaluate_model(config: Any, out: str) -> Any:
  """Predicts every face of ``config.data`` with the model trained in ``config.init_from``
  (its own settings; only the data are the stage's) and writes the report to ``out``;
  returns the config it evaluated with."""
  from clustercnn_jax import evaluate, predictor  # the models: only for this protocol

  model = predictor.load(config.init_from)
  settings = ml_collections.ConfigDict(model.config.to_dict())
  settings.data = config.data
  evaluate.evaluate(model, settings, out, split="all")
  return settings


def finished(run_dir: str, config: Any) -> bool:
  """Whether a training stage's run in ``run_dir`` has finished with this config's budget
  and evaluation settings: then rerunning the recipe neither reloads its data nor
  evaluates it again (with other evaluation settings it is evaluated again, not
  retrained). A run trained with another config is refused, as a resume would be."""
  if not results.has_predictions(run_dir) or not workdirs.has_config(run_dir):
    return False
  saved = workdirs.load_config(run_dir)
  config_checks.check_resume(run_dir, saved, config)
  now, before = config_checks.flat_fields(config), config_checks.flat_fields(saved)
  return all(now.get(k) == before.get(k)
             for k in ("num_train_steps", "num_epochs", *config_checks.EVAL_FIELDS))


TIME_FILE = "stage_time.json"


def add_wall_time(stage_dir: str, seconds: float) -> float:
  """Adds one invocation's seconds to the stage's record in ``stage_dir``; returns its
  total, so that a stage resumed over several invocations reports the time of all."""
  files.makedirs(stage_dir)
  path = files.join(stage_dir, TIME_FILE)
  spent = files.read_json(path)["invocations_s"] if files.exists(path) else []
  spent = [*spent, round(seconds, 1)]
  files.write_json(path, {"invocations_s": spent, "total_s": round(sum(spent), 1)})
  return float(sum(spent))


def wall_time(recipe: recipes.Recipe, workdir: str) -> float:
  """The recipe's time: that of all its stages, a shared stage's first run included."""
  paths = [files.join(workdir, stage.name, TIME_FILE) for stage in recipe.stages]
  return float(sum(files.read_json(p)["total_s"] for p in paths if files.exists(p)))


def reproduce(name: str, workdir: str, *, data_root: str = "", runlocal: bool = False,
              write_manifest: bool = False,
              extra: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
  """Runs every stage of the recipe in order; returns the final stage's pooled metrics, the
  manifest's figure and the verdict (None when a stage stopped early)."""
  recipe = recipes.get(name)
  configs = {}
  for i, stage in enumerate(recipe.stages):
    logging.info("Recipe %s: stage %d of %d, %s (%s %s).", name, i + 1, len(recipe.stages),
                 stage.name, stage.protocol, stage.config)
    configs[stage.name] = run_stage(stage, workdir, data_root=data_root, runlocal=runlocal,
                                    extra=extra)
    if configs[stage.name] is None:
      return None
  *earlier, last = recipe.stages
  final = manifests.pooled(files.join(workdir, last.name))["metrics"]
  expected = manifests.load(name)
  out = {"recipe": name, "mae": final["mae"], "metrics": final,
         "wall_time_s": wall_time(recipe, workdir), **verdict(final["mae"], expected)}
  if write_manifest and not runlocal:
    config = configs[last.name]
    manifests.write(recipe, files.join(workdir, last.name), config, out["wall_time_s"],
                    rerun=bool(config.seed), earlier={s.name: configs[s.name] for s in earlier})
  return out


def verdict(mae: float, manifest: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """The manifest's figure and whether ``mae`` lies within two standard deviations of its
  reruns' mean (``inside`` is None without a manifest or with fewer than two reruns)."""
  if manifest is None:
    return {"expected": None, "spread": None, "inside": None}
  sd = manifests.spread(manifest)
  centre = float(np.mean(manifest["reruns"]))
  inside = None if sd is None else bool(abs(mae - centre) <= 2 * sd)
  return {"expected": manifest["mae"], "spread": sd, "inside": inside}


def summary_line(out: Dict[str, Any]) -> str:
  line = f"{out['recipe']}: MAE {out['mae']:.2f}"
  if out["expected"] is None:
    return line + " (no manifest in results/ to compare with)"
  line += f", expected {out['expected']:.2f}"
  if out["spread"] is None:
    return line + " (one run in the manifest: no spread stated yet)"
  return line + (f" ± {2 * out['spread']:.2f} (2 sd over reruns): "
                 f"{'inside' if out['inside'] else 'OUTSIDE'} the spread")


def list_recipes() -> str:
  rows = []
  for r in recipes.RECIPES.values():
    m = manifests.load(r.name)
    figure = "no manifest yet" if m is None else f"MAE {m['mae']:.2f} in results/{r.name}.json"
    rows.append(f"  {r.name:20s} {r.dataset}, {r.protocol}: {figure}\n"
                f"  {'':20s} {r.title}{' (accelerator)' if r.accelerator else ''}")
  return ("Recipes (python -m clustercnn_jax.reproduce NAME --workdir=DIR):\n" + "\n".join(rows))


def main(argv: List[str]) -> int:
  if len(argv) == 1:
    print(list_recipes())
    return 0
  if len(argv) != 2:
    raise ValueError("Give one recipe: python -m clustercnn_jax.reproduce NAME --workdir=DIR "
                     "(without arguments: the list).")
  if not FLAGS.workdir:
    raise ValueError("--workdir is required: the directory the recipe's stages run in.")
  cli.setup()
  out = reproduce(argv[1], FLAGS.workdir, data_root=FLAGS.data_root, runlocal=FLAGS.runlocal,
                  write_manifest=FLAGS.write_manifest,
                  extra={"seed": FLAGS.seed} if FLAGS.seed else None)
  if out is None:
    print("Stopped early; run the same command to resume.")
    return 0
  print(summary_line(out))
  return 0


if __name__ == "__main__":
  cli.run(main, define_flags)
