"""Age prediction from a trained workdir, for notebooks and scripts.

  config, model, variables = checkpoint.load(workdir)
  ages = predict.predict_ages(config, model, variables, images_uint8)
"""

from typing import Any, Dict

import jax
import ml_collections
import numpy as np

from clustercnn_jax import losses
from clustercnn_jax.data.preprocess import preprocess
from clustercnn_jax.pretrained import input_normalization


def predict_ages(config: ml_collections.ConfigDict, model: Any, variables: Dict[str, Any],
                 images: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """Expected ages for uint8 images (N, H, W, 3) already cropped to the config's size."""
  images = np.asarray(images)
  expected = (config.image_size, config.image_size, 3)
  if images.ndim != 4 or images.shape[1:] != expected or images.dtype != np.uint8:
    raise ValueError(f"Expected uint8 images of shape (N, {config.image_size}, "
                     f"{config.image_size}, 3), got {images.dtype} {images.shape}.")

  mean, std = input_normalization(config)

  @jax.jit
  def forward(batch):
    x = preprocess(batch, jax.random.PRNGKey(0), train=False, flip=False, mean=mean, std=std)
    logits, _ = model.apply(variables, x, train=False)
    return losses.expected_age(logits)

  out = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    pad = batch_size - len(chunk) if len(images) > batch_size else 0  # one compiled shape
    padded = np.concatenate([chunk, np.zeros((pad,) + expected, np.uint8)]) if pad else chunk
    out.append(np.asarray(forward(padded))[:len(chunk)])
  return np.concatenate(out) if out else np.zeros((0,), np.float32)
