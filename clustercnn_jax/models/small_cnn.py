"""A small VGG-style CNN: fast enough for the tests and the CPU demo."""

from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from clustercnn_jax.models.layers import ConvBN, Dtype


class SmallCNN(nn.Module):
  """Stages of two 3x3 ConvBN layers and a 2x2 max-pool; returns (B, D)."""

  widths: Sequence[int] = (32, 64, 128, 256)
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = x.astype(self.dtype)
    for i, width in enumerate(self.widths):
      x = ConvBN(width, 3, 1, 1, bn_epsilon=1e-5, axis_name=self.axis_name, dtype=self.dtype,
                 name=f"stage{i}_0")(x, train)
      if i > 0:
        x = ConvBN(width, 3, 1, 1, bn_epsilon=1e-5, axis_name=self.axis_name,
                   dtype=self.dtype, name=f"stage{i}_1")(x, train)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    return jnp.mean(x, axis=(1, 2))
