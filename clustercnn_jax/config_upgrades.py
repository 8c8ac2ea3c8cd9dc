"""Saved configs from older code: fields renamed, retired or added since, mapped so that
older workdirs keep loading and predicting the same ages.

A workdir's config.json rebuilds its model (``train_state.load_model``: load, predict,
evaluate, export) and is compared with the config of a resumed run. ``upgrade`` turns a
saved config into today's shape in three passes:

* ``RETIRED``: fields that no longer exist. A saved value equal to the behaviour that
  remains is dropped; any other value is an error naming the last commit that had it.
* ``RENAMED``: fields that moved (the config was grouped by owner).
* ``ADDED``: fields a workdir trained before them lacks, set to the behaviour of that time.

A new field of ``AgeModel`` or ``ClusterModule`` needs no line here: a saved config
without it gets the module field's default, which is the former behaviour by convention
(``models.model.build_model``); ``upgrade`` fills it in from there.
"""

from typing import Any, Dict

import ml_collections

# (dotted field, the only value today's code reproduces, the last commit that had it)
RETIRED = (
    ("model.assign_temperature", 1.0, "a69f581"),
    ("model.eval_assignment", "nearest", "a69f581"),
    ("model.hard_assignment_steps", 0, "a69f581"),
    ("model.feature_norm", "none", "a69f581"),
    ("model.feature_tap_stats", "mean", "a69f581"),
    ("model.sync_batch_norm", True, "a69f581"),
    ("kmeans_iterations", 10, "a69f581"),
    ("weight_decay", 0.0, "a69f581"),
    ("sgd_momentum", 0.9, "a69f581"),
)

# (old dotted field, new dotted field)
RENAMED = (
    ("model.use_cluster", "model.cluster.enabled"),
    ("model.num_clusters", "model.cluster.num_clusters"),
    ("model.cluster_features", "model.cluster.features"),
    ("model.momentum", "model.cluster.momentum"),
    ("model.sample_in_train", "model.cluster.sample_in_train"),
    ("model.reseed_after", "model.cluster.reseed_after"),
    ("kmeans_examples", "model.cluster.kmeans_examples"),
    ("model.cached_features", "cache.enabled"),
    ("feature_cache_dir", "cache.dir"),
    ("feature_cache_dtype", "cache.dtype"),
    ("eval_flip", "eval.flip"),
    ("eval_every_steps", "eval.every_steps"),
    ("normalize_faces", "face.normalize"),
    ("half_precision", "model.half_precision"),
)

# (dotted field, value meaning "as before the field existed"), in today's names
ADDED = (
    ("model.train_from", ""),  # partial fine-tuning
    ("cache.dtype", "float32"),
    ("init_from", ""),
    ("eval.flip", False),
    ("eval.zoom", False),
    ("bn_recalibration_batches", 0),
    ("model.feature_taps", ""),
    ("data.synthetic.mode_ageing", "shared"),
    ("loss.label_sigma", 0.0),
)


def _pop(tree: Dict[str, Any], field: str) -> Any:
  *parents, leaf = field.split(".")
  for name in parents:
    tree = tree.get(name)
    if not isinstance(tree, dict):
      return _ABSENT
  return tree.pop(leaf, _ABSENT)


def _set_default(tree: Dict[str, Any], field: str, value: Any) -> None:
  *parents, leaf = field.split(".")
  for name in parents:
    tree = tree.setdefault(name, {})
  tree.setdefault(leaf, value)


_ABSENT = object()


def _module_defaults() -> Dict[str, Any]:
  """{'model.dropout_rate': 0.0, 'model.cluster.momentum': 0.999, ...}: the module-field
  defaults of the knobs that ``build_model`` passes from the config to the modules."""
  from configs import default  # the knobs: the module fields the default config sets
  from clustercnn_jax.cluster import ClusterModule
  from clustercnn_jax.models import model as model_lib

  knobs = default.get_config().model
  out = {}
  for prefix, module, sub in (("model.", model_lib.AgeModel, knobs),
                              ("model.cluster.", ClusterModule, knobs.cluster)):
    for name, value in model_lib.module_defaults(module).items():
      if name in sub:
        out[prefix + name] = value
  return out


def upgrade(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` in today's shape, behaving as the code that saved it did. Raises ValueError
  for a retired setting that today's code cannot reproduce."""
  tree = config.to_dict()
  for field, kept, commit in RETIRED:
    value = _pop(tree, field)
    if value is not _ABSENT and value != kept:
      raise ValueError(f"This workdir was trained with {field}={value!r}, a setting that was "
                       f"retired (only {kept!r} remains). Load it with the code of commit "
                       f"{commit}: git checkout {commit}.")
  for old, new in RENAMED:
    value = _pop(tree, old)
    if value is not _ABSENT:
      _set_default(tree, new, value)
  for field, value in ADDED + tuple(_module_defaults().items()):
    _set_default(tree, field, value)
  return ml_collections.ConfigDict(tree)
