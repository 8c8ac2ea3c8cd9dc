"""The files a finished run leaves in its workdir besides checkpoints and logs.

  results.json       test MAE, the mean-predictor baseline, CS(0..10), cluster counts
  predictions.npz    ages, predictions and person ids of the test set (what protocols pool),
                     and with the cluster module each example's cluster
"""

from typing import Any, Dict, Optional

import numpy as np

from clustercnn_jax import files
from clustercnn_jax.data.dataset import ArrayDataset

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.npz"


def save_json(workdir: str, name: str, obj: Any) -> None:
  files.write_json(files.join(workdir, name), obj)


def write(workdir: str, results: Dict[str, Any], test_ds: ArrayDataset,
          predictions: np.ndarray, clusters: Optional[np.ndarray] = None) -> None:
  extra = {} if clusters is None else {"clusters": clusters}
  files.save_npz(files.join(workdir, PREDICTIONS_FILE), ages=test_ds.ages,
                 predictions=predictions,
                 person_ids=test_ds.person_ids if test_ds.person_ids is not None else [],
                 **extra)
  save_json(workdir, RESULTS_FILE, results)


def has_predictions(run_dir: str) -> bool:
  """Whether ``run_dir`` holds a finished run's predictions (protocols skip it)."""
  return files.exists(files.join(run_dir, PREDICTIONS_FILE))


def load_predictions(run_dir_or_file: str) -> Dict[str, np.ndarray]:
  """ages, predictions and person_ids of a finished run (its directory or its .npz)."""
  p = run_dir_or_file
  if not p.endswith(".npz"):
    p = files.join(p, PREDICTIONS_FILE)
  return files.load_npz(p)
