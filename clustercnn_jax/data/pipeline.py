"""Host-side batching of in-memory arrays into the per-device shape pmap expects.

The order is a pure function of (seed, step): the batch at step s is slice
s mod steps_per_epoch of the permutation for epoch s // steps_per_epoch. A run
resumed at step s therefore sees exactly the batches an uninterrupted run
would, with no iterator state to checkpoint. Images stay uint8 until they are
on the device (a quarter of float32's host-to-device traffic).
"""

from typing import Dict, Iterator, NamedTuple, Optional

import numpy as np


class ArrayDataset(NamedTuple):
  images: np.ndarray  # (N, H, W, 3) uint8
  ages: np.ndarray  # (N,)
  person_ids: Optional[np.ndarray] = None  # (N,), for subject-exclusive protocols

  def subset(self, idx: np.ndarray) -> "ArrayDataset":
    return ArrayDataset(self.images[idx], self.ages[idx],
                        None if self.person_ids is None else self.person_ids[idx])

  def __len__(self) -> int:
    return int(self.ages.shape[0])


def _shard(x: np.ndarray, num_devices: int) -> np.ndarray:
  return x.reshape((num_devices, x.shape[0] // num_devices) + x.shape[1:])


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
  if num_examples < global_batch:
    raise ValueError(f"The training set has {num_examples} examples, fewer than one batch "
                     f"of {global_batch}; lower --config.batch_size.")
  return num_examples // global_batch  # the last partial batch is dropped


def train_batches(ds: ArrayDataset, global_batch: int, num_devices: int, seed: int,
                  start_step: int = 0, process_index: int = 0,
                  process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
  """Endless shuffled batches {'images', 'ages'} of shape (devices, per_device, ...).

  Every host draws the same permutation and takes its own contiguous slice of
  each global batch, so hosts never overlap and need not communicate.
  """
  per_epoch = steps_per_epoch(len(ds), global_batch)
  per_host = global_batch // process_count
  step, epoch, perm = start_step, None, None
  while True:
    e, i = divmod(step, per_epoch)
    if e != epoch:
      epoch, perm = e, np.random.default_rng([seed, e]).permutation(len(ds))
    start = i * global_batch + process_index * per_host
    idx = np.sort(perm[start:start + per_host])  # sorted: faster gather
    yield {"images": _shard(ds.images[idx], num_devices),
           "ages": _shard(ds.ages[idx].astype(np.float32), num_devices)}
    step += 1


def eval_batches(ds: ArrayDataset, global_batch: int,
                 num_devices: int) -> Iterator[Dict[str, np.ndarray]]:
  """Every example once, in order; the last batch is padded and ``mask`` marks real ones."""
  n = len(ds)
  for start in range(0, n, global_batch):
    idx = np.arange(start, start + global_batch)
    mask = idx < n
    idx = np.where(mask, idx, n - 1)
    yield {"images": _shard(ds.images[idx], num_devices),
           "ages": _shard(ds.ages[idx].astype(np.float32), num_devices),
           "mask": _shard(mask, num_devices)}
