"""A small VGG-style CNN: fast enough for the tests and the CPU demo."""

from typing import List, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.blocks import Block, run_blocks
from clustercnn_jax.models.layers import ConvBN, Dtype


class SmallCNN(nn.Module):
  """Stages of two 3x3 ConvBN layers and a 2x2 max-pool; returns (B, D)."""

  widths: Sequence[int] = (32, 64, 128, 256)
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  def blocks(self, train: bool) -> List[Block]:
    """stage0 .. stage<n-1>, pool (see models/blocks.py)."""
    conv = lambda width, name: ConvBN(width, 3, 1, 1, bn_epsilon=1e-5, axis_name=self.axis_name,
                                      dtype=self.dtype, name=name)

    def stage(x, i, width):
      x = conv(width, f"stage{i}_0")(x.astype(self.dtype), train)
      if i > 0:
        x = conv(width, f"stage{i}_1")(x, train)
      return nn.max_pool(x, (2, 2), strides=(2, 2))

    out = [Block(f"stage{i}", (f"stage{i}_0", f"stage{i}_1"),
                 lambda x, i=i, width=width: stage(x, i, width))
           for i, width in enumerate(self.widths)]
    return out + [Block("pool", (), lambda x: jnp.mean(x, axis=(1, 2)))]

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool, start: Optional[str] = None,
               stop: Optional[str] = None) -> jnp.ndarray:
    return run_blocks(self.blocks(train), x, start, stop)
