"""What every command-line entry point shares."""

import logging as py_logging

import jax
from absl import logging


def setup_logging() -> None:
  """Short timestamps; orbax's per-save INFO lines hidden (warnings still shown)."""
  logging.set_verbosity(logging.INFO)
  handler = logging.get_absl_handler()
  handler.setFormatter(py_logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
  handler.addFilter(lambda r: r.levelno >= py_logging.WARNING or "/orbax/" not in r.pathname)
  logging.info("JAX %s: process %d of %d, %d local / %d global devices (%s).", jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].platform)
