"""GoogLeNet (Inception v1) in torchvision's layout.

Module names mirror torchvision's state-dict keys (``inception3a.branch2_0`` is
torchvision's ``inception3a.branch2.0``), BatchNorm uses eps 1e-3, the "5x5"
branch uses the 3x3 kernel torchvision ships, and max-pooling is ceil-mode, so
torchvision's ImageNet checkpoint maps one-to-one onto these parameters.

``depth`` keeps the first ``round(9 * depth)`` inception blocks: the paper runs
the network at half depth on 72x72 FG-NET faces. ``width`` scales every channel
count (pretrained weights need width 1).
"""

from typing import List, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.blocks import Block, run_blocks
from clustercnn_jax.models.layers import ConvBN, Dtype, max_pool_ceil, pool_and_classify

# name: (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), as in torchvision.
INCEPTION_BLOCKS: Sequence[tuple] = (
    ("inception3a", (64, 96, 128, 16, 32, 32)),
    ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("inception4a", (192, 96, 208, 16, 48, 64)),
    ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)),
    ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
    ("inception5b", (384, 192, 384, 48, 128, 128)),
)
# Max-pools torchvision places after these blocks: (window, stride).
POOL_AFTER = {"inception3b": (3, 2), "inception4e": (2, 2)}


class Inception(nn.Module):
  channels: Sequence[int]
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  pool_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    c1, c3r, c3, c5r, c5, cp = self.channels
    conv = lambda f, k, p, name: ConvBN(f, k, padding=p, axis_name=self.axis_name,
                                        dtype=self.dtype, name=name)
    b1 = conv(c1, 1, 0, "branch1")(x, train)
    b2 = conv(c3, 3, 1, "branch2_1")(conv(c3r, 1, 0, "branch2_0")(x, train), train)
    b3 = conv(c5, 3, 1, "branch3_1")(conv(c5r, 1, 0, "branch3_0")(x, train), train)
    b4 = conv(cp, 1, 0, "branch4_1")(max_pool_ceil(x, 3, 1, 1, self.pool_impl), train)
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class GoogLeNet(nn.Module):
  """Returns pooled features (B, D), or ImageNet logits when ``num_classes``."""

  depth: float = 1.0
  width: float = 1.0
  num_classes: Optional[int] = None
  dropout_rate: float = 0.2
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32
  pool_impl: str = "auto"  # layers.max_pool_ceil: 'auto' | 'slices' | 'xla'

  def blocks(self, train: bool) -> List[Block]:
    """stem (conv1..conv3), inception3a .. (as deep as ``depth``), pool (see models/blocks.py)."""
    if not 0.0 < self.depth <= 1.0:
      raise ValueError(f"GoogLeNet depth must be in (0, 1], got {self.depth}.")
    w = lambda c: max(1, int(round(c * self.width)))
    conv = lambda f, k, s, p, name: ConvBN(w(f), k, s, p, axis_name=self.axis_name,
                                           dtype=self.dtype, name=name)
    pool = lambda x, window, stride: max_pool_ceil(x, window, stride, impl=self.pool_impl)

    def stem(x):
      x = conv(64, 7, 2, 3, "conv1")(x.astype(self.dtype), train)
      x = pool(x, 3, 2)
      x = conv(64, 1, 1, 0, "conv2")(x, train)
      x = conv(192, 3, 1, 1, "conv3")(x, train)
      return pool(x, 3, 2)

    def inception(x, name, channels, last):
      x = Inception(tuple(w(c) for c in channels), axis_name=self.axis_name, dtype=self.dtype,
                    pool_impl=self.pool_impl, name=name)(x, train)
      return pool(x, *POOL_AFTER[name]) if name in POOL_AFTER and not last else x

    out = [Block("stem", ("conv1", "conv2", "conv3"), stem)]
    kept = INCEPTION_BLOCKS[:max(1, int(round(len(INCEPTION_BLOCKS) * self.depth)))]
    for i, (name, channels) in enumerate(kept):
      out.append(Block(name, (name,), lambda x, name=name, channels=channels, last=(
          i == len(kept) - 1): inception(x, name, channels, last)))
    out.append(Block("pool", ("fc",), lambda x: pool_and_classify(self, x, train, "fc")))
    return out

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool, start: Optional[str] = None,
               stop: Optional[str] = None) -> jnp.ndarray:
    return run_blocks(self.blocks(train), x, start, stop)
