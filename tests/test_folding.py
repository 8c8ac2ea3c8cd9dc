"""BatchNorm folded into the convolution before it (models/folding.py): the folded kernel and
bias against NumPy, and the same outputs as the unfolded network for every backbone."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax.models import folding, get_backbone
from clustercnn_jax.models.layers import ConvBN


def _batch_norm_paths(variables):
  return {tuple(k.key for k in path[:-1])
          for path, _ in jax.tree_util.tree_flatten_with_path(variables["batch_stats"])[0]}


def test_the_folded_kernel_and_bias_are_the_batch_norm_s_affine_map():
  layer = ConvBN(5, 3, padding=1, bn_epsilon=1e-3)
  x = jnp.asarray(np.random.RandomState(0).normal(size=(2, 6, 6, 4)), jnp.float32)
  variables = folding.random_statistics(layer.init(jax.random.PRNGKey(0), x, train=False))
  apply = lambda v, x: layer.apply(v, x, train=False)
  folded, paths = folding.fold_batch_norms(apply, variables, x)

  assert paths == {("bn",)}
  kernel = np.asarray(variables["params"]["conv"]["kernel"])
  bn, stats = variables["params"]["bn"], variables["batch_stats"]["bn"]
  multiplier = np.asarray(bn["scale"]) / np.sqrt(np.asarray(stats["var"]) + 1e-3)
  np.testing.assert_allclose(folded["params"]["conv"]["kernel"], kernel * multiplier,
                             rtol=1e-6)
  np.testing.assert_allclose(folded["params"]["bn"]["bias"],
                             np.asarray(bn["bias"]) - np.asarray(stats["mean"]) * multiplier,
                             rtol=1e-6, atol=1e-7)
  # The same outputs, run as a bias add or through the (now trivial) BatchNorm.
  expected = np.asarray(apply(variables, x))
  np.testing.assert_allclose(folding.run_folded(apply, paths)(folded, x), expected, atol=1e-5)
  np.testing.assert_allclose(apply(folded, x), expected, atol=1e-5)
  # The unfolded variables under ``folded`` skip the BatchNorm's affine map: it does run
  # as the bias add.
  assert np.abs(np.asarray(folding.run_folded(apply, paths)(variables, x)) - expected).max() > 0.1


def test_training_mode_batch_norm_is_left_alone():
  layer = ConvBN(5, 3, padding=1)
  x = jnp.asarray(np.random.RandomState(0).normal(size=(4, 6, 6, 4)), jnp.float32)
  variables = folding.random_statistics(layer.init(jax.random.PRNGKey(0), x, train=False))
  train = lambda v, x: layer.apply(v, x, train=True, mutable=["batch_stats"])[0]
  assert folding.find_pairs(train, variables, x) == []
  with folding.folded({("bn",)}):
    got = train(variables, x)
  np.testing.assert_allclose(got, train(variables, x), atol=1e-6)


def test_a_batch_norm_not_after_a_convolution_is_not_folded():
  class DenseBN(nn.Module):
    @nn.compact
    def __call__(self, x):
      return nn.BatchNorm(use_running_average=True)(nn.Dense(3, use_bias=False)(x))

  x = jnp.ones((2, 4))
  variables = DenseBN().init(jax.random.PRNGKey(0), x)
  assert folding.find_pairs(lambda v, x: DenseBN().apply(v, x), variables, x) == []


@pytest.mark.parametrize("name,kwargs", [("efficientnet_lite0", {}), ("mobilenet_v2", {}),
                                         ("googlenet", {"depth": 0.25}), ("small_cnn", {})])
def test_every_batch_norm_of_each_backbone_folds_with_the_same_features(name, kwargs):
  net = get_backbone(name, **kwargs)  # GoogLeNet's blocks are alike: two of them, to compile less
  x = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
  variables = folding.random_statistics(jax.jit(lambda x: net.init(jax.random.PRNGKey(0), x,
                                                            train=False))(x))
  apply = lambda v, x: net.apply(v, x, train=False)
  folded, paths = folding.fold_batch_norms(apply, variables,
                                           jax.ShapeDtypeStruct(x.shape, x.dtype))
  assert paths == _batch_norm_paths(variables)
  expected = np.asarray(jax.jit(apply)(variables, x))
  got = np.asarray(jax.jit(folding.run_folded(apply, paths))(folded, x))
  scale = np.abs(expected).max()
  assert np.abs(got - expected).max() <= 1e-5 * scale, np.abs(got - expected).max() / scale
