"""Datasets by name (``config.dataset``). Each loader returns (train, test) ArrayDatasets.

fgnet, morph2 and face_age_folder come from TFDS builders (data/builders/), built
once from the user's files; utkface is read from its folder; synthetic is drawn.
"""

from typing import Callable, Dict, Tuple

import ml_collections
import numpy as np

from clustercnn_jax.data import splits, synthetic, utkface
from clustercnn_jax.data.pipeline import ArrayDataset


def _synthetic(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  c = config.synthetic
  train, test = synthetic.splits(c.num_train, c.num_test, config.image_size, seed=c.seed,
                                 max_age=min(c.max_age, config.max_age))
  return ArrayDataset(train.images, train.ages), ArrayDataset(test.images, test.ages)


def _utkface_folder(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  """The fast path: UTKFace's own alignment, images resized; no detector, no TFDS."""
  c = config.utkface
  ds = utkface.load(c.data_dir, config.image_size, c.cache_dir)
  return utkface.split(ds, c.split_seed, c.test_fraction, c.max_examples)


def _utkface(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  """The TFDS builder: faces re-normalised around detected eyes (or plain resize)."""
  c = config.utkface
  return splits.random_split(_builder_dataset("utkface", config), c.split_seed,
                             c.test_fraction, c.max_examples)


def _fgnet(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  """One leave-one-person-out fold: ``fgnet.test_person`` is the test set."""
  ds = _builder_dataset("fgnet", config)
  test = ds.person_ids == config.fgnet.test_person
  if not test.any():
    raise ValueError(f"fgnet.test_person={config.fgnet.test_person}: no such person "
                     f"(FG-NET has {len(set(ds.person_ids.tolist()))}, ids 1..82).")
  return ds.subset(np.nonzero(~test)[0]), ds.subset(np.nonzero(test)[0])


def _builder_dataset(name: str, config: ml_collections.ConfigDict) -> ArrayDataset:
  from clustercnn_jax.data import builders

  crop = builders.common.crop_config(config.image_size, config.normalize_faces,
                                     **config.face.to_dict())
  ds, _ = builders.load(name, crop, config.data.data_dir, config.data.manual_dir)
  return ds


def _morph2(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  """One random 80/20 split (``morph.split_seed``; the paper averages seeds 0-4)."""
  return splits.random_split(_builder_dataset("morph2", config), config.morph.split_seed,
                             0.2, by_person=config.morph.subject_exclusive)


def _face_age_folder(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  return splits.random_split(_builder_dataset("face_age_folder", config), config.seed, 0.2)


LOADERS: Dict[str, Callable[[ml_collections.ConfigDict], Tuple[ArrayDataset, ArrayDataset]]] = {
    "synthetic": _synthetic,
    "utkface": _utkface,
    "utkface_folder": _utkface_folder,
    "fgnet": _fgnet,
    "morph2": _morph2,
    "face_age_folder": _face_age_folder,
}


def load(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  if config.dataset not in LOADERS:
    raise ValueError(f"Unknown dataset {config.dataset!r}; available: {sorted(LOADERS)}.")
  return LOADERS[config.dataset](config)
