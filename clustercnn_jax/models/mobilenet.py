"""MobileNetV2 (Sandler et al.) in torchvision's layout.

Flax names follow torchvision's state-dict keys with "_<n>" for ".<n>"
(``features_1/conv_0_0`` is ``features.1.conv.0.0``), so torchvision's
ImageNet checkpoint loads by name (clustercnn_jax.pretrained). Depthwise
convolutions are ``layers.DepthwiseConv`` (PyTorch's symmetric padding; fast on CPU).
"""

from typing import List, Optional

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.blocks import Block, run_blocks
from clustercnn_jax.models.layers import (Conv, DepthwiseConv, Dtype, batch_norm,
                                          pool_and_classify, relu6)

# (expansion t, channels c, repeats n, first stride s), as in torchvision.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU6(nn.Module):
  """torchvision's Conv2dNormActivation: children ``_0`` (conv) and ``_1`` (BN)."""

  features: int
  kernel: int = 3
  stride: int = 1
  depthwise: bool = False
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool):
    p = (self.kernel - 1) // 2
    if self.depthwise:
      x = DepthwiseConv(self.kernel, self.stride, padding="SYMMETRIC", impl=self.depthwise_impl,
                        dtype=self.dtype, name="_0")(x, train)
    else:
      x = Conv(self.features, self.kernel, self.stride, padding=((p, p), (p, p)),
               dtype=self.dtype, name="_0")(x)
    return relu6(batch_norm(train, self.axis_name, self.dtype, "_1")(x))


class InvertedResidual(nn.Module):
  features: int
  stride: int
  expand: int
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool):
    hidden = x.shape[-1] * self.expand
    kw = dict(axis_name=self.axis_name, dtype=self.dtype)
    i, y = 0, x
    if self.expand != 1:
      y = ConvBNReLU6(hidden, 1, name="conv_0", **kw)(y, train)
      i = 1
    y = ConvBNReLU6(hidden, 3, self.stride, depthwise=True, depthwise_impl=self.depthwise_impl,
                    name=f"conv_{i}", **kw)(y, train)
    y = Conv(self.features, 1, dtype=self.dtype, name=f"conv_{i + 1}")(y)
    y = batch_norm(train, self.axis_name, self.dtype, f"conv_{i + 2}")(y)
    if self.stride == 1 and x.shape[-1] == self.features:
      y = x + y
    return y


class MobileNetV2(nn.Module):
  """Returns pooled 1280-d features (B, 1280), or ImageNet logits when ``num_classes``."""

  num_classes: Optional[int] = None
  dropout_rate: float = 0.2
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "auto"  # layers.DepthwiseConv: 'auto' | 'slices' | 'matmul' | 'grouped'

  def blocks(self, train: bool) -> List[Block]:
    """features_0 .. features_18 (torchvision's), pool (see models/blocks.py)."""
    kw = dict(axis_name=self.axis_name, dtype=self.dtype)
    out = [Block("features_0", ("features_0",), lambda x: ConvBNReLU6(
        32, 3, 2, name="features_0", **kw)(x.astype(self.dtype), train))]
    index = 1
    for t, c, n, s in SETTINGS:
      for r in range(n):
        name = f"features_{index}"
        out.append(Block(name, (name,), lambda x, name=name, args=(c, s if r == 0 else 1, t):
                         InvertedResidual(*args, depthwise_impl=self.depthwise_impl, name=name,
                                          **kw)(x, train)))
        index += 1
    name = f"features_{index}"
    out.append(Block(name, (name,), lambda x: ConvBNReLU6(1280, 1, name=name, **kw)(x, train)))
    out.append(Block("pool", ("classifier_1",),
                     lambda x: pool_and_classify(self, x, train, "classifier_1")))
    return out

  @nn.compact
  def __call__(self, x, train: bool, start: Optional[str] = None, stop: Optional[str] = None):
    return run_blocks(self.blocks(train), x, start, stop)
