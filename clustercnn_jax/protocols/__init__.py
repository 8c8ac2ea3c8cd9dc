"""Evaluation protocols: each trains and evaluates through train.py, one workdir per run."""

from typing import List


def parse_ranges(spec: str) -> List[int]:
  """'0-4' -> [0, 1, 2, 3, 4]; '1,3-5' -> [1, 3, 4, 5] (sorted, unique)."""
  out = []
  for part in spec.split(","):
    lo, _, hi = part.strip().partition("-")
    out += list(range(int(lo), int(hi or lo) + 1))
  return sorted(set(out))
