"""Two things inference could get for free, timed against the unfolded forward pass, in one run:

* BatchNorm folded into the convolution before it (``models.folding``, what ``predict``,
  ``export`` and the feature caches run), with the largest difference it makes to the
  features (random weights and BatchNorm statistics);
* bfloat16: the backbone's weights and activations in bfloat16 instead of float32.

Each variant is timed ``--rounds`` times, alternating with float32 + BatchNorm, on the
backbone's evaluation-mode forward pass (pooled features), and the ratio of medians is
printed (> 1: the variant is faster).

  python benchmarks/inference_variants.py [--nets=efficientnet_lite0,mobilenet_v2,googlenet]
      [--batch=32] [--rounds=2]
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax.models import folding, get_backbone  # noqa: E402

SIZES = {"efficientnet_lite0": 112, "mobilenet_v2": 112, "googlenet": 128}


def variant(name: str, batch: int, kind: str):
  """(jitted forward, variables, input) for 'float32', 'folded' or 'bfloat16'."""
  size = SIZES[name]
  dtype = jnp.bfloat16 if kind == "bfloat16" else jnp.float32
  net = get_backbone(name, dtype=dtype)
  x = jnp.asarray(np.random.RandomState(0).rand(batch, size, size, 3), jnp.float32)
  variables = folding.random_statistics(net.init(jax.random.PRNGKey(0), x[:1], train=False))
  apply = lambda v, x: net.apply(v, x.astype(dtype), train=False)
  if kind == "folded":
    variables, paths = folding.fold_batch_norms(apply, variables, x)
    apply = folding.run_folded(apply, paths)
  variables = jax.tree_util.tree_map(lambda a: a.astype(dtype), variables)
  return jax.jit(apply), variables, x


def forward_ms(forward, variables, x, reps: int = 5) -> float:
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
  labels = {"float32": "float32 + BatchNorm", "folded": "float32, BatchNorm folded",
            "bfloat16": "bfloat16 + BatchNorm"}
  print(f"{jax.default_backend()}, batch {args.batch}, evaluation-mode forward (median ms)")
  for name in args.nets.split(","):
    built = {kind: variant(name, args.batch, kind) for kind in labels}
    features = {kind: np.asarray(f(v, x), np.float32) for kind, (f, v, x) in built.items()}
    times = {kind: [] for kind in labels}
    for _ in range(args.rounds):
      for kind, (forward, variables, x) in built.items():
        times[kind].append(forward_ms(forward, variables, x))
    base = np.median(times["float32"])
    scale = np.abs(features["float32"]).max()
    for kind, ts in times.items():
      moved = np.abs(features[kind] - features["float32"]).max() / scale
      print(f"  {name:20s} {labels[kind]:28s} {' '.join(f'{t:6.1f}' for t in ts)}   "
            f"speed-up {base / np.median(ts):4.2f}x   features moved {moved:.1e} of their "
            "largest", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
