"""Our pmapped train step (and inference) against a plain PyTorch step of the same network.

  python benchmarks/vs_pytorch.py [--nets=googlenet,efficientnet_lite0,mobilenet_v2]
      [--batch_size=32] [--steps=5] [--depthwise_impl=auto] [--pool_impl=auto]

Both sides: the same backbone (GoogLeNet at 128 px; EfficientNet-Lite0 and
MobileNetV2 at 112 px), the same head (Dense(512) + ReLU + Dense(101): our
``model.cluster.enabled=False`` ablation), the same loss (λ·CE + (1 − λ)·L1 on the
expected age), Adam, batch norm in training mode, no augmentation, no dropout,
random weights. Inference is the forward pass in evaluation mode. It prints
images/s of each side and the ratio JAX ÷ PyTorch, all measured in this run.
``--depthwise_impl=grouped`` times our former depthwise convolutions,
``--pool_impl=xla`` GoogLeNet's former max-pool gradient (select-and-scatter).

PyTorch is an optional benchmark dependency, not a test one:
  pip install torch==2.14.1 torchvision==0.29.1 timm
"""

import argparse
import functools
import importlib.util
import os
import sys
import time

import numpy as np

NETS = {"googlenet": 128, "efficientnet_lite0": 112, "mobilenet_v2": 112}
MAX_AGE = 100
CE_WEIGHT = 0.5


def median_time(fn, steps: int, warmup: int = 1) -> float:
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


# --- PyTorch ----------------------------------------------------------------------------

def torch_backbone(name: str):
  """(module returning pooled features, feature width)."""
  import torch
  import torchvision

  if name == "googlenet":
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True,
                                       transform_input=False)
    net.fc, net.dropout = torch.nn.Identity(), torch.nn.Identity()
    return net, 1024
  if name == "mobilenet_v2":
    net = torchvision.models.mobilenet_v2(weights=None)
    net.classifier = torch.nn.Identity()
    return net, 1280
  if name == "efficientnet_lite0":
    import timm

    return timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0), 1280
  raise ValueError(name)


def torch_rates(name: str, size: int, batch: int, steps: int):
  import torch

  backbone, width = torch_backbone(name)
  model = torch.nn.Sequential(backbone, torch.nn.Linear(width, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, MAX_AGE + 1))
  opt = torch.optim.Adam(model.parameters(), lr=1e-4)
  rng = np.random.default_rng(0)
  x = torch.from_numpy(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
  ages = torch.from_numpy(rng.uniform(1, 80, batch).astype(np.float32))
  grid = torch.arange(MAX_AGE + 1, dtype=torch.float32)

  def train_step():
    model.train()
    logits = model(x)
    ce = torch.nn.functional.cross_entropy(logits, ages.round().long())
    l1 = (torch.softmax(logits, -1) @ grid - ages).abs().mean()
    loss = CE_WEIGHT * ce + (1 - CE_WEIGHT) * l1
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  def infer():
    model.eval()
    with torch.inference_mode():
      model(x)

  return batch / median_time(train_step, steps), batch / median_time(infer, steps)


# --- JAX (this project) -----------------------------------------------------------------

def jax_rates(name: str, size: int, batch: int, steps: int, depthwise_impl: str,
              pool_impl: str = "auto"):
  import jax
  from flax import jax_utils

  from clustercnn_jax import inference, train
  from configs import default

  config = default.get_config()
  config.model.backbone, config.image_size, config.batch_size = name, size, batch
  config.max_age, config.loss.ce_weight, config.loss.sw_sb_weight = MAX_AGE, CE_WEIGHT, 0.0
  config.model.cluster.enabled, config.model.cluster.features = False, 512
  config.model.dropout_rate = 0.0
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  if name != "googlenet":
    config.model.backbone_kwargs.depthwise_impl = depthwise_impl
  else:
    config.model.backbone_kwargs.pool_impl = pool_impl
  model = train.build_model(config)
  p_model = train.build_model(config, axis_name=train.AXIS)
  state = train.create_train_state(jax.random.PRNGKey(0), config, model, 1000)
  n = jax.local_device_count()
  rng = np.random.default_rng(0)
  batch_np = {"images": rng.integers(0, 255, (n, batch // n, size, size, 3), np.uint8),
              "ages": rng.uniform(1, 80, (n, batch // n)).astype(np.float32)}
  batch_dev = jax.pmap(lambda b: b)(batch_np)
  inputs = inference.inputs_for(config)
  p_train = jax.pmap(functools.partial(train.train_step, model=p_model, config=config,
                                       inputs=inputs),
                     axis_name=train.AXIS, donate_argnums=(0,))
  p_eval = jax.pmap(functools.partial(train.eval_step, model=model, config=config,
                                      inputs=inputs),
                    axis_name=train.AXIS)
  holder = {"state": jax_utils.replicate(state)}
  rngs = jax_utils.replicate(jax.random.PRNGKey(0))

  def train_step():
    holder["state"], m = p_train(holder["state"], batch_dev, rngs)
    jax.block_until_ready(m)

  def infer():
    jax.block_until_ready(p_eval(holder["state"], batch_dev))

  return batch / median_time(train_step, steps), batch / median_time(infer, steps)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--nets", default=",".join(NETS))
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--depthwise_impl", default="auto", choices=("auto", "slices", "grouped"))
  p.add_argument("--pool_impl", default="auto", choices=("auto", "slices", "xla"))
  args = p.parse_args()
  missing = [m for m in ("torch", "torchvision", "timm") if importlib.util.find_spec(m) is None]
  if missing:
    print(f"PyTorch side missing ({', '.join(missing)}). Install it in this environment:\n"
          "  pip install torch==2.14.1 torchvision==0.29.1 timm", file=sys.stderr)
    return 2
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  import jax
  import torch

  print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind} x{jax.local_device_count()}; "
        f"PyTorch {torch.__version__} with {torch.get_num_threads()} threads; batch "
        f"{args.batch_size}; depthwise_impl={args.depthwise_impl}, pool_impl={args.pool_impl}")
  print("| network | px | train JAX | train PyTorch | ratio | infer JAX | infer PyTorch | ratio |")
  print("|---|---|---|---|---|---|---|---|")
  for name in args.nets.split(","):
    size = NETS[name]
    jt, ji = jax_rates(name, size, args.batch_size, args.steps, args.depthwise_impl,
                       args.pool_impl)
    tt, ti = torch_rates(name, size, args.batch_size, args.steps)
    print(f"| {name} | {size} | {jt:.1f} img/s | {tt:.1f} img/s | {jt / tt:.2f} | "
          f"{ji:.1f} img/s | {ti:.1f} img/s | {ji / ti:.2f} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
