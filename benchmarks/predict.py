"""Latency of a trained model on photos: cold start and warm time per photo and per face.

  python benchmarks/predict.py --workdir=DIR [--photo=PATH] [--repeats=20]

Cold start: a fresh ``python -m clustercnn_jax.predict --workdir=DIR PHOTO`` process,
from launch to its answer, twice: first with no saved serving function and an empty
compilation cache (it restores the checkpoint, traces, compiles and saves both), then
as every later start is (``serving.py``: deserialize, compiled code from the cache).
Warm: in one process after a warm-up, the median time per single-face photo, split into
reading, detection and crop (``photos.read_photo``) and the model (``Predictor.outputs``
on its one face); and per face crop with no detection (``--no_detect``). The default
photo is skimage's astronaut (512 x 512) twice: as a JPEG, what a camera or phone writes,
and as a PNG, whose decoding (zlib) costs several milliseconds more. Targets: warm <= 30 ms
per photo, cold start <= 3 s.
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


def astronaut_photos() -> list:
  """The astronaut as a JPEG (quality 95) and as a PNG: the same photo in both formats."""
  from PIL import Image
  from skimage import data

  folder = tempfile.mkdtemp()
  paths = [os.path.join(folder, "astronaut.jpg"), os.path.join(folder, "astronaut.png")]
  for path in paths:
    Image.fromarray(data.astronaut()).save(path, quality=95)
  return paths


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
                      "astronaut, as a JPEG and as a PNG)")
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args()
  photo_list = [args.photo] if args.photo else astronaut_photos()
  photo = photo_list[0]

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
  warm = []  # (photo, ms per photo, ms reading, detecting and cropping)
  for path in photo_list:
    read = lambda: photos.read_photo(path, config, detector)  # noqa: E731
    first = read()
    if len(first.crops) != 1:
      sys.exit(f"{path}: expected one face, found {len(first.crops)}.")
    crop = central_crops(first.crops[0][None], config.image_size)
    model.outputs(crop)  # compile
    model.predict_files([path])
    warm.append((path, median_ms(lambda: model.predict_files([path]), args.repeats),
                 median_ms(read, args.repeats)))
  face_ms = median_ms(lambda: model.outputs(crop), args.repeats)
  print(f"model: {config.model.backbone} at {config.image_size} px "
        f"({'eye-normalised' if config.face.normalize else 'whole image'}); cold start on "
        f"{photo}")
  print("| measure | time | target |")
  print("| --- | --- | --- |")
  print(f"| cold start, first (restore, trace, compile, save) | {colds[0]:.1f} s | |")
  print(f"| cold start, later (saved function, cached code) | {colds[1]:.1f} s | <= 3 s |")
  for path, photo_ms, read_ms in warm:
    name = os.path.basename(path)
    print(f"| warm, per single-face photo ({name}) | {photo_ms:.0f} ms | <= 30 ms |")
    print(f"|   of which read + detect + crop ({name}) | {read_ms:.0f} ms | |")
  print(f"|   of which the model (one face) | {face_ms:.1f} ms | |")
  print(f"| warm, per face crop (--no_detect) | {face_ms:.1f} ms | |")


if __name__ == "__main__":
  main()
