"""Evaluation protocols: each trains and evaluates through train.py, one workdir per run."""

from typing import Any, Dict, List


def parse_ranges(spec: str) -> List[int]:
  """'0-4' -> [0, 1, 2, 3, 4]; '1,3-5' -> [1, 3, 4, 5] (sorted, unique)."""
  out = []
  for part in spec.split(","):
    lo, _, hi = part.strip().partition("-")
    out += list(range(int(lo), int(hi or lo) + 1))
  return sorted(set(out))


def metric_tables(m: Dict[str, Any]) -> List[str]:
  """Markdown lines: CS(θ) for θ = 0..10, then MAE per age decade."""
  lines = ["| θ | " + " | ".join(str(t) for t in m["cs"]) + " |",
           "|---|" + "---|" * len(m["cs"]),
           "| CS(θ) | " + " | ".join(f"{v:.3f}" for v in m["cs"].values()) + " |", "",
           "| age | count | MAE |", "|---|---|---|"]
  return lines + [f"| {k} | {v['count']} | {v['mae']:.2f} |" for k, v in m["mae_by_decade"].items()]
