"""Command-line entry point.

  python -m clustercnn_jax.main --config=configs/demo.py --workdir=/tmp/demo

Any config field can be overridden, e.g. ``--config.model.cluster.num_clusters=3``;
an unknown field is an error. Running again with the same workdir resumes.
Several processes (pod hosts, GPU machines) run the same command with
``--multihost``; see launch/ and docs/pods.md.
"""

import jax
from absl import app, flags
from ml_collections import config_flags

from clustercnn_jax import cli, train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first (TPU pods, "
                  "multi-node GPU); see launch/.")
flags.DEFINE_string("coordinator_address", None, "With --multihost: process 0's host:port. "
                    "Unset on TPU pods and SLURM, where JAX finds it itself.")
flags.DEFINE_integer("num_processes", None, "With --multihost: how many processes in all.")
flags.DEFINE_integer("process_id", None, "With --multihost: this process's index, 0..n-1.")
config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])
flags.adopt_module_key_flags(cli)  # --compilation_cache, --verbose: in --help too


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.multihost:
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes,
                               process_id=FLAGS.process_id)
  elif FLAGS.coordinator_address or FLAGS.num_processes or FLAGS.process_id is not None:
    raise app.UsageError("--coordinator_address, --num_processes and --process_id need "
                         "--multihost.")
  cli.setup()
  results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if "test_mae" in results:
    print(f"test MAE {results['test_mae']:.2f} years   "
          f"(always predicting the training mean: {results['mean_baseline_mae']:.2f})")
  if results.get("fold"):  # one person's faces: not the protocol's MAE
    print(f"This is {results['fold']}.")


if __name__ == "__main__":
  cli.run(main, help_extra=cli.config_list)
