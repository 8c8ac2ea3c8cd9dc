"""Latency of a trained model on photos: cold start and warm time per photo and per face.

  python benchmarks/predict.py --workdir=DIR [--photo=PATH] [--repeats=20]

Cold start: a fresh ``python -m clustercnn_jax.predict --workdir=DIR PHOTO`` process,
from launch to its answer, twice: first with no saved serving function and an empty
compilation cache (it restores the checkpoint, traces, compiles and saves both), then
as every later start is (``serving.py``: deserialize, compiled code from the cache).
Warm: in one process after a warm-up, the median time per single-face photo, split into
reading, detection and crop (``photos.read_photo``) and the model (``Predictor.outputs``
on its one face); and per face crop with no detection (``--no_detect``). Targets:
warm <= 30 ms per photo at 112-128 px, cold start <= 3 s.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from clustercnn_jax import serving  # noqa: E402
from clustercnn_jax.data import photos  # noqa: E402
from clustercnn_jax.predictor import central_crops, load  # noqa: E402


def astronaut_photo() -> str:
  from PIL import Image
  from skimage import data

  path = os.path.join(tempfile.mkdtemp(), "astronaut.png")
  Image.fromarray(data.astronaut()).save(path)
  return path


def median_ms(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return 1000 * float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--photo", default="", help="a single-face photo (default: skimage's "
                      "astronaut)")
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args()
  photo = args.photo or astronaut_photo()

  shutil.rmtree(os.path.join(args.workdir, serving.ARTIFACT_DIR), ignore_errors=True)
  cache = tempfile.mkdtemp()
  colds = []
  for _ in range(2):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "clustercnn_jax.predict",
                          f"--workdir={args.workdir}", f"--compilation_cache={cache}", photo],
                         cwd=ROOT, capture_output=True, text=True)
    colds.append(time.perf_counter() - t)
    if out.returncode:
      sys.exit(f"predict failed:\n{out.stderr[-2000:]}")

  model = load(args.workdir, batch_size=1, serving=True)
  config = model.config
  detector = photos.default_detector() if config.face.normalize else None
  read = lambda: photos.read_photo(photo, config, detector)
  first = read()
  if len(first.crops) != 1:
    sys.exit(f"{photo}: expected one face, found {len(first.crops)}.")
  crop = central_crops(first.crops[0][None], config.image_size)
  model.outputs(crop)  # compile
  model.predict_files([photo])
  photo_ms = median_ms(lambda: model.predict_files([photo]), args.repeats)
  read_ms = median_ms(read, args.repeats)
  face_ms = median_ms(lambda: model.outputs(crop), args.repeats)
  print(f"model: {config.model.backbone} at {config.image_size} px "
        f"({'eye-normalised' if config.face.normalize else 'whole image'}); photo {photo}")
  print("| measure | time | target |")
  print("| --- | --- | --- |")
  print(f"| cold start, first (restore, trace, compile, save) | {colds[0]:.1f} s | |")
  print(f"| cold start, later (saved function, cached code) | {colds[1]:.1f} s | <= 3 s |")
  print(f"| warm, per single-face photo | {photo_ms:.0f} ms | <= 30 ms |")
  print(f"|   of which read + detect + crop | {read_ms:.0f} ms | |")
  print(f"|   of which the model (one face) | {face_ms:.1f} ms | |")
  print(f"| warm, per face crop (--no_detect) | {face_ms:.1f} ms | |")


if __name__ == "__main__":
  main()
