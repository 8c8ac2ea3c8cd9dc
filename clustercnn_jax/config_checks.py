"""Checks a config before any work starts: a misspelt choice fails in a second, not an hour in."""

import os
from typing import List, Tuple

import ml_collections

from clustercnn_jax import checkpoint, data, feature_cache, models, optimizers, pretrained
from clustercnn_jax.data import splits
from clustercnn_jax.models import blocks
from clustercnn_jax.models import model as model_lib

NO_FACE = ("centre", "skip")


def _choice(value, allowed, field: str) -> None:
  if value not in allowed:
    raise ValueError(f"config.{field}={value!r}: use one of {list(allowed)} "
                     f"(--config.{field}=...).")


def validate(config: ml_collections.ConfigDict, *, need_weights: bool = True) -> None:
  """Raises ValueError naming the field and its allowed values, or FileNotFoundError for
  pretrained weights that are not there (only checked with ``need_weights``: a resumed
  run restores its weights from the checkpoint)."""
  _choice(config.data.name, data.DATASETS, "data.name")
  _choice(config.data.split.kind, splits.KINDS, "data.split.kind")
  if config.data.name == "synthetic" and config.data.split.kind != "given":
    raise ValueError("Synthetic faces come with their own train and test sets: use "
                     "--config.data.split.kind=given.")
  if config.data.name != "synthetic" and config.data.split.kind == "given":
    raise ValueError(f"{config.data.name} has no given split: use "
                     "--config.data.split.kind=random (or person).")
  if not 0.0 < config.data.split.test_fraction < 1.0:
    raise ValueError(f"config.data.split.test_fraction={config.data.split.test_fraction}: "
                     "use a fraction between 0 and 1.")
  _choice(config.face.no_face, NO_FACE, "face.no_face")
  _choice(config.optimizer, optimizers.OPTIMIZERS, "optimizer")
  _choice(config.lr_schedule, optimizers.SCHEDULES, "lr_schedule")
  _choice(config.model.backbone, sorted(models.BACKBONES), "model.backbone")
  if config.pretrained:
    pretrained.weights_for(config.model.backbone)  # ValueError: no ImageNet weights known
    if need_weights:
      pretrained.resolve(config.model.backbone, config.pretrained)  # says where to get them
  m = config.model
  taps = model_lib.feature_taps(config)
  if m.train_from or taps:
    block_list = models.get_backbone(m.backbone, **m.backbone_kwargs.to_dict()).blocks(False)
    names = blocks.names(block_list)
  if m.train_from:
    blocks.block_index(block_list, m.train_from)  # ValueError lists them
  if taps:
    for tap in taps:
      blocks.block_index(block_list, tap)  # ValueError lists them
      if tap == names[-1]:
        raise ValueError(f"model.feature_taps: {tap!r} is the backbone's last block, whose "
                         f"output is the features already; tap one of {names[:-1]}.")
      if m.train_from and names.index(tap) < names.index(m.train_from) - 1:
        lowest = names[names.index(m.train_from) - 1]
        raise ValueError(f"model.feature_taps: {tap!r} lies below the cached input of "
                         f"model.train_from={m.train_from!r}, so its output is never "
                         f"computed in training; tap {lowest!r} (that input) or a later "
                         "block, or move train_from down.")
  if config.cache.enabled and not (m.freeze_backbone or m.train_from):
    raise ValueError("cache.enabled=True needs frozen blocks to cache: "
                     "--config.model.freeze_backbone=True or --config.model.train_from=BLOCK; "
                     "the output of blocks that are being trained changes every step.")
  _choice(config.cache.dtype, feature_cache.CACHE_DTYPES, "cache.dtype")
  if config.eval.flip and config.cache.enabled and not config.flip:
    raise ValueError("config.eval.flip=True with cached features reads the cached mirror "
                     "image, which the cache holds only with --config.flip=True.")
  if config.eval.zoom and not (config.scale_jitter > 0 and config.face.normalize):
    raise ValueError("config.eval.zoom=True averages in the crop zoomed by 1 - scale_jitter, "
                     "which needs face normalisation (face.normalize=True) and "
                     "--config.scale_jitter > 0.")
  if config.init_from and not checkpoint.has_checkpoint(config.init_from):
    raise FileNotFoundError(f"config.init_from={config.init_from!r} holds no checkpoint: pass "
                            "the workdir of a finished training run.")


# How a trained model is evaluated (test-time views), not what was trained.
EVAL_FIELDS = ("eval.flip", "eval.zoom")
# What a resumed run may change: how long it trains, how often it logs and saves, and how
# its final evaluation runs (a finished run resumed with other EVAL_FIELDS is evaluated
# again, nothing else). Every other field describes the model or the data it was trained
# on, and changing it under a checkpoint either crashes the restore or silently trains
# another model.
RESUME_FIELDS = ("num_train_steps", "num_epochs", "log_every_steps", "eval.every_steps",
                 "checkpoint_every_steps", "keep_checkpoints", "grain_workers",
                 *EVAL_FIELDS)
# May change while they point at the same files (another spelling, another working directory).
PATH_FIELDS = ("data.manual_dir", "data.data_dir", "cache.dir", "pretrained",
               "init_from")


# What a model's input is made of. A model fine-tuned (``init_from``) on other input starts
# from features learnt on something else: allowed, as a new size can be a choice, but said.
INPUT_FIELDS = ("image_size", "face.normalize", "face.alpha", "face.eye_height")


def flat_fields(config: ml_collections.ConfigDict, prefix: str = "") -> dict:
  """{'model.cluster.num_clusters': 5, ...}: every leaf field by its dotted name."""
  out = {}
  for k, v in config.items():
    if isinstance(v, ml_collections.ConfigDict):
      out.update(flat_fields(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _same_path(a, b) -> bool:
  if a == b:
    return True
  if not (isinstance(a, str) and isinstance(b, str) and a and b):
    return False
  norm = lambda p: p.rstrip("/") if "://" in p else os.path.realpath(os.path.expanduser(p))
  return norm(a) == norm(b)


def normal_value(value):
  """Lists and tuples compare equal (config.json stores tuples as lists)."""
  return list(value) if isinstance(value, tuple) else value


def resume_differences(saved: ml_collections.ConfigDict,
                       config: ml_collections.ConfigDict) -> List[Tuple[str, object, object]]:
  """(field, saved value, new value) for each field a resume may not change."""
  a, b = flat_fields(saved), flat_fields(config)
  out = []
  for k in sorted(set(a) | set(b)):
    if k in RESUME_FIELDS:
      continue
    x, y = normal_value(a.get(k)), normal_value(b.get(k))
    if x == y or (k in PATH_FIELDS and _same_path(x, y)):
      continue
    out.append((k, a.get(k, "(absent)"), b.get(k, "(absent)")))
  return out


def check_resume(workdir: str, saved: ml_collections.ConfigDict,
                 config: ml_collections.ConfigDict) -> None:
  """Raises ValueError with the fields that differ when ``config`` may not resume the run
  that ``saved`` (its config.json) trained in ``workdir``."""
  diffs = resume_differences(saved, config)
  if not diffs:
    return
  rows = "\n".join(f"  {k}: {x!r} in {workdir}, {y!r} now" for k, x, y in diffs)
  same = " ".join(f"--config.{k}={x}" for k, x, _ in diffs[:3])
  raise ValueError(
      f"{workdir} holds a run trained with another config; resuming it with this one "
      f"would break it, so nothing was written. {len(diffs)} field(s) differ:\n{rows}\n"
      f"Train the new config in a new --workdir, or resume this run with its own "
      f"settings (e.g. {same}). A resume may change only {', '.join(RESUME_FIELDS)} and "
      "paths to the same files.")


def input_differences(source: ml_collections.ConfigDict,
                      config: ml_collections.ConfigDict) -> List[Tuple[str, object, object]]:
  """(field, value in ``source``, value in ``config``) for each INPUT_FIELDS that differs."""
  a, b = flat_fields(source), flat_fields(config)
  return [(k, a.get(k), b.get(k)) for k in INPUT_FIELDS if a.get(k) != b.get(k)]
