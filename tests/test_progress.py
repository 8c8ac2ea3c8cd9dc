"""Logging helpers of long runs: the ETA format and memory handed back between runs."""

import sys

import numpy as np
import pytest

from clustercnn_jax import progress


def test_format_seconds():
  assert progress.format_seconds(3725.2) == "1:02:05"
  assert progress.format_seconds(59.6) == "0:01:00"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_memory_returns_the_freed_heap():
  # Many small blocks, as a run's Python objects and host buffers are: freed, glibc keeps
  # them resident until they are trimmed.
  blocks = [np.ones(1000) for _ in range(50_000)]  # about 400 MB
  held = progress.resident_mb()
  del blocks
  progress.release_memory()
  assert progress.resident_mb() < held - 200
