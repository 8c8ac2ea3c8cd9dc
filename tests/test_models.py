import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax import models
from clustercnn_jax.models.googlenet import GoogLeNet
from clustercnn_jax.models.layers import Conv, DepthwiseConv, max_pool_ceil, same_padding


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


@pytest.mark.parametrize("shape,k,s,p", [((2, 17, 17, 3), 3, 2, 0), ((2, 8, 8, 5), 3, 1, 1),
                                         ((1, 9, 9, 2), 2, 2, 0), ((2, 12, 10, 3), 3, 2, 0)])
def test_max_pool_slices_give_select_and_scatters_values_and_gradient(shape, k, s, p):
  """Ties included (ReLU zeros, repeated values): each gradient goes to the first maximum
  of its window, as with XLA's select-and-scatter."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(np.maximum(np.round(rng.normal(size=shape) * 2) / 2, 0).astype(np.float32))
  ct = jnp.asarray(rng.normal(size=max_pool_ceil(x, k, s, p, impl="xla").shape)
                   .astype(np.float32))
  pool = {impl: (lambda x, impl=impl: max_pool_ceil(x, k, s, p, impl=impl))
          for impl in ("xla", "slices")}
  np.testing.assert_array_equal(pool["slices"](x), pool["xla"](x))
  grads = {impl: jax.grad(lambda x, f=f: jnp.sum(f(x) * ct))(x) for impl, f in pool.items()}
  np.testing.assert_allclose(grads["slices"], grads["xla"], atol=1e-6)
  assert float(jnp.sum(grads["slices"] != 0)) == float(jnp.sum(grads["xla"] != 0))


def test_registry():
  assert isinstance(models.get_backbone("small_cnn"), models.SmallCNN)
  with pytest.raises(ValueError, match="Unknown backbone 'resnet9'.*small_cnn"):
    models.get_backbone("resnet9")
  custom = models.get_backbone("mine", registry={"mine": models.SmallCNN}, widths=(4,))
  assert custom.widths == (4,)


# --- Depthwise convolutions: shifted slices and matmuls against XLA's grouped convolution

@pytest.mark.parametrize("impl", ["slices", "matmul"])
@pytest.mark.parametrize("size", [(8, 8), (5, 7)])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 1), (5, 2)])
@pytest.mark.parametrize("padding", ["SAME", "SYMMETRIC"])
def test_depthwise_formulations_equal_the_grouped_convolution(impl, size, kernel, stride,
                                                               padding):
  """Same parameters, same outputs and same gradients (input and kernel) to 1e-5."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, *size, 6))
  fast = DepthwiseConv(kernel, stride, padding=padding, impl=impl)
  ref = DepthwiseConv(kernel, stride, padding=padding, impl="grouped")
  params = fast.init(jax.random.PRNGKey(1), x)
  assert jax.tree_util.tree_map(jnp.shape, params) == \
      jax.tree_util.tree_map(jnp.shape, ref.init(jax.random.PRNGKey(1), x))
  w = jax.random.normal(jax.random.PRNGKey(2), fast.apply(params, x).shape)
  loss = lambda m: lambda p, x: jnp.sum(m.apply(p, x) * w)
  np.testing.assert_allclose(fast.apply(params, x), ref.apply(params, x), atol=1e-5)
  g_fast = jax.grad(loss(fast), argnums=(0, 1))(params, x)
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_ref)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)


def test_depthwise_symmetric_equals_the_former_flax_grouped_conv():
  """The formulation MobileNetV2 used before: nn.Conv with feature_group_count, pad (k-1)/2."""
  import flax.linen as nn

  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 4))
  old = nn.Conv(4, (3, 3), (2, 2), padding=[(1, 1)] * 2, feature_group_count=4, use_bias=False)
  params = old.init(jax.random.PRNGKey(1), x)
  new = DepthwiseConv(3, 2, padding="SYMMETRIC", impl="slices")
  assert jax.tree_util.tree_map(jnp.shape, new.init(jax.random.PRNGKey(1), x)) == \
      jax.tree_util.tree_map(jnp.shape, params)
  np.testing.assert_allclose(new.apply(params, x), old.apply(params, x), atol=1e-5)


@pytest.mark.parametrize("size,kernel,stride,expected", [
    (224, 3, 2, (0, 1)), (112, 5, 2, (1, 2)), (7, 5, 2, (2, 2)), (14, 3, 1, (1, 1)),
    (15, 3, 2, (1, 1))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
  assert same_padding(size, kernel, stride) == expected
  # ... and what XLA's own "SAME" does.
  import flax.linen as nn

  x = jax.random.normal(jax.random.PRNGKey(0), (1, size, size, 2))
  a = nn.Conv(2, (kernel, kernel), (stride, stride), padding="SAME")
  p = a.init(jax.random.PRNGKey(1), x)
  b = nn.Conv(2, (kernel, kernel), (stride, stride), padding=[expected] * 2)
  np.testing.assert_allclose(a.apply(p, x), b.apply(p, x), atol=1e-5)


# --- Convolutions: kernel gradient as matmuls against XLA's backward-filter convolution ----

@pytest.mark.parametrize("kernel,stride,padding,impl", [
    (3, 1, ((1, 1), (1, 1)), "matmul"), (1, 1, ((0, 0), (0, 0)), "matmul"),
    (7, 2, ((3, 3), (3, 3)), "matmul"), (3, 2, ((0, 1), (0, 1)), "matmul"),
    (1, 1, ((0, 0), (0, 0)), "dot")])
def test_conv_formulations_equal_flax_conv(kernel, stride, padding, impl):
  """Same parameters as nn.Conv (same init), same outputs, same gradients to 1e-4."""
  import flax.linen as nn

  x = jax.random.normal(jax.random.PRNGKey(0), (3, 10, 10, 5))
  ref = nn.Conv(4, (kernel, kernel), (stride, stride), padding=list(padding), use_bias=False)
  fast = Conv(4, kernel, stride, padding=padding, impl=impl)
  params = ref.init(jax.random.PRNGKey(1), x)
  assert_trees_equal = lambda a, b: [np.testing.assert_array_equal(u, v) for u, v in
                                     zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))]
  assert_trees_equal(fast.init(jax.random.PRNGKey(1), x), params)
  w = jax.random.normal(jax.random.PRNGKey(2), ref.apply(params, x).shape)
  loss = lambda m: lambda p, x: jnp.sum(m.apply(p, x) * w)
  np.testing.assert_allclose(fast.apply(params, x), ref.apply(params, x), atol=1e-5)
  for a, b in zip(jax.tree_util.tree_leaves(jax.grad(loss(fast), argnums=(0, 1))(params, x)),
                  jax.tree_util.tree_leaves(jax.grad(loss(ref), argnums=(0, 1))(params, x))):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)


def test_auto_depthwise_takes_the_matmul_form_only_where_it_is_differentiated():
  """On CPU small maps take the matmul form in training (its backward pass is the fast one)
  and the shifted slices in inference (their forward pass is)."""
  x = jnp.ones((1, 4, 4, 8))
  m = DepthwiseConv(3)
  params = m.init(jax.random.PRNGKey(0), x)
  jaxpr = lambda train: str(jax.make_jaxpr(lambda p: m.apply(p, x, train))(params))
  assert "dot_general" in jaxpr(True)
  assert "dot_general" not in jaxpr(False)


def test_auto_convolution_is_a_dot_for_every_pointwise_convolution():
  """On CPU every 1x1 convolution at stride 1 is a plain matmul (projections and expansions:
  faster there, forward and backward: benchmarks/conv.py); any larger kernel, or a strided
  one, stays XLA's convolution."""
  def ops(features, kernel, channels, stride=1):
    x = jnp.ones((1, 8, 8, channels))
    m = Conv(features, kernel, stride)
    return str(jax.make_jaxpr(m.apply)(m.init(jax.random.PRNGKey(0), x), x))

  for features in (4, 16):
    assert "conv_general_dilated" not in ops(features, 1, 8)
  assert "conv_general_dilated" in ops(4, 1, 8, stride=2)
  assert "conv_general_dilated" in ops(4, 3, 8)
  assert "conv_general_dilated" in ops(32, 3, 3, stride=2)
  with pytest.raises(ValueError, match="1x1"):
    m = Conv(4, 3, impl="dot")
    m.init(jax.random.PRNGKey(0), jnp.ones((1, 4, 4, 8)))


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,size", [
    ("googlenet", {"depth": 0.5}, 64), ("efficientnet_lite0", {}, 64),
    ("mobilenet_v2", {}, 64), ("small_cnn", {"widths": (8, 16)}, 32)])
def test_blocks_own_every_parameter_and_compose(name, kwargs, size):
  """Partial fine-tuning runs a backbone in two parts (models/blocks.py): every variable
  belongs to one block, and the lower part then the upper part is the whole network."""
  from clustercnn_jax.models import blocks

  backbone = models.get_backbone(name, **kwargs)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, size, size, 3))
  variables = jax.jit(lambda x: backbone.init(jax.random.PRNGKey(0), x, train=False))(x)
  listed = [p for b in backbone.blocks(train=False) for p in b.params]
  assert len(listed) == len(set(listed))
  assert set(variables["params"]) <= set(listed)
  names = blocks.names(backbone.blocks(train=False))
  split = names[len(names) // 2]

  @jax.jit
  def whole_and_parts(x):
    lower = backbone.apply(variables, x, train=False, stop=split)
    return (backbone.apply(variables, x, train=False), lower,
            backbone.apply(variables, lower, train=False, start=split))

  whole, lower, upper = whole_and_parts(x)
  assert lower.ndim == 4  # an activation map, not yet pooled
  np.testing.assert_allclose(upper, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name,size,taps,dims", [
    ("small_cnn", 32, ("stage0",), (16, 8)),
    ("efficientnet_lite0", 64, ("_blocks_7", "_blocks_3"), (1280, 40, 80))])
def test_feature_taps_append_the_spatial_means_of_the_tapped_blocks(name, size, taps, dims):
  """model.feature_taps (ours): x is the backbone's features, then each tapped block's
  output averaged over space, in block order whatever the order given."""
  from clustercnn_jax.models import blocks
  from clustercnn_jax.cluster import ClusterModule
  from clustercnn_jax.models.model import AgeModel

  kwargs = {"widths": (8, 16)} if name == "small_cnn" else {}
  backbone = models.get_backbone(name, **kwargs)
  model = AgeModel(backbone=backbone, cluster=ClusterModule(3, 4), num_ages=10,
                   use_cluster=False, freeze_backbone=True, feature_taps=",".join(taps))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, size, size, 3))
  variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x, train=False))(x)
  tapped = np.asarray(jax.jit(lambda x: model.apply(
      variables, x, method=AgeModel.frozen_part))(x))
  assert tapped.shape == (2, sum(dims))

  names = blocks.names(backbone.blocks(train=False))
  plain = {"params": variables["params"]["backbone"],
           **({"batch_stats": variables["batch_stats"]["backbone"]}
              if "batch_stats" in variables else {})}
  expected = [np.asarray(backbone.apply(plain, x, train=False))]
  for tap in sorted(taps, key=names.index):
    after = names[names.index(tap) + 1]
    y = np.asarray(backbone.apply(plain, x, train=False, stop=after))
    expected.append(y.mean((1, 2)))
  np.testing.assert_allclose(tapped, np.concatenate(expected, axis=1), rtol=1e-5, atol=1e-5)
  # Without taps the features are the backbone's alone, as before.
  untapped = AgeModel(backbone=backbone, cluster=ClusterModule(3, 4), num_ages=10,
                      use_cluster=False, freeze_backbone=True)
  np.testing.assert_allclose(untapped.apply(variables, x, method=AgeModel.frozen_part),
                             expected[0], rtol=1e-5, atol=1e-5)


def test_feature_taps_above_a_cut_pool_the_trained_blocks_outputs():
  """With ``train_from`` the tapped features come from the cached input of the cut (for
  the block just before it) and from the trained blocks: the same numbers as tapping the
  whole backbone on images."""
  from clustercnn_jax.cluster import ClusterModule
  from clustercnn_jax.models.model import AgeModel

  backbone = models.get_backbone("small_cnn", widths=(8, 16))
  kwargs = dict(backbone=backbone, cluster=ClusterModule(3, 4), num_ages=10,
                use_cluster=False, feature_taps="stage1,stage0")
  whole = AgeModel(freeze_backbone=True, **kwargs)
  cut = AgeModel(train_from="stage1", **kwargs)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
  variables = jax.jit(lambda x: cut.init(jax.random.PRNGKey(0), x, train=False))(x)
  expected = whole.apply(variables, x, method=AgeModel.frozen_part)
  lower = cut.apply(variables, x, method=AgeModel.frozen_part)
  assert lower.ndim == 4  # the cut caches activations, not features
  got = cut.apply(variables, lower, train=False, cached=True, method=AgeModel.embed)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  assert got.shape[-1] == 16 + 8 + 16
