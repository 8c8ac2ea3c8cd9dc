"""The synthetic face-age set: deterministic, well-formed, and carrying learnable age cues."""

import numpy as np

from clustercnn_jax.data import synthetic


def test_deterministic_and_well_formed():
  a = synthetic.generate(40, 32, seed=3)
  b = synthetic.generate(40, 32, seed=3)
  np.testing.assert_array_equal(a.images, b.images)
  assert a.images.shape == (40, 32, 32, 3) and a.images.dtype == np.uint8
  assert a.ages.min() >= 1 and a.ages.max() <= 80
  train, test = synthetic.splits(40, 40, 32, seed=0)
  assert not np.array_equal(train.images, test.images)


def test_ages_are_predictable_from_pixels_and_modes_are_distinct():
  """A ridge regression on raw pixels must beat the mean: the cues are in the image."""
  train = synthetic.generate(3000, 32, seed=0)
  test = synthetic.generate(500, 32, seed=1)
  feats = lambda d: d.images.reshape(len(d.ages), -1).astype(np.float64) / 255.0
  x, xt = feats(train), feats(test)
  mu = x.mean(0)
  w = np.linalg.solve((x - mu).T @ (x - mu) + 10.0 * np.eye(x.shape[1]),
                      (x - mu).T @ (train.ages - train.ages.mean()))
  pred = (xt - mu) @ w + train.ages.mean()
  mae = np.abs(pred - test.ages).mean()
  baseline = np.abs(train.ages.mean() - test.ages).mean()
  assert mae < 0.75 * baseline, (mae, baseline)
  # Corner pixels (background) separate the four appearance modes.
  corners = train.images[:, :3, :3].reshape(len(train.ages), -1).mean(-1)
  means = [corners[train.modes == m].mean() for m in range(4)]
  assert min(np.diff(sorted(means))) > 10
