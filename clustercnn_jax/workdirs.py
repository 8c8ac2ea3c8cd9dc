"""A workdir's layout: its config.json and which checkpoint steps it holds.

Kept apart from ``checkpoint`` so that reading a workdir's config and latest step
does not import orbax: ``predict`` serving a saved function starts without it.
"""

from typing import List

import ml_collections

from clustercnn_jax import config_upgrades, files

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def finished_steps(workdir: str) -> List[int]:
  """The steps of the finished checkpoints, oldest first (orbax names a finished step's
  folder by its number; one being written carries a temporary suffix)."""
  d = files.path(workdir) / CHECKPOINT_DIR
  if not d.is_dir():
    return []
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())


def save_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Written whole (a temporary file renamed onto config.json): never half a config."""
  files.makedirs(workdir)
  files.write_text(files.join(workdir, CONFIG_FILE),
                   config.to_json_best_effort(indent=2, sort_keys=True))


def has_config(workdir: str) -> bool:
  return files.exists(files.join(workdir, CONFIG_FILE))


def load_config(workdir: str, upgrade: bool = True) -> ml_collections.ConfigDict:
  """The workdir's config.json, with the fields added since filled by their former
  behaviour (``config_upgrades``) unless ``upgrade`` is false."""
  path = files.join(workdir, CONFIG_FILE)
  if not files.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir!r} a clustercnn_jax workdir?")
  config = ml_collections.ConfigDict(files.read_json(path))
  return config_upgrades.upgrade(config) if upgrade else config
