"""Ages for photos or face crops from a trained workdir.

  python -m clustercnn_jax.predict --workdir=DIR photo.jpg folder/ ...

prints one row per face found (JSON lines, or ``--format=csv``): file, box and
eyes (pixels of the file), age (the expected age), std (of the softmax over
ages), cluster and p (its probability; null without a cluster module). Faces
are found and cropped as the workdir's training data was (``data/photos.py``);
``--no_detect`` takes each file as a face crop. A file that cannot be read or
holds no face gives a row with ``error`` and the run goes on; the exit code
is 1 if any file failed. ``--annotate OUT_DIR`` writes copies of the photos
with each face's box and age drawn.

From Python: ``clustercnn_jax.load(workdir)`` (a ``predictor.Predictor``).
"""

import csv
import json
import os
import sys
from typing import Any, Dict, List, Sequence

import numpy as np
from absl import app, flags, logging

from clustercnn_jax import cli, predictor
from clustercnn_jax.data import photos

FLAGS = flags.FLAGS
COLUMNS = ("file", "box", "eyes", "age", "std", "cluster", "p", "error")


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (``main`` defines --workdir
  too), so that the package's modules can be imported together; once per process."""
  cli.define_model_flags()
  flags.adopt_module_key_flags(cli)  # --workdir, --step in --help
  if "annotate" in FLAGS:
    return
  flags.DEFINE_enum("format", "json", ["json", "csv"], "JSON lines or CSV on stdout.")
  flags.DEFINE_string("annotate", None, "Write copies of the photos with boxes and ages here.")
  flags.DEFINE_bool("no_detect", False, "The files are face crops: resize each to the "
                    "model's input instead of finding faces.")
  flags.DEFINE_alias("no-detect", "no_detect")
  flags.DEFINE_integer("batch_size", 16, "Faces per forward pass (one padded shape).")


def csv_cells(row: Dict[str, Any]) -> List[Any]:
  """A row's cells under ``COLUMNS``: box and eyes as space-separated numbers."""
  flat = lambda v: " ".join(str(x) for x in np.ravel(v)) if isinstance(v, list) else v
  return ["" if row.get(c) is None else flat(row[c]) for c in COLUMNS]


def annotate(photo: photos.Photo, rows: Sequence[Dict[str, Any]], out_dir: str) -> str:
  """A copy of the photo (as read) with each face's box, eyes and age drawn, in the
  input's format and extension where Pillow writes it (else JPEG), written through
  ``files`` so that ``out_dir`` may be a bucket; returns its path."""
  import io

  from PIL import Image, ImageDraw, ImageFont

  from clustercnn_jax import files

  def encode(fmt: str) -> "bytes | None":  # the file's bytes; None where Pillow cannot
    buf = io.BytesIO()
    try:
      im.save(buf, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    except (OSError, ValueError, KeyError, TypeError):
      return None
    return buf.getvalue()

  im = Image.fromarray(photo.image)
  draw = ImageDraw.Draw(im)
  size = max(14, im.width // 32)
  font = ImageFont.load_default(size=size)
  text = dict(fill=(255, 255, 0), font=font, stroke_width=2, stroke_fill=0)
  for box, eyes, row in zip(photo.boxes, photo.eyes, rows):
    label = f"{row['age']:.1f}"
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font, stroke_width=2)
    if box is None:
      draw.text((4 - left, 4 - top), label, **text)
      continue
    width = max(2, im.width // 300)
    x0, y0 = float(box[0]), float(box[1])
    draw.rectangle([float(v) for v in box], outline=(255, 255, 0), width=width)
    for x, y in eyes:
      draw.ellipse([x - width, y - width, x + width, y + width], fill=(0, 255, 0))
    y = y0 - width - bottom  # above the box; inside its top when there is no room above
    if y + top < 0:
      y = y0 + 2 * width - top
    # Always on the canvas, whatever the box (it may reach past the image's edges).
    x = min(max(x0, -left), im.width - right)
    y = min(max(y, -top), im.height - bottom)
    draw.text((x, y), label, **text)
  stem, ext = os.path.splitext(os.path.basename(photo.file))
  fmt = Image.registered_extensions().get(ext.lower())
  data = encode(fmt) if fmt in Image.SAVE else None
  if data is None:  # a format Pillow reads but cannot write (or not this image): JPEG
    ext, data = ".jpg", encode("JPEG")
  path, n = files.join(out_dir, stem + ext), 1
  while files.exists(path):  # two inputs with one name: keep both
    path, n = files.join(out_dir, f"{stem}-{n}{ext}"), n + 1
  files.write_bytes(path, data)
  return path


def main(argv: Sequence[str]) -> int:
  paths = list(argv[1:])
  if not paths:
    raise app.UsageError("Give photos or folders to predict on.")
  cli.setup(cache_on_cpu=True)  # with the saved serving function: no compiling after the first
  model = predictor.load(FLAGS.workdir, FLAGS.step, batch_size=FLAGS.batch_size,
                         serving=True)
  writer = csv.writer(sys.stdout) if FLAGS.format == "csv" else None
  if writer:
    writer.writerow(COLUMNS)
  failed = seen = 0
  for photo, rows in model.iter_files(paths, detect=not FLAGS.no_detect,
                                      keep_images=bool(FLAGS.annotate)):
    seen += 1
    for row in rows:
      if writer:
        writer.writerow(csv_cells(row))
      else:
        print(json.dumps(row))
    failed += "error" in rows[0]
    if FLAGS.annotate and photo.crops:
      annotate(photo, rows, FLAGS.annotate)
  sys.stdout.flush()
  if not seen:
    logging.error("No image files in %s.", paths)
    return 1
  if failed:
    logging.warning("%d of %d files failed (rows with 'error').", failed, seen)
  return 1 if failed else 0


if __name__ == "__main__":
  cli.run(main, define_flags)
