"""A trained model from its workdir, for notebooks and scripts.

  from clustercnn_jax import api
  config, model, variables = api.load(workdir)
  ages = predict.predict_ages(config, model, variables, images_uint8)

Sits above ``checkpoint`` (which only restores into a given state) and the
model code: the config saved in the workdir rebuilds the model and the shape
of its state, and the checkpoint fills it.
"""

from typing import Any, Optional, Tuple

import ml_collections

from clustercnn_jax import checkpoint
from clustercnn_jax.models.model import build_model
from clustercnn_jax.train_state import abstract_train_state


def load(workdir: str, step: Optional[int] = None) -> Tuple[ml_collections.ConfigDict, Any, dict]:
  """(config, model, variables) of a trained workdir (the latest checkpoint, or ``step``).

  ``model.apply(variables, images, train=False)`` gives (logits, aux);
  ``clustercnn_jax.predict.predict_ages`` adds preprocessing and the expected age.
  """
  config = checkpoint.load_config(workdir)
  model = build_model(config)
  # Only the variables: a change in the optimiser state's layout does not lock a workdir.
  variables = checkpoint.restore_variables(workdir, abstract_train_state(config, model), step)
  return config, model, variables
