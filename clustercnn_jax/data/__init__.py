"""Datasets by name. Each loader returns (train, test) ArrayDatasets.

Real face datasets (MORPH II, FG-NET, UTKFace through TFDS builders) plug in
here as further entries of ``LOADERS``.
"""

from typing import Callable, Dict, Tuple

import ml_collections
import numpy as np

from clustercnn_jax.data import synthetic, utkface
from clustercnn_jax.data.pipeline import ArrayDataset


def _synthetic(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  c = config.synthetic
  train, test = synthetic.splits(c.num_train, c.num_test, config.image_size, seed=c.seed,
                                 max_age=min(c.max_age, config.max_age))
  return ArrayDataset(train.images, train.ages), ArrayDataset(test.images, test.ages)


def _utkface(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  c = config.utkface
  ds = utkface.load(c.data_dir, config.image_size, c.cache_dir)
  return utkface.split(ds, c.split_seed, c.test_fraction, c.max_examples)


def _fgnet(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  """One leave-one-person-out fold: ``fgnet.test_person`` is the test set."""
  from clustercnn_jax.data import builders

  kind = "crop" if config.normalize_faces else "resize"
  ds, _ = builders.load("fgnet", f"{kind}{config.image_size}", config.data.data_dir,
                        config.data.manual_dir)
  test = ds.person_ids == config.fgnet.test_person
  if not test.any():
    raise ValueError(f"fgnet.test_person={config.fgnet.test_person}: no such person "
                     f"(FG-NET has {len(set(ds.person_ids.tolist()))}, ids 1..82).")
  return ds.subset(np.nonzero(~test)[0]), ds.subset(np.nonzero(test)[0])


LOADERS: Dict[str, Callable[[ml_collections.ConfigDict], Tuple[ArrayDataset, ArrayDataset]]] = {
    "synthetic": _synthetic,
    "utkface": _utkface,
    "fgnet": _fgnet,
}


def load(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  if config.dataset not in LOADERS:
    raise NotImplementedError(
        f"Dataset {config.dataset!r} has no loader yet (available: {sorted(LOADERS)}). "
        "The MORPH II builder is not part of this release; run with "
        "--config.dataset=synthetic, fgnet or utkface meanwhile.")
  return LOADERS[config.dataset](config)
