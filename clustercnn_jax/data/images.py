"""Reading any photo a user may have into uint8 RGB, or a clear reason why not.

Handled: EXIF orientation; greyscale, palette, CMYK, 16-bit and float images;
transparency (composited over mid-grey, so a transparent background is
neither black nor white); very large images (JPEGs are decoded at reduced size
by the decoder itself, others are downscaled after decoding so that the long
side is at most ``max_side``). Zero-byte, truncated and corrupt files raise
``ImageReadError`` naming the file.
"""

import hashlib
import os
import warnings
from typing import Tuple

import numpy as np

DEFAULT_MAX_SIDE = 2048


class ImageReadError(ValueError):
  """A file that is not a readable image; the message names the file and the reason."""


def _to_rgb(im):
  from PIL import Image

  if im.mode in ("I;16", "I;16B", "I;16L", "I"):
    a = np.asarray(im, np.float64)
    peak = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
    return Image.fromarray(np.clip(a / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
  if im.mode == "F":
    a = np.asarray(im, np.float64)
    a = (a - a.min()) / max(a.max() - a.min(), 1e-12) * 255.0
    return Image.fromarray(a.astype(np.uint8)).convert("RGB")
  if im.mode == "P" and "transparency" in im.info:
    im = im.convert("RGBA")
  if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
    rgba = im.convert("RGBA")
    grey = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
    return Image.alpha_composite(grey, rgba).convert("RGB")
  return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGB


def read_image(path: str, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
  """The image as uint8 (H, W, 3), upright, long side at most ``max_side``."""
  return read_upright(path, max_side)[0]


def read_upright(path: str, max_side: int = DEFAULT_MAX_SIDE
                 ) -> Tuple[np.ndarray, Tuple[int, int]]:
  """``read_image``'s array, and the (width, height) of the photo in the file with its EXIF
  orientation applied: the frame that coordinates found on the (perhaps downscaled) array
  are reported in. One decode for both (a PNG's EXIF is read by decoding it)."""
  from PIL import Image, ImageOps, UnidentifiedImageError

  try:
    size = os.path.getsize(path)
  except OSError as e:
    raise ImageReadError(f"{path}: cannot open ({e.strerror}).") from None
  if size == 0:
    raise ImageReadError(f"{path}: empty file (0 bytes).")
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      with Image.open(path) as im:
        width, height = im.size
        if im.format == "JPEG" and max(im.size) > max_side:
          im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 size
        im.load()
        if im.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
          width, height = height, width
        im = ImageOps.exif_transpose(im)
        im = _to_rgb(im)
  except UnidentifiedImageError:
    raise ImageReadError(f"{path}: not an image file, or a format Pillow cannot read.") from None
  except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
    raise ImageReadError(f"{path}: too many pixels to decode safely ({e}).") from None
  except (OSError, SyntaxError, ValueError) as e:
    raise ImageReadError(f"{path}: corrupt or truncated image ({e}).") from None
  if max(im.size) > max_side:
    scale = max_side / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                   Image.BILINEAR)
  return np.asarray(im, np.uint8), (width, height)


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """A plain square resize (aspect not kept): the paper's un-normalised baseline."""
  from PIL import Image

  return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((size, size),
                                                                         Image.BILINEAR))


def encode_png(image: np.ndarray) -> bytes:
  """Lossless bytes for storing crops in a dataset (decoding needs only Pillow)."""
  import io

  from PIL import Image

  buf = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG", compress_level=1)
  return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
  import io

  from PIL import Image

  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"), np.uint8)


def digests(images: np.ndarray) -> np.ndarray:
  """SHA-1 of each image's shape and bytes (fixed-width byte strings): equal iff identical."""
  shape = repr(images.shape[1:]).encode()
  return np.array([hashlib.sha1(shape + np.ascontiguousarray(im).tobytes()).digest()
                   for im in images], dtype="S20")
