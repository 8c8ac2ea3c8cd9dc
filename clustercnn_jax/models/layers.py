"""Building blocks shared by the backbones (torch-compatible conventions)."""

import functools
from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any


Padding = Tuple[Tuple[int, int], Tuple[int, int]]


def _windows(xp: jnp.ndarray, window: int, stride: int, out_hw: Tuple[int, int]):
  """((i, j), the strided slice of ``xp`` that window offset (i, j) reads), row-major."""
  out_h, out_w = out_hw
  for i in range(window):
    for j in range(window):
      yield (i, j), jax.lax.slice(xp, (0, i, j, 0),
                                  (xp.shape[0], i + (out_h - 1) * stride + 1,
                                   j + (out_w - 1) * stride + 1, xp.shape[3]),
                                  (1, stride, stride, 1))


def _pad_neg_inf(x: jnp.ndarray, padding: Padding) -> jnp.ndarray:
  return jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)),
                 constant_values=-jnp.inf)


def _pool_out(size: int, pads: Tuple[int, int], window: int, stride: int) -> int:
  return (size + sum(pads) - window) // stride + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool_slices(x: jnp.ndarray, window: int, stride: int, padding: Padding) -> jnp.ndarray:
  """``nn.max_pool`` (padded cells -inf) as the maximum of k*k strided slices, with a
  backward pass that sends each output's gradient to the first maximum of its window in
  row-major order, as XLA's select-and-scatter does. XLA:CPU lowers select-and-scatter
  to a slow reduce-window over index arrays (benchmarks/conv.py); these slices,
  compares and interior pads are plain fused elementwise loops."""
  return _max_pool_fwd(x, window, stride, padding)[0]


def _max_pool_fwd(x, window, stride, padding):
  xp = _pad_neg_inf(x, padding)
  out_hw = tuple(_pool_out(n, p, window, stride) for n, p in zip(x.shape[1:3], padding))
  y = functools.reduce(jnp.maximum, (w for _, w in _windows(xp, window, stride, out_hw)))
  return y, (x, y)


def _max_pool_bwd(window, stride, padding, residuals, dy):
  x, y = residuals
  xp = _pad_neg_inf(x, padding)
  taken = jnp.zeros(y.shape, bool)
  dxp = jnp.zeros(xp.shape, dy.dtype)
  for (i, j), w in _windows(xp, window, stride, y.shape[1:3]):
    hit = (w == y) & ~taken
    taken = taken | hit
    spread = [(0, 0, 0)] + [(o, full - o - (n - 1) * stride - 1, stride - 1)
                            for o, full, n in ((i, xp.shape[1], y.shape[1]),
                                               (j, xp.shape[2], y.shape[2]))] + [(0, 0, 0)]
    dxp = dxp + jax.lax.pad(jnp.where(hit, dy, 0).astype(dy.dtype), jnp.zeros((), dy.dtype),
                            spread)
  (top, _), (left, _) = padding
  return (dxp[:, top:top + x.shape[1], left:left + x.shape[2]],)


max_pool_slices.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool_ceil(x: jnp.ndarray, window: int, stride: int, padding: int = 0,
                  impl: str = "auto") -> jnp.ndarray:
  """Max-pooling with PyTorch's ``ceil_mode=True`` output size.

  Torchvision's GoogLeNet pools with ceil_mode, so its feature maps are one
  pixel larger than Flax's floor-mode pooling would give; matching it is what
  lets torchvision checkpoints load. Padded cells hold -inf. ``impl``: 'slices'
  (``max_pool_slices``, the fast one on CPU), 'xla' (``nn.max_pool``), or 'auto'
  (slices on CPU, XLA's elsewhere).
  """
  pads = []
  for size in x.shape[1:3]:
    padded = size + 2 * padding
    out = -(-(padded - window) // stride) + 1  # ceil division
    # PyTorch drops a last window that would start inside the right padding.
    if (out - 1) * stride >= size + padding:
      out -= 1
    extra = max((out - 1) * stride + window - padded, 0)
    pads.append((padding, padding + extra))
  if impl == "auto":
    impl = "slices" if jax.default_backend() == "cpu" else "xla"
  if impl == "slices":
    return max_pool_slices(x, window, stride, tuple(pads))
  if impl == "xla":
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=pads)
  raise ValueError(f"impl={impl!r}: use 'auto', 'slices' or 'xla'.")


def batch_norm(train: bool, axis_name: Optional[str], dtype: Dtype, name: str,
               epsilon: float = 1e-5, torch_momentum: float = 0.1) -> nn.BatchNorm:
  """BatchNorm with torch's conventions: Flax's momentum is torch's (1 - momentum).

  ``axis_name`` syncs batch statistics across devices in training only.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=1.0 - torch_momentum,
                      epsilon=epsilon, axis_name=axis_name if train else None, dtype=dtype,
                      name=name)


def relu6(x: jnp.ndarray) -> jnp.ndarray:
  return jnp.clip(x, 0.0, 6.0)


def pool_and_classify(module: nn.Module, x: jnp.ndarray, train: bool, head_name: str) -> jnp.ndarray:
  """Global average pooling; then, if ``module.num_classes``, dropout and the ImageNet head.

  Call from inside the module's compact ``__call__`` (the head is its submodule).
  """
  x = jnp.mean(x, axis=(1, 2))
  if module.num_classes is None:
    return x
  x = nn.Dropout(module.dropout_rate, deterministic=not train)(x)
  return nn.Dense(module.num_classes, dtype=module.dtype, name=head_name)(x)


class ConvBN(nn.Module):
  """Conv (no bias) -> BatchNorm -> ReLU, torchvision's ``BasicConv2d``."""

  features: int
  kernel: int
  stride: int = 1
  padding: int = 0
  bn_epsilon: float = 1e-3
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  conv_impl: str = "auto"  # Conv's kernel gradient: 'auto' | 'matmul' | 'xla'

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    p = self.padding
    x = Conv(self.features, self.kernel, self.stride, padding=((p, p), (p, p)),
             impl=self.conv_impl, dtype=self.dtype, name="conv")(x)
    x = batch_norm(train, self.axis_name, self.dtype, "bn", epsilon=self.bn_epsilon)(x)
    return nn.relu(x)


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
  """TensorFlow's "SAME" padding of one spatial dimension: (before, after).

  Asymmetric at stride 2 on even sizes (the extra pixel goes after), which is
  what TF-trained checkpoints such as EfficientNet-Lite's expect.
  """
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def depthwise_conv(x: jnp.ndarray, kernel: jnp.ndarray, stride: int,
                   padding: Sequence[Tuple[int, int]]) -> jnp.ndarray:
  """A depthwise convolution as k*k shifted, strided slices, each scaled per channel, summed.

  ``kernel`` is (k, k, 1, C), the layout of ``nn.Conv(C, feature_group_count=C)``.
  Same numbers as the grouped convolution; on XLA:CPU, which lowers a grouped
  convolution to a slow generic loop, several times faster forward and
  backward (benchmarks/conv.py).
  """
  k = kernel.shape[0]
  x = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  out_h = (x.shape[1] - k) // stride + 1
  out_w = (x.shape[2] - k) // stride + 1
  return functools.reduce(jnp.add, (window * kernel[i, j, 0] for (i, j), window
                                    in _windows(x, k, stride, (out_h, out_w))))


def depthwise_matrix(size: Tuple[int, int], kernel_size: int, stride: int,
                     padding: Sequence[Tuple[int, int]]) -> np.ndarray:
  """(H*W, H_out*W_out, k*k) 0/1: which kernel tap links input pixel s to output pixel t.

  A constant of the layer's geometry (numpy, folded into the compiled step)."""
  h, w = size
  k = kernel_size
  out_h = (h + sum(padding[0]) - k) // stride + 1
  out_w = (w + sum(padding[1]) - k) // stride + 1
  m = np.zeros((h * w, out_h * out_w, k * k), np.float32)
  for a in range(out_h):
    for b in range(out_w):
      for i in range(k):
        for j in range(k):
          y, x = a * stride + i - padding[0][0], b * stride + j - padding[1][0]
          if 0 <= y < h and 0 <= x < w:
            m[y * w + x, a * out_w + b, i * k + j] = 1.0
  return m


def depthwise_conv_matmul(x: jnp.ndarray, kernel: jnp.ndarray, stride: int,
                          padding: Sequence[Tuple[int, int]]) -> jnp.ndarray:
  """A depthwise convolution as one (H*W, H_out*W_out) matrix per channel, applied to the
  flattened feature map: a batched matmul over channels.

  For small feature maps (EfficientNet's and MobileNet's last stages, 4x4 to 8x8) the
  extra multiplications by zero cost less than they save: XLA:CPU computes the
  backward pass of these batched matmuls 3-7x faster than that of the shifted slices,
  whose kernel gradient is 25 column reductions (benchmarks/conv.py).
  """
  n, h, w, c = x.shape
  k = kernel.shape[0]
  m = depthwise_matrix((h, w), k, stride, padding)
  out_hw = m.shape[1]
  per_channel = jnp.einsum("stk,kc->cst", jnp.asarray(m, x.dtype), kernel.reshape(k * k, c))
  y = jnp.einsum("nsc,cst->ntc", x.reshape(n, h * w, c), per_channel)
  out_h = (h + sum(padding[0]) - k) // stride + 1
  return y.reshape(n, out_h, out_hw // out_h, c)


# 'auto' on CPU: the matmul form up to this many input pixels (8x8), shifted slices above.
MATMUL_MAX_PIXELS = 64


class DepthwiseConv(nn.Module):
  """``nn.Conv(C, (k, k), feature_group_count=C, use_bias=False)``, the same parameter
  ('kernel', (k, k, 1, C), same initialiser) and results, computed by ``impl``:

  'slices'  ``depthwise_conv`` above (the fast one on CPU for large feature maps);
  'matmul'  ``depthwise_conv_matmul`` (the fast one on CPU for small ones, in training);
  'grouped' XLA's grouped convolution (cuDNN/TPU kernels on accelerators);
  'auto'    on CPU 'matmul' in training up to MATMUL_MAX_PIXELS input pixels, else
            'slices' (forward alone, the slices are 2-6x faster there too);
            'grouped' elsewhere.

  ``train``: whether this call will be differentiated (only 'auto' looks at it).

  ``padding``: 'SAME' (TensorFlow's, asymmetric at stride 2) or 'SYMMETRIC' ((k-1)/2, PyTorch's).
  """

  kernel_size: int
  stride: int = 1
  padding: str = "SYMMETRIC"
  impl: str = "auto"
  dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = True) -> jnp.ndarray:
    k, s, channels = self.kernel_size, self.stride, x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (k, k, 1, channels), jnp.float32)
    if self.padding == "SAME":
      pads = [same_padding(n, k, s) for n in x.shape[1:3]]
    elif self.padding == "SYMMETRIC":
      pads = [((k - 1) // 2, (k - 1) // 2)] * 2
    else:
      raise ValueError(f"padding={self.padding!r}: use 'SAME' or 'SYMMETRIC'.")
    impl = self.impl
    if impl == "auto":
      if jax.default_backend() != "cpu":
        impl = "grouped"
      else:
        small = x.shape[1] * x.shape[2] <= MATMUL_MAX_PIXELS
        impl = "matmul" if small and train else "slices"
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if impl == "slices":
      return depthwise_conv(x, kernel, s, pads)
    if impl == "matmul":
      return depthwise_conv_matmul(x, kernel, s, pads)
    if impl == "grouped":
      return jax.lax.conv_general_dilated(
          x, kernel, (s, s), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
          feature_group_count=channels)
    raise ValueError(f"impl={self.impl!r}: use 'auto', 'slices', 'matmul' or 'grouped'.")


def _conv(x: jnp.ndarray, kernel: jnp.ndarray, stride: int, padding: Padding) -> jnp.ndarray:
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def kernel_gradient(x: jnp.ndarray, dy: jnp.ndarray, kernel_size: int, stride: int,
                    padding: Padding) -> jnp.ndarray:
  """d loss / d kernel of a convolution as k*k matmuls of shifted, strided input slices
  with the output gradient: (k, k, C_in, C_out).

  XLA:CPU computes this "backward-filter" convolution as a convolution whose
  kernel is the whole feature map, several times slower than the forward pass
  (benchmarks/conv.py); k*k plain matmuls do the same arithmetic several times faster.
  """
  k = kernel_size
  xp = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  grads = [jnp.einsum("bhwc,bhwo->co", window, dy,
                      preferred_element_type=jnp.float32).astype(x.dtype)
           for _, window in _windows(xp, k, stride, dy.shape[1:3])]
  return jnp.stack(grads).reshape((k, k) + grads[0].shape)


def pointwise_conv(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """A 1x1 convolution at stride 1 as one (N*H*W, C_in) x (C_in, C_out) matmul.

  Flattened to 2-D, its backward pass is two plain matmuls too, which XLA:CPU runs faster
  than a 4-D einsum's (docs/speed.md).
  """
  return (x.reshape(-1, x.shape[-1]) @ kernel[0, 0]).reshape(x.shape[:-1] + (-1,))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_matmul_kernel_grad(x: jnp.ndarray, kernel: jnp.ndarray, stride: int,
                            padding: Padding) -> jnp.ndarray:
  """A convolution whose kernel gradient is ``kernel_gradient``; the forward pass and the
  input gradient are XLA's own."""
  return _conv(x, kernel, stride, padding)


def _conv_fwd(x, kernel, stride, padding):
  return _conv(x, kernel, stride, padding), (x, kernel)


def _conv_bwd(stride, padding, residuals, dy):
  x, kernel = residuals
  _, input_vjp = jax.vjp(lambda x: _conv(x, kernel, stride, padding), x)
  return input_vjp(dy)[0], kernel_gradient(x, dy, kernel.shape[0], stride, padding)


conv_matmul_kernel_grad.defvjp(_conv_fwd, _conv_bwd)


class Conv(nn.Module):
  """``nn.Conv(features, (k, k), stride, padding, use_bias=False)``: the same parameter
  ('kernel', (k, k, C_in, C_out), same initialiser) and numbers, with the kernel
  gradient computed by ``impl``:

  'matmul' ``kernel_gradient`` (k*k matmuls; the fast one on CPU);
  'xla'    XLA's backward-filter convolution (cuDNN/TPU kernels on accelerators);
  'dot'    a 1x1 convolution at stride 1 as one (N*H*W, C_in) x (C_in, C_out) matmul,
           forward and backward;
  'auto'   on CPU 'dot' for every 1x1 convolution at stride 1 (XLA:CPU's convolution is
           slower there, both ways, expansions included: benchmarks/conv.py) and 'matmul'
           otherwise; 'xla' elsewhere.
  """

  features: int
  kernel_size: int
  stride: int = 1
  padding: Any = ((0, 0), (0, 0))  # ((top, bottom), (left, right))
  impl: str = "auto"
  dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features),
                        jnp.float32)
    padding = tuple(tuple(int(p) for p in pair) for pair in self.padding)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    impl = self.impl
    pointwise = k == 1 and self.stride == 1 and not any(any(p) for p in padding)
    if impl == "auto":
      impl = "xla"
      if jax.default_backend() == "cpu":
        impl = "dot" if pointwise else "matmul"
    if impl == "matmul":
      return conv_matmul_kernel_grad(x, kernel, self.stride, padding)
    if impl == "xla":
      return _conv(x, kernel, self.stride, padding)
    if impl == "dot":
      if not pointwise:
        raise ValueError("impl='dot' is for 1x1 convolutions at stride 1 without padding.")
      return pointwise_conv(x, kernel)
    raise ValueError(f"impl={self.impl!r}: use 'auto', 'matmul', 'xla' or 'dot'.")
