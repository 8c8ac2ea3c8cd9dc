"""Train/test splits: seeded random (by image or by person), or one person held out.

Byte-identical images (UTKFace holds 243 such groups, 498 files) always land on
the same side: a test face that is also a training face would flatter the MAE.
"""

import logging
from typing import Tuple

import ml_collections

import numpy as np

from clustercnn_jax.data.images import digests
from clustercnn_jax.data.dataset import ArrayDataset


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


def leave_one_person_out(ds: ArrayDataset, person: int) -> Tuple[ArrayDataset, ArrayDataset]:
  """(everyone else, ``person``): one fold of FG-NET's protocol."""
  if ds.person_ids is None:
    raise ValueError("Holding out a person needs person ids; this dataset has none. Use "
                     "--config.data.split.kind=random.")
  test = ds.person_ids == person
  if not test.any():
    ids = sorted(set(ds.person_ids.tolist()))
    raise ValueError(f"data.split.test_person={person}: no such person (the dataset has "
                     f"{len(ids)}, ids {ids[0]}..{ids[-1]}).")
  return ds.subset(np.nonzero(~test)[0]), ds.subset(np.nonzero(test)[0])


KINDS = ("given", "random", "person")


def split(ds: ArrayDataset, spec: ml_collections.ConfigDict,
          max_examples: int = 0) -> Tuple[ArrayDataset, ArrayDataset]:
  """The split ``spec`` (``config.data.split``) describes: 'random' or 'person'."""
  if spec.kind == "random":
    return random_split(ds, spec.seed, spec.test_fraction, max_examples, spec.by_person)
  if spec.kind == "person":
    return leave_one_person_out(ds, spec.test_person)
  raise ValueError(f"data.split.kind={spec.kind!r} does not apply to a built dataset: use "
                   "'random' or 'person'.")
