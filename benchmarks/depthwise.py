"""One depthwise convolution, forward + backward: XLA's grouped convolution against
shifted slices (``layers.depthwise_conv``), timed in one run, with their ratio.

  python benchmarks/depthwise.py [--batch=32 --size=28 --channels=144 --kernel=3]
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax.models.layers import DepthwiseConv  # noqa: E402


def median_time(fn, *args, repeats=10):
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--size", type=int, default=28)
  p.add_argument("--channels", type=int, default=144)
  p.add_argument("--kernel", type=int, default=3)
  args = p.parse_args()
  x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, args.size, args.size, args.channels))
  print(f"{jax.devices()[0].device_kind}: depthwise {args.kernel}x{args.kernel} on {x.shape}, "
        "forward + backward")
  for stride in (1, 2):
    times = {}
    for impl in ("grouped", "slices"):
      m = DepthwiseConv(args.kernel, stride, padding="SAME", impl=impl)
      params = m.init(jax.random.PRNGKey(1), x)
      step = jax.jit(jax.grad(lambda p, x: jnp.sum(m.apply(p, x) ** 2), argnums=(0, 1)))
      times[impl] = median_time(step, params, x)
    print(f"  stride {stride}: grouped {times['grouped'] * 1e3:7.1f} ms   slices "
          f"{times['slices'] * 1e3:7.1f} ms   speed-up {times['grouped'] / times['slices']:.1f}x")


if __name__ == "__main__":
  main()
