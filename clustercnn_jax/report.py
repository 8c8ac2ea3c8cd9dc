"""A trained model's evaluation as files a reader opens: tables, figures and what each
cluster groups.

  report/summary.md          MAE, CS(θ), MAE per decade, the mean predictor, the figures
  report/metrics.json        the same numbers
  report/predictions.npz     ages and predictions per face (protocols.compare pairs reports)
  report/ages.png            predicted against true age, CS(θ), MAE per decade
  report/clusters_by_age.png which cluster each age band is assigned to
  report/cluster_montage.png per cluster: the faces nearest its centroid, a random sample
                             of its members, and their ages

Figures are drawn on bare matplotlib Figures (no pyplot state), as in plots.py.
"""

import os
from typing import Any, Dict, List, Optional

import numpy as np
from matplotlib.figure import Figure

from clustercnn_jax import files, losses, plots
from clustercnn_jax.protocols import metric_tables
from clustercnn_jax.results import PREDICTIONS_FILE


def metrics(pred: np.ndarray, ages: np.ndarray) -> Dict[str, Any]:
  """``losses.age_metrics`` plus the MAE of always predicting these faces' mean age."""
  m = losses.age_metrics(pred, ages)
  m["mean_predictor_mae"] = losses.mae(np.full(len(ages), float(np.mean(ages))), ages)
  return m


def clusters_by_age(assign: np.ndarray, ages: np.ndarray, num_clusters: int, path: str) -> str:
  """Stacked shares of each cluster per age decade: does a cluster hold an age band?"""
  decades = (np.asarray(ages) // 10).astype(int)
  names = sorted(set(decades))
  counts = np.array([[np.sum((decades == d) & (assign == c)) for d in names]
                     for c in range(num_clusters)], np.float64)
  share = counts / np.maximum(counts.sum(0, keepdims=True), 1)
  fig = Figure(figsize=(8, 4), layout="constrained")
  ax = fig.subplots()
  labels = [f"{10 * d}-{10 * d + 9}" for d in names]
  bottom = np.zeros(len(names))
  for c in range(num_clusters):
    ax.bar(labels, share[c], bottom=bottom, label=f"cluster {c} (n={int(counts[c].sum())})")
    bottom += share[c]
  ax.set(xlabel="true age", ylabel="share of faces", ylim=(0, 1),
         title="cluster assignment (nearest centroid) by age")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  return files.save_figure(fig, path, dpi=110)


def cluster_montage(faces: np.ndarray, ages: np.ndarray, assign: np.ndarray,
                    distance: np.ndarray, num_clusters: int, path: str, per_row: int = 8,
                    seed: int = 0) -> str:
  """Per cluster, one row: the ``per_row`` faces nearest its centroid, ``per_row`` random
  members, and the histogram of its members' ages."""
  rng = np.random.default_rng(seed)
  fig = Figure(figsize=(2 * per_row * 0.9 + 3.5, 1.15 * num_clusters + 0.6), layout="constrained")
  grid = fig.add_gridspec(num_clusters, 2 * per_row + 4)
  top = max(float(np.max(ages)), 1.0)
  for c in range(num_clusters):
    members = np.flatnonzero(assign == c)
    nearest = members[np.argsort(distance[members])][:per_row]
    sample = rng.choice(members, min(per_row, len(members)), replace=False) if len(members) else []
    for j, (kind, idx) in enumerate([("nearest", i) for i in nearest] +
                                    [("random", i) for i in sample]):
      col = j if kind == "nearest" else per_row + (j - len(nearest))
      ax = fig.add_subplot(grid[c, col])
      ax.imshow(faces[idx])
      ax.set_axis_off()
      ax.set_title(f"{ages[idx]:.0f}", fontsize=6, pad=1)
    hist = fig.add_subplot(grid[c, 2 * per_row:])
    hist.hist(ages[members], bins=np.arange(0, top + 6, 5))
    hist.set_title(f"cluster {c}: {len(members)} faces, median age "
                   f"{np.median(ages[members]) if len(members) else float('nan'):.0f}",
                   fontsize=7)
    hist.tick_params(labelsize=6)
  fig.suptitle(f"each row: {per_row} faces nearest the centroid | {per_row} random members | "
               "ages of all members (titles: true age)", fontsize=8)
  return files.save_figure(fig, path, dpi=100)


def write(out_dir: str, pred: np.ndarray, ages: np.ndarray, title: str,
          faces: Optional[np.ndarray] = None, assign: Optional[np.ndarray] = None,
          distance: Optional[np.ndarray] = None, num_clusters: int = 0,
          extra: Optional[Dict[str, Any]] = None,
          person_ids: Optional[np.ndarray] = None) -> List[str]:
  """Writes the report; returns the files written. Cluster figures need ``assign`` (and
  the montage ``faces`` and ``distance`` to the assigned centroid); ``person_ids`` let
  ``protocols.compare`` resample people instead of faces."""
  files.makedirs(out_dir)
  pred, ages = np.asarray(pred, np.float64), np.asarray(ages, np.float64)
  m = {**metrics(pred, ages), **(extra or {})}
  figures = [plots.age_figure(pred, ages, files.join(out_dir, "ages.png"), title)]
  if assign is not None:
    m["cluster_counts"] = np.bincount(assign, minlength=num_clusters).tolist()
    figures.append(clusters_by_age(assign, ages, num_clusters,
                                   files.join(out_dir, "clusters_by_age.png")))
    if faces is not None and distance is not None:
      figures.append(cluster_montage(faces, ages, assign, distance, num_clusters,
                                     files.join(out_dir, "cluster_montage.png")))
  files.write_json(files.join(out_dir, "metrics.json"), m)
  # As a training run's: protocols.compare pairs two reports on the same faces.
  files.save_npz(files.join(out_dir, PREDICTIONS_FILE), ages=ages, predictions=pred,
                 person_ids=[] if person_ids is None else np.asarray(person_ids))
  lines = [f"# {title}", "",
           f"MAE over {m['num_examples']} faces: **{m['mae']:.2f}** years (always predicting "
           f"their mean age: {m['mean_predictor_mae']:.2f})", "", *metric_tables(m), ""]
  lines += [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in figures]
  files.write_text(files.join(out_dir, "summary.md"), "\n".join(lines) + "\n")
  return [files.join(out_dir, "summary.md"), files.join(out_dir, "metrics.json"),
          files.join(out_dir, PREDICTIONS_FILE)] + figures
