"""Does the input pipeline keep up with training? Images/s of each alone, in one run.

  python benchmarks/input_pipeline.py --config=configs/fgnet.py \\
      --config.data.manual_dir=../shared/data/fgnet --config.data.data_dir=/tmp/tfds

Pipeline alone: host batching (uint8) + transfer + the jitted on-device
augmentation (scale jitter, flip, colour; dm-pix), the work the training loop
does per step before the model. Train step alone: the pmapped step on a batch
already on the device. Prints both and their ratio (> 1: the pipeline is faster).
"""

import functools
import os
import sys
import time

import jax
from absl import app, flags
from flax import jax_utils
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax import data, inference, train  # noqa: E402
from clustercnn_jax.data import pipeline  # noqa: E402
from clustercnn_jax.data.preprocess import preprocess_for  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/fgnet.py", "Config to measure.")
flags.DEFINE_integer("steps", 10, "Timed steps of each.")


def main(argv):
  del argv
  config = FLAGS.config
  n = jax.local_device_count()
  t0 = time.perf_counter()
  train_ds, _ = data.load(config)
  print(f"{config.data.name}: {len(train_ds)} training images {train_ds.images.shape[1:]} "
        f"loaded in {time.perf_counter() - t0:.1f}s; {jax.devices()[0].device_kind} x{n}, "
        f"batch {config.batch_size}, {config.model.backbone} at {config.image_size}px")

  augment = jax.pmap(lambda im, rng: preprocess_for(
      config, im, rng, True, example_offset=jax.lax.axis_index("batch") * im.shape[0]),
      axis_name="batch")
  rngs = jax_utils.replicate(jax.random.PRNGKey(0))
  host = pipeline.GrainBatches(pipeline.train_loader(
      train_ds, config.batch_size, n, config.seed, config.grain_workers))
  batches = jax_utils.prefetch_to_device(host, 2)
  jax.block_until_ready(augment(next(batches)["images"], rngs))  # compile
  t0 = time.perf_counter()
  for _ in range(FLAGS.steps):
    out = augment(next(batches)["images"], rngs)
  jax.block_until_ready(out)
  pipe = FLAGS.steps * config.batch_size / (time.perf_counter() - t0)

  model, p_model = train.build_model(config), train.build_model(config, axis_name=train.AXIS)
  state = jax_utils.replicate(train.create_train_state(jax.random.PRNGKey(0), config, model, 100))
  step = jax.pmap(functools.partial(train.train_step, model=p_model, config=config,
                                    inputs=inference.inputs_for(config)),
                  axis_name=train.AXIS, donate_argnums=(0,))
  batch = next(batches)
  state, m = step(state, batch, rngs)  # compile
  jax.block_until_ready(m)
  t0 = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, m = step(state, batch, rngs)
  jax.block_until_ready(m)
  step_rate = FLAGS.steps * config.batch_size / (time.perf_counter() - t0)
  print(f"  input pipeline alone ({config.grain_workers} grain workers): {pipe:9.1f} images/s")
  print(f"  train step alone:     {step_rate:9.1f} images/s (includes its own augmentation)")
  print(f"  ratio pipeline / train step: {pipe / step_rate:.1f}")


if __name__ == "__main__":
  app.run(main)
