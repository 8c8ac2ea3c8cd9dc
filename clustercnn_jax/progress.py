"""How long work has left and the memory it holds, for the logs of long runs."""

import ctypes
import ctypes.util
import gc


def format_seconds(s: float) -> str:
  """3725.2 -> '1:02:05'."""
  s = int(round(s))
  return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def resident_mb() -> float:
  """This process's resident memory in MiB (Linux /proc; peak RSS elsewhere): protocols log
  it after every run so that growth across folds shows."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmRSS:"):
          return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  import resource
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def release_memory() -> None:
  """Hands the heap freed since the last call back to the operating system.

  glibc keeps freed memory in its arenas, so a process that trains run after run
  (82 folds) keeps each run's peak resident; collecting cycles, then
  ``malloc_trim(0)``, returns it. A no-op where there is no glibc.
  """
  gc.collect()
  name = ctypes.util.find_library("c")
  if name is None:
    return
  try:
    trim = ctypes.CDLL(name).malloc_trim
  except (OSError, AttributeError):  # not glibc (musl, macOS)
    return
  trim(0)
