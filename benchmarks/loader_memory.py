"""What the training loader's read-ahead costs in memory and buys in speed, in one run.

Each setting runs in a fresh process (resident memory is per process) on the same
stand-in for ``utkface.py:partial``'s cached views: 15,087 examples of (4, 7, 7, 80)
float32, batch 128, read for ``--batches`` batches with a 20 ms stand-in step after each.
Prints batches/s and resident memory before and after, per ``--prefetch`` value
(grain's default read-ahead is 500 records: here, 500 batches).

  python benchmarks/loader_memory.py [--prefetch=500,4] [--batches=300]
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib() -> float:
  with open("/proc/self/status") as f:
    return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def one(prefetch: int, batches: int, step_s: float) -> None:
  sys.path.insert(0, ROOT)
  from clustercnn_jax.data import pipeline
  from clustercnn_jax.data.dataset import ArrayDataset

  rng = np.random.default_rng(0)
  n = 15087
  ds = ArrayDataset(rng.standard_normal((n, 4, 7, 7, 80), np.float32),
                    rng.uniform(1, 90, n).astype(np.float32))
  before = rss_mib()
  it = iter(pipeline.train_loader(ds, 128, 1, 0, prefetch=prefetch))
  next(it)
  t0 = time.perf_counter()
  peak = before
  for _ in range(batches):
    batch = next(it)
    time.sleep(step_s)  # the train step the loader runs beside
    peak = max(peak, rss_mib())
  rate = batches / (time.perf_counter() - t0)
  print(f"read-ahead {prefetch:4d} batches: {rate:6.1f} batches/s (step alone "
        f"{1 / step_s:.0f}/s), resident memory {before:6.0f} -> peak {peak:6.0f} MiB "
        f"(+{peak - before:.0f}); last batch {batch['images'].shape}", flush=True)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--prefetch", default="500,4")
  parser.add_argument("--batches", type=int, default=300)
  parser.add_argument("--step_ms", type=float, default=20.0)
  parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.one is not None:
    one(args.one, args.batches, args.step_ms / 1e3)
    return 0
  for prefetch in args.prefetch.split(","):
    subprocess.run([sys.executable, __file__, f"--one={prefetch}", f"--batches={args.batches}",
                    f"--step_ms={args.step_ms}"], check=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
