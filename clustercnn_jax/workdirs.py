"""The names of a workdir's parts, and which checkpoint steps it holds.

Kept apart from ``checkpoint`` so that finding a workdir's latest step does not
import orbax: ``predict`` serving a saved function starts without it.
"""

from typing import List

from clustercnn_jax import files

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def finished_steps(workdir: str) -> List[int]:
  """The steps of the finished checkpoints, oldest first (orbax names a finished step's
  folder by its number; one being written carries a temporary suffix)."""
  d = files.path(workdir) / CHECKPOINT_DIR
  if not d.is_dir():
    return []
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())
