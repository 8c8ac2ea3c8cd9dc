"""The output of a backbone's frozen blocks, computed once per image and view, kept on disk.

Frozen blocks (the whole backbone with ``model.freeze_backbone``, or those before
``model.train_from``) give a face the same output at every step, so running them
at every step is wasted work: ``cache.enabled`` runs them once per image
and per view (``preprocess.views``: the evaluation crop, its mirror image and two
zooms, what is left of the augmentation) and trains the rest on the stored
arrays. On a CPU this turns the 82 FG-NET folds from days into minutes, and
makes fine-tuning the top blocks affordable.

The cache is content-addressed: one file per setting (backbone name and revision,
settings, input size and normalisation, where the frozen part ends, the views and
the revision of the code that draws them, the storage dtype and a digest of the
frozen weights: ``cache_settings``, ``cache_key``), holding the SHA-1 of each
image's bytes and that image's outputs. Every fold of a protocol, every split and
every rerun therefore reuses what any of them computed.
"""

import hashlib
import logging
import os
import tempfile
import time
from typing import Any, Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from clustercnn_jax import models, pretrained
from clustercnn_jax.data.dataset import ArrayDataset
from clustercnn_jax.data.images import digests as image_digests
from clustercnn_jax.data import preprocess
from clustercnn_jax.models import folding
from clustercnn_jax.models.model import AgeModel, feature_taps, frozen_blocks_params

CACHE_DTYPES = ("float32", "float16")  # config.cache.dtype: how a cache stores arrays


def weights_digest(tree: Any) -> str:
  """SHA-1 over every array of a pytree (its paths, shapes, dtypes and bytes)."""
  h = hashlib.sha1()
  for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(tree)[0],
                           key=lambda kv: jax.tree_util.keystr(kv[0])):
    a = np.asarray(leaf)
    h.update(f"{jax.tree_util.keystr(path)}{a.shape}{a.dtype}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def cache_key(settings: Sequence[Any], weights: str) -> str:
  """The name of a backbone's cache file: its settings and weights digest."""
  return hashlib.sha1((repr(tuple(settings)) + weights).encode()).hexdigest()[:20]


def cache_settings(config: ml_collections.ConfigDict, view_list: Sequence[Any],
                   taps: Sequence[str]) -> tuple:
  """What a cache's outputs depend on besides the frozen weights: the backbone and its
  revision, the input, where the frozen part ends, the views and the code that draws them."""
  m = config.model
  settings = (m.backbone, models.revision(m.backbone), sorted(m.backbone_kwargs.to_dict().items()),
              config.image_size, tuple(map(tuple, pretrained.input_normalization(config))),
              m.half_precision, "features" if m.freeze_backbone else m.train_from,
              tuple(view_list), config.cache.dtype)
  if taps:
    settings += (tuple(sorted(taps)), "mean")
  if preprocess.VIEW_REVISION != 1:  # revision 1 names the caches built before it existed
    settings += (("views", preprocess.VIEW_REVISION),)
  return settings


def _batches(n: int, batch: int) -> Iterable[np.ndarray]:
  for start in range(0, n, batch):
    yield np.arange(start, min(start + batch, n))


def cached_features(images: np.ndarray, embed: Callable[[np.ndarray], np.ndarray], key: str,
                    cache_dir: str, batch_size: int = 128) -> np.ndarray:
  """Features of ``images`` (N, H, W, C): read from ``cache_dir/key.npz``, computing
  (and adding) only the images not already there.

  ``embed`` maps a uint8 batch of exactly ``batch_size`` images to (batch_size, ...)
  outputs, stored in the dtype it returns; the last batch is padded so that it
  compiles once.
  """
  cache_dir = os.path.expanduser(cache_dir)
  path = os.path.join(cache_dir, f"{key}.npz")
  digests = image_digests(images)
  known_d, known_f = np.zeros((0,), "S20"), None
  if os.path.exists(path):
    try:
      with np.load(path) as z:
        known_d, known_f = z["digests"], z["features"]
    except (OSError, ValueError, KeyError) as e:  # a torn or foreign file: recompute
      logging.warning("Feature cache %s unreadable (%s); recomputing it.", path, e)
      known_d, known_f = np.zeros((0,), "S20"), None
  index = {d: i for i, d in enumerate(known_d)}
  missing = np.array([i for i, d in enumerate(digests) if d not in index], np.int64)
  if missing.size:
    n_known = len(images) - missing.size
    # Identical images share one digest: compute each distinct one once.
    _, first = np.unique(digests[missing], return_index=True)
    missing = missing[np.sort(first)]
    logging.info("Feature cache %s: %d of %d images known, computing %d.", path, n_known,
                 len(images), missing.size)
    t0, done, out = time.time(), 0, []
    for n_batch, idx in enumerate(_batches(missing.size, batch_size)):
      chunk = images[missing[idx]]
      pad = batch_size - len(chunk)
      if pad:
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
      out.append(np.asarray(embed(chunk))[:len(idx)])
      done += len(idx)
      if n_batch % 20 == 19 or done == missing.size:
        rate = done / max(time.time() - t0, 1e-9)
        logging.info("  features %d/%d  %.0f img/s  ETA %.0fs", done, missing.size, rate,
                     (missing.size - done) / rate)
    new_f = np.concatenate(out)
    known_f = new_f if known_f is None else np.concatenate([known_f, new_f])
    known_d = np.concatenate([known_d, digests[missing]])
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, digests=known_d, features=known_f)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old or the new file
    index = {d: i for i, d in enumerate(known_d)}
  else:
    logging.info("Feature cache %s: all %d images known.", path, len(images))
  return known_f[np.array([index[d] for d in digests], np.int64)]


def frozen_variables(state: Any, config: ml_collections.ConfigDict) -> dict:
  """The variables of the frozen blocks only: what the cached outputs depend on."""
  keep = (lambda name: True) if config.model.freeze_backbone else \
      frozen_blocks_params(config).__contains__
  return {c: {"backbone": {k: v for k, v in getattr(state, c).get("backbone", {}).items()
                           if keep(k)}}
          for c in ("params", "batch_stats")}


def feature_datasets(state: Any, model: AgeModel, config: ml_collections.ConfigDict,
                     *datasets: ArrayDataset) -> list:
  """``datasets`` with each image replaced by its frozen blocks' output for each of
  ``preprocess.views(config)`` (N, V, ...), cached; the train step picks a view per example."""
  if config.colour_jitter:
    logging.warning("cache.enabled: the frozen blocks run once per view, so "
                    "colour_jitter is not applied (flip and scale jitter become fixed views).")
  m = config.model
  view_list = preprocess.views(config)
  frozen = frozen_variables(state, config)
  taps = feature_taps(config) if m.freeze_backbone else ()  # above a cut they are trained
  key = cache_key(cache_settings(config, view_list, taps), weights_digest(frozen))

  def embed(variables, images):
    out = [model.apply(variables, preprocess.preprocess_view(config, images, zoom, flip),
                       method=AgeModel.frozen_part) for zoom, flip in view_list]
    return jnp.stack(out, axis=1).astype(config.cache.dtype)

  folded = {}  # BatchNorm folded into the convolutions (models/folding.py) on first use only:
  # a cache that knows every image needs no frozen pass at all.

  def embed_folded(images):
    if not folded:
      fn, variables = folding.fold_function(
          embed, frozen, jax.ShapeDtypeStruct((1,) + images.shape[1:], images.dtype))
      folded.update(fn=jax.jit(fn), variables=variables)
    return folded["fn"](folded["variables"], images)

  out = []
  for ds in datasets:
    feats = cached_features(ds.images, embed_folded, key,
                            config.cache.dir, config.batch_size)
    out.append(ArrayDataset(feats, ds.ages, ds.person_ids))
  return out
