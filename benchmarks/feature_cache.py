"""Building a feature cache: images per second through the frozen part, every view.

  python benchmarks/feature_cache.py [--config=configs/utkface.py:partial] [--images=1024]

Runs ``feature_cache.feature_datasets`` (what a run on cached features or activations does
first: the frozen blocks, BatchNorm folded, on each of the config's views of each face) on
``--images`` random faces of the stored size, into a fresh cache directory, and prints
images/s with the compilation of the first batch left out. Random weights: the rate does
not depend on them. Target for ``utkface.py:partial`` (EfficientNet-Lite0 up to
``_blocks_8`` at 112 px, four views): >= 150 img/s on a 2-core CPU.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clustercnn_jax import feature_cache, recipes, train  # noqa: E402
from clustercnn_jax.data import faces  # noqa: E402
from clustercnn_jax.data.dataset import ArrayDataset  # noqa: E402
from clustercnn_jax.data.preprocess import views  # noqa: E402


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--config", default="configs/utkface.py:partial")
  p.add_argument("--images", type=int, default=1024)
  args = p.parse_args()
  config = recipes.load_config(args.config)
  config.pretrained = ""
  model = train.build_model(config)
  state = train.create_train_state(jax.random.PRNGKey(0), config, model, 1000)
  size = faces.stored_size(config.image_size, config.face.normalize)
  rng = np.random.default_rng(0)
  batch = config.batch_size

  def build(n: int) -> float:
    ds = ArrayDataset(rng.integers(0, 256, (n, size, size, 3), np.uint8),
                      np.zeros((n,), np.float32), np.arange(n))
    with tempfile.TemporaryDirectory() as tmp:
      config.cache.dir = tmp
      t0 = time.perf_counter()
      feature_cache.feature_datasets(state, model, config, ds)
      return time.perf_counter() - t0

  # Each build folds, traces and compiles afresh: the difference between one batch and n
  # images is the rate of the n - batch images beyond the first.
  first = build(batch)
  n = max(2 * batch, args.images // batch * batch)
  seconds = build(n)
  print(f"{args.config}: {config.model.backbone} at {config.image_size} px, "
        f"{len(views(config))} views, batch {batch}: {(n - batch) / (seconds - first):.1f} img/s "
        f"({n} images in {seconds:.1f} s, one batch in {first:.1f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
