"""Where a train step's time goes: XLA's own per-operation profile, summarised.

  python benchmarks/profile_step.py --backbone=googlenet --image_size=128 --batch_size=32
  python benchmarks/profile_step.py --backbone=efficientnet_lite0 --image_size=112 --inference

Traces --steps steps with ``jax.profiler`` (a Perfetto trace, kept in --trace_dir
for Perfetto or TensorBoard), then reads back the time of every operation XLA ran
and joins it with the compiled HLO: what the operation computes (convolution,
matmul, reduction, elementwise/copy), whether it belongs to the forward or the
backward pass, and the JAX operation it came from. It prints the share of the
step per kind, then the most expensive operations.
"""

import argparse
import collections
import functools
import glob
import gzip
import json
import os
import re
import sys
import tempfile

import jax
import numpy as np
from flax import jax_utils

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax import inference, train  # noqa: E402
from configs import default  # noqa: E402

INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = ")
CALLS = re.compile(r"calls=%([\w.\-]+)")
COMPUTATION = re.compile(r"^%([\w.\-]+) .*\{$")
OP_NAME = re.compile(r'op_name="([^"]*)"')


def hlo_table(hlo_text: str):
  """Instruction name -> (kind, pass, jax op name) from compiled HLO text."""
  bodies, current = collections.defaultdict(list), None
  entry = []
  for line in hlo_text.splitlines():
    m = COMPUTATION.match(line)
    if m:
      current = m.group(1)
      continue
    if line.startswith("ENTRY"):
      current = "__entry__"
      continue
    if current:
      bodies[current].append(line)
      if current == "__entry__":
        entry.append(line)
  table = {}
  for comp_lines in bodies.values():
    for line in comp_lines:
      m = INSTRUCTION.match(line)
      if not m:
        continue
      name = m.group(1)
      called = CALLS.search(line)
      called = called.group(1) if called else None
      text = "\n".join(bodies.get(called, [])) if called else line
      if " convolution(" in text:
        kind = "convolution"
      elif " dot(" in text:
        kind = "matmul"
      elif " reduce(" in text or " reduce-window(" in text:
        kind = "reduction"
      elif " all-reduce(" in text or " all-gather(" in text:
        kind = "collective"
      else:
        kind = "elementwise/copy"
      op = OP_NAME.search(line) or OP_NAME.search(text)
      op = op.group(1) if op else ""
      phase = "backward" if "transpose(" in op else "forward"
      table[name] = (kind, phase, op)
  return table


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--backbone", default="googlenet")
  p.add_argument("--image_size", type=int, default=128)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--train_from", default="", help="partial fine-tuning from this block")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--top", type=int, default=15)
  p.add_argument("--trace_dir", default="")
  p.add_argument("--augment", action="store_true",
                 help="keep the default augmentation (off by default, as in vs_pytorch.py)")
  p.add_argument("--inference", action="store_true",
                 help="the evaluation forward pass instead of the train step")
  args = p.parse_args()
  config = default.get_config()
  config.model.backbone = args.backbone
  config.model.cluster.enabled = False  # the network itself, as benchmarks/vs_pytorch.py times it
  config.image_size, config.batch_size = args.image_size, args.batch_size
  if not args.augment:
    config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  if args.train_from:
    config.model.train_from, config.cache.enabled = args.train_from, True

  model = train.build_model(config)
  p_model = train.build_model(config, axis_name=train.AXIS)
  state = train.create_train_state(jax.random.PRNGKey(0), config, model, 1000)
  rng = np.random.default_rng(0)
  s, b = config.image_size, config.batch_size
  if args.train_from:
    shape = jax.eval_shape(lambda x: model.apply(
        {"params": state.params, "batch_stats": state.batch_stats}, x,
        method=type(model).frozen_part), jax.ShapeDtypeStruct((1, s, s, 3), np.float32)).shape
    images = rng.normal(size=(1, b, 1) + shape[1:]).astype(np.float32)
  else:
    images = rng.integers(0, 255, (1, b, s, s, 3), np.uint8)
  batch = jax.pmap(lambda x: x)({"images": images,
                                  "ages": rng.uniform(1, 80, (1, b)).astype(np.float32)})
  inputs = inference.inputs_for(config)
  if args.inference:
    forward = jax.pmap(functools.partial(train.eval_step, model=model, config=config,
                                         inputs=inputs), axis_name=train.AXIS)

    def step(state, batch, rngs):
      return state, forward(state, batch)

    lowered = forward.lower
  else:
    step = jax.pmap(functools.partial(train.train_step, model=p_model, config=config,
                                      inputs=inputs),
                    axis_name=train.AXIS, donate_argnums=(0,))
    lowered = step.lower
  state, rngs = jax_utils.replicate(state), jax_utils.replicate(jax.random.PRNGKey(0))
  hlo = (lowered(state, batch) if args.inference else lowered(state, batch, rngs)
         ).compile().as_text()
  table = hlo_table(hlo)
  state, m = step(state, batch, rngs)  # compile and warm up
  state, m = step(state, batch, rngs)
  jax.block_until_ready(m)

  trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="profile_step_")
  jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
  for _ in range(args.steps):
    state, m = step(state, batch, rngs)
    jax.block_until_ready(m)
  jax.profiler.stop_trace()
  (path,) = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[-1:]
  with gzip.open(path) as f:
    events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
  per_op = collections.Counter()
  for e in events:
    if e["name"] in table:
      per_op[e["name"]] += e.get("dur", 0.0) / 1e3 / args.steps  # ms per step
  total = sum(per_op.values())
  print(f"{args.backbone}, {args.image_size}px, batch {args.batch_size}"
        + (", inference" if args.inference else "")
        + (", augmented" if args.augment else "")
        + (f", trained from {args.train_from}" if args.train_from else "")
        + f": {total:.0f} ms of XLA operations per step ({len(per_op)} operations); "
        f"trace in {trace_dir}")
  by_kind = collections.Counter()
  for name, ms in per_op.items():
    kind, phase, _ = table[name]
    by_kind[(kind, phase)] += ms
  print("\n| kind | pass | ms per step | share |\n| --- | --- | --- | --- |")
  for (kind, phase), ms in by_kind.most_common():
    print(f"| {kind} | {phase} | {ms:.1f} | {ms / total:.1%} |")
  # The memory-bound passes, by the layer and JAX operation they come from (BatchNorm's
  # subtract, a pool's select, a kernel gradient's slice copies, ...).
  by_source = collections.Counter()
  for name, ms in per_op.items():
    kind, phase, op = table[name]
    if kind == "elementwise/copy":
      layer = next((f"{k}/" for k in ("bn", "conv", "fc", "head") if f"/{k}/" in op), "")
      by_source[(phase, layer + op.rsplit("/", 1)[-1])] += ms
  print("\n| elementwise/copy from | pass | ms per step | share |\n| --- | --- | --- | --- |")
  for (phase, source), ms in by_source.most_common(args.top):
    print(f"| {source} | {phase} | {ms:.1f} | {ms / total:.1%} |")
  print("\n| operation | kind | pass | ms | share | from |\n| --- | --- | --- | --- | --- | --- |")
  for name, ms in per_op.most_common(args.top):
    kind, phase, op = table[name]
    print(f"| {name} | {kind} | {phase} | {ms:.1f} | {ms / total:.1%} | {op[-70:]} |")


if __name__ == "__main__":
  main()
