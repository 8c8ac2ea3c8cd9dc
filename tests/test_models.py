import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax import models
from clustercnn_jax.models.googlenet import GoogLeNet
from clustercnn_jax.models.layers import max_pool_ceil


def param_count(module, size):
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0),
                                                 jnp.zeros((1, size, size, 3)), train=False))
  return sum(x.size for x in jax.tree_util.tree_leaves(variables["params"])), variables


def test_googlenet_has_torchvision_parameter_count():
  n, _ = param_count(GoogLeNet(num_classes=1000), 224)
  assert n == 6_624_904


@pytest.mark.parametrize("depth,size,dim", [(1.0, 128, 1024), (0.5, 72, 512)])
def test_googlenet_features(depth, size, dim):
  m = GoogLeNet(depth=depth)
  out = jax.eval_shape(lambda: m.init_with_output(jax.random.PRNGKey(0),
                                                  jnp.zeros((2, size, size, 3)), train=False)[0])
  assert out.shape == (2, dim)


def test_googlenet_half_depth_is_smaller():
  full, _ = param_count(GoogLeNet(), 72)
  half, _ = param_count(GoogLeNet(depth=0.5), 72)
  assert half < full / 2


def torch_ceil_pool_size(size, k, s, p):
  out = -(-(size + 2 * p - k) // s) + 1
  if (out - 1) * s >= size + p:
    out -= 1
  return out


@pytest.mark.parametrize("size,k,s,p", [(112, 3, 2, 0), (57, 3, 2, 0), (14, 2, 2, 0),
                                        (7, 3, 1, 1), (36, 3, 2, 0), (9, 2, 2, 0)])
def test_ceil_mode_pool_matches_torch_formula_and_numpy(size, k, s, p):
  x = np.random.default_rng(0).normal(size=(1, size, size, 1)).astype(np.float32)
  y = np.asarray(max_pool_ceil(jnp.asarray(x), k, s, p))
  n = torch_ceil_pool_size(size, k, s, p)
  assert y.shape == (1, n, n, 1)
  xp = np.pad(x, ((0, 0), (p, p + k), (p, p + k), (0, 0)), constant_values=-np.inf)
  ref = np.array([[xp[0, i * s:i * s + k, j * s:j * s + k, 0].max() for j in range(n)]
                  for i in range(n)])
  np.testing.assert_array_equal(y[0, ..., 0], ref)


def test_registry():
  assert isinstance(models.get_backbone("small_cnn"), models.SmallCNN)
  with pytest.raises(ValueError, match="Unknown backbone 'resnet9'.*small_cnn"):
    models.get_backbone("resnet9")
  custom = models.get_backbone("mine", registry={"mine": models.SmallCNN}, widths=(4,))
  assert custom.widths == (4,)
