"""The cluster module's branch computation: masked einsum vs the alternatives.

  python benchmarks/cluster_module.py [--batch 128 --dim 1024 --features 512 --clusters 5]

Times forward+backward of v = W_c (x - u_c) + b_c three ways, in one run:
  masked einsum   one-hot mask (B, k, D), one contraction over (k, D)   [what we use]
  gather          W[c_b] per example (B, D, F), then a batched matvec
  all branches    every branch for every example (B, k, F), then select
and prints each time and its ratio to the masked einsum.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np


def masked(x, u, onehot, w, b):
  diff = x[:, None] - u[None]
  return jnp.einsum("bkd,kdf->bf", onehot[:, :, None] * diff, w) + onehot @ b


def gather(x, u, onehot, w, b):
  c = jnp.argmax(onehot, -1)
  return jnp.einsum("bd,bdf->bf", x - u[c], w[c]) + b[c]


def all_branches(x, u, onehot, w, b):
  v = jnp.einsum("bkd,kdf->bkf", x[:, None] - u[None], w) + b[None]
  return jnp.einsum("bk,bkf->bf", onehot, v)


def bench(fn, args, reps):
  g = jax.jit(jax.grad(lambda x, w, b: jnp.sum(fn(x, args[1], args[2], w, b) ** 2), (0, 1, 2)))
  x, u, onehot, w, b = args
  jax.block_until_ready(g(x, w, b))
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(g(x, w, b))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--dim", type=int, default=1024)
  p.add_argument("--features", type=int, default=512)
  p.add_argument("--clusters", type=int, default=5)
  p.add_argument("--reps", type=int, default=20)
  a = p.parse_args()
  keys = jax.random.split(jax.random.PRNGKey(0), 5)
  x = jax.random.normal(keys[0], (a.batch, a.dim))
  u = jax.random.normal(keys[1], (a.clusters, a.dim))
  onehot = jax.nn.one_hot(jax.random.randint(keys[2], (a.batch,), 0, a.clusters), a.clusters)
  w = jax.random.normal(keys[3], (a.clusters, a.dim, a.features)) * 0.01
  b = jax.random.normal(keys[4], (a.clusters, a.features))
  args = (x, u, onehot, w, b)
  ref = masked(*args)
  for fn in (gather, all_branches):
    np.testing.assert_allclose(fn(*args), ref, rtol=1e-4, atol=1e-3)
  print(f"{jax.devices()[0].device_kind}: B={a.batch} D={a.dim} F={a.features} k={a.clusters}, "
        "forward+backward, median of", a.reps)
  base = bench(masked, args, a.reps)
  for name, fn in (("masked einsum", masked), ("gather", gather), ("all branches", all_branches)):
    t = base if fn is masked else bench(fn, args, a.reps)
    print(f"  {name:14s} {t * 1e3:8.2f} ms   ratio to masked einsum {t / base:6.2f}")


if __name__ == "__main__":
  main()
