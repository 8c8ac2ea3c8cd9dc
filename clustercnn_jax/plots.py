"""Figures the protocols write beside their tables: easier to read than columns of numbers.

Drawn on a bare ``matplotlib.figure.Figure`` (Agg canvas, no pyplot), so no
display is needed and no global backend state is touched.
"""

from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from clustercnn_jax import files, losses


def age_figure(pred: np.ndarray, ages: np.ndarray, path: str, title: Optional[str] = None) -> str:
  """Predicted against true age, the cumulative score CS(θ), and MAE per decade."""
  pred, ages = np.asarray(pred, np.float64), np.asarray(ages, np.float64)
  m = losses.age_metrics(pred, ages)
  fig = Figure(figsize=(13, 4.2), layout="constrained")
  scatter, cs, decades = fig.subplots(1, 3)
  top = max(ages.max(), pred.max()) * 1.05 + 1
  scatter.plot([0, top], [0, top], color="0.6", lw=1)
  scatter.scatter(ages, pred, s=8, alpha=0.4, edgecolors="none")
  scatter.set(xlim=(0, top), ylim=(0, top), xlabel="true age", ylabel="predicted age",
              title=f"{m['num_examples']} faces, MAE {m['mae']:.2f}")
  thetas = [int(t) for t in m["cs"]]
  cs.plot(thetas, list(m["cs"].values()), marker="o")
  cs.set(xlabel="θ (years)", ylabel="CS(θ): share within θ", ylim=(0, 1), xticks=thetas,
         title="cumulative score")
  cs.grid(alpha=0.3)
  names = list(m["mae_by_decade"])
  bars = decades.bar(names, [v["mae"] for v in m["mae_by_decade"].values()])
  decades.bar_label(bars, labels=[f"n={v['count']}" for v in m["mae_by_decade"].values()],
                    fontsize=7)
  decades.set(xlabel="true age", ylabel="MAE (years)", title="MAE per decade")
  decades.tick_params(axis="x", labelrotation=45)
  if title:
    fig.suptitle(title)
  return files.save_figure(fig, path, dpi=110)
