"""Age prediction from a trained workdir, for notebooks and scripts.

  config, model, variables = api.load(workdir)
  ages = predict.predict_ages(config, model, variables, images_uint8)
"""

from typing import Any, Dict

import jax
import ml_collections
import numpy as np

from clustercnn_jax import losses
from clustercnn_jax.data.preprocess import preprocess_for


def predict_ages(config: ml_collections.ConfigDict, model: Any, variables: Dict[str, Any],
                 images: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """Expected ages for uint8 face crops: the model's input size, or loose crops as stored."""
  images = np.asarray(images)
  size = config.image_size
  if (images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[1] < size
      or images.shape[3] != 3 or images.dtype != np.uint8):
    raise ValueError(f"Expected uint8 square images (N, S, S, 3) with S >= {size} (the "
                     f"central {size}px are used), got {images.dtype} {images.shape}.")
  expected = images.shape[1:]

  @jax.jit
  def forward(batch):
    x = preprocess_for(config, batch, jax.random.PRNGKey(0), train=False)
    logits, _ = model.apply(variables, x, train=False)
    return losses.expected_age(logits)

  out = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    pad = batch_size - len(chunk) if len(images) > batch_size else 0  # one compiled shape
    padded = np.concatenate([chunk, np.zeros((pad,) + expected, np.uint8)]) if pad else chunk
    out.append(np.asarray(forward(padded))[:len(chunk)])
  return np.concatenate(out) if out else np.zeros((0,), np.float32)
