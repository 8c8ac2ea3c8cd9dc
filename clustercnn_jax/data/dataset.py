"""The in-memory dataset every loader returns and the input pipeline reads."""

from typing import NamedTuple, Optional

import numpy as np


class ArrayDataset(NamedTuple):
  """Images (or cached backbone features) with their ages, in memory.

  ``images`` is (N, H, W, 3) uint8 for faces, or (N, D) float for features
  cached from a frozen backbone; both go through the same pipeline.
  """

  images: np.ndarray
  ages: np.ndarray  # (N,)
  person_ids: Optional[np.ndarray] = None  # (N,), for subject-exclusive protocols

  def subset(self, idx: np.ndarray) -> "ArrayDataset":
    return ArrayDataset(self.images[idx], self.ages[idx],
                        None if self.person_ids is None else self.person_ids[idx])

  def __len__(self) -> int:
    return int(self.ages.shape[0])
