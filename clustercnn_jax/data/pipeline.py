"""The input pipeline (grain): seeded shuffling and epochs, per-host sharding, batches in
pmap's per-device shape, background prefetch, and an iterator state that is saved
with each checkpoint so that a resumed run continues in the same order. Images
stay uint8 until they are on the device (a quarter of float32's host-to-device
traffic); cached features (``cache.enabled``) take the same path.

The device-side prefetch runs ahead of training, so the state to checkpoint at
step s is not the iterator's current state but the one recorded when batch s
was drawn: ``GrainBatches`` keeps those states in step with the batches.
"""

import collections
from typing import Any, Deque, Dict, Iterator

import grain
import jax
import numpy as np
from absl import flags

from clustercnn_jax.data.dataset import ArrayDataset


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
  if num_examples < global_batch:
    raise ValueError(f"The training set has {num_examples} examples, fewer than one batch "
                     f"of {global_batch}; lower --config.batch_size.")
  return num_examples // global_batch  # the last partial batch is dropped


def _shard(x: np.ndarray, num_devices: int) -> np.ndarray:
  return x.reshape((num_devices, x.shape[0] // num_devices) + x.shape[1:])


def eval_batches(ds: ArrayDataset, global_batch: int,
                 num_devices: int) -> Iterator[Dict[str, np.ndarray]]:
  """Every example once, in order; the last batch is padded and ``mask`` marks real ones.

  Evaluation needs no shuffling or state, so this is a plain generator.
  """
  n = len(ds)
  for start in range(0, n, global_batch):
    idx = np.arange(start, start + global_batch)
    mask = idx < n
    idx = np.where(mask, idx, n - 1)
    yield {"images": _shard(ds.images[idx], num_devices),
           "ages": _shard(ds.ages[idx].astype(np.float32), num_devices),
           "mask": _shard(mask, num_devices)}


class BatchSource:
  """A grain source whose record ``s`` is this host's share of global batch ``s``.

  The order is a pure function of (seed, step): batch s is slice s mod
  steps_per_epoch of the permutation for epoch s // steps_per_epoch; each host
  takes its contiguous part of every global batch, so hosts never overlap and
  need not communicate. One gather per batch (not one record per example)
  keeps the host cost per step small, which matters when the examples are
  cached features and the step itself takes a millisecond.
  """

  def __init__(self, ds: ArrayDataset, global_batch: int, num_devices: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self._ds, self._n, self._seed = ds, num_devices, seed
    self._per_epoch = steps_per_epoch(len(ds), global_batch)
    self._global, self._per_host = global_batch, global_batch // process_count
    self._offset = process_index * self._per_host
    self._cached = (None, None)  # (epoch, permutation), replaced as one (reads are threaded)

  def __len__(self) -> int:
    return 2 ** 40  # endless: as many steps as anyone trains

  def _permutation(self, epoch: int) -> np.ndarray:
    cached_epoch, perm = self._cached
    if cached_epoch != epoch:
      perm = np.random.default_rng([self._seed, epoch]).permutation(len(self._ds))
      self._cached = (epoch, perm)
    return perm

  def __getitem__(self, step: int) -> Dict[str, np.ndarray]:
    epoch, i = divmod(int(step), self._per_epoch)
    # Sorted (a faster gather) over the whole global batch, then this host's part: example j
    # of the batch sits at the same global position however many hosts share it.
    start = i * self._global
    idx = np.sort(self._permutation(epoch)[start:start + self._global])
    idx = idx[self._offset:self._offset + self._per_host]
    return {"images": _shard(self._ds.images[idx], self._n),
            "ages": _shard(self._ds.ages[idx].astype(np.float32), self._n)}

  def __repr__(self) -> str:  # grain checks that a restored state belongs to this source
    return (f"BatchSource(n={len(self._ds)}, shape={self._ds.images.shape[1:]}, "
            f"batch={self._global}/{self._per_host}, seed={self._seed})")


# Batches grain reads ahead, and its reading threads. Grain's defaults (500 and 16) are for
# records of one example; a record here is a whole batch (7-8 MB of crops or cached views
# at batch 128), so 500 of them held about 4 GB (benchmarks/loader_memory.py).
PREFETCH_BATCHES = 4
READ_THREADS = 2


def train_loader(ds: ArrayDataset, global_batch: int, num_devices: int, seed: int,
                 worker_count: int = 0, prefetch: int = PREFETCH_BATCHES) -> grain.DataLoader:
  """Endless shuffled batches {'images', 'ages'} of shape (devices, per_device, ...), at
  most ``prefetch`` read ahead (per worker process, with ``worker_count``)."""
  source = BatchSource(ds, global_batch, num_devices, seed, jax.process_index(),
                       jax.process_count())
  sampler = grain.samplers.IndexSampler(num_records=len(source),
                                        shard_options=grain.sharding.NoSharding(),
                                        shuffle=False, num_epochs=1)
  if worker_count > 0 and not flags.FLAGS.is_parsed():
    # grain's workers read its absl flags; outside app.run (notebooks, tests) use defaults.
    flags.FLAGS.mark_as_parsed()
  read_options = grain.ReadOptions(num_threads=min(READ_THREADS, prefetch),
                                   prefetch_buffer_size=prefetch)
  return grain.DataLoader(data_source=source, sampler=sampler, worker_count=worker_count,
                          read_options=read_options)


class IteratorState:
  """Stands in for an iterator in grain's checkpoint args: holds one recorded state."""

  def __init__(self, state: Any = None):
    self.state = state

  def get_state(self) -> Any:
    return self.state

  def set_state(self, state: Any) -> None:
    self.state = state

  def start_prefetch(self) -> None:
    """Called by grain's restore handler; prefetching starts with the real iterator."""


class GrainBatches:
  """Iterates batches and records, in order, the iterator state after each one."""

  def __init__(self, loader: grain.DataLoader, state: Any = None):
    self._it = iter(loader)
    if state is not None:
      self._it.set_state(state)
    self.states: Deque[Any] = collections.deque()

  def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
    return self

  def __next__(self) -> Dict[str, np.ndarray]:
    batch = next(self._it)
    self.states.append(self._it.get_state())
    return batch
