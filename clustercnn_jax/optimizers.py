"""The optimiser and its learning-rate schedule, as the config describes them."""

import jax
import ml_collections
import optax

from clustercnn_jax.models.model import trained_variables

SCHEDULES = ("constant", "cosine")
SGD_MOMENTUM = 0.9
OPTIMIZERS = ("adam", "sgd")


def learning_rate_schedule(config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """``lr_schedule`` ('constant' or 'cosine' decay), after ``warmup_steps`` of linear warm-up."""
  lr = config.learning_rate
  if config.lr_schedule == "constant":
    main = optax.constant_schedule(lr)
  elif config.lr_schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, max(total_steps - config.warmup_steps, 1))
  else:
    raise ValueError(f"Unknown lr_schedule {config.lr_schedule!r}; use one of {SCHEDULES}.")
  if config.warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, lr, config.warmup_steps)
  return optax.join_schedules([warmup, main], [config.warmup_steps])


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam or SGD with momentum 0.9; frozen blocks (``freeze_backbone``, ``train_from``)
  get zero updates."""
  schedule = learning_rate_schedule(config, total_steps)
  if config.optimizer == "adam":
    tx = optax.adam(schedule)
  elif config.optimizer == "sgd":
    tx = optax.sgd(schedule, momentum=SGD_MOMENTUM, nesterov=False)
  else:
    raise ValueError(f"Unknown optimizer {config.optimizer!r}; use one of {OPTIMIZERS}.")
  if config.model.freeze_backbone or config.model.train_from:
    label = lambda params: jax.tree_util.tree_map(lambda t: "train" if t else "frozen",
                                                  trained_variables(config, params))
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, label)
  return tx
