"""Checkpoints in the workdir: orbax manager, save, and restore into a state the caller built.

This module knows nothing of models or training (``train`` imports it, not the
other way round); ``train_state.load_model`` builds a model and state from a
workdir's config and restores into them (behind ``clustercnn_jax.load``).

Layout of a workdir::

  config.json            the full config of the run (also what load() rebuilds from)
  checkpoints/<step>/    orbax checkpoints (the last ``keep_checkpoints``)
  events.out.tfevents.*  TensorBoard scalars
  metrics.jsonl          the same scalars, one JSON object per log step
  results.json           final test metrics (clustercnn_jax/results.py)

A checkpoint holds two items: ``state``, the TrainState as a plain nested dict
(step, params, batch_stats, clusters, opt_state), readable without this
package; and ``data``, the input pipeline's (grain) iterator position, so that
a resumed run sees the batches an uninterrupted one would.
"""

from typing import Any, Dict, Optional

import flax
import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from clustercnn_jax import files, workdirs
# The config's files live in ``workdirs`` (no orbax there); these names stay for callers.
from clustercnn_jax.workdirs import (  # noqa: F401
    CHECKPOINT_DIR, CONFIG_FILE, has_config, load_config, save_config)
MODEL_COLLECTIONS = ("params", "batch_stats", "clusters")  # what inference and init_from need


def manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  # Not created here: the first save makes it, so a run that fails before then leaves
  # nothing behind.
  options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=False)
  return ocp.CheckpointManager(files.path(workdir) / CHECKPOINT_DIR, options=options)


def has_checkpoint(workdir: str) -> bool:
  """Whether ``workdir`` holds a finished checkpoint (a run there resumes)."""
  return bool(workdirs.finished_steps(workdir))


def save(mngr: ocp.CheckpointManager, state: Any, data_state: Any = None, *,
         wait: bool = False) -> None:
  """Saves an unreplicated TrainState at its own step (a no-op if already saved), and
  the input pipeline's iterator state (``pipeline.IteratorState``) if given."""
  step = int(state.step)
  if step not in mngr.all_steps():
    # Host numpy: a pmap output's first shard is a host-local array, which orbax refuses to
    # write when there are several processes; the values are equal on every process
    # (gradients are averaged over all devices), so the primary one writes them.
    host_state = jax.device_get(flax.serialization.to_state_dict(state))
    items = {"state": ocp.args.StandardSave(host_state)}
    if data_state is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_state)
    mngr.save(step, args=ocp.args.Composite(**items), force=True)
  if wait:
    mngr.wait_until_finished()


def _latest(mngr: ocp.CheckpointManager, step: Optional[int]) -> int:
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {mngr.directory}.")
  return step


def _abstract(tree: Any, sharding: Optional[jax.sharding.Sharding] = None) -> Any:
  """Shapes and dtypes to restore ``tree``'s arrays as."""
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), jax.numpy.result_type(x), sharding=sharding),
      tree)


def restore(mngr: ocp.CheckpointManager, target: Any, step: Optional[int] = None,
            data_state: Any = None) -> Any:
  """Restores into the structure of ``target`` (a TrainState, possibly abstract); fills
  ``data_state`` (an IteratorState) with the saved iterator state when asked."""
  step = _latest(mngr, step)
  items = {"state": ocp.args.StandardRestore(_abstract(flax.serialization.to_state_dict(target)))}
  if data_state is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_state)
  restored = mngr.restore(step, args=ocp.args.Composite(**items))
  return flax.serialization.from_state_dict(target, restored["state"])


def restore_variables(workdir: str, target: Any, step: Optional[int] = None) -> Dict[str, Any]:
  """The model's variables (``MODEL_COLLECTIONS``) from ``workdir``'s checkpoint, in the
  structure of ``target`` (a TrainState, possibly abstract).

  The optimiser state is not read. Its layout follows the optimiser's settings and this
  code's version (which parameters it masks, say), and a model is used, evaluated or
  fine-tuned from without it: a workdir stays loadable when that layout changes. The
  variables must still have the shapes the config gives them; a mismatch names them.
  A restore that orbax refuses (a shape, a missing array) is explained from the saved
  metadata: every mismatched array, and the config fields that usually cause it.
  """
  template = {c: flax.serialization.to_state_dict(getattr(target, c)) for c in MODEL_COLLECTIONS}
  abstract = _abstract(template, jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
  # Closed when done: an open manager keeps every restored array's metadata, which 82
  # init_from folds in one process would pile up.
  with manager(workdir, load_config(workdir)) as mngr:
    step = _latest(mngr, step)
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
          abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
          partial_restore=True)))["state"]
    except (ValueError, TypeError, KeyError):
      # Only now read the saved metadata, to name every mismatch: orbax keeps about 2 MB
      # of it per read, which 82 init_from folds in one process would pile up.
      _check_shapes(epath.Path(mngr.directory) / str(step) / "state", abstract, workdir)
      raise
  return {c: flax.serialization.from_state_dict(getattr(target, c), restored.get(c, {}))
          for c in MODEL_COLLECTIONS}


def _check_shapes(item_dir: epath.Path, abstract: Any, workdir: str) -> None:
  """Every array of ``abstract`` is in the saved item, with its shape: checked on the
  saved metadata after orbax refused a restore, so that a mismatch is one clear error
  naming every array that differs."""
  handler = ocp.StandardCheckpointHandler()
  try:
    saved = handler.metadata(item_dir)
  finally:
    handler.close()
  saved = dict(jax.tree_util.tree_flatten_with_path(getattr(saved, "tree", saved))[0])
  bad = []
  for path, want in jax.tree_util.tree_flatten_with_path(abstract)[0]:
    have = getattr(saved.get(path), "shape", None)
    if have is None or tuple(have) != tuple(want.shape):
      bad.append(f"{jax.tree_util.keystr(path)}: config {tuple(want.shape)}, checkpoint "
                 f"{'missing' if have is None else tuple(have)}")
  if bad:
    raise ValueError(f"{workdir}: {len(bad)} arrays of the model its config.json builds do not "
                     f"match its checkpoint, e.g. {bad[:3]}. Was config.json edited (max_age, "
                     "model.backbone, model.cluster.enabled, model.cluster.num_clusters, "
                     "model.cluster.features)?")
