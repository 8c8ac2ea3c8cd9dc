"""Cluster-CNN for facial age estimation in JAX/Flax (Shang & Ai)."""

__version__ = "0.1.0"
