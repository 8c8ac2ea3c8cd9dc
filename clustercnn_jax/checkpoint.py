"""Checkpoints in the workdir: orbax manager, resume, and loading in notebooks.

Layout of a workdir::

  config.json            the full config of the run (also what load() rebuilds from)
  checkpoints/<step>/    orbax checkpoints (the last ``keep_checkpoints``)
  events.out.tfevents.*  TensorBoard scalars
  metrics.jsonl          the same scalars, one JSON object per log step
  results.json           final test metrics

A checkpoint holds the TrainState as a plain nested dict (step, params,
batch_stats, clusters, opt_state), so it can be read without this package.
"""

import json
import os
from typing import Any, Optional, Tuple

import flax
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR)),
                               options=options)


def save(mngr: ocp.CheckpointManager, state: Any, *, wait: bool = False) -> None:
  """Saves an unreplicated TrainState at its own step (a no-op if already saved)."""
  step = int(state.step)
  if step not in mngr.all_steps():
    mngr.save(step, args=ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
              force=True)
  if wait:
    mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, target: Any, step: Optional[int] = None) -> Any:
  """Restores into the structure of ``target`` (a TrainState, possibly abstract)."""
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {mngr.directory}.")
  template = flax.serialization.to_state_dict(target)
  abstract = jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), jax.numpy.result_type(x)), template)
  restored = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
  return flax.serialization.from_state_dict(target, restored)


def save_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def save_json(workdir: str, name: str, obj: Any) -> None:
  with open(os.path.join(workdir, name), "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir!r} a clustercnn_jax workdir?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load(workdir: str, step: Optional[int] = None) -> Tuple[ml_collections.ConfigDict, Any, dict]:
  """For notebooks: (config, model, variables) of a trained workdir.

  ``model.apply(variables, images, train=False)`` gives (logits, aux);
  ``clustercnn_jax.predict.predict_ages`` adds preprocessing and the expected age.
  """
  from clustercnn_jax import train  # local import: train imports this module

  config = load_config(workdir)
  model = train.build_model(config)
  abstract = jax.eval_shape(lambda: train.create_train_state(
      jax.random.PRNGKey(0), config, model, total_steps=1, load_pretrained=False))
  mngr = manager(workdir, config)
  state = restore(mngr, abstract, step)
  variables = {"params": state.params, "batch_stats": state.batch_stats,
               "clusters": state.clusters}
  return config, model, variables
