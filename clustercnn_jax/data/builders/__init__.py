"""TFDS builders for the real face-age datasets, and loading them into memory.

  from clustercnn_jax.data import builders
  ds, report = builders.load("fgnet", "crop72", data_dir="~/tensorflow_datasets",
                             manual_dir="/data/fgnet")
"""

import json
import os
from typing import Dict, Optional, Tuple

import numpy as np

from clustercnn_jax.data import images
from clustercnn_jax.data.builders import common
from clustercnn_jax.data.builders.fgnet import Fgnet
from clustercnn_jax.data.builders.morph import FaceAgeFolder, Morph2
from clustercnn_jax.data.builders.utkface import Utkface
from clustercnn_jax.data.dataset import ArrayDataset

BUILDERS = {"fgnet": Fgnet, "morph2": Morph2, "utkface": Utkface,
            "face_age_folder": FaceAgeFolder}


def load(name: str, config_name: "str | common.CropConfig", data_dir: str, manual_dir: str = "",
         split: str = "train", **builder_kwargs) -> Tuple[ArrayDataset, Optional[Dict]]:
  """Builds if needed, then decodes a split into memory (loose crops, uint8).

  Returns the dataset, ordered by file name, and the build report (if the
  build wrote one).
  """
  if name not in BUILDERS:
    raise ValueError(f"Unknown dataset {name!r}; builders: {sorted(BUILDERS)}.")
  data_dir = os.path.expanduser(data_dir or os.path.join("~", "tensorflow_datasets"))
  builder = common.build(BUILDERS[name], config_name, data_dir, manual_dir, **builder_kwargs)
  source = builder.as_data_source(split=split)
  records = sorted((source[i] for i in range(len(source))),
                   key=lambda r: r["file_name"])
  ds = ArrayDataset(np.stack([images.decode(r["image"]) for r in records]),
                    np.asarray([r["age"] for r in records], np.int32),
                    np.asarray([r["person_id"] for r in records], np.int32))
  report_path = os.path.join(builder.data_dir, "build_report.json")
  report = None
  if os.path.exists(report_path):
    with open(report_path) as f:
      report = json.load(f)
  return ds, report
