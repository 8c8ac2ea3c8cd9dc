"""A workdir's layout (its config.json and which checkpoint steps it holds) and the lock
that keeps a second run out of it while one writes there.

Kept apart from ``checkpoint`` so that reading a workdir's config and latest step
does not import orbax: ``predict`` serving a saved function starts without it.
"""

import contextlib
import os
import socket
import time
from typing import Iterator, List

import ml_collections

from clustercnn_jax import config_upgrades, files

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".run.lock"


class WorkdirInUse(RuntimeError):
  """Another process is training in this workdir."""


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


@contextlib.contextmanager
def exclusive(workdir: str, enabled: bool = True) -> Iterator[None]:
  """Held while a run writes ``workdir``, so that a second run started there (a relaunch
  while the first still runs) stops with the first's name instead of interleaving
  checkpoints and config.json with it.

  An advisory ``flock`` on ``LOCK_FILE``: the kernel drops it when its process dies, so
  a killed run leaves no stale lock to clear. Local workdirs only: an object store has no
  such lock (pod hosts all write one bucket), and only the chief process takes it. A
  workdir this call created is removed again if nothing but the lock was written.
  """
  if not enabled or files.is_remote(workdir):
    yield
    return
  import fcntl  # POSIX: here, so that reading a workdir imports on any platform

  root = files.path(workdir)
  created = not root.exists()
  files.makedirs(workdir)
  lock_path = os.fspath(root / LOCK_FILE)
  fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another process"
      raise WorkdirInUse(
          f"{workdir} is in use by {holder}: a second run there would overwrite its "
          "checkpoints. Wait for that run to finish or stop it, or pass another "
          "--workdir.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} (started "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)
  finally:
    os.close(fd)  # releases the lock
    if created and os.listdir(root) == [LOCK_FILE]:
      os.remove(lock_path)
      os.rmdir(root)
