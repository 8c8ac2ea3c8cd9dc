"""The files a finished run leaves in its workdir besides checkpoints and logs.

  results.json       test MAE, the mean-predictor baseline, CS(0..10), cluster counts
  predictions.npz    ages, predictions and person ids of the test set (what protocols pool)
"""

import json
import os
from typing import Any, Dict

import numpy as np

from clustercnn_jax.data.dataset import ArrayDataset

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.npz"


def save_json(workdir: str, name: str, obj: Any) -> None:
  with open(os.path.join(workdir, name), "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)


def write(workdir: str, results: Dict[str, Any], test_ds: ArrayDataset,
          predictions: np.ndarray) -> None:
  np.savez(os.path.join(workdir, PREDICTIONS_FILE), ages=test_ds.ages, predictions=predictions,
           person_ids=test_ds.person_ids if test_ds.person_ids is not None else [])
  save_json(workdir, RESULTS_FILE, results)
