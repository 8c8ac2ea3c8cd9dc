"""The input pipeline: per-device shapes, every example once per epoch, resumable state."""

import time

import numpy as np
import pytest

from clustercnn_jax.data import pipeline
from clustercnn_jax.data.dataset import ArrayDataset


def dataset(n=20):
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
  return ArrayDataset(images, np.arange(n))


def test_batches_have_pmap_shape_and_cover_an_epoch():
  loader = pipeline.train_loader(dataset(), global_batch=10, num_devices=2, seed=0)
  it = iter(loader)
  first, second = next(it), next(it)
  assert first["images"].shape == (2, 5, 4, 4, 3) and first["ages"].shape == (2, 5)
  seen = np.concatenate([first["ages"].ravel(), second["ages"].ravel()])
  assert sorted(seen.tolist()) == list(range(20))  # one epoch = every example once
  np.testing.assert_array_equal(first["images"][..., 0, 0, 0], first["ages"])


def test_recorded_states_resume_exactly_even_when_read_ahead():
  loader = lambda: pipeline.train_loader(dataset(), global_batch=4, num_devices=1, seed=3)
  reference = [b["ages"] for b, _ in zip(pipeline.GrainBatches(loader()), range(8))]
  batches = pipeline.GrainBatches(loader())
  for _ in range(5):  # the consumer took 3 batches; 2 more were prefetched
    next(batches)
  state_after_3 = list(batches.states)[2]
  resumed = pipeline.GrainBatches(loader(), state_after_3)
  for k in range(3, 8):
    np.testing.assert_array_equal(next(resumed)["ages"], reference[k])


def test_the_loader_reads_only_a_few_batches_ahead(monkeypatch):
  """A record is a whole batch: grain's default read-ahead of 500 records held gigabytes."""
  reads = []
  read = pipeline.BatchSource.__getitem__
  monkeypatch.setattr(pipeline.BatchSource, "__getitem__",
                      lambda self, step: reads.append(step) or read(self, step))
  it = iter(pipeline.train_loader(dataset(), global_batch=4, num_devices=1, seed=0))
  next(it)
  time.sleep(0.5)  # time for the reading threads to fill their buffer
  assert 1 < len(reads) <= 1 + pipeline.PREFETCH_BATCHES + pipeline.READ_THREADS, len(reads)


@pytest.mark.slow
def test_worker_processes_give_the_same_order_and_resume():
  """grain_workers > 0 reads batches in child processes; each record is a whole batch, so
  the order is the same as with no workers, examples are drawn epoch by epoch, and a
  recorded state resumes exactly."""
  loader = lambda workers: pipeline.train_loader(dataset(), global_batch=4, num_devices=2,
                                                 seed=5, worker_count=workers)
  reference = [b["ages"] for b, _ in zip(pipeline.GrainBatches(loader(0)), range(10))]
  with_workers = [b["ages"] for b, _ in zip(pipeline.GrainBatches(loader(2)), range(10))]
  assert reference[0].shape == (2, 2)
  for a, b in zip(reference, with_workers):
    np.testing.assert_array_equal(a, b)
  # Two epochs' worth of batches: every example exactly twice.
  assert np.bincount(np.concatenate(reference).ravel().astype(int)).tolist() == [2] * 20
  batches = pipeline.GrainBatches(loader(2))
  for k in range(4):
    np.testing.assert_array_equal(next(batches)["ages"], reference[k])
  resumed = pipeline.GrainBatches(loader(2), list(batches.states)[1])
  for k in range(2, 10):
    np.testing.assert_array_equal(next(resumed)["ages"], reference[k])


def test_hosts_read_disjoint_slices_of_the_same_global_batch():
  """Hosts split the global batch as one host would lay it out over its devices."""
  one = pipeline.BatchSource(dataset(), global_batch=8, num_devices=1, seed=2)
  hosts = [pipeline.BatchSource(dataset(), 8, 1, 2, process_index=i, process_count=2)
           for i in range(2)]
  for step in (0, 1, 2, 5):
    parts = [h[step]["ages"].ravel() for h in hosts]
    assert not set(parts[0]) & set(parts[1])
    # Same positions, not just the same set: an example's global position keys its
    # augmentation, dropout and cluster draw.
    np.testing.assert_array_equal(np.concatenate(parts), one[step]["ages"].ravel())
