"""k-means++ seeding and Lloyd iterations in JAX, for the centroid warm start."""

import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from clustercnn_jax.cluster import squared_distances


def kmeans_plusplus(key: jax.Array, x: jnp.ndarray, k: int,
                    local_trials: Optional[int] = None) -> jnp.ndarray:
  """Greedy k-means++ seeding (Arthur & Vassilvitskii; scikit-learn's variant).

  Each new centre is the best of ``local_trials`` candidates drawn with
  p ~ D(x)^2, where best means the lowest resulting inertia. Plain k-means++
  (one candidate) leaves two seeds in one blob a few percent of the time, and
  Lloyd iterations cannot undo that.
  """
  x = jnp.asarray(x)
  n = x.shape[0]
  if k > n:
    raise ValueError(f"k-means++ needs at least k={k} points, got {n}.")
  trials = local_trials or 2 + int(math.log(k))
  key, first = jax.random.split(key)
  centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[jax.random.randint(first, (), 0, n)])
  min_d2 = jnp.sum(jnp.square(x - centres[0]), axis=-1)

  def body(i, carry):
    centres, min_d2, key = carry
    key, sub = jax.random.split(key)
    total = jnp.sum(min_d2)
    # All points identical to chosen centres: fall back to a uniform draw.
    p = jnp.where(total > 0, min_d2 / jnp.where(total > 0, total, 1.0), 1.0 / n)
    candidates = jax.random.choice(sub, n, (trials,), p=p)
    cand_d2 = jnp.minimum(min_d2[None], squared_distances(x[candidates], x))  # (T, n)
    best = jnp.argmin(jnp.sum(cand_d2, axis=-1))
    centres = centres.at[i].set(x[candidates[best]])
    return centres, cand_d2[best], key

  centres, _, _ = jax.lax.fori_loop(1, k, body, (centres, min_d2, key))
  return centres


def lloyd(x: jnp.ndarray, centres: jnp.ndarray, iterations: int) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """Lloyd steps; an empty cluster keeps its centre. Returns (centres, inertia)."""
  k = centres.shape[0]

  def step(centres, _):
    onehot = jax.nn.one_hot(jnp.argmin(squared_distances(x, centres), -1), k, dtype=x.dtype)
    counts = onehot.sum(0)
    means = (onehot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where(counts[:, None] > 0, means, centres), None

  centres, _ = jax.lax.scan(step, centres, None, length=iterations)
  inertia = jnp.sum(jnp.min(squared_distances(x, centres), -1))
  return centres, inertia


def fit(key: jax.Array, x: jnp.ndarray, k: int, iterations: int = 10) -> jnp.ndarray:
  """k-means++ seeding then ``iterations`` Lloyd steps; deterministic in ``key``."""
  x = jnp.asarray(x, jnp.float32)
  centres, _ = lloyd(x, kmeans_plusplus(key, x, k), iterations)
  return centres
