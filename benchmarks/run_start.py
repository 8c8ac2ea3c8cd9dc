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

import functools
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax import train_state  # noqa: E402
from clustercnn_jax.models.model import build_model  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/fgnet.py:frozen", "Config to measure.")
flags.DEFINE_string("child", "", "Internal: time one way in this process.")
WAYS = {"default": "random, default", "level0": "random, level 0", "abstract": "abstract       "}


def time_one(config, way: str) -> float:
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
    variables = jax.block_until_ready(jax.tree_util.tree_map(  # what a checkpoint brings
        lambda s: jnp.zeros(s.shape, s.dtype),
        {"params": shapes.params, "batch_stats": shapes.batch_stats,
         "clusters": shapes.clusters}))
    t0 = time.perf_counter()
    state = train_state.start_from(train_state.abstract_train_state(config, model, 100),
                                   variables)
  jax.block_until_ready(state.params)
  return time.perf_counter() - t0


def main(argv):
  del argv
  if FLAGS.child:
    print(f"{time_one(FLAGS.config, FLAGS.child):.3f}")
    return
  times = {}
  print(f"state of {FLAGS['config'].config_filename}, each in a fresh process:")
  for way, label in WAYS.items():  # the same flags (--config, overrides) for each
    out = subprocess.run([sys.executable, __file__, *sys.argv[1:], f"--child={way}"],
                         capture_output=True, text=True, check=True)
    times[way] = float(out.stdout.strip().splitlines()[-1])
    print(f"  {label}: {times[way]:7.2f} s  ({times['default'] / times[way]:5.1f}x faster "
          "than random, default)")


if __name__ == "__main__":
  app.run(main)
