"""Face detectors on real faces: detection rate and time per image, in one run.

  python benchmarks/detector.py --data_root=../shared/data [--limit=1000] [--mmod_limit=60]

For each setting of ``data.detector.DlibEyeDetector`` (model, the long side the
image is detected at, the upsampling tried when nothing is found), over FG-NET
(every image, or ``--limit``) and a seeded sample of UTKFace:
- found: the share of images with at least one face;
- eyes ok (FG-NET, whose 68 points give the true eyes): the share whose largest
  face has both eye centres within a quarter of the true inter-eye distance;
- ms: mean and 95th percentile of detection + landmarks per image (already read);
- image: RGB, or the luminance HOG then scans (``grey``).
The MMOD CNN is seconds per image on a CPU, so it runs on the first
``--mmod_limit`` images of each set only (its rates are over those).
"""

import argparse
import glob
import os
import random
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from clustercnn_jax.data import faces, images  # noqa: E402
from clustercnn_jax.data.detector import DlibEyeDetector  # noqa: E402

# (model, max_side, upsample, grey): the builders' default first, then photos.default_detector.
SETTINGS = (("hog", 800, 1, False), ("hog", 640, 1, False), ("hog", 480, 1, False),
            ("hog", 400, 1, False), ("hog", 320, 1, False), ("hog", 320, 1, True),
            ("hog", 320, 0, False), ("hog", 256, 1, True), ("mmod", 320, 0, False))


def fgnet_set(root: str, limit: int) -> List[Tuple[str, Optional[faces.Eyes]]]:
  base = os.path.join(root, "fgnet", "FGNET")
  files = sorted(glob.glob(os.path.join(base, "images", "*.JPG")))[:limit or None]
  return [(f, faces.eyes_from_points(faces.read_pts(
      faces.fgnet_pts_path(os.path.join(base, "points"), os.path.basename(f)))))
      for f in files]


def utkface_set(root: str, limit: int) -> List[Tuple[str, Optional[faces.Eyes]]]:
  files = sorted(glob.glob(os.path.join(root, "utkface", "UTKFace", "*.jpg")))
  random.Random(0).shuffle(files)
  return [(f, None) for f in files[:limit or None]]


def measure(detector: DlibEyeDetector, items) -> Dict[str, float]:
  found = ok = 0
  times = []
  for image, truth in items:
    t = time.perf_counter()
    got = detector.faces(image)
    times.append(time.perf_counter() - t)
    found += bool(got)
    if got and truth is not None:
      tol = 0.25 * truth.distance
      ok += all(np.linalg.norm(a - b) <= tol for a, b in zip(got[0].eyes, truth))
  ms = 1000 * np.array(times)
  return {"n": len(items), "found": found / len(items), "ok": ok / len(items),
          "mean_ms": float(ms.mean()), "p95_ms": float(np.percentile(ms, 95))}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_root", default=os.path.join(ROOT, "..", "shared", "data"))
  parser.add_argument("--limit", type=int, default=1000, help="images per set (0: all)")
  parser.add_argument("--mmod_limit", type=int, default=60)
  parser.add_argument("--only", default="", help="settings 'model,side,upsample,grey' "
                      "separated by ';', e.g. 'hog,320,1,0;hog,256,1,0' (default: those listed in SETTINGS)")
  args = parser.parse_args()
  sets = {}
  for name, make in (("FG-NET", fgnet_set), ("UTKFace", utkface_set)):
    listed = make(args.data_root, args.limit)
    if not listed:
      sys.exit(f"No {name} images under {args.data_root} (see ../shared/README.md); "
               "give --data_root=DIR.")
    sets[name] = [(images.read_image(f), eyes) for f, eyes in listed]
  sizes = {k: int(np.median([max(im.shape[:2]) for im, _ in v])) for k, v in sets.items()}
  print("long side (median): " + ", ".join(f"{k} {s} px" for k, s in sizes.items()))
  print("| detector | long side | upsample if none | image | set | images | found | eyes ok "
        "| ms mean | ms p95 |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  settings = SETTINGS
  if args.only:  # any setting, listed above or not
    settings = [(m, int(side), int(up), bool(int(g)))
                for m, side, up, g in (o.split(",") for o in args.only.split(";"))]
  for model, max_side, upsample, grey in settings:
    detector = DlibEyeDetector(max_side=max_side, upsample=upsample, model=model, grey=grey)
    for name, items in sets.items():
      if model == "mmod":
        items = items[:args.mmod_limit]
      r = measure(detector, items)
      eyes = f"{r['ok']:.1%}" if name == "FG-NET" else "–"
      print(f"| {model} | {max_side} | {upsample} | {'grey' if grey else 'RGB'} | {name} | {r['n']} | {r['found']:.1%} | "
            f"{eyes} | {r['mean_ms']:.1f} | {r['p95_ms']:.1f} |", flush=True)


if __name__ == "__main__":
  main()
