"""The training state (parameters, BatchNorm statistics, centroids, optimiser) and its start."""

import functools
import logging
from typing import Any, Dict

import flax
import jax
import jax.numpy as jnp
import ml_collections
from flax.training import train_state

from clustercnn_jax import optimizers, pretrained
from clustercnn_jax.models.model import AgeModel


class TrainState(train_state.TrainState):
  batch_stats: Any
  clusters: Any  # the cluster module's centroids and counters (a mutable collection)


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict, model: AgeModel,
                       total_steps: int, load_pretrained: bool = True) -> TrainState:
  """Fresh parameters (ImageNet backbone if ``config.pretrained`` and ``load_pretrained``);
  centroids are zeros until k-means++ fills them.

  ``load_pretrained=False`` gives the same structure without reading the
  weights file: for a state that a checkpoint restore will overwrite.
  """
  shape = (1, config.image_size, config.image_size, 3)
  # Under jit: one compilation instead of one per layer (seconds per run, most of a test).
  init = jax.jit(functools.partial(model.init, train=False))
  variables = flax.core.unfreeze(init({"params": rng, "dropout": rng, "cluster": rng},
                                      jnp.zeros(shape, jnp.float32)))
  if config.pretrained and load_pretrained:
    template = {c: variables[c]["backbone"] for c in ("params", "batch_stats")}
    loaded = pretrained.load_backbone_variables(config.model.backbone, config.pretrained,
                                                template)
    for c, v in loaded.items():
      variables[c]["backbone"] = jax.tree_util.tree_map(jnp.asarray, v)
    logging.info("Backbone %s initialised from %s.", config.model.backbone,
                 pretrained.resolve(config.model.backbone, config.pretrained))
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=optimizers.make_optimizer(config, total_steps),
                           batch_stats=variables.get("batch_stats", {}),
                           clusters=variables.get("clusters", {}))


def abstract_train_state(config: ml_collections.ConfigDict, model: AgeModel) -> TrainState:
  """The state's structure, shapes and dtypes only: a target to restore a checkpoint into."""
  return jax.eval_shape(lambda: create_train_state(jax.random.PRNGKey(0), config, model,
                                                   total_steps=1, load_pretrained=False))


def start_from(state: TrainState, variables: Dict[str, Any], source: str = "the source") -> TrainState:
  """``state`` with the parameters, BatchNorm statistics and centroids of a trained model
  (``config.init_from``): fine-tuning keeps its own optimiser, schedule and step 0.

  Every array must have the shape it has here; a mismatch names the arrays and the
  config fields that usually cause it.
  """
  fields = {"params": state.params, "batch_stats": state.batch_stats, "clusters": state.clusters}
  bad = []
  for name, target in fields.items():
    mine = dict(jax.tree_util.tree_flatten_with_path(target)[0])
    theirs = dict(jax.tree_util.tree_flatten_with_path(variables.get(name, {}))[0])
    for path in sorted(set(mine) | set(theirs), key=jax.tree_util.keystr):
      a, b = mine.get(path), theirs.get(path)
      if a is None or b is None or jnp.shape(a) != jnp.shape(b):
        bad.append(f"{name}{jax.tree_util.keystr(path)}: here "
                   f"{None if a is None else jnp.shape(a)}, in {source} "
                   f"{None if b is None else jnp.shape(b)}")
  if bad:
    raise ValueError(f"config.init_from: the model differs from {source} in {len(bad)} "
                     f"arrays, e.g. {bad[:3]}. Match its max_age (the head covers ages "
                     "0..max_age), model.backbone, model.use_cluster, model.num_clusters and "
                     "model.cluster_features (--config.max_age=... etc.).")
  cast = lambda t, ref: jax.tree_util.tree_map(lambda x, r: jnp.asarray(x, r.dtype), t, ref)
  return state.replace(params=cast(variables["params"], state.params),
                       batch_stats=cast(variables.get("batch_stats", {}), state.batch_stats),
                       clusters=cast(variables.get("clusters", {}), state.clusters))
