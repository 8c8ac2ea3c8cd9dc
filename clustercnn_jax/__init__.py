"""Cluster-CNN for facial age estimation in JAX/Flax (Shang & Ai)."""

__version__ = "0.1.0"


def load(workdir: str, step: "int | None" = None, batch_size: int = 32, serving: bool = False):
  """A trained workdir's model (the latest checkpoint, or ``step``) as a
  ``clustercnn_jax.predictor.Predictor``: ``predict``, ``predict_files``, ``embed``,
  ``clusters``; ``serving=True`` runs the function saved in the workdir (made on first
  use), which starts faster but has no ``embed``. Imported here lazily, so that
  ``import clustercnn_jax`` stays light."""
  from clustercnn_jax import predictor

  return predictor.load(workdir, step, batch_size=batch_size, serving=serving, stacklevel=3)
