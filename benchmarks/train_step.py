"""Times the pmapped train step of a backbone on this machine.

  python benchmarks/train_step.py --backbone=googlenet --image_size=128 --batch_size=32

Prints compile time, then the median step time and images/s over --steps
steps (after --warmup), with the cluster module on and off so the module's
own cost shows as a ratio measured in the same run. With --frozen it compares,
for a frozen backbone, the step on images with the step on cached features
(``cache.enabled``):

  python benchmarks/train_step.py --backbone=efficientnet_lite0 --image_size=112 --batch_size=64 --frozen

With --depthwise it compares, for a depthwise backbone, the formulations of
``layers.DepthwiseConv``: XLA's grouped convolution, shifted slices, and 'auto'
(on CPU: per-channel matmuls up to 8x8 feature maps, shifted slices above):

  python benchmarks/train_step.py --backbone=mobilenet_v2 --image_size=112 --batch_size=32 --depthwise

With --pool it compares GoogLeNet's max-pool gradients (``layers.max_pool_ceil``): XLA's
select-and-scatter and the strided slices with a first-maximum mask:

  python benchmarks/train_step.py --backbone=googlenet --image_size=128 --batch_size=32 --pool

--train_from=BLOCK times partial fine-tuning: the step on cached activations of the
blocks before BLOCK (``model.train_from``, as configs/utkface.py:partial trains):

  python benchmarks/train_step.py --backbone=efficientnet_lite0 --image_size=112 --batch_size=64 --train_from=_blocks_12 --depthwise
"""

import argparse
import functools
import os
import sys
import time

import jax
import numpy as np
from flax import jax_utils

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax import inference, train  # noqa: E402
from configs import default  # noqa: E402


def time_step(config, steps, warmup):
  model = train.build_model(config)
  p_model = train.build_model(config, axis_name=train.AXIS)
  state = train.create_train_state(jax.random.PRNGKey(0), config, model, 1000)
  if config.model.cluster.enabled:
    clusters = state.clusters
    clusters["cluster"]["centroids"] = jax.random.normal(jax.random.PRNGKey(1),
                                                         clusters["cluster"]["centroids"].shape)
  n = jax.local_device_count()
  step = jax.pmap(functools.partial(train.train_step, model=p_model, config=config,
                                    inputs=inference.inputs_for(config)),
                  axis_name=train.AXIS, donate_argnums=(0,))
  rng = np.random.default_rng(0)
  s, b = config.image_size, config.batch_size // n
  if config.model.train_from:  # one cached view of the frozen blocks' output per example
    shape = jax.eval_shape(lambda x: model.apply(
        {"params": state.params, "batch_stats": state.batch_stats}, x,
        method=type(model).frozen_part), jax.ShapeDtypeStruct((1, s, s, 3), np.float32)).shape
    images = rng.normal(size=(n, b, 1) + shape[1:]).astype(np.float32)
  elif config.cache.enabled:  # one cached view of D features per example
    d = state.clusters["cluster"]["centroids"].shape[1]  # (k, D) centroids
    images = rng.normal(size=(n, b, 1, d)).astype(np.float32)
  else:
    images = rng.integers(0, 255, (n, b, s, s, 3), np.uint8)
  batch = {"images": images,
           "ages": rng.uniform(1, 80, (n, config.batch_size // n)).astype(np.float32)}
  batch = jax.pmap(lambda b: b)(batch)  # on the devices once: time the step, not the copy
  state, rngs = jax_utils.replicate(state), jax_utils.replicate(jax.random.PRNGKey(0))
  t0 = time.perf_counter()
  state, m = step(state, batch, rngs)
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  for _ in range(warmup):
    state, m = step(state, batch, rngs)
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, m = step(state, batch, rngs)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  return compile_s, float(np.median(times))


def compare(config, args, field, labels):
  """Median step time for each value of ``config.<field>`` (a dict value -> label), a
  dotted field ('model.backbone_kwargs.depthwise_impl')."""
  times = {}
  *path, leaf = field.split(".")
  node = config
  for p in path:
    node = node[p]
  for value, label in labels.items():
    node[leaf] = value
    compile_s, times[value] = time_step(config, args.steps, args.warmup)
    print(f"  {label}: compile {compile_s:6.1f}s  step {times[value] * 1e3:8.1f} ms  "
          f"{args.batch_size / times[value]:8.1f} img/s")
  return times


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--backbone", default="googlenet")
  p.add_argument("--image_size", type=int, default=128)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--depth", type=float, default=None, help="GoogLeNet depth (0.5 = half)")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--warmup", type=int, default=1)
  p.add_argument("--bfloat16", action="store_true")
  p.add_argument("--frozen", action="store_true",
                 help="frozen backbone: step on images vs step on cached features")
  p.add_argument("--depthwise", action="store_true",
                 help="depthwise convolutions: grouped convolution, shifted slices, auto")
  p.add_argument("--skip_grouped", action="store_true",
                 help="with --depthwise: leave out the (slow on CPU) grouped convolution")
  p.add_argument("--pool", action="store_true",
                 help="GoogLeNet's max-pool gradient: select-and-scatter vs strided slices")
  p.add_argument("--train_from", default="",
                 help="partial fine-tuning from this block, on cached activations")
  args = p.parse_args()
  config = default.get_config()
  config.model.backbone = args.backbone
  if args.depth is not None:
    config.model.backbone_kwargs.depth = args.depth
  config.image_size, config.batch_size = args.image_size, args.batch_size
  config.model.half_precision = args.bfloat16
  if args.train_from:
    config.model.train_from, config.cache.enabled = args.train_from, True
  print(f"{jax.devices()[0].device_kind} x{jax.local_device_count()}, {args.backbone}, "
        f"{args.image_size}px, batch {args.batch_size}, {'bf16' if args.bfloat16 else 'f32'}"
        + (f", trained from {args.train_from} on cached activations" if args.train_from else ""))
  if args.pool:
    t = compare(config, args, "model.backbone_kwargs.pool_impl",
                {"xla": "select-and-scatter", "slices": "strided slices    "})
    print(f"  speed-up of strided slices over select-and-scatter: {t['xla'] / t['slices']:.2f}x")
  elif args.depthwise:
    labels = {"grouped": "grouped convolution", "slices": "shifted slices     ",
              "auto": "auto (matmul <= 8x8)"}
    if args.skip_grouped:
      del labels["grouped"]
    t = compare(config, args, "model.backbone_kwargs.depthwise_impl", labels)
    if "grouped" in t:
      print(f"  speed-up of shifted slices over grouped: {t['grouped'] / t['slices']:.2f}x")
    print(f"  speed-up of auto over shifted slices: {t['slices'] / t['auto']:.2f}x")
  elif args.frozen:
    config.model.freeze_backbone = True
    t = compare(config, args, "cache.enabled", {False: "images         ",
                                                   True: "cached features"})
    print(f"  speed-up of cached features: {t[False] / t[True]:.1f}x")
  else:
    t = compare(config, args, "model.cluster.enabled", {True: "cluster module on ",
                                              False: "cluster module off"})
    print(f"  step time ratio, cluster on / off: {t[True] / t[False]:.3f}")

if __name__ == "__main__":
  main()
