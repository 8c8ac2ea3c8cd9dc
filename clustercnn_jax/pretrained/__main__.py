"""Top-3 ImageNet classes of images, to check a backbone's pretrained weights.

  python -m clustercnn_jax.pretrained classify --backbone=mobilenet_v2 cat.jpg
  python -m clustercnn_jax.pretrained classify --backbone=googlenet \\
      --weights=~/Downloads/googlenet-1378be20.pth cat.jpg

Preprocessing is each checkpoint's own ImageNet evaluation recipe: resize the
short side to 256 (bilinear), centre-crop 224 (EfficientNet-Lite1/2: 272/240,
292/260), normalise with the checkpoint's mean and std (see
``clustercnn_jax.pretrained.WEIGHTS``).
"""

import argparse
import sys
from typing import List

import jax
import numpy as np

from clustercnn_jax import cli, pretrained


def load_image(path: str, w: "pretrained.Weights") -> np.ndarray:
  from PIL import Image, ImageOps

  try:
    with Image.open(path) as im:
      im = ImageOps.exif_transpose(im).convert("RGB")
  except (OSError, ValueError) as e:
    raise SystemExit(f"{path}: cannot read this image ({e}).")
  scale = w.resize / min(im.size)
  im = im.resize((max(w.crop, round(im.width * scale)), max(w.crop, round(im.height * scale))),
                 Image.BILINEAR)
  left, top = (im.width - w.crop) // 2, (im.height - w.crop) // 2
  x = np.asarray(im.crop((left, top, left + w.crop, top + w.crop)), np.float32) / 255.0
  return (x - np.asarray(w.mean, np.float32)) / np.asarray(w.std, np.float32)


def classify(backbone: str, weights: str, paths: List[str], top: int = 3) -> List[list]:
  """[(path, [(class index, probability), ...]), ...]."""
  module, variables = pretrained.imagenet_classifier(backbone, weights)
  w = pretrained.weights_for(backbone)
  images = np.stack([load_image(p, w) for p in paths])
  logits = jax.jit(lambda x: module.apply(variables, x, train=False))(images)
  probs = np.asarray(jax.nn.softmax(logits, axis=-1))
  out = []
  for path, p in zip(paths, probs):
    best = np.argsort(-p)[:top]
    out.append((path, [(int(i), float(p[i])) for i in best]))
  return out


class _Parser(argparse.ArgumentParser):
  """A usage mistake as one ``error:`` line, as in the other commands."""

  def error(self, message: str):
    self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
  parser = _Parser(prog="python -m clustercnn_jax.pretrained", description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  c = sub.add_parser("classify", help="print the top-3 ImageNet classes of images")
  c.add_argument("--backbone", required=True, choices=sorted(pretrained.WEIGHTS))
  c.add_argument("--weights", default="", help="a .pth path or a package name "
                 "(default: the backbone's package, where one exists)")
  c.add_argument("--verbose", action="store_true", help="on an error, show the traceback "
                 "instead of one line (so does setting JAX_TRACEBACK_FILTERING)")
  c.add_argument("images", nargs="+")
  args = parser.parse_args(argv)
  try:
    results = classify(args.backbone, args.weights, args.images)
  except cli.USER_ERRORS as e:
    if args.verbose or cli.wants_traceback():
      raise
    cli.fail(e)
  for path, best in results:
    print(path)
    for index, prob in best:
      print(f"  class {index:4d}  p={prob:.4f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
