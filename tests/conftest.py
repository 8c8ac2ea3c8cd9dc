"""Shared fixtures: a tiny config that trains in seconds on a CPU."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # configs/ is imported as a package, as the CLI does from the repo root
  sys.path.insert(0, ROOT)


def tiny_overrides():
  """Overrides of configs/demo.py for a model and data set small enough for unit tests."""
  return {
      "image_size": 32,
      "synthetic.num_train": 256,
      "synthetic.num_test": 64,
      "model.backbone_kwargs.widths": (8, 16),
      "model.cluster_features": 16,
      "model.num_clusters": 3,
      "kmeans_examples": 64,
      "batch_size": 32,
      "num_train_steps": 6,
      "warmup_steps": 2,
      "log_every_steps": 1,
      "checkpoint_every_steps": 1000,
  }


def apply_overrides(config, overrides):
  for key, value in overrides.items():
    node = config
    *path, leaf = key.split(".")
    for p in path:
      node = node[p]
    node[leaf] = value
  return config


@pytest.fixture
def tiny_config():
  from configs import demo

  return apply_overrides(demo.get_config(), tiny_overrides())


def cli_flags(overrides):
  """The same overrides as --config.* command-line flags."""
  flags = []
  for key, value in overrides.items():
    if isinstance(value, tuple):
      value = "(" + ",".join(map(str, value)) + ",)"
    flags.append(f"--config.{key}={value}")
  return flags
