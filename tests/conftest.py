"""Shared fixtures: the tiny config (``configs/demo.py:runlocal``) that trains in seconds."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # configs/ is imported as a package, as the CLI does from the repo root
  sys.path.insert(0, ROOT)

RUNLOCAL = "configs/demo.py:runlocal"  # the same tiny config, as a command-line flag


@pytest.fixture
def tiny_config():
  from configs import demo

  return demo.get_config("runlocal")


def cli_flags(overrides):
  """Config overrides as --config.* command-line flags."""
  flags = []
  for key, value in overrides.items():
    if isinstance(value, tuple):
      value = "(" + ",".join(map(str, value)) + ",)"
    flags.append(f"--config.{key}={value}")
  return flags


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  """The tiny config trained once per session (seconds of steps, most of a minute of
  compiling on 2 CPU cores), for the tests that use a trained model."""
  from clustercnn_jax import train
  from configs import demo

  workdir = str(tmp_path_factory.mktemp("tiny_trained"))
  train.train_and_evaluate(demo.get_config("runlocal"), workdir)
  return workdir
