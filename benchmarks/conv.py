"""Convolutions on this machine, forward + backward, the two ways each is computed, timed in
one run with their ratio:

* depthwise: XLA's grouped convolution against shifted slices (``layers.DepthwiseConv``);
* dense: XLA's backward-filter convolution for the kernel gradient against k*k matmuls of
  shifted input slices (``layers.Conv``);
* small depthwise maps (8x8 and less): shifted slices against one matmul per channel
  (``impl='matmul'``), forward alone (inference) and forward + backward (training);
* pointwise (1x1) projections and expansions: that convolution against one matmul over
  channels (``layers.Conv(impl='dot')``), forward alone and forward + backward;
* max-pool: XLA's select-and-scatter gradient against the maximum of k*k strided slices
  with a first-maximum mask (``layers.max_pool_ceil``; GoogLeNet's pools).

  python benchmarks/conv.py [--batch=32]
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax.models.layers import Conv, DepthwiseConv, max_pool_ceil  # noqa: E402

# (name, input (H, C), layer): shapes from EfficientNet-Lite0 and GoogLeNet at 112-128 px.
DEPTHWISE = (("depthwise 3x3 s1", (28, 144), dict(kernel_size=3, stride=1)),
             ("depthwise 3x3 s2", (28, 144), dict(kernel_size=3, stride=2)))
DENSE = (("dense 3x3 192->128", (32, 192), dict(features=128, kernel_size=3, padding=((1, 1),) * 2)),
         ("dense 1x1 256->128", (32, 256), dict(features=128, kernel_size=1)),
         ("dense 7x7 s2 3->64", (128, 3), dict(features=64, kernel_size=7, stride=2,
                                               padding=((3, 3),) * 2)))
# EfficientNet-Lite0's last stages at 112 px.
SMALL_DEPTHWISE = (("depthwise 5x5 s1", (7, 1152), dict(kernel_size=5, stride=1)),
                   ("depthwise 3x3 s1", (7, 1152), dict(kernel_size=3, stride=1)))
# 1x1 projections and expansions of EfficientNet-Lite0, MobileNetV2 and GoogLeNet
# (input (H, C) -> features).
POINTWISE = (("1x1 96->24", (56, 96), 24), ("1x1 144->24", (28, 144), 24),
             ("1x1 480->64", (16, 480), 64), ("1x1 1152->192", (7, 1152), 192),
             ("1x1 16->96", (56, 16), 96), ("1x1 24->144", (28, 24), 144),
             ("1x1 112->672", (7, 112), 672))
# GoogLeNet at 128 px: the stem's pool, a pool between stages, the inception pool branch.
POOLS = (("max-pool 3x3 s2", (64, 64), dict(window=3, stride=2)),
         ("max-pool 3x3 s2", (16, 480), dict(window=3, stride=2)),
         ("max-pool 3x3 s1 p1", (16, 480), dict(window=3, stride=1, padding=1)))


def median_time(fn, *args, repeats=5):
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def fwd_bwd(module, x):
  params = module.init(jax.random.PRNGKey(1), x)
  step = jax.jit(jax.grad(lambda p, x: jnp.sum(module.apply(p, x) ** 2), argnums=(0, 1)))
  return median_time(step, params, x)


def forward(module, x):
  params = module.init(jax.random.PRNGKey(1), x)
  return median_time(jax.jit(module.apply), params, x)


def pool_fwd_bwd(impl, kw, x):
  step = jax.jit(jax.grad(lambda x: jnp.sum(max_pool_ceil(x, impl=impl, **kw) ** 2)))
  return median_time(step, x)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=32)
  args = p.parse_args()
  print(f"{jax.devices()[0].device_kind}, batch {args.batch}, forward + backward (median ms)")
  cases = [(name, shape, lambda impl, kw=kw: DepthwiseConv(padding="SAME", impl=impl, **kw),
            ("grouped", "slices")) for name, shape, kw in DEPTHWISE]
  cases += [(name, shape, lambda impl, kw=kw: Conv(impl=impl, **kw), ("xla", "matmul"))
            for name, shape, kw in DENSE]
  for name, (size, channels), make, (slow, fast) in cases:
    x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, size, size, channels))
    t_slow, t_fast = fwd_bwd(make(slow), x), fwd_bwd(make(fast), x)
    print(f"  {name:20s} on {size}x{size}: {slow} {t_slow * 1e3:7.1f}   {fast} "
          f"{t_fast * 1e3:7.1f}   speed-up {t_slow / t_fast:5.1f}x")
  # Forward alone (inference) and forward + backward (training), each way.
  both_ways = [(name, shape, lambda impl, kw=kw: DepthwiseConv(padding="SAME", impl=impl, **kw),
                ("slices", "matmul")) for name, shape, kw in SMALL_DEPTHWISE]
  both_ways += [(name, shape, lambda impl, f=features: Conv(f, 1, impl=impl), ("matmul", "dot"))
                for name, shape, features in POINTWISE]
  for name, (size, channels), make, (a, b) in both_ways:
    x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, size, size, channels))
    (fwd_a, fwd_b), (both_a, both_b) = [[f(make(impl), x) for impl in (a, b)]
                                        for f in (forward, fwd_bwd)]
    print(f"  {name:20s} on {size}x{size}x{channels}: forward {a} {fwd_a * 1e3:6.1f}   {b} "
          f"{fwd_b * 1e3:6.1f}   speed-up {fwd_a / fwd_b:4.1f}x; forward + backward {a} "
          f"{both_a * 1e3:6.1f}   {b} {both_b * 1e3:6.1f}   {both_a / both_b:4.1f}x")
  for name, (size, channels), kw in POOLS:
    x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, size, size, channels))
    t_slow, t_fast = pool_fwd_bwd("xla", kw, x), pool_fwd_bwd("slices", kw, x)
    print(f"  {name:20s} on {size}x{size}x{channels}: xla {t_slow * 1e3:7.1f}   slices "
          f"{t_fast * 1e3:7.1f}   speed-up {t_slow / t_fast:5.1f}x")


if __name__ == "__main__":
  main()
