"""Random keys per *global* example index: the one way every per-example draw is keyed.

Augmentation, the cached view a step trains on, the cluster draw and dropout all key
example i of a batch by fold_in(rng, i + offset), where ``offset`` is the index of this
shard's first example; a batch is then drawn identically however it is split over devices
(1, 8 or 2x4 devices train the same model).
"""

from typing import Optional

import jax
import jax.numpy as jnp


def example_keys(rng: jax.Array, batch: int, offset: jnp.ndarray | int = 0) -> jax.Array:
  """(batch,) keys: fold_in(rng, offset + i) for the shard's i-th example."""
  return jax.vmap(jax.random.fold_in, (None, 0))(rng, offset + jnp.arange(batch))


def shard_offset(axis_name: Optional[str], batch: int) -> jnp.ndarray | int:
  """The global index of this shard's first example: its device index on ``axis_name``
  (inside pmap) times the per-device ``batch``; 0 outside pmap."""
  return 0 if axis_name is None else jax.lax.axis_index(axis_name) * batch
