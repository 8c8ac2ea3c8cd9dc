import jax
import numpy as np
import pytest

from clustercnn_jax import kmeans


def blobs(seed, k=5, d=8, n=200, spread=10.0):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, d)) * spread
  x = np.concatenate([c + rng.normal(size=(n, d)) for c in centres]).astype(np.float32)
  return x, centres


@pytest.mark.parametrize("seed", range(10))
def test_recovers_blob_centres(seed):
  x, centres = blobs(seed)
  found = np.asarray(kmeans.fit(jax.random.PRNGKey(seed), x, len(centres)))
  dist = np.linalg.norm(found[:, None] - centres[None], axis=-1)
  # Each true centre has a found centre within the blob-mean's standard error (~0.2).
  assert dist.min(0).max() < 0.5
  assert sorted(dist.argmin(0)) == list(range(len(centres)))  # one found centre per blob


def test_deterministic_under_seed():
  x, _ = blobs(0)
  a = kmeans.fit(jax.random.PRNGKey(7), x, 5)
  b = kmeans.fit(jax.random.PRNGKey(7), x, 5)
  np.testing.assert_array_equal(a, b)


def test_seeding_handles_duplicate_points():
  x = np.ones((10, 3), np.float32)
  centres = np.asarray(kmeans.kmeans_plusplus(jax.random.PRNGKey(0), x, 3))
  assert np.all(np.isfinite(centres))


def test_too_few_points_is_a_clear_error():
  with pytest.raises(ValueError, match="at least k=4"):
    kmeans.kmeans_plusplus(jax.random.PRNGKey(0), np.zeros((3, 2), np.float32), 4)
