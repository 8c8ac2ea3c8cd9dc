"""Cached frozen-backbone features: the cache itself, and training on it."""

import logging

import numpy as np
import pytest

from clustercnn_jax import api, feature_cache, predict, train


class CountingEmbed:
  """A deterministic stand-in backbone that records how many images it saw."""

  def __init__(self, batch_size):
    self.batch_size, self.seen = batch_size, 0

  def __call__(self, images):
    assert images.shape[0] == self.batch_size  # padded to one shape: compiled once
    self.seen += images.shape[0]
    flat = images.reshape(len(images), -1).astype(np.float32)
    return np.stack([flat.mean(1), flat.std(1), flat[:, 0]], axis=1)


def images(n, seed):
  return np.random.default_rng(seed).integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)


def test_cache_computes_each_image_once(tmp_path):
  a, b = images(10, 0), images(5, 1)
  embed = CountingEmbed(4)
  first = feature_cache.cached_features(a, embed, "k", str(tmp_path), batch_size=4)
  np.testing.assert_allclose(first, CountingEmbed(10)(a))
  assert embed.seen == 12  # 10 images in 3 padded batches of 4

  # A permuted subset plus new images: only the new ones are computed.
  mixed = np.concatenate([a[[7, 2, 2]], b])
  embed.seen = 0
  second = feature_cache.cached_features(mixed, embed, "k", str(tmp_path), batch_size=4)
  np.testing.assert_allclose(second, CountingEmbed(8)(mixed))
  assert embed.seen == 8  # b's 5 images, padded to 2 batches

  embed.seen = 0
  feature_cache.cached_features(mixed, embed, "k", str(tmp_path), batch_size=4)
  assert embed.seen == 0
  # Another key (other weights or settings) does not see these features.
  feature_cache.cached_features(a[:2], embed, "other", str(tmp_path), batch_size=4)
  assert embed.seen == 4


def test_duplicate_images_are_computed_once(tmp_path):
  a = images(3, 0)[[0, 1, 0, 2, 1]]
  embed = CountingEmbed(8)
  out = feature_cache.cached_features(a, embed, "k", str(tmp_path), batch_size=8)
  np.testing.assert_allclose(out, CountingEmbed(5)(a))
  assert embed.seen == 8  # one batch of the 3 distinct images


def test_torn_cache_file_is_recomputed(tmp_path, caplog):
  (tmp_path / "k.npz").write_bytes(b"not a zip file")
  embed = CountingEmbed(4)
  with caplog.at_level(logging.WARNING):
    out = feature_cache.cached_features(images(3, 0), embed, "k", str(tmp_path), batch_size=4)
  assert "unreadable" in caplog.text and embed.seen == 4
  np.testing.assert_allclose(out, CountingEmbed(3)(images(3, 0)))


def test_weights_digest_sees_every_value():
  tree = {"a": np.zeros((3,), np.float32), "b": {"c": np.ones((2, 2), np.float32)}}
  d0 = feature_cache.weights_digest(tree)
  tree["b"]["c"][1, 1] = 1.0001
  assert feature_cache.weights_digest(tree) != d0
  assert feature_cache.weights_digest({"a": np.zeros((3,), np.float64), "b": tree["b"]}) != \
      feature_cache.weights_digest(tree)


def frozen(config, cached, tmp_path):
  config.model.freeze_backbone = True
  config.model.cached_features = cached
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  config.feature_cache_dir = str(tmp_path / "features")
  return config


def test_training_on_cached_features_matches_running_the_backbone(tiny_config, tmp_path):
  """Same data, same random numbers: the cached run learns what the full one does."""
  full = train.train_and_evaluate(frozen(tiny_config.copy_and_resolve_references(), False,
                                         tmp_path), str(tmp_path / "full"))
  cached = train.train_and_evaluate(frozen(tiny_config.copy_and_resolve_references(), True,
                                           tmp_path), str(tmp_path / "cached"))
  assert cached["test_mae"] == pytest.approx(full["test_mae"], abs=1e-3)
  assert cached["cluster_counts"] == full["cluster_counts"]
  a = np.load(tmp_path / "full" / "predictions.npz")["predictions"]
  b = np.load(tmp_path / "cached" / "predictions.npz")["predictions"]
  np.testing.assert_allclose(a, b, atol=1e-3)

  # The checkpoint is a whole model: it predicts from images, backbone included.
  config, model, variables = api.load(str(tmp_path / "cached"))
  from clustercnn_jax import data
  _, test_ds = data.load(config)
  ages = predict.predict_ages(config, model, variables, test_ds.images)
  np.testing.assert_allclose(ages, b, atol=1e-3)


def test_cached_features_need_a_frozen_backbone(tiny_config, tmp_path):
  config = frozen(tiny_config, True, tmp_path)
  config.model.freeze_backbone = False
  with pytest.raises(ValueError, match="freeze_backbone=True"):
    train.train_and_evaluate(config, str(tmp_path / "w"))
