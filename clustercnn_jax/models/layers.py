"""Building blocks shared by the backbones (torch-compatible conventions)."""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any


def max_pool_ceil(x: jnp.ndarray, window: int, stride: int, padding: int = 0) -> jnp.ndarray:
  """Max-pooling with PyTorch's ``ceil_mode=True`` output size.

  Torchvision's GoogLeNet pools with ceil_mode, so its feature maps are one
  pixel larger than Flax's floor-mode pooling would give; matching it is what
  lets torchvision checkpoints load (issue 4). Padded cells hold -inf.
  """
  out_sizes = []
  pads = []
  for size in x.shape[1:3]:
    padded = size + 2 * padding
    out = -(-(padded - window) // stride) + 1  # ceil division
    # PyTorch drops a last window that would start inside the right padding.
    if (out - 1) * stride >= size + padding:
      out -= 1
    extra = max((out - 1) * stride + window - padded, 0)
    out_sizes.append(out)
    pads.append((padding, padding + extra))
  return nn.max_pool(x, (window, window), strides=(stride, stride), padding=pads)


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

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    p = self.padding
    x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                padding=[(p, p), (p, p)], use_bias=False, dtype=self.dtype, name="conv")(x)
    x = batch_norm(train, self.axis_name, self.dtype, "bn", epsilon=self.bn_epsilon)(x)
    return nn.relu(x)
