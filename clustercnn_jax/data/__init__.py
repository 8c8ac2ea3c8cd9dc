"""Datasets by name. Each loader returns (train, test) ArrayDatasets.

Real face datasets (MORPH II, FG-NET, UTKFace through TFDS builders) plug in
here as further entries of ``LOADERS``.
"""

from typing import Callable, Dict, Tuple

import ml_collections

from clustercnn_jax.data import synthetic
from clustercnn_jax.data.pipeline import ArrayDataset


def _synthetic(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  c = config.synthetic
  train, test = synthetic.splits(c.num_train, c.num_test, config.image_size, seed=c.seed,
                                 max_age=min(c.max_age, config.max_age))
  return ArrayDataset(train.images, train.ages), ArrayDataset(test.images, test.ages)


LOADERS: Dict[str, Callable[[ml_collections.ConfigDict], Tuple[ArrayDataset, ArrayDataset]]] = {
    "synthetic": _synthetic,
}


def load(config: ml_collections.ConfigDict) -> Tuple[ArrayDataset, ArrayDataset]:
  if config.dataset not in LOADERS:
    raise NotImplementedError(
        f"Dataset {config.dataset!r} has no loader yet (available: {sorted(LOADERS)}). "
        "The TFDS builders for MORPH II, FG-NET and UTKFace are not part of this "
        "release; run with --config.dataset=synthetic meanwhile.")
  return LOADERS[config.dataset](config)
