"""Training and evaluation: pure pmapped steps, the k-means++ warm start, the loop.

``train_step`` and ``eval_step`` are pure functions of (state, batch, rng);
``train_and_evaluate`` is the only place with side effects (I/O, signals).
All randomness derives from ``config.seed``: the key of step s is
fold_in(key, s), so a resumed run replays exactly what an uninterrupted one
would.
"""

import functools
import logging
import signal
import threading
import time
from typing import Any, Dict, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import jax_utils

from clustercnn_jax import (checkpoint, config_checks, data, feature_cache, files, inference,
                            kmeans, losses, results, train_state, workdirs)
from clustercnn_jax.data import pipeline
from clustercnn_jax.data.dataset import ArrayDataset
from clustercnn_jax.data.preprocess import eval_views
from clustercnn_jax.inference import Inputs
from clustercnn_jax.metric_writers import MetricWriter
from clustercnn_jax.models.model import AgeModel, build_model, trained_variables
from clustercnn_jax.optimizers import learning_rate_schedule
from clustercnn_jax.progress import format_seconds, release_memory
from clustercnn_jax.random_keys import shard_offset
from clustercnn_jax.train_state import TrainState, create_train_state

AXIS = "batch"


def _train_inputs(state: TrainState, batch: Dict[str, jnp.ndarray], rng: jax.Array,
                  inputs: Inputs):
  """(model input, rngs) of this device's shard: ``inputs.train`` of its images, and the
  cluster and dropout keys, all keyed by step and global example index."""
  step_rng = jax.random.fold_in(rng, state.step)
  aug_rng, cluster_rng, dropout_rng = jax.random.split(step_rng, 3)
  offset = shard_offset(AXIS, batch["ages"].shape[0])
  x = inputs.train(batch["images"], aug_rng, offset)
  return x, {"dropout": dropout_rng, "cluster": cluster_rng}


def train_step(state: TrainState, batch: Dict[str, jnp.ndarray], rng: jax.Array, *,
               model: AgeModel, config: ml_collections.ConfigDict, inputs: Inputs):
  """One optimisation step on this device's shard; call under pmap(axis_name='batch').
  ``inputs`` says what ``batch['images']`` holds (``inference.inputs_for(config)``)."""
  images, rngs = _train_inputs(state, batch, rng, inputs)

  def loss_fn(params):
    variables = {"params": params, "batch_stats": state.batch_stats, "clusters": state.clusters}
    (logits, aux), updates = model.apply(
        variables, images, train=True, cached=inputs.cached,
        mutable=["batch_stats", "clusters"], rngs=rngs)
    terms = losses.age_loss(logits, batch["ages"], aux, ce_weight=config.loss.ce_weight,
                            sw_sb_weight=config.loss.sw_sb_weight,
                            label_sigma=config.loss.label_sigma)
    return terms["loss"], (terms, aux, updates)

  grads, (terms, aux, updates) = jax.grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, AXIS)
  new_state = state.apply_gradients(
      grads=grads,
      batch_stats=jax.lax.pmean(updates.get("batch_stats", {}), AXIS),
      # Centroid statistics were psum'd inside the module: identical on every device.
      clusters=updates.get("clusters", state.clusters))
  metrics = dict(terms)
  if "occupancy" in aux:
    for c in range(aux["occupancy"].shape[0]):
      metrics[f"occupancy/{c}"] = aux["occupancy"][c]
  metrics["grad_norm"] = optax.global_norm(grads)
  return new_state, jax.lax.pmean(metrics, AXIS)


def batch_norm_step(state: TrainState, batch: Dict[str, jnp.ndarray], rng: jax.Array, *,
                    model: AgeModel, config: ml_collections.ConfigDict, inputs: Inputs) -> Any:
  """The batch statistics every trained BatchNorm computes on this training batch, averaged
  over devices (the others' running statistics unchanged); call under pmap.

  A layer updates r <- m r + (1 - m) b. Applied once from r = 0 and once from r = 1 (a
  BatchNorm in training mode normalises with b, so r does not change its output), it
  gives (1 - m) b and m + (1 - m) b, hence b, whatever the layer's momentum m.
  """
  images, rngs = _train_inputs(state, batch, rng, inputs)
  trained = trained_variables(config, state.batch_stats)

  def update_from(fill):
    stats = jax.tree_util.tree_map(lambda t, s: jnp.full_like(s, fill) if t else s, trained,
                                   state.batch_stats)
    _, updates = model.apply({"params": state.params, "batch_stats": stats,
                              "clusters": state.clusters}, images, train=True,
                             cached=inputs.cached, mutable=["batch_stats", "clusters"], rngs=rngs)
    return updates["batch_stats"]

  zero, one = update_from(0.0), update_from(1.0)
  stats = jax.tree_util.tree_map(lambda t, z, o, s: z / (1.0 - (o - z)) if t else s,
                                 trained, zero, one, state.batch_stats)
  return jax.lax.pmean(stats, AXIS)


def recalibrate_batch_norm(p_batch_norm_step, state: TrainState, batches, rng: jax.Array,
                           num_batches: int) -> TrainState:
  """``state`` (replicated) with each trained BatchNorm's running statistics replaced by the
  mean of its batch statistics over ``num_batches`` training batches, computed with the
  final weights ("precise BN"). Running averages mix statistics of weights from the last
  ~1/(1 - m) steps; when fine-tuning moves the weights fast (partial fine-tuning at
  lr 1e-3) they can be far from what the final network computes."""
  total = None
  for _ in range(num_batches):
    stats = p_batch_norm_step(state, next(batches), rng)
    total = stats if total is None else jax.tree_util.tree_map(jnp.add, total, stats)
  return state.replace(batch_stats=jax.tree_util.tree_map(lambda s: s / num_batches, total))


def eval_step(state: TrainState, batch: Dict[str, jnp.ndarray], *, model: AgeModel,
              config: ml_collections.ConfigDict, inputs: Inputs) -> Dict[str, jnp.ndarray]:
  """Predicted ages (nearest-centroid assignment) and cluster of each example."""
  variables = {"params": state.params, "batch_stats": state.batch_stats,
               "clusters": state.clusters}
  out = inference.outputs(model, variables, inputs, batch["images"], eval_views(config))
  return {"pred": out["age"], **({"assign": out["cluster"]} if "cluster" in out else {})}


def compute_features(state: TrainState, model: AgeModel, ds: ArrayDataset,
                     config: ml_collections.ConfigDict, inputs: Inputs) -> np.ndarray:
  """Backbone features of every example of ``ds``, in inference mode.

  BatchNorm uses its running statistics, so each example's features depend on
  that example alone: the repeated examples that pad the last batch change
  nothing (with batch statistics they would skew the real ones).
  """
  @jax.jit
  def embed(images):
    return inference.embed(model, {"params": state.params, "batch_stats": state.batch_stats},
                           inputs, images)

  out = []
  for batch in pipeline.eval_batches(ds, config.batch_size, 1):
    feats = np.asarray(embed(batch["images"][0]))
    out.append(feats[batch["mask"][0]])
  return np.concatenate(out)


def init_centroids(state: TrainState, model: AgeModel, train_ds: ArrayDataset,
                   config: ml_collections.ConfigDict, inputs: Inputs) -> TrainState:
  """k-means++ (plus Lloyd steps) on features of ``kmeans_examples`` training images."""
  if not config.model.cluster.enabled:
    return state
  n = min(config.model.cluster.kmeans_examples, len(train_ds))
  idx = np.sort(np.random.default_rng([config.seed, 1]).choice(len(train_ds), n, replace=False))
  subset = train_ds.subset(idx)
  t0 = time.time()
  feats = compute_features(state, model, subset, config, inputs)
  centres = kmeans.fit(jax.random.PRNGKey(config.seed), feats, config.model.cluster.num_clusters)
  logging.info("k-means++ on %d features of dimension %d: %.1fs", n, feats.shape[1],
               time.time() - t0)
  clusters = flax.core.unfreeze(state.clusters)
  clusters["cluster"]["centroids"] = jnp.asarray(centres)
  return state.replace(clusters=clusters)


def evaluate(p_eval_step, state: TrainState, ds: ArrayDataset,
             config: ml_collections.ConfigDict, num_devices: int) -> Dict[str, Any]:
  preds, assigns = [], []
  for batch in pipeline.eval_batches(ds, config.batch_size, num_devices):
    mask = batch.pop("mask").reshape(-1)
    out = jax.device_get(p_eval_step(state, batch))
    preds.append(out["pred"].reshape(-1)[mask])
    if "assign" in out:
      assigns.append(out["assign"].reshape(-1)[mask])
  pred = np.concatenate(preds)
  result = {"mae": losses.mae(pred, ds.ages), "cs": losses.cumulative_score(pred, ds.ages),
            "num_examples": len(ds), "predictions": pred}
  if assigns:
    result["clusters"] = np.concatenate(assigns)
    result["cluster_counts"] = np.bincount(result["clusters"],
                                           minlength=config.model.cluster.num_clusters).tolist()
  return result


def replicate(tree: Any) -> Any:
  """One copy per local device, laid out as ``jax.pmap(axis_name=AXIS)`` lays out its
  outputs. ``flax.jax_utils.replicate`` names its mesh axis differently, so the state
  it makes and the state the first step returns compiled the step twice."""
  devices = jax.local_devices()
  sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS,)),
                                        jax.sharding.PartitionSpec(AXIS))

  def put(x):
    x = np.asarray(x)[None]  # on the host: jnp indexing would compile once per shape
    shards = [jax.device_put(x, d) for d in devices]
    return jax.make_array_from_single_device_arrays((len(devices),) + x.shape[1:], sharding,
                                                   shards)

  return jax.tree_util.tree_map(put, tree)


def total_train_steps(config: ml_collections.ConfigDict, num_train: int) -> int:
  if config.num_train_steps > 0:
    return int(config.num_train_steps)
  return max(1, int(config.num_epochs * pipeline.steps_per_epoch(num_train, config.batch_size)))


def _check_batch(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """``num_devices`` counts every device of every host (the global batch spans them all)."""
  if config.batch_size % num_devices:
    raise ValueError(f"batch_size={config.batch_size} does not divide evenly over "
                     f"{num_devices} devices; use a multiple of {num_devices}.")


def _restore_or_init(config: ml_collections.ConfigDict, workdir: str, model: AgeModel,
                     inputs: Inputs, total_steps: int, rng: jax.Array, train_ds: ArrayDataset,
                     test_ds: ArrayDataset):
  """(state, data_state, mngr, train_ds, test_ds): resumed from ``workdir`` if it holds a
  checkpoint, else fresh (ImageNet backbone, k-means++ centroids) or, with ``init_from``,
  the trained model there. With cached features
  the datasets come back as the frozen backbone's features."""
  mngr = checkpoint.manager(workdir, config)
  resuming = mngr.latest_step() is not None
  data_state = pipeline.IteratorState()
  if resuming or config.init_from:  # shapes only: the checkpoint brings every value
    state = train_state.abstract_train_state(config, model, total_steps)
  else:
    state = create_train_state(rng, config, model, total_steps)
  if resuming:
    state = checkpoint.restore(mngr, state, data_state=data_state)
    logging.info("Resumed from %s at step %d.", mngr.directory, int(state.step))
  elif config.init_from:
    source_config, _, variables = train_state.load_model(config.init_from)
    for field, theirs, mine in config_checks.input_differences(source_config, config):
      logging.warning("config.init_from: the model in %s learnt with %s=%r; this run feeds "
                      "it %r. --config.%s=%r fine-tunes it on the input it learnt.",
                      config.init_from, field, theirs, mine, field, theirs)
    state = train_state.start_from(state, variables, config.init_from)
    logging.info("Starting from the trained model in %s.", config.init_from)
  if inputs.cached:
    train_ds, test_ds = feature_cache.feature_datasets(state, model, config, train_ds, test_ds)
  if not resuming and not config.init_from:  # a trained model brings its centroids
    state = init_centroids(state, model, train_ds, config, inputs)
  return state, data_state, mngr, train_ds, test_ds


def _recalibrate(state: TrainState, p_model: AgeModel, config: ml_collections.ConfigDict,
                 inputs: Inputs, train_ds: ArrayDataset, num_devices: int,
                 rngs: jax.Array) -> TrainState:
  """``recalibrate_batch_norm`` on batches of another shuffle (seed + 1), if any BatchNorm
  trains."""
  if not any(jax.tree_util.tree_leaves(trained_variables(config, state.batch_stats))):
    return state
  t0 = time.time()
  step = jax.pmap(functools.partial(batch_norm_step, model=p_model, config=config,
                                    inputs=inputs), axis_name=AXIS)
  batches = jax_utils.prefetch_to_device(pipeline.GrainBatches(pipeline.train_loader(
      train_ds, config.batch_size, num_devices, config.seed + 1)), 2)
  state = recalibrate_batch_norm(step, state, batches, rngs, config.bn_recalibration_batches)
  logging.info("BatchNorm statistics recomputed with the final weights on %d batches (%.0fs).",
               config.bn_recalibration_batches, time.time() - t0)
  return state


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> bool:
  """Whether the run resumes; refuses, before anything is written, a config that differs
  from the one a checkpointed run in ``workdir`` was trained with (a diff of the fields).

  A workdir without a checkpoint (new, or a run that died before its first save)
  starts afresh with any config.
  """
  root = files.path(workdir)
  if root.exists() and not root.is_dir():
    raise NotADirectoryError(f"--workdir={workdir} is a file, not a directory: pass a new or "
                             "existing run directory.")
  if not checkpoint.has_checkpoint(workdir):
    return False
  if checkpoint.has_config(workdir):
    config_checks.check_resume(workdir, checkpoint.load_config(workdir), config)
  return True


def fold_note(config: ml_collections.ConfigDict, train_ds: ArrayDataset,
              test_ds: ArrayDataset) -> Optional[str]:
  """For one held-out person of a leave-one-person-out config: which fold of how many,
  and the command that runs them all (one fold's MAE is not the protocol's)."""
  if config.data.split.kind != "person" or train_ds.person_ids is None:
    return None
  people = len(np.unique(np.concatenate([train_ds.person_ids, test_ds.person_ids])))
  note = f"fold {config.data.split.test_person} of {people}"
  if config.data.name == "fgnet":
    note += "; the protocol is `python -m clustercnn_jax.protocols.fgnet_lopo`"
  return note


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_steps: Optional[int] = None,
                       protocol: bool = False,
                       source: Optional[ArrayDataset] = None) -> Dict[str, Any]:
  """Trains (resuming from ``workdir`` if it holds a checkpoint) and evaluates.

  ``stop_after_steps`` ends this process early, after saving a checkpoint, as
  a preemption would; the same call again resumes. ``protocol``: this run is one
  of a protocol's (its folds are not announced as single runs); ``source``: its dataset,
  already read (``data.load_source``), to be split as ``config`` says. Returns the final
  metrics (or ``{'stopped_at': step}`` when stopped early). A second run started on the
  same local workdir meanwhile is refused (``workdirs.exclusive``).
  """
  with workdirs.exclusive(workdir, enabled=jax.process_index() == 0):
    return _train_and_evaluate(config, workdir, stop_after_steps, protocol, source)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                        stop_after_steps: Optional[int], protocol: bool,
                        source: Optional[ArrayDataset]) -> Dict[str, Any]:
  resuming = prepare_workdir(config, workdir)
  config_checks.validate(config, need_weights=not resuming)
  num_devices = jax.local_device_count()
  _check_batch(config, jax.device_count())
  is_chief = jax.process_index() == 0

  # Data.
  train_ds, test_ds = data.load(config, source)
  note = fold_note(config, train_ds, test_ds)
  if note and not protocol:
    logging.warning("This run is %s: its test MAE is one person's.", note)
  total_steps = total_train_steps(config, len(train_ds))
  # Model: one without axis_name (evaluation, k-means) and one for the pmapped step.
  model = build_model(config)
  p_model = build_model(config, axis_name=AXIS)
  inputs = inference.inputs_for(config)  # what every batch's images hold, from here on
  # State.
  init_rng, step_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  state, data_state, mngr, train_ds, test_ds = _restore_or_init(
      config, workdir, model, inputs, total_steps, init_rng, train_ds, test_ds)
  if inputs.cached:  # the images are dropped for their cached outputs: hand their heap back
    release_memory()
  if is_chief:  # the run is new or compatible: its config is the workdir's from now on
    checkpoint.save_config(workdir, config)
  start_step = int(state.step)
  logging.info("Training %d steps (%d done) on %d device(s), global batch %d, %d train / %d "
               "test examples.", total_steps, start_step, num_devices, config.batch_size,
               len(train_ds), len(test_ds))

  # Loop.
  p_train_step = jax.pmap(functools.partial(train_step, model=p_model, config=config,
                                            inputs=inputs), axis_name=AXIS, donate_argnums=(0,))
  p_eval_step = jax.pmap(functools.partial(eval_step, model=model, config=config,
                                           inputs=inputs), axis_name=AXIS)
  writer = MetricWriter(workdir, enabled=is_chief)
  schedule = learning_rate_schedule(config, total_steps)

  # SIGTERM (TPU preemption): finish the current step, checkpoint, exit cleanly.
  stop = threading.Event()
  previous_handler = None
  if threading.current_thread() is threading.main_thread():
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.set())

  state = replicate(state)
  step_rngs = replicate(step_rng)
  host_batches = pipeline.GrainBatches(
      pipeline.train_loader(train_ds, config.batch_size, num_devices, config.seed,
                            config.grain_workers), data_state.state)
  batches = jax_utils.prefetch_to_device(host_batches, 2)
  pending, t_log, step_log = [], time.time(), start_step
  step = start_step
  try:
    while step < total_steps:
      state, metrics = p_train_step(state, next(batches), step_rngs)
      # The iterator's position just after this step's batch (prefetch reads ahead).
      data_state = pipeline.IteratorState(host_batches.states.popleft())
      pending.append(metrics)
      step += 1
      if step % config.log_every_steps == 0 or step == total_steps:
        summary = jax.tree_util.tree_map(lambda *m: float(np.mean(m)),
                                         *[jax.device_get(jax.tree_util.tree_map(lambda a: a[0], m))
                                           for m in pending])
        elapsed = time.time() - t_log
        rate = (step - step_log) / max(elapsed, 1e-9)
        summary["images_per_sec"] = rate * config.batch_size
        summary["learning_rate"] = float(schedule(step - 1))
        writer.write_scalars(step, {f"train/{k}": v for k, v in summary.items()})
        eta = (total_steps - step) / max(rate, 1e-9)
        logging.info("step %d/%d  loss %.3f  mae %.2f  s_w/s_b %s  %.0f img/s  ETA %s", step,
                     total_steps, summary["loss"], summary["mae"],
                     f"{summary['sw_sb']:.3f}" if "sw_sb" in summary else "-",
                     summary["images_per_sec"], format_seconds(eta))
        pending, t_log, step_log = [], time.time(), step
      if config.eval.every_steps and step % config.eval.every_steps == 0 and step < total_steps:
        ev = evaluate(p_eval_step, state, test_ds, config, num_devices)
        writer.write_scalars(step, {"test/mae": ev["mae"]})
        logging.info("step %d  test MAE %.3f", step, ev["mae"])
      if step == total_steps and config.bn_recalibration_batches > 0:
        state = _recalibrate(state, p_model, config, inputs, train_ds, num_devices, step_rngs)
      if step % config.checkpoint_every_steps == 0 or step == total_steps:
        checkpoint.save(mngr, jax_utils.unreplicate(state), data_state)
      interrupted = stop.is_set() or (stop_after_steps is not None and step >= stop_after_steps)
      if interrupted and step < total_steps:
        checkpoint.save(mngr, jax_utils.unreplicate(state), data_state, wait=True)
        logging.warning("Stopped at step %d (%s); checkpoint saved. Run the same command to "
                        "resume.", step, "SIGTERM" if stop.is_set() else "stop_after_steps")
        return {"stopped_at": step}
    mngr.wait_until_finished()

    ev = evaluate(p_eval_step, state, test_ds, config, num_devices)
    baseline = losses.mae(np.full(len(test_ds), float(np.mean(train_ds.ages))), test_ds.ages)
    final = {"test_mae": ev["mae"], "mean_baseline_mae": baseline, "cs": ev["cs"],
             "num_test": ev["num_examples"], "steps": total_steps,
             "cluster_counts": ev.get("cluster_counts")}
    if note:
      final["fold"] = note
    writer.write_scalars(total_steps, {"test/mae": ev["mae"], "test/mean_baseline_mae": baseline})
    if is_chief:
      results.write(workdir, final, test_ds, ev["predictions"], ev.get("clusters"))
    logging.info("Test MAE %.3f (predicting the training mean: %.3f) on %d examples.",
                 ev["mae"], baseline, ev["num_examples"])
    return final
  finally:
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)
