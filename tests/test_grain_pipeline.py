"""The grain pipeline: per-device shapes, every example once per epoch, resumable state."""

import numpy as np

from clustercnn_jax.data import grain_pipeline
from clustercnn_jax.data.pipeline import ArrayDataset


def dataset(n=20):
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
  return ArrayDataset(images, np.arange(n))


def test_batches_have_pmap_shape_and_cover_an_epoch():
  loader = grain_pipeline.train_loader(dataset(), global_batch=10, num_devices=2, seed=0)
  it = iter(loader)
  first, second = next(it), next(it)
  assert first["images"].shape == (2, 5, 4, 4, 3) and first["ages"].shape == (2, 5)
  seen = np.concatenate([first["ages"].ravel(), second["ages"].ravel()])
  assert sorted(seen.tolist()) == list(range(20))  # one epoch = every example once
  np.testing.assert_array_equal(first["images"][..., 0, 0, 0], first["ages"])


def test_recorded_states_resume_exactly_even_when_read_ahead():
  loader = lambda: grain_pipeline.train_loader(dataset(), global_batch=4, num_devices=1, seed=3)
  reference = [b["ages"] for b, _ in zip(grain_pipeline.GrainBatches(loader()), range(8))]
  batches = grain_pipeline.GrainBatches(loader())
  for _ in range(5):  # the consumer took 3 batches; 2 more were prefetched
    next(batches)
  state_after_3 = list(batches.states)[2]
  resumed = grain_pipeline.GrainBatches(loader(), state_after_3)
  for k in range(3, 8):
    np.testing.assert_array_equal(next(resumed)["ages"], reference[k])
