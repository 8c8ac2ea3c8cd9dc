"""On-device preprocessing: uint8 -> normalised float, with training augmentation.

Runs inside the jitted step, so the host only ever ships uint8 batches and
never decodes an image twice. Real datasets store a *loose* crop (side
margin x the model's input, see data/builders/common.py); this takes its
central ``out_size`` pixels, after (in training) a random zoom by 1 + ε about
the centre: the paper's scale noise on the crop side w = (α + ε)·l. Training
also flips and jitters brightness and contrast (dm-pix).

Random decisions are keyed per *global* example index (``example_offset`` is
this shard's first index), so a batch is augmented identically however it is
split over devices.
"""

from typing import Any, Optional, Sequence, Tuple

import dm_pix as pix
import jax
import jax.numpy as jnp

from clustercnn_jax import pretrained
from clustercnn_jax.random_keys import example_keys

# Bumped when the pixels of a view change for the same image and settings (a fix to the
# crop, zoom or normalisation), so that feature caches built from the old views are
# recomputed (feature_cache.cache_settings). 1 is the code every existing cache was built by.
VIEW_REVISION = 1


def _zoom(x: jnp.ndarray, zoom: jnp.ndarray | float) -> jnp.ndarray:
  """One (H, W, C) image resampled about its centre: ``zoom`` > 1 takes in more of it."""
  centre = (jnp.asarray(x.shape[:2], jnp.float32) - 1.0) / 2.0
  matrix = jnp.array([zoom, zoom, 1.0])  # output -> input
  offset = jnp.concatenate([centre * (1.0 - zoom), jnp.zeros((1,))])
  return pix.affine_transform(x, matrix, offset=offset, order=1, mode="nearest")


def _augment_one(x: jnp.ndarray, key: jax.Array, flip: bool, scale_jitter: float,
                 colour_jitter: float) -> jnp.ndarray:
  k_scale, k_flip, k_bright, k_contrast = jax.random.split(key, 4)
  if scale_jitter > 0:
    x = _zoom(x, 1.0 + jax.random.uniform(k_scale, (), minval=-scale_jitter, maxval=scale_jitter))
  if flip:
    x = jnp.where(jax.random.bernoulli(k_flip, 0.5), x[:, ::-1, :], x)
  if colour_jitter > 0:
    x = pix.random_brightness(k_bright, x, 0.2 * colour_jitter)
    x = pix.random_contrast(k_contrast, x, 1.0 - 0.3 * colour_jitter, 1.0 + 0.3 * colour_jitter)
    x = jnp.clip(x, 0.0, 1.0)
  return x


def preprocess(images: jnp.ndarray, rng: jax.Array, *, train: bool, flip: bool,
               mean: Sequence[float], std: Sequence[float],
               example_offset: jnp.ndarray | int = 0, out_size: Optional[int] = None,
               scale_jitter: float = 0.0, colour_jitter: float = 0.0) -> jnp.ndarray:
  """(B, H, W, 3) uint8 -> (B, out_size, out_size, 3) float, normalised."""
  x = images.astype(jnp.float32) / 255.0
  height = x.shape[1]
  out_size = out_size or height
  if out_size > height:
    raise ValueError(f"Stored images are {height}px, smaller than the model input {out_size}px.")
  if train and (flip or scale_jitter > 0 or colour_jitter > 0):
    keys = example_keys(rng, x.shape[0], example_offset)
    x = jax.vmap(lambda im, k: _augment_one(im, k, flip, scale_jitter, colour_jitter))(x, keys)
  return _crop_and_normalise(x, out_size, mean, std)


def _crop_and_normalise(x: jnp.ndarray, out_size: int, mean: Sequence[float],
                        std: Sequence[float]) -> jnp.ndarray:
  start = (x.shape[1] - out_size) // 2
  x = x[:, start:start + out_size, start:start + out_size, :]
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def preprocess_for(config: Any, images: jnp.ndarray, rng: jax.Array, train: bool,
                   example_offset: jnp.ndarray | int = 0) -> jnp.ndarray:
  """``preprocess`` with the config's settings and the backbone's input normalisation.

  Scale jitter ε belongs to face normalisation: without it (``face.normalize``
  False, the whole image stored at the input size) there is no ε.
  """
  mean, std = pretrained.input_normalization(config)
  scale_jitter = config.scale_jitter if config.face.normalize else 0.0
  return preprocess(images, rng, train=train, flip=config.flip, mean=mean, std=std,
                    example_offset=example_offset, out_size=config.image_size,
                    scale_jitter=scale_jitter, colour_jitter=config.colour_jitter)


def views(config: Any) -> Tuple[Tuple[float, bool], ...]:
  """The fixed (zoom, flip) views a feature cache stores of each face: what is left of the
  training augmentation when the frozen blocks run once per view instead of every step.

  The evaluation crop first; its mirror image with ``flip``; with scale jitter ε (part of
  face normalisation), the crop zoomed by 1 - ε and its mirror zoomed by 1 + ε.
  """
  out = [(1.0, False)]
  if config.flip:
    out.append((1.0, True))
  eps = config.scale_jitter if config.face.normalize else 0.0
  if eps > 0:
    out += [(1.0 - eps, False), (1.0 + eps, bool(config.flip))]
  return tuple(out)


def eval_views(config: Any) -> Tuple[Tuple[float, bool], ...]:
  """The (zoom, flip) views whose expected ages evaluation averages (test-time augmentation,
  ours): the crop; its mirror with ``eval.flip``; with ``eval.zoom`` the crop zoomed in by
  1 - ε. Each is one of ``views(config)``, so a feature cache holds them all; the zoom is
  inward because that needs no pixel beyond the model's input, which is all that a
  ``Predictor``, an export or a photo's crop hands the model."""
  out = [(1.0, False)]
  if config.eval.flip:
    out.append((1.0, True))
  if config.eval.zoom:
    out += [v for v in views(config) if v[0] < 1.0]
  return tuple(out)


def preprocess_view(config: Any, images: jnp.ndarray, zoom: float, flip: bool) -> jnp.ndarray:
  """``preprocess_for``'s evaluation input, zoomed about the centre and mirrored: one view."""
  mean, std = pretrained.input_normalization(config)
  x = images.astype(jnp.float32) / 255.0
  if zoom != 1.0:
    x = jax.vmap(lambda im: _zoom(im, zoom))(x)
  if flip:
    x = x[:, :, ::-1, :]
  return _crop_and_normalise(x, config.image_size, mean, std)
