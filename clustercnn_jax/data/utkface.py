"""UTKFace ("Aligned & Cropped") read straight from its folder into memory.

UTKFace's faces are already aligned and cropped by its authors, so this
loader only parses labels and resizes. File names are
``age_gender_race_datetime.jpg.chip.jpg``; two names in the official archive
are malformed (``55_0_0_20170116232725357jpg.chip.jpg``,
``39_1_20170116174525125.jpg.chip.jpg``) and parse here like the others, since
only the leading age is needed. Files whose age cannot be parsed or whose
image cannot be decoded are skipped, counted and reported by reason.

There is no official split: ``split`` draws a seeded random 80/20 split.
Decoded arrays are cached as .npz beside nothing of the user's: in
``cache_dir`` (default ~/.cache/clustercnn_jax).
"""

import collections
import hashlib
import logging
import os
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from clustercnn_jax.data import images, splits
from clustercnn_jax.data.pipeline import ArrayDataset

_AGE = re.compile(r"^(\d{1,3})_")


class LoadReport(NamedTuple):
  read: int
  kept: int
  skipped: Dict[str, List[str]]  # reason -> file names

  def summary(self) -> str:
    parts = [f"{len(v)} {k}" for k, v in self.skipped.items()]
    return (f"read {self.read}, kept {self.kept}, skipped {self.read - self.kept}"
            + (f" ({', '.join(parts)})" if parts else ""))


def parse_age(name: str) -> Optional[int]:
  m = _AGE.match(name)
  if not m:
    return None
  age = int(m.group(1))
  return age if 0 <= age <= 120 else None


def read_folder(folder: str, image_size: int) -> Tuple[ArrayDataset, LoadReport]:
  if not os.path.isdir(folder):
    raise FileNotFoundError(
        f"UTKFace folder {folder!r} not found. Download UTKFace.tar.gz ('Aligned & Cropped "
        "Faces') from the dataset's site, extract it, and set --config.data_dir to the "
        "UTKFace/ folder that holds the *.jpg.chip.jpg files.")
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png")))
  arrays, ages = [], []
  skipped = collections.defaultdict(list)
  for name in names:
    age = parse_age(name)
    if age is None:
      skipped["unparsable age"].append(name)
      continue
    try:
      arrays.append(images.resize(images.read_image(os.path.join(folder, name)), image_size))
    except images.ImageReadError as e:
      skipped["unreadable image"].append(str(e))
      continue
    ages.append(age)
  if not arrays:
    raise FileNotFoundError(f"No readable UTKFace images in {folder!r}.")
  report = LoadReport(len(names), len(arrays), dict(skipped))
  return ArrayDataset(np.stack(arrays), np.asarray(ages, np.int32)), report


def load(folder: str, image_size: int, cache_dir: str = "") -> ArrayDataset:
  cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "clustercnn_jax")
  key = hashlib.sha1(f"{os.path.abspath(folder)}:{image_size}:v1".encode()).hexdigest()[:16]
  path = os.path.join(cache_dir, f"utkface_{image_size}_{key}.npz")
  if os.path.exists(path):
    with np.load(path) as z:
      return ArrayDataset(z["images"], z["ages"])
  ds, report = read_folder(folder, image_size)
  logging.info("UTKFace %s: %s.", folder, report.summary())
  for reason, files in report.skipped.items():
    logging.warning("UTKFace: skipped %d (%s), e.g. %s", len(files), reason, files[:3])
  os.makedirs(cache_dir, exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, images=ds.images, ages=ds.ages)
  os.replace(tmp, path)
  return ds


def split(ds: ArrayDataset, seed: int, test_fraction: float = 0.2,
          max_examples: int = 0) -> Tuple[ArrayDataset, ArrayDataset]:
  """A seeded random split; ``max_examples`` > 0 first draws a seeded subset."""
  return splits.random_split(ds, seed, test_fraction, max_examples)
