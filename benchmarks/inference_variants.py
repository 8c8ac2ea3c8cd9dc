"""Two things inference could get for free, timed against the forward pass we run, in one run:

* BatchNorm folded into the convolution before it: the most folding can buy is the
  network with each inference-mode BatchNorm replaced by the bias add that a folded
  convolution keeps (random weights: the time does not depend on their values);
* bfloat16: the backbone's weights and activations in bfloat16 instead of float32.

Each variant is timed twice, alternating with float32 + BatchNorm, on the backbone's
evaluation-mode forward pass (pooled features), and the ratio of medians is printed
(> 1: the variant is faster).

  python benchmarks/inference_variants.py [--nets=efficientnet_lite0,mobilenet_v2,googlenet]
      [--batch=32] [--rounds=2]
"""

import argparse
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax.models import (efficientnet, get_backbone, googlenet, layers,  # noqa: E402
                                   mobilenet)

SIZES = {"efficientnet_lite0": 112, "mobilenet_v2": 112, "googlenet": 128}
BN_USERS = (layers, efficientnet, mobilenet, googlenet)


class BiasOnly(nn.Module):
  """What an inference BatchNorm leaves once folded into its convolution: a bias add."""

  @nn.compact
  def __call__(self, x):
    return x + self.param("bias", nn.initializers.zeros, (x.shape[-1],))


def _bias_only(train, axis_name, dtype, name, **_):
  del train, axis_name, dtype
  return BiasOnly(name=name)


def _use_batch_norm(fn) -> None:
  for module in BN_USERS:
    if hasattr(module, "batch_norm"):
      module.batch_norm = fn


def forward_ms(name: str, batch: int, dtype, reps: int = 5) -> float:
  size = SIZES[name]
  net = get_backbone(name, dtype=dtype)
  x = jnp.asarray(np.random.RandomState(0).rand(batch, size, size, 3), jnp.float32)
  variables = net.init(jax.random.PRNGKey(0), x[:1], train=False)
  variables = jax.tree_util.tree_map(lambda a: a.astype(dtype), variables)
  forward = jax.jit(lambda v, x: net.apply(v, x.astype(dtype), train=False))
  forward(variables, x).block_until_ready()
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    forward(variables, x).block_until_ready()
    times.append(time.perf_counter() - t0)
  return float(np.median(times)) * 1e3


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--nets", default=",".join(SIZES))
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--rounds", type=int, default=2)
  args = parser.parse_args()
  batch_norm = layers.batch_norm
  variants = {"float32 + BatchNorm": (batch_norm, jnp.float32),
              "float32, BatchNorm folded (bias add)": (_bias_only, jnp.float32),
              "bfloat16 + BatchNorm": (batch_norm, jnp.bfloat16)}
  print(f"{jax.default_backend()}, batch {args.batch}, evaluation-mode forward (median ms)")
  for name in args.nets.split(","):
    times = {v: [] for v in variants}
    for _ in range(args.rounds):
      for variant, (bn, dtype) in variants.items():
        _use_batch_norm(bn)
        jax.clear_caches()
        times[variant].append(forward_ms(name, args.batch, dtype))
    _use_batch_norm(batch_norm)
    base = np.median(times["float32 + BatchNorm"])
    for variant, ts in times.items():
      print(f"  {name:20s} {variant:38s} {' '.join(f'{t:6.1f}' for t in ts)}   "
            f"speed-up {base / np.median(ts):4.2f}x", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
