"""Cached frozen-backbone features: the cache itself, and training on it."""

import logging

import numpy as np
import pytest

from clustercnn_jax import feature_cache, inference, predictor, train
from clustercnn_jax.train_state import load_model


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
  config.cache.enabled = cached
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  config.cache.dir = str(tmp_path / "features")
  return config


def test_a_new_view_revision_names_new_caches(tiny_config, monkeypatch):
  """Views drawn by changed preprocessing code must not read caches of the old views;
  revision 1 keeps the names every existing cache was written under."""
  from clustercnn_jax.data import preprocess

  view_list = preprocess.views(tiny_config)
  first = feature_cache.cache_settings(tiny_config, view_list, ())
  assert not any(isinstance(s, tuple) and s[:1] == ("views",) for s in first)
  monkeypatch.setattr(preprocess, "VIEW_REVISION", 2)
  second = feature_cache.cache_settings(tiny_config, view_list, ())
  assert second[-1] == ("views", 2)
  assert feature_cache.cache_key(second, "w") != feature_cache.cache_key(first, "w")


@pytest.mark.slow
@pytest.mark.parametrize("taps", ["", "stage1"])
def test_training_on_cached_features_matches_running_the_backbone(tiny_config, tmp_path, taps):
  """Same data, same random numbers: the cached run learns what the full one does (with
  ``feature_taps`` too, whose pooled blocks are cached with the features)."""
  tiny_config.model.feature_taps = taps
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
  config, model, variables = load_model(str(tmp_path / "cached"))
  from clustercnn_jax import data
  _, test_ds = data.load(config)
  ages = predictor.Predictor(config, model, variables).predict(test_ds.images)
  np.testing.assert_allclose(ages, b, atol=1e-3)


def test_cached_features_need_a_frozen_backbone(tiny_config, tmp_path):
  config = frozen(tiny_config, True, tmp_path)
  config.model.freeze_backbone = False
  with pytest.raises(ValueError, match="freeze_backbone=True or"):
    train.train_and_evaluate(config, str(tmp_path / "w"))


def partial(config, cached, tmp_path, dtype="float16"):
  """Fine-tune the tiny CNN from its second stage; the first is frozen."""
  config.model.train_from = "stage1"
  config.cache.enabled = cached
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  config.cache.dir = str(tmp_path / "features")
  config.cache.dtype = dtype
  config.bn_recalibration_batches = 2  # precise BN after training, on images or the cache
  return config


@pytest.mark.slow
def test_partial_fine_tuning_on_cached_activations_matches_images(tiny_config, tmp_path):
  """Blocks above ``train_from`` train (BatchNorm in train mode) on cached activations
  of the frozen blocks below, and learn what running the whole network on images learns."""
  import jax

  from clustercnn_jax.models.model import build_model
  from clustercnn_jax.train_state import create_train_state

  runs = {}
  for name, cached, dtype in (("full", False, "float32"), ("cached", True, "float32"),
                              ("half", True, "float16")):
    config = partial(tiny_config.copy_and_resolve_references(), cached, tmp_path, dtype)
    runs[name] = train.train_and_evaluate(config, str(tmp_path / name))
  a, b, c = (np.load(tmp_path / name / "predictions.npz")["predictions"]
             for name in ("full", "cached", "half"))
  np.testing.assert_allclose(a, b, atol=1e-3)
  assert runs["cached"]["cluster_counts"] == runs["full"]["cluster_counts"]
  # float16 storage (half the memory and disk) moves predictions by about a thousandth of
  # a year: measured 1.4e-3 here.
  np.testing.assert_allclose(a, c, atol=5e-3)

  # stage0 (frozen) kept its ImageNet-free initial weights and statistics; stage1 trained.
  config, model, trained = load_model(str(tmp_path / "cached"))
  init_rng = jax.random.split(jax.random.PRNGKey(config.seed))[0]
  start = create_train_state(init_rng, config, build_model(config), 1)
  for name in ("stage0_0",):
    for a0, a1 in zip(jax.tree_util.tree_leaves(start.params["backbone"][name]),
                      jax.tree_util.tree_leaves(trained["params"]["backbone"][name])):
      np.testing.assert_array_equal(a0, a1)
    for a0, a1 in zip(jax.tree_util.tree_leaves(start.batch_stats["backbone"][name]),
                      jax.tree_util.tree_leaves(trained["batch_stats"]["backbone"][name])):
      np.testing.assert_array_equal(a0, a1)
  for collection, variables in (("params", start.params), ("batch_stats", start.batch_stats)):
    moved = [np.abs(np.asarray(x0) - np.asarray(x1)).max() for x0, x1 in zip(
        jax.tree_util.tree_leaves(variables["backbone"]["stage1_0"]),
        jax.tree_util.tree_leaves(trained[collection]["backbone"]["stage1_0"]))]
    assert max(moved) > 0, collection


@pytest.mark.slow
def test_feature_taps_above_the_cut_train_on_the_same_cached_activations(tiny_config,
                                                                          tmp_path):
  """Taps at and above ``train_from`` (ours): stage0's output is the cached input itself,
  stage1's is computed by the trained block. Cached and image runs learn the same, the
  cache is the untapped run's (taps are not in it), and the checkpoint predicts from images."""
  from clustercnn_jax import data

  preds = {}
  for name, cached, taps in (("full", False, "stage0,stage1"), ("cached", True, "stage0,stage1"),
                             ("untapped", True, "")):
    config = partial(tiny_config.copy_and_resolve_references(), cached, tmp_path, "float32")
    config.model.feature_taps = taps
    train.train_and_evaluate(config, str(tmp_path / name))
    preds[name] = np.load(tmp_path / name / "predictions.npz")["predictions"]
    if name == "cached":
      files = sorted(p.name for p in (tmp_path / "features").iterdir())
  np.testing.assert_allclose(preds["full"], preds["cached"], atol=1e-3)
  assert sorted(p.name for p in (tmp_path / "features").iterdir()) == files
  assert np.abs(preds["untapped"] - preds["cached"]).max() > 1e-3  # the taps change the head

  config, model, variables = load_model(str(tmp_path / "cached"))
  _, test_ds = data.load(config)
  ages = predictor.Predictor(config, model, variables).predict(test_ds.images)
  np.testing.assert_allclose(ages, preds["cached"], atol=1e-3)


@pytest.mark.slow
def test_cached_views_are_the_mirrored_and_zoomed_crops(tiny_config, tmp_path):
  """With flip and scale jitter the cache holds four views of each face; view 1 is the
  frozen blocks' output for the mirror image (the flip the image path would draw)."""
  import jax
  import jax.numpy as jnp

  from clustercnn_jax import data
  from clustercnn_jax.data import preprocess
  from clustercnn_jax.models.model import AgeModel, build_model
  from clustercnn_jax.train_state import create_train_state

  config = partial(tiny_config, True, tmp_path, dtype="float32")
  config.flip, config.scale_jitter = True, 0.1
  config.data.synthetic.num_train = 64
  assert preprocess.views(config) == ((1.0, False), (1.0, True), (0.9, False), (1.1, True))
  model = build_model(config)
  state = create_train_state(jax.random.PRNGKey(0), config, model, 1)
  train_ds, _ = data.load(config)
  (cached,) = feature_cache.feature_datasets(state, model, config, train_ds)
  assert cached.images.shape[:2] == (64, 4) and cached.images.dtype == np.float32

  variables = {"params": state.params, "batch_stats": state.batch_stats}
  frozen = lambda x: np.asarray(model.apply(variables, x, method=AgeModel.frozen_part))
  mirrored = np.ascontiguousarray(train_ds.images[:, :, ::-1])
  eval_input = lambda im: preprocess.preprocess_for(config, im, jax.random.PRNGKey(0), False)
  np.testing.assert_allclose(cached.images[:, 0], frozen(eval_input(train_ds.images)),
                             atol=1e-5)
  np.testing.assert_allclose(cached.images[:, 1], frozen(eval_input(mirrored)), atol=1e-5)
  assert not np.allclose(cached.images[:, 2], cached.images[:, 0], atol=1e-3)
  for v, (zoom, flip) in enumerate(preprocess.views(config)):  # each view in its place
    one_view = preprocess.preprocess_view(config, jnp.asarray(train_ds.images), zoom, flip)
    np.testing.assert_allclose(cached.images[:, v], frozen(one_view), atol=1e-5)

  # The view a step trains on is keyed by the global example index: the same however a
  # batch is split over devices, and every view is drawn.
  x = jnp.asarray(cached.images[:32])
  rng = jax.random.PRNGKey(3)
  whole = inference.cached_view(x, rng, 0)
  halves = jnp.concatenate([inference.cached_view(x[:16], rng, 0),
                            inference.cached_view(x[16:], rng, 16)])
  np.testing.assert_array_equal(whole, halves)
  drawn = [int(np.argmin(np.abs(np.asarray(x[i]) - np.asarray(whole[i])[None]).reshape(4, -1)
                         .max(1))) for i in range(32)]
  assert set(drawn) == {0, 1, 2, 3}

  # eval.flip (test-time mirror): the cached path reads view 1, the image path mirrors the
  # crop; both give the mean of the predictions for the face and for its mirror image.
  config.eval.flip = True
  on_images = config.copy_and_resolve_references()
  on_images.cache.enabled = False
  plain = on_images.copy_and_resolve_references()
  plain.eval.flip = False
  predict = lambda c, im: np.asarray(train.eval_step(
      state, {"images": jnp.asarray(im)}, model=model, config=c,
      inputs=inference.inputs_for(c))["pred"])
  expected = (predict(plain, train_ds.images[:16]) + predict(plain, mirrored[:16])) / 2
  assert not np.allclose(expected, predict(plain, train_ds.images[:16]), atol=1e-3)
  np.testing.assert_allclose(predict(on_images, train_ds.images[:16]), expected, atol=1e-4)
  np.testing.assert_allclose(predict(config, cached.images[:16]), expected, atol=1e-4)

  # eval.zoom (ours) adds the zoomed-in view: the mean of the first three cached views'
  # ages, and the image path, the predictor on crops of the model's input size included,
  # computes the same zoom.
  from clustercnn_jax import losses

  config.eval.zoom = True
  assert preprocess.eval_views(config) == preprocess.views(config)[:3]
  zoom_on_images = config.copy_and_resolve_references()
  zoom_on_images.cache.enabled = False
  every = {**variables, "clusters": state.clusters}
  per_view = [np.asarray(losses.expected_age(model.apply(
      every, jnp.asarray(cached.images[:16, v]), train=False, cached=True)[0]))
      for v in range(4)]
  np.testing.assert_allclose(np.mean(per_view[:2], axis=0), expected, atol=1e-4)
  zoomed = np.mean(per_view[:3], axis=0)
  assert not np.allclose(zoomed, expected, atol=1e-3)
  np.testing.assert_allclose(predict(config, cached.images[:16]), zoomed, atol=1e-4)
  np.testing.assert_allclose(predict(zoom_on_images, train_ds.images[:16]), zoomed, atol=1e-4)
  served = predictor.Predictor(zoom_on_images, model, every)
  np.testing.assert_allclose(served.predict(train_ds.images[:16]), zoomed, atol=1e-4)
  # Loose crops (a margin around the model's input, as real datasets store them): the
  # predictor hands the model the central crop only, and its zoom still matches the cache's.
  from clustercnn_jax.data.dataset import ArrayDataset

  loose = ArrayDataset(np.pad(train_ds.images[:16], ((0, 0), (4, 4), (4, 4), (0, 0)),
                              mode="reflect"), train_ds.ages[:16], None)
  (loose_cached,) = feature_cache.feature_datasets(state, model, config, loose)
  np.testing.assert_allclose(served.predict(loose.images),
                             predict(config, loose_cached.images), atol=1e-4)
