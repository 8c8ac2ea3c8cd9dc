"""On-device preprocessing: uint8 -> normalised float, with training augmentation.

Runs inside the jitted step, so the host only ever ships uint8 batches.
Random decisions are keyed per *global* example index (``example_offset`` is
this shard's first index), so a batch is augmented identically however it is
split over devices.
"""

from typing import Sequence

import jax
import jax.numpy as jnp


def preprocess(images: jnp.ndarray, rng: jax.Array, *, train: bool, flip: bool,
               mean: Sequence[float], std: Sequence[float],
               example_offset: jnp.ndarray | int = 0) -> jnp.ndarray:
  x = images.astype(jnp.float32) / 255.0
  if train and flip:
    keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, example_offset + jnp.arange(x.shape[0]))
    do_flip = jax.vmap(lambda k: jax.random.bernoulli(k, 0.5))(keys)
    x = jnp.where(do_flip[:, None, None, None], x[:, :, ::-1, :], x)
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
