"""On-device augmentation: the central crop, the scale jitter about the centre, and flips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax.data.preprocess import preprocess

ID = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_eval_takes_the_central_crop():
  img = np.zeros((1, 90, 90, 3), np.uint8)
  img[:, 9:81, 9:81] = 255
  out = preprocess(jnp.asarray(img), jax.random.PRNGKey(0), train=False, flip=True,
                   out_size=72, **ID)
  assert out.shape == (1, 72, 72, 3) and float(out.min()) == 1.0


def test_scale_jitter_zooms_about_the_centre():
  """A centred square of side 36 in a 90px image: after a zoom by 1 + ε its side is
  36 / (1 + ε) and it stays centred."""
  img = np.zeros((64, 90, 90, 3), np.uint8)
  img[:, 27:63, 27:63] = 255
  out = np.asarray(preprocess(jnp.asarray(img), jax.random.PRNGKey(1), train=True, flip=False,
                              out_size=72, scale_jitter=0.2, **ID))[..., 0]
  sides = (out > 0.5).sum(axis=(1, 2)) ** 0.5
  assert sides.min() < 36 / 1.1 and sides.max() > 36 / 0.9  # the zoom varies
  assert sides.min() > 36 / 1.21 - 1.5 and sides.max() < 36 / 0.79 + 1.5  # within ±20%
  ys, xs = np.nonzero(out[0] > 0.5)
  assert abs(ys.mean() - 35.5) < 0.6 and abs(xs.mean() - 35.5) < 0.6


@pytest.mark.slow
def test_augmentation_is_keyed_per_global_example():
  img = jnp.asarray(np.random.default_rng(0).integers(0, 255, (8, 40, 40, 3), np.uint8))
  kw = dict(train=True, flip=True, out_size=32, scale_jitter=0.1, colour_jitter=1.0, **ID)
  whole = preprocess(img, jax.random.PRNGKey(3), **kw)
  halves = [preprocess(img[i:i + 4], jax.random.PRNGKey(3), example_offset=i, **kw)
            for i in (0, 4)]
  np.testing.assert_allclose(whole, jnp.concatenate(halves), atol=1e-6)
