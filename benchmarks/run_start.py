"""Times what a run spends building its training state before the first step.

  python benchmarks/run_start.py [--config=configs/fgnet.py:frozen]

Three ways, each in a fresh process (nothing compiled beforehand), in one run:
  random, default    jax.jit(model.init) at XLA's default optimisation, then the state
  random, level 0    create_train_state: the same draws compiled at optimisation level 0
                     on CPU (a fresh run from ImageNet weights)
  abstract           abstract_train_state + start_from: a resumed run or ``init_from``
                     (a LOPO fold from a trained model), nothing drawn
and prints each time and its ratio to the first.
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(config_arg: str, way: str) -> None:
  import functools

  import jax
  import jax.numpy as jnp
  from ml_collections import config_flags  # noqa: F401  (config files import it)

  sys.path.insert(0, ROOT)
  from clustercnn_jax import train_state
  from clustercnn_jax.models.model import build_model

  path, _, arg = config_arg.partition(":")
  namespace = {}
  exec(compile(open(os.path.join(ROOT, path)).read(), path, "exec"), namespace)
  config = namespace["get_config"](arg or None)
  config.pretrained = ""  # time the state, not reading a weights file
  model = build_model(config)
  rng = jax.random.PRNGKey(0)
  t0 = time.perf_counter()
  if way == "default":
    init = jax.jit(functools.partial(model.init, train=False))
    variables = init(*train_state._init_args(rng, config))
    state = train_state._state(config, model, dict(variables), 100)
  elif way == "level0":
    state = train_state.create_train_state(rng, config, model, 100)
  else:
    shapes = train_state.abstract_train_state(config, model, 100)
    variables = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                       {"params": shapes.params,
                                        "batch_stats": shapes.batch_stats,
                                        "clusters": shapes.clusters})
    variables = jax.block_until_ready(variables)  # what a checkpoint would bring
    t0 = time.perf_counter()
    state = train_state.start_from(train_state.abstract_train_state(config, model, 100),
                                   variables)
  jax.block_until_ready(state.params)
  print(f"{time.perf_counter() - t0:.3f}")


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="configs/fgnet.py:frozen")
  p.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(args.config, args.child)
  labels = {"default": "random, default", "level0": "random, level 0",
            "abstract": "abstract       "}
  times = {}
  print(f"state of {args.config}, each in a fresh process:")
  for way, label in labels.items():
    out = subprocess.run([sys.executable, __file__, f"--config={args.config}",
                          f"--child={way}"], capture_output=True, text=True, check=True)
    times[way] = float(out.stdout.strip().splitlines()[-1])
    print(f"  {label}: {times[way]:7.2f} s  ({times['default'] / times[way]:5.1f}x faster "
          "than random, default)")


if __name__ == "__main__":
  main()
