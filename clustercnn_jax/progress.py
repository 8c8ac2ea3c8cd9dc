"""How long work has left, for the logs of long runs."""


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
