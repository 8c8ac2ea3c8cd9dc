"""Command-line entry point.

  python -m clustercnn_jax.main --config=configs/demo.py --workdir=/tmp/demo

Any config field can be overridden, e.g. ``--config.model.num_clusters=3``;
an unknown field is an error. Running again with the same workdir resumes.
"""

import jax
from absl import app, flags
from ml_collections import config_flags

from clustercnn_jax import cli, train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first (TPU pods, "
                  "multi-node GPU); see launch/.")
config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.multihost:
    jax.distributed.initialize()
  cli.setup()
  results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if "test_mae" in results:
    print(f"test MAE {results['test_mae']:.2f} years   "
          f"(always predicting the training mean: {results['mean_baseline_mae']:.2f})")


if __name__ == "__main__":
  app.run(main)
