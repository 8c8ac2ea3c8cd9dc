"""Evaluate a trained model on its own test split or on another dataset, with a report.

  python -m clustercnn_jax.evaluate --workdir=DIR                      # its test split
  python -m clustercnn_jax.evaluate --workdir=UTK_DIR --split=all \\
      --config.data.name=fgnet --config.data.manual_dir=../shared/data/fgnet \\
      --config.data.split.kind=person                                 # all of FG-NET

The workdir's saved config rebuilds the model; ``--config.data.*`` picks the data
(other fields describe the trained model and cannot change). The report goes to
WORKDIR/report (WORKDIR/report_<dataset> for another dataset, or --out): see
``clustercnn_jax/report.py`` for its files.
"""

import sys
from typing import Any, Dict, List, Optional

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from clustercnn_jax import checkpoint, cli, config_checks, data, files, report
from clustercnn_jax.data.dataset import ArrayDataset
from clustercnn_jax.models.model import build_model
from clustercnn_jax.predictor import Predictor, load

FLAGS = flags.FLAGS
SPLITS = ("test", "train", "all")


def model_fields_changed(saved: ml_collections.ConfigDict,
                         config: ml_collections.ConfigDict) -> List[str]:
  """Fields outside ``data`` and ``config_checks.EVAL_FIELDS`` (how to evaluate, not what
  was trained) that differ from the trained model's config."""
  a, b = config_checks.flat_fields(saved), config_checks.flat_fields(config)
  how = config_checks.EVAL_FIELDS
  return sorted(k for k in set(a) | set(b)
                if not k.startswith("data.") and k not in how and a.get(k) != b.get(k))


def with_eval_fields(predictor: Predictor, config: ml_collections.ConfigDict) -> Predictor:
  """``predictor`` evaluating as ``config``'s ``config_checks.EVAL_FIELDS`` say (same
  trained variables; the model is rebuilt from the updated config)."""
  saved, wanted = config_checks.flat_fields(predictor.config), config_checks.flat_fields(config)
  changed = [k for k in config_checks.EVAL_FIELDS if saved.get(k) != wanted.get(k)]
  if not changed:
    return predictor
  settings = ml_collections.ConfigDict(predictor.config.to_dict())
  for k in changed:
    *parents, leaf = k.split(".")
    node = settings
    for name in parents:
      node = node[name]
    node[leaf] = wanted[k]
  return Predictor(settings, build_model(settings), predictor.variables, predictor.batch_size)


def dataset_for(config: ml_collections.ConfigDict, split: str) -> ArrayDataset:
  train_ds, test_ds = data.load(config)
  if split == "test":
    return test_ds
  if split == "train":
    return train_ds
  pids = (None if train_ds.person_ids is None or test_ds.person_ids is None
          else np.concatenate([train_ds.person_ids, test_ds.person_ids]))
  return ArrayDataset(np.concatenate([train_ds.images, test_ds.images]),
                      np.concatenate([train_ds.ages, test_ds.ages]), pids)


def evaluate(predictor: Predictor, config: ml_collections.ConfigDict, out_dir: str,
             split: str = "test", title: Optional[str] = None) -> Dict[str, Any]:
  """Predicts every face of ``split`` of ``config.data`` and writes the report."""
  changed = model_fields_changed(predictor.config, config)
  if changed:
    raise ValueError(f"Only --config.data.* and {config_checks.EVAL_FIELDS} may change when "
                     f"evaluating a trained model; these describe the model: {changed}.")
  if split not in SPLITS:
    raise ValueError(f"split={split!r}: use one of {SPLITS}.")
  predictor = with_eval_fields(predictor, config)
  ds = dataset_for(config, split)
  out = predictor.outputs(ds.images)
  kwargs = {}
  if "cluster" in out:
    centroids = np.asarray(predictor.variables["clusters"]["cluster"]["centroids"])
    features = predictor.embed(ds.images)
    distance = np.linalg.norm(features - centroids[out["cluster"]], axis=1)
    size = config.image_size
    start = (ds.images.shape[1] - size) // 2
    kwargs = dict(faces=ds.images[:, start:start + size, start:start + size],
                  assign=out["cluster"], distance=distance,
                  num_clusters=config.model.cluster.num_clusters)
  title = title or f"{config.data.name} ({split}): a {predictor.config.data.name}-trained model"
  files = report.write(out_dir, out["age"], ds.ages, title,
                       extra={"dataset": config.data.name, "split": split},
                       person_ids=ds.person_ids, **kwargs)
  return {**report.metrics(out["age"], ds.ages), "files": files}


def _workdir_from(argv: List[str]) -> Optional[str]:
  for i, arg in enumerate(argv):
    if arg.startswith("--workdir="):
      return arg.split("=", 1)[1]
    if arg == "--workdir" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def define_flags(argv: List[str]) -> None:
  """The config flag holds the workdir's saved config, so ``--config.data.*`` overrides
  it: the workdir is read from the command line before the flags are parsed."""
  cli.define_model_flags()
  flags.adopt_module_key_flags(cli)  # --workdir, --step in --help
  flags.DEFINE_enum("split", "test", list(SPLITS), "Which examples: the model's test split, "
                    "its training split, or all of the dataset (another dataset: all).")
  flags.DEFINE_string("out", "", "Report directory (default WORKDIR/report[_<dataset>]).")
  flags.DEFINE_integer("batch_size", 64, "Faces per forward pass (one compiled shape).")
  workdir = _workdir_from(argv)
  saved = (checkpoint.load_config(workdir) if workdir and checkpoint.has_config(workdir)
           else ml_collections.ConfigDict())
  if saved:
    cli.check_overrides(saved, argv)  # a misspelt field: one line, not ml_collections' stack
  elif any(arg.startswith("--config.") for arg in argv):
    raise app.UsageError("--config.* overrides a training workdir's config: " +
                         (f"--workdir={workdir} holds none." if workdir else "give --workdir."))
  config_flags.DEFINE_config_dict("config", saved, "The workdir's config; override "
                                  "--config.data.* to evaluate on other data.")


def main(argv: List[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup()
  if not checkpoint.has_checkpoint(FLAGS.workdir):
    raise app.UsageError(f"{FLAGS.workdir} holds no checkpoint: pass a training workdir.")
  predictor = load(FLAGS.workdir, FLAGS.step, FLAGS.batch_size)
  config = FLAGS.config
  same_data = config.data.name == predictor.config.data.name
  out = FLAGS.out or files.join(FLAGS.workdir,
                                "report" if same_data else f"report_{config.data.name}")
  result = evaluate(predictor, config, out, FLAGS.split)
  print(f"{config.data.name} ({FLAGS.split}): MAE {result['mae']:.2f} years on "
        f"{result['num_examples']} faces (always predicting their mean age: "
        f"{result['mean_predictor_mae']:.2f})")
  print("\n".join(result["files"]))
  return 0


if __name__ == "__main__":
  cli.run(main, lambda: define_flags(sys.argv))
