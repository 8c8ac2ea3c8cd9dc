"""Datasets: one getter, ``load(config)``, for every dataset, reading ``config.data``.

  config.data.name         synthetic | fgnet | morph2 | utkface | face_age_folder
  config.data.manual_dir   the files you downloaded (real datasets)
  config.data.data_dir     where TFDS keeps the built datasets
  config.data.split        kind ('given' | 'random' | 'person'), seed, test_fraction,
                           by_person, test_person
  config.data.max_examples > 0: a seeded subset before a random split

Real datasets come from TFDS builders (data/builders/), built once from the
user's files; synthetic faces are drawn (the demo's default, no download).
"""

from typing import Optional, Tuple

import ml_collections

from clustercnn_jax.data import splits, synthetic
from clustercnn_jax.data.dataset import ArrayDataset

DATASETS = ("synthetic", "fgnet", "morph2", "utkface", "face_age_folder")


def _synthetic(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  """Synthetic faces come with their own train and test sets (split kind 'given')."""
  c = config.data.synthetic
  train, test = synthetic.splits(c.num_train, c.num_test, config.image_size, seed=c.seed,
                                 max_age=min(c.max_age, config.max_age),
                                 mode_ageing=c.mode_ageing)
  return ArrayDataset(train.images, train.ages), ArrayDataset(test.images, test.ages)


def _builder_dataset(config: ml_collections.ConfigDict) -> ArrayDataset:
  from clustercnn_jax.data import builders

  face = config.face
  crop = builders.common.crop_config(config.image_size, face.normalize, alpha=face.alpha,
                                     eye_height=face.eye_height, no_face=face.no_face)
  ds, _ = builders.load(config.data.name, crop, config.data.data_dir, config.data.manual_dir)
  return ds


def _check_name(config: ml_collections.ConfigDict) -> None:
  if config.data.name not in DATASETS:
    raise ValueError(f"Unknown dataset {config.data.name!r}; set --config.data.name to one "
                     f"of {list(DATASETS)}.")


def load_source(config: ml_collections.ConfigDict) -> Optional[ArrayDataset]:
  """The whole dataset before its split, for runs that differ in their split only (the
  82 FG-NET folds read it once, not once a fold); None for synthetic faces, which are
  drawn with their split."""
  _check_name(config)
  return None if config.data.name == "synthetic" else _builder_dataset(config)


def load(config: ml_collections.ConfigDict, source: Optional[ArrayDataset] = None
         ) -> Tuple[ArrayDataset, ArrayDataset]:
  """(train, test) for ``config.data``: the dataset (or ``source``, from ``load_source``
  for the same ``config.data`` but its split), then its split."""
  _check_name(config)
  if config.data.name == "synthetic":
    return _synthetic(config)
  return splits.split(source if source is not None else _builder_dataset(config),
                      config.data.split, config.data.max_examples)
