"""The input pipeline (grain): seeded shuffling and epochs, per-host sharding, batches in
pmap's per-device shape, background prefetch, and an iterator state that is saved
with each checkpoint so that a resumed run continues in the same order. Images
stay uint8 until they are on the device (a quarter of float32's host-to-device
traffic); cached features (``model.cached_features``) take the same path.

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


class ArraySource:
  """A random-access grain source over an in-memory dataset (uint8 images, ages)."""

  def __init__(self, ds: ArrayDataset):
    self._ds = ds

  def __len__(self) -> int:
    return len(self._ds)

  def __getitem__(self, i: int) -> Dict[str, np.ndarray]:
    return {"images": self._ds.images[i], "ages": np.float32(self._ds.ages[i])}

  def __repr__(self) -> str:  # grain checks that a restored state belongs to this source
    return f"ArraySource(n={len(self._ds)}, image_shape={self._ds.images.shape[1:]})"


class _DeviceShape(grain.transforms.Map):
  """(per_host, ...) -> (devices, per_device, ...), the leading axis pmap maps over."""

  def __init__(self, num_devices: int):
    self._n = num_devices

  def map(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {k: _shard(v, self._n) for k, v in batch.items()}


def train_loader(ds: ArrayDataset, global_batch: int, num_devices: int, seed: int,
                 worker_count: int = 0) -> grain.DataLoader:
  sampler = grain.samplers.IndexSampler(
      num_records=len(ds), shard_options=grain.sharding.ShardByJaxProcess(drop_remainder=True),
      shuffle=True, num_epochs=None, seed=seed)
  per_host = global_batch // jax.process_count()
  if worker_count > 0 and not flags.FLAGS.is_parsed():
    # grain's workers read its absl flags; outside app.run (notebooks, tests) use defaults.
    flags.FLAGS.mark_as_parsed()
  return grain.DataLoader(
      data_source=ArraySource(ds), sampler=sampler, worker_count=worker_count,
      operations=[grain.transforms.Batch(per_host, drop_remainder=True), _DeviceShape(num_devices)])


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
