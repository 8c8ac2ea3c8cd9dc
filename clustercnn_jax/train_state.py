"""The training state (parameters, BatchNorm statistics, centroids, optimiser) and its start."""

import functools
import logging
from typing import Any, Dict, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
from flax.training import train_state

from clustercnn_jax import checkpoint, optimizers, pretrained
from clustercnn_jax.models.model import AgeModel, build_model


class TrainState(train_state.TrainState):
  batch_stats: Any
  clusters: Any  # the cluster module's centroids and counters (a mutable collection)


# Options for compiling the random initialisation on CPU, where XLA's default
# optimisation spends 12 s (2 idle cores) on EfficientNet-Lite0's initialisers
# (truncated-normal draws per kernel) for code that runs once: level 0 takes 8.7 s and
# draws the same values (benchmarks/run_start.py).
CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0,
                             "xla_llvm_disable_expensive_passes": True}


def _init_args(rng: jax.Array, config: ml_collections.ConfigDict):
  rngs = {"params": rng, "dropout": rng, "cluster": rng}
  return rngs, jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)


def _state(config: ml_collections.ConfigDict, model: AgeModel, variables: Dict[str, Any],
           total_steps: int) -> TrainState:
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=optimizers.make_optimizer(config, total_steps),
                           batch_stats=variables.get("batch_stats", {}),
                           clusters=variables.get("clusters", {}))


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict, model: AgeModel,
                       total_steps: int) -> TrainState:
  """Fresh parameters (ImageNet backbone if ``config.pretrained``);
  centroids are zeros until k-means++ fills them.

  A state that a checkpoint will overwrite needs no random draws: use
  ``abstract_train_state`` (shapes only) and ``start_from`` or ``checkpoint.restore``.
  """
  args = _init_args(rng, config)
  # Under jit: one compilation instead of one per layer (seconds per run, most of a test).
  init = jax.jit(functools.partial(model.init, train=False))
  if jax.default_backend() == "cpu":
    init = init.lower(*args).compile(compiler_options=CPU_INIT_COMPILER_OPTIONS)
  variables = flax.core.unfreeze(init(*args))
  if config.pretrained:
    template = {c: variables[c]["backbone"] for c in ("params", "batch_stats")}
    loaded = pretrained.load_backbone_variables(config.model.backbone, config.pretrained,
                                                template)
    for c, v in loaded.items():
      variables[c]["backbone"] = jax.tree_util.tree_map(jnp.asarray, v)
    logging.info("Backbone %s initialised from %s.", config.model.backbone,
                 pretrained.resolve(config.model.backbone, config.pretrained))
  return _state(config, model, variables, total_steps)


def abstract_train_state(config: ml_collections.ConfigDict, model: AgeModel,
                         total_steps: int = 1) -> TrainState:
  """The state's structure, shapes and dtypes only (nothing is drawn or compiled): a
  target to restore a checkpoint into, or to ``start_from``. ``total_steps`` sets the
  learning-rate schedule its optimiser carries."""
  return jax.eval_shape(lambda: _state(config, model, flax.core.unfreeze(
      model.init(*_init_args(jax.random.PRNGKey(0), config), train=False)), total_steps))


def start_from(state: TrainState, variables: Dict[str, Any], source: str = "the source") -> TrainState:
  """``state`` with the parameters, BatchNorm statistics and centroids of a trained model
  (``config.init_from``): fine-tuning keeps its own optimiser, schedule and step 0.
  ``state`` may be abstract (``abstract_train_state``): only its shapes are used.

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
                     "0..max_age), model.backbone, model.cluster.enabled, model.cluster.num_clusters and "
                     "model.cluster.features (--config.max_age=... etc.).")
  cast = lambda t, ref: jax.tree_util.tree_map(lambda x, r: jnp.asarray(x, r.dtype), t, ref)
  params = cast(variables["params"], state.params)
  # A fresh optimiser state for these parameters (``state`` may be abstract).
  return state.replace(step=0, params=params, opt_state=jax.jit(state.tx.init)(params),
                       batch_stats=cast(variables.get("batch_stats", {}), state.batch_stats),
                       clusters=cast(variables.get("clusters", {}), state.clusters))


def load_model(workdir: str, step: Optional[int] = None
               ) -> Tuple[ml_collections.ConfigDict, AgeModel, Dict[str, Any]]:
  """(config, model, variables) of a trained workdir (the latest checkpoint, or ``step``):
  the config saved there rebuilds the model and its state's shapes, the checkpoint fills
  the variables. What ``clustercnn_jax.load`` (the public API), evaluation, the export and
  ``init_from`` restore through.

  Only the variables are read: a change in the optimiser state's layout does not lock a
  workdir (``checkpoint.restore_variables``).
  """
  config = checkpoint.load_config(workdir)
  model = build_model(config)
  variables = checkpoint.restore_variables(workdir, abstract_train_state(config, model), step)
  return config, model, variables
