"""Seeded random train/test splits, by image or by person (subject-exclusive).

Byte-identical images (UTKFace holds 243 such groups, 498 files) always land on
the same side: a test face that is also a training face would flatter the MAE.
"""

import logging
from typing import Tuple

import numpy as np

from clustercnn_jax.data.images import digests
from clustercnn_jax.data.pipeline import ArrayDataset


def random_split(ds: ArrayDataset, seed: int, test_fraction: float = 0.2, max_examples: int = 0,
                 by_person: bool = False) -> Tuple[ArrayDataset, ArrayDataset]:
  """(train, test). ``max_examples`` > 0 first draws a seeded subset; ``by_person`` puts
  all images of a person on one side (needs ``person_ids``)."""
  rng = np.random.default_rng([seed, 7])
  order = rng.permutation(len(ds))
  if max_examples:
    order = order[:max_examples]
  if by_person:
    if ds.person_ids is None:
      raise ValueError("A subject-exclusive split needs person ids; this dataset has none.")
    people = rng.permutation(np.unique(ds.person_ids[order]))
    test_people = people[:int(round(len(people) * test_fraction))]
    is_test = np.isin(ds.person_ids[order], test_people)
  else:
    is_test = np.zeros(len(order), bool)
    is_test[:int(round(len(order) * test_fraction))] = True
    # Each copy of an image follows its first copy in the permutation.
    _, first, group = np.unique(digests(ds.images)[order], return_index=True,
                                return_inverse=True)
    together = is_test[first][group]
    if (moved := int((together != is_test).sum())):
      logging.info("Split: %d duplicate images moved to the side of their first copy.", moved)
    is_test = together
  return ds.subset(np.sort(order[~is_test])), ds.subset(np.sort(order[is_test]))
