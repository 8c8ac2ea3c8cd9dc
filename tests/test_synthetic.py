"""The synthetic face-age set: deterministic, well-formed, and carrying learnable age cues."""

import numpy as np
import pytest

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


def test_opposed_modes_draw_the_odd_modes_at_the_mirrored_age():
  """'opposed' changes only the odd modes' faces, each drawn as the default draws a face of
  age min + max - age; ages, modes and the even modes' faces stay the same."""
  shared = synthetic.generate(64, 32, seed=3)
  opposed = synthetic.generate(64, 32, seed=3, mode_ageing="opposed")
  np.testing.assert_array_equal(opposed.ages, shared.ages)
  np.testing.assert_array_equal(opposed.modes, shared.modes)
  even, odd = shared.modes % 2 == 0, shared.modes % 2 == 1
  assert even.any() and odd.any()
  np.testing.assert_array_equal(opposed.images[even], shared.images[even])
  assert not np.array_equal(opposed.images[odd], shared.images[odd])
  ages, modes = synthetic.ages_and_modes(64, seed=3)
  np.testing.assert_array_equal(ages, shared.ages)
  np.testing.assert_array_equal(modes, shared.modes)
  np.testing.assert_array_equal(
      synthetic.apparent_ages(np.array([1, 30, 80, 30]), np.array([0, 1, 3, 2]), 1, 80,
                              "opposed"), [1, 51, 1, 30])
  with pytest.raises(ValueError, match="mode_ageing='reversed'"):
    synthetic.apparent_ages(ages, modes, 1, 80, "reversed")
