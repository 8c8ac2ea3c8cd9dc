"""Training and evaluation: pure pmapped steps, the k-means++ warm start, the loop.

``train_step`` and ``eval_step`` are pure functions of (state, batch, rng);
``train_and_evaluate`` is the only place with side effects (I/O, signals).
All randomness derives from ``config.seed``: the key of step s is
fold_in(key, s), so a resumed run replays exactly what an uninterrupted one
would.
"""

import functools
import logging
import os
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
from flax.training import train_state

from clustercnn_jax import checkpoint, data, feature_cache, kmeans, losses, pretrained
from clustercnn_jax.data import grain_pipeline, pipeline
from clustercnn_jax.data.preprocess import preprocess
from clustercnn_jax.metric_writers import MetricWriter
from clustercnn_jax.models.model import AgeModel, build_model

AXIS = "batch"


class TrainState(train_state.TrainState):
  batch_stats: Any
  clusters: Any


def learning_rate_schedule(config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  lr = config.learning_rate
  if config.lr_schedule == "constant":
    main = optax.constant_schedule(lr)
  elif config.lr_schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, max(total_steps - config.warmup_steps, 1))
  else:
    raise ValueError(f"Unknown lr_schedule {config.lr_schedule!r}; use 'constant' or 'cosine'.")
  if config.warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, lr, config.warmup_steps)
  return optax.join_schedules([warmup, main], [config.warmup_steps])


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  schedule = learning_rate_schedule(config, total_steps)
  if config.optimizer == "adam":
    tx = optax.adamw(schedule, weight_decay=config.weight_decay) if config.weight_decay \
        else optax.adam(schedule)
  elif config.optimizer == "sgd":
    tx = optax.sgd(schedule, momentum=config.sgd_momentum, nesterov=False)
    if config.weight_decay:
      tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
  else:
    raise ValueError(f"Unknown optimizer {config.optimizer!r}; use 'adam' or 'sgd'.")
  if config.model.freeze_backbone:
    label = lambda params: {k: "frozen" if k == "backbone" else "train" for k in params}
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, label)
  return tx


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict, model: AgeModel,
                       total_steps: int, load_pretrained: bool = True) -> TrainState:
  """Fresh parameters (ImageNet backbone if ``config.pretrained`` and ``load_pretrained``);
  centroids are zeros until ``init_centroids`` fills them.

  ``load_pretrained=False`` gives the same structure without reading the
  weights file: for a state that a checkpoint restore will overwrite.
  """
  shape = (1, config.image_size, config.image_size, 3)
  variables = flax.core.unfreeze(model.init({"params": rng, "dropout": rng, "cluster": rng},
                                            jnp.zeros(shape, jnp.float32), train=False))
  if config.pretrained and load_pretrained:
    template = {c: variables[c]["backbone"] for c in ("params", "batch_stats")}
    loaded = pretrained.load_backbone_variables(config.model.backbone, config.pretrained,
                                                template)
    for c, v in loaded.items():
      variables[c]["backbone"] = jax.tree_util.tree_map(jnp.asarray, v)
    logging.info("Backbone %s initialised from %s.", config.model.backbone,
                 pretrained.resolve(config.model.backbone, config.pretrained))
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=make_optimizer(config, total_steps),
                           batch_stats=variables.get("batch_stats", {}),
                           clusters=variables.get("clusters", {}))


def _preprocess(images: jnp.ndarray, rng: jax.Array, config: ml_collections.ConfigDict,
                train: bool, example_offset: Any = 0) -> jnp.ndarray:
  mean, std = pretrained.input_normalization(config)
  return preprocess(images, rng, train=train, flip=config.flip, mean=mean, std=std,
                    example_offset=example_offset, out_size=config.image_size,
                    scale_jitter=config.scale_jitter, colour_jitter=config.colour_jitter)


def train_step(state: TrainState, batch: Dict[str, jnp.ndarray], rng: jax.Array, *,
               model: AgeModel, config: ml_collections.ConfigDict):
  """One optimisation step on this device's shard; call under pmap(axis_name='batch')."""
  step_rng = jax.random.fold_in(rng, state.step)
  aug_rng, cluster_rng, dropout_rng = jax.random.split(step_rng, 3)
  offset = jax.lax.axis_index(AXIS) * batch["ages"].shape[0]
  cached = config.model.cached_features
  images = batch["images"] if cached else _preprocess(batch["images"], aug_rng, config, True,
                                                       example_offset=offset)
  dropout_rng = jax.random.fold_in(dropout_rng, jax.lax.axis_index(AXIS))

  def loss_fn(params):
    variables = {"params": params, "batch_stats": state.batch_stats, "clusters": state.clusters}
    (logits, aux), updates = model.apply(
        variables, images, train=True, features=cached, mutable=["batch_stats", "clusters"],
        rngs={"dropout": dropout_rng, "cluster": cluster_rng})
    terms = losses.age_loss(logits, batch["ages"], aux, ce_weight=config.loss.ce_weight,
                            sw_sb_weight=config.loss.sw_sb_weight)
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


def eval_step(state: TrainState, batch: Dict[str, jnp.ndarray], *, model: AgeModel,
              config: ml_collections.ConfigDict) -> Dict[str, jnp.ndarray]:
  """Predicted ages (nearest-centroid assignment) and cluster of each example."""
  cached = config.model.cached_features
  images = batch["images"] if cached else _preprocess(batch["images"], jax.random.PRNGKey(0),
                                                       config, False)
  variables = {"params": state.params, "batch_stats": state.batch_stats,
               "clusters": state.clusters}
  logits, aux = model.apply(variables, images, train=False, features=cached)
  out = {"pred": losses.expected_age(logits)}
  if "assign" in aux:
    out["assign"] = aux["assign"]
  return out


def compute_features(state: TrainState, model: AgeModel, ds: pipeline.ArrayDataset,
                     config: ml_collections.ConfigDict) -> np.ndarray:
  """Backbone features of every example of ``ds`` (batch statistics, as in training)."""
  if config.model.cached_features:  # ds already holds them
    return np.asarray(ds.images, np.float32)

  @jax.jit
  def embed(images):
    x = _preprocess(images, jax.random.PRNGKey(0), config, False)
    feats, _ = model.apply({"params": state.params, "batch_stats": state.batch_stats}, x,
                           train=True, method=AgeModel.embed, mutable=["batch_stats"])
    return feats

  out = []
  for batch in pipeline.eval_batches(ds, config.batch_size, 1):
    feats = np.asarray(embed(batch["images"][0]))
    out.append(feats[batch["mask"][0]])
  return np.concatenate(out)


def feature_datasets(state: TrainState, model: AgeModel, config: ml_collections.ConfigDict,
                     *datasets: pipeline.ArrayDataset) -> list:
  """``datasets`` with each image replaced by its frozen backbone's features (cached)."""
  if not config.model.freeze_backbone:
    raise ValueError("model.cached_features=True needs --config.model.freeze_backbone=True: "
                     "features of a backbone that is being trained change every step.")
  if config.scale_jitter or config.flip or config.colour_jitter:
    logging.warning("model.cached_features: features come from the evaluation crop, so "
                    "scale_jitter, flip and colour_jitter are not applied.")
  backbone = {"params": {"backbone": state.params["backbone"]},
              "batch_stats": {"backbone": state.batch_stats.get("backbone", {})}}
  m = config.model
  key = feature_cache.cache_key(
      (m.backbone, sorted(m.backbone_kwargs.to_dict().items()), config.image_size,
       tuple(map(tuple, pretrained.input_normalization(config))), config.half_precision),
      feature_cache.weights_digest(backbone))

  @jax.jit
  def embed(variables, images):
    x = _preprocess(images, jax.random.PRNGKey(0), config, False)
    return model.apply(variables, x, train=False, method=AgeModel.embed)

  out = []
  for ds in datasets:
    feats = feature_cache.cached_features(ds.images, functools.partial(embed, backbone), key,
                                          config.feature_cache_dir, config.batch_size)
    out.append(pipeline.ArrayDataset(feats, ds.ages, ds.person_ids))
  return out


def init_centroids(state: TrainState, model: AgeModel, train_ds: pipeline.ArrayDataset,
                   config: ml_collections.ConfigDict) -> TrainState:
  """k-means++ (plus Lloyd steps) on features of ``kmeans_examples`` training images."""
  if not config.model.use_cluster:
    return state
  n = min(config.kmeans_examples, len(train_ds))
  idx = np.sort(np.random.default_rng([config.seed, 1]).choice(len(train_ds), n, replace=False))
  subset = train_ds.subset(idx)
  t0 = time.time()
  feats = compute_features(state, model, subset, config)
  centres = kmeans.fit(jax.random.PRNGKey(config.seed), feats, config.model.num_clusters,
                       config.kmeans_iterations)
  logging.info("k-means++ on %d features of dimension %d: %.1fs", n, feats.shape[1],
               time.time() - t0)
  clusters = flax.core.unfreeze(state.clusters)
  clusters["cluster"]["centroids"] = jnp.asarray(centres)
  return state.replace(clusters=clusters)


def evaluate(p_eval_step, state: TrainState, ds: pipeline.ArrayDataset,
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
    result["cluster_counts"] = np.bincount(np.concatenate(assigns),
                                           minlength=config.model.num_clusters).tolist()
  return result


def total_train_steps(config: ml_collections.ConfigDict, num_train: int) -> int:
  if config.num_train_steps > 0:
    return int(config.num_train_steps)
  return max(1, int(config.num_epochs * pipeline.steps_per_epoch(num_train, config.batch_size)))


def _check_batch(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """``num_devices`` counts every device of every host (the global batch spans them all)."""
  if config.batch_size % num_devices:
    raise ValueError(f"batch_size={config.batch_size} does not divide evenly over "
                     f"{num_devices} devices; use a multiple of {num_devices}.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_steps: Optional[int] = None) -> Dict[str, Any]:
  """Trains (resuming from ``workdir`` if it holds a checkpoint) and evaluates.

  ``stop_after_steps`` ends this process early, after saving a checkpoint, as
  a preemption would; the same call again resumes. Returns the final metrics
  (or ``{'stopped_at': step}`` when stopped early).
  """
  num_devices = jax.local_device_count()
  _check_batch(config, jax.device_count())
  is_chief = jax.process_index() == 0
  train_ds, test_ds = data.load(config)
  total_steps = total_train_steps(config, len(train_ds))
  model = build_model(config)
  p_model = build_model(config, axis_name=AXIS)

  rng = jax.random.PRNGKey(config.seed)
  init_rng, step_rng = jax.random.split(rng)
  if is_chief:
    checkpoint.save_config(workdir, config)
  mngr = checkpoint.manager(workdir, config)
  resuming = mngr.latest_step() is not None
  state = create_train_state(init_rng, config, model, total_steps, load_pretrained=not resuming)
  use_grain = config.input_pipeline == "grain"
  data_state = grain_pipeline.IteratorState() if use_grain else None
  if config.input_pipeline not in ("grain", "numpy"):
    raise ValueError(f"input_pipeline={config.input_pipeline!r}: use 'grain' or 'numpy'.")
  if resuming:
    state = checkpoint.restore(mngr, state, data_state=data_state)
    logging.info("Resumed from %s at step %d.", mngr.directory, int(state.step))
  if config.model.cached_features:
    train_ds, test_ds = feature_datasets(state, model, config, train_ds, test_ds)
  if not resuming:
    state = init_centroids(state, model, train_ds, config)
  start_step = int(state.step)
  logging.info("Training %d steps (%d done) on %d device(s), global batch %d, %d train / %d "
               "test examples.", total_steps, start_step, num_devices, config.batch_size,
               len(train_ds), len(test_ds))

  p_train_step = jax.pmap(functools.partial(train_step, model=p_model, config=config),
                          axis_name=AXIS, donate_argnums=(0,))
  p_eval_step = jax.pmap(functools.partial(eval_step, model=model, config=config),
                         axis_name=AXIS)
  writer = MetricWriter(workdir, enabled=is_chief)
  schedule = learning_rate_schedule(config, total_steps)

  # SIGTERM (TPU preemption): finish the current step, checkpoint, exit cleanly.
  stop = threading.Event()
  previous_handler = None
  if threading.current_thread() is threading.main_thread():
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.set())

  state = jax_utils.replicate(state)
  step_rngs = jax_utils.replicate(step_rng)
  if use_grain:
    host_batches = grain_pipeline.GrainBatches(
        grain_pipeline.train_loader(train_ds, config.batch_size, num_devices, config.seed,
                                    config.grain_workers), data_state.state)
  else:
    host_batches = pipeline.train_batches(train_ds, config.batch_size, num_devices, config.seed,
                                          start_step, jax.process_index(), jax.process_count())
  batches = jax_utils.prefetch_to_device(host_batches, 2)
  pending, t_log, step_log = [], time.time(), start_step
  step = start_step
  try:
    while step < total_steps:
      state, metrics = p_train_step(state, next(batches), step_rngs)
      if use_grain:  # the iterator's position just after this step's batch
        data_state = grain_pipeline.IteratorState(host_batches.states.popleft())
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
                     summary["images_per_sec"], _format_seconds(eta))
        pending, t_log, step_log = [], time.time(), step
      if config.eval_every_steps and step % config.eval_every_steps == 0 and step < total_steps:
        ev = evaluate(p_eval_step, state, test_ds, config, num_devices)
        writer.write_scalars(step, {"test/mae": ev["mae"]})
        logging.info("step %d  test MAE %.3f", step, ev["mae"])
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
    results = {"test_mae": ev["mae"], "mean_baseline_mae": baseline, "cs": ev["cs"],
               "num_test": ev["num_examples"], "steps": total_steps,
               "cluster_counts": ev.get("cluster_counts")}
    writer.write_scalars(total_steps, {"test/mae": ev["mae"], "test/mean_baseline_mae": baseline})
    if is_chief:
      np.savez(os.path.join(workdir, "predictions.npz"), ages=test_ds.ages,
               predictions=ev["predictions"],
               person_ids=test_ds.person_ids if test_ds.person_ids is not None else [])
      checkpoint.save_json(workdir, "results.json", results)
    logging.info("Test MAE %.3f (predicting the training mean: %.3f) on %d examples.",
                 ev["mae"], baseline, ev["num_examples"])
    return results
  finally:
    mngr.wait_until_finished()
    writer.close()
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)


def _format_seconds(s: float) -> str:
  s = int(round(s))
  return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
