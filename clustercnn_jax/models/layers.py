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
    # Flax's momentum is torch's (1 - momentum): torch's default 0.1 -> 0.9.
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_epsilon,
                     axis_name=self.axis_name if train else None, dtype=self.dtype,
                     name="bn")(x)
    return nn.relu(x)
