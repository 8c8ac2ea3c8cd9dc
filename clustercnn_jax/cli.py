"""What every command-line entry point shares."""

import logging as py_logging
import os

import jax
from absl import flags, logging

flags.DEFINE_string(
    "compilation_cache", "~/.cache/clustercnn_jax/xla",
    "Directory for XLA's persistent compilation cache, so that each fold, split or rerun "
    "does not recompile the same steps; '' turns it off. Used on GPU and TPU; on CPU only "
    "with --compilation_cache_on_cpu.")
flags.DEFINE_bool(
    "compilation_cache_on_cpu", False,
    "Also use the compilation cache on CPU. Off by default: jaxlib's CPU executables can "
    "crash (segfault) when read back from the cache.")


def define_model_flags() -> None:
  """--workdir and --step, for the commands that use a trained model (predict, export);
  defined once per process, so that their modules can define their flags together."""
  if "workdir" not in flags.FLAGS:
    flags.DEFINE_string("workdir", None, "A training workdir (config.json and checkpoints/).")
  if "step" not in flags.FLAGS:
    flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
  flags.mark_flag_as_required("workdir")


def setup_logging() -> None:
  """Short timestamps; orbax's per-save INFO lines hidden (warnings still shown)."""
  logging.set_verbosity(logging.INFO)
  handler = logging.get_absl_handler()
  handler.setFormatter(py_logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
  handler.addFilter(lambda r: r.levelno >= py_logging.WARNING or "/orbax/" not in r.pathname)
  logging.info("JAX %s: process %d of %d, %d local / %d global devices (%s).", jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].platform)


def enable_compilation_cache(path: str, on_cpu: bool = False) -> None:
  """Compiled steps are kept on disk and reused by any later process with the same program.

  Not on CPU unless ``on_cpu``: reading a CPU executable back from the cache
  segfaulted once in our 82-fold FG-NET run (jax 0.10.2; cf. jax-ml/jax#28908).
  """
  if not path:
    return
  if jax.default_backend() == "cpu" and not on_cpu:
    logging.info("Compilation cache off on CPU (--compilation_cache_on_cpu turns it on).")
    return
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def setup() -> None:
  """What every entry point does first, once flags are parsed: logging, compilation cache."""
  setup_logging()
  enable_compilation_cache(flags.FLAGS.compilation_cache, flags.FLAGS.compilation_cache_on_cpu)
