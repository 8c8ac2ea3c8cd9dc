"""Saved configs from before a field existed: the field, and the value that reproduces how
the code behaved without it.

A workdir's config.json rebuilds its model (``train_state.load_model``: load, predict,
evaluate, export). When a release adds a config field, workdirs trained before it lack
the field; filling it with the behaviour of that time keeps them loadable. Add a line
here with every new field that ``build_model`` or the data path reads.
"""

import ml_collections

# (dotted field, value meaning "as before the field existed")
ADDED = (
    ("model.train_from", ""),  # partial fine-tuning
    ("model.assign_temperature", 1.0),  # the paper's p(c|x)
    ("feature_cache_dtype", "float32"),
    ("init_from", ""),
    ("eval_flip", False),
    ("model.eval_assignment", "nearest"),
    ("bn_recalibration_batches", 0),
    ("model.hard_assignment_steps", 0),
    ("model.feature_norm", "none"),
    ("model.feature_taps", ""),
    ("model.feature_tap_stats", "mean"),
)


def upgrade(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` with every field of ``ADDED`` it lacks set to its former behaviour."""
  config = ml_collections.ConfigDict(config.to_dict())
  for field, value in ADDED:
    *parents, leaf = field.split(".")
    node = config
    for name in parents:
      if name not in node:
        node[name] = ml_collections.ConfigDict()
      node = node[name]
    if leaf not in node:
      node[leaf] = value
  return config
