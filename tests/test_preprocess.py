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


def test_degraded_views_match_a_numpy_reference():
  """``grey`` is the BT.601 luminance in every channel; ``grain`` adds to it noise of
  GRAIN_STD that depends on the image alone (a cache stores the view) and differs between
  images."""
  from clustercnn_jax.data.preprocess import GRAIN_STD, degrade

  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (3, 40, 40, 3)).astype(np.float32) / 255.0
  grey = degrade(jnp.asarray(x), "grey")
  luma = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
  np.testing.assert_allclose(np.asarray(grey), np.repeat(luma[..., None], 3, -1), atol=1e-6)

  grain = np.asarray(degrade(jnp.asarray(x), "grain"))
  np.testing.assert_array_equal(grain[..., 0], grain[..., 2])  # still grey
  noise = grain[..., 0] - luma
  inside = (grain[..., 0] > 0) & (grain[..., 0] < 1)  # clipping aside
  assert abs(noise[inside].mean()) < 0.005 and abs(noise[inside].std() - GRAIN_STD) < 0.005
  again = np.asarray(degrade(jnp.asarray(x[::-1]), "grain"))[::-1]  # other batch positions
  np.testing.assert_array_equal(grain, again)
  assert not np.allclose(noise[0], noise[1], atol=0.01)
  with pytest.raises(ValueError, match="grey"):
    degrade(jnp.asarray(x), "sepia")
