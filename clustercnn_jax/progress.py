"""How long work has left, for the logs of long runs."""


def format_seconds(s: float) -> str:
  """3725.2 -> '1:02:05'."""
  s = int(round(s))
  return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
