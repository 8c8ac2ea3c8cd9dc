"""XLA:CPU settings against the default, on the train step and forward pass of vs_pytorch.py.

Each setting runs in its own process (XLA reads its flags once), alternating with the
default, and prints images/s of both and their ratio (> 1: the setting is faster),
all measured in this run:

* oneDNN, XNNPACK and YNNPACK: the library paths that jaxlib's XLA:CPU can hand
  convolutions, dots and elementwise fusions to;
* threads: Eigen single-threaded, or the two cores as two devices (``pmap`` then splits
  each batch in two, one core each).

  python benchmarks/xla_flags.py [--nets=efficientnet_lite0] [--settings=NAME,...]
      [--batch_size=32] [--steps=5] [--rounds=1]
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = {
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn_dot_fusion": "--xla_cpu_experimental_onednn_fusion_type=+LIBRARY_FUSION_TYPE_DOT",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "xnn_convolutions": "--xla_cpu_experimental_xnn_fusion_type="
                        "+LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    "xnn_graph_greedy": "--xla_cpu_experimental_xnn_graph_fusion_mode="
                        "XNN_GRAPH_FUSION_MODE_GREEDY",
    "ynn_convolutions": "--xla_cpu_experimental_ynn_fusion_type="
                        "+LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    "ynn_dot_fusions": "--xla_cpu_experimental_ynn_fusion_type=+LIBRARY_FUSION_TYPE_DOT",
    # Elementwise operations fused into YNNPACK's matmuls (a folded BatchNorm's bias add;
    # not ReLU6, which XLA turns into a clamp).
    "ynn_eltwise_fusions": "--xla_cpu_experimental_ynn_fusion_type="
                           "+LIBRARY_FUSION_TYPE_ELTWISE",
    "eigen_one_thread": "--xla_cpu_multi_thread_eigen=false",
    "two_devices": "--xla_force_host_platform_device_count=2",
}
CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import vs_pytorch
print("RATES", json.dumps(vs_pytorch.jax_rates({net!r}, vs_pytorch.NETS[{net!r}], {batch},
                                                {steps}, "auto")))
"""


def rates(net: str, flags: str, batch: int, steps: int):
  """(train img/s, inference img/s) in a fresh process with ``XLA_FLAGS=flags``, or None."""
  env = dict(os.environ, XLA_FLAGS=flags)
  code = CHILD.format(here=HERE, net=net, batch=batch, steps=steps)
  run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(HERE))
  for line in run.stdout.splitlines():
    if line.startswith("RATES "):
      return json.loads(line[len("RATES "):])
  print(f"    {flags or 'default'}: failed (exit {run.returncode}): "
        f"{run.stderr.strip().splitlines()[-1:] or ''}", flush=True)
  return None


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--nets", default="efficientnet_lite0")
  p.add_argument("--settings", default=",".join(SETTINGS))
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--rounds", type=int, default=1)
  args = p.parse_args()
  print(f"batch {args.batch_size}; train and inference img/s, the default beside each setting")
  print("| network | setting | train default | train setting | ratio | infer default | "
        "infer setting | ratio |")
  print("|---|---|---|---|---|---|---|---|")
  for net in args.nets.split(","):
    for name in args.settings.split(","):
      base, other = [], []
      for _ in range(args.rounds):
        base.append(rates(net, "", args.batch_size, args.steps))
        other.append(rates(net, SETTINGS[name], args.batch_size, args.steps))
      base, other = [r for r in base if r], [r for r in other if r]
      if not base or not other:
        continue
      (bt, bi), (ot, oi) = np.median(base, axis=0), np.median(other, axis=0)
      print(f"| {net} | {name} | {bt:.1f} | {ot:.1f} | {ot / bt:.2f} | {bi:.1f} | {oi:.1f} | "
            f"{oi / bi:.2f} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
