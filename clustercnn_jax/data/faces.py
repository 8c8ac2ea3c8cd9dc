"""Face normalisation of the paper (section 3.1): a square crop around the eyes.

Given the two eye centres, with l the inter-eye distance, the crop is a square
of side w = alpha * l (times a training-time scale factor 1 + epsilon, applied
later on the device), rotated so that the eyes are level, with the eye
midpoint at ``eye_height`` * w from the top. It is then resized to the model's
input size.

Defaults: alpha = 2.5 and eye_height = 0.4. With l about a third of face
width, a side of 2.5 l spans the face from brow to chin with a little hair and
background, and eyes at 40% from the top leave room for the mouth and chin
below, close to the framing of MORPH/FG-NET crops used in the literature.

Datasets store a *loose* crop, ``MARGIN`` times wider (``stored_crop``), whose
centre the model sees; predicting on new photos makes the same crop.
"""

import os
from typing import NamedTuple, Optional, Tuple

import numpy as np

from clustercnn_jax.data import images

MARGIN = 1.25  # a stored crop's side over the model input's (room for scale jitter)

FGNET_NUM_POINTS = 68
# FG-NET's own 68-point markup is NOT the IBUG/300-W layout: its eyes are points
# 27-31 and 32-36 (0-based; outer corner, top, inner corner, bottom, pupil), and
# 36-47 outline the nose. Checked on all 1,002 FG-NET files: the distance
# between the means of 27-31 and 32-36 is ~0.45 of the jaw width (points 0 and
# 14), the IBUG indices 36-41 / 42-47 give ~0.11 (the two sides of the nose).
FGNET_EYES = (slice(27, 32), slice(32, 37))
IBUG_EYES = (slice(36, 42), slice(42, 48))  # 300-W / dlib 68-point layout


class Eyes(NamedTuple):
  """Eye centres in pixels (x, y); ``left`` is the one on the image's left."""
  left: np.ndarray
  right: np.ndarray

  @property
  def distance(self) -> float:
    return float(np.linalg.norm(self.right - self.left))


class BadLandmarksError(ValueError):
  """A landmark file that cannot give two eye centres; the message names the file."""


def read_pts(path: str, expected_points: int = FGNET_NUM_POINTS) -> np.ndarray:
  """Points (N, 2) from an IBUG .pts file: 'version: 1', 'n_points: N', '{', N 'x y' lines, '}'."""
  try:
    with open(path) as f:
      lines = [ln.strip() for ln in f if ln.strip()]
  except (OSError, UnicodeDecodeError) as e:
    raise BadLandmarksError(f"{path}: cannot read landmark file ({e}).") from None
  try:
    declared = next(int(ln.split(":")[1]) for ln in lines if ln.lower().startswith("n_points"))
    body = lines[lines.index("{") + 1:lines.index("}")]
    points = np.array([[float(v) for v in ln.split()[:2]] for ln in body], np.float64)
  except (StopIteration, ValueError, IndexError) as e:
    raise BadLandmarksError(f"{path}: not an IBUG .pts file ({e}); expected 'n_points: N' "
                            "and N 'x y' lines between '{' and '}'.") from None
  if len(points) != declared or len(points) != expected_points:
    raise BadLandmarksError(f"{path}: {len(points)} points (header says {declared}); "
                            f"{expected_points} are needed to find the eyes.")
  return points


def eyes_from_points(points: np.ndarray, layout: Tuple[slice, slice] = FGNET_EYES) -> Eyes:
  """Eye centres as the means of each eye's points in ``layout``."""
  a, b = points[layout[0]].mean(0), points[layout[1]].mean(0)
  return Eyes(*sorted((a, b), key=lambda p: p[0]))


def crop_matrix(eyes: Eyes, out_size: int, alpha: float = 2.5,
                eye_height: float = 0.4) -> Tuple[np.ndarray, float]:
  """The 2x3 affine map from output pixels to input pixels, and the crop side w in input pixels."""
  if eyes.distance < 1.0:
    raise BadLandmarksError(f"eyes {eyes.left} and {eyes.right} are {eyes.distance:.2f} px apart.")
  d = eyes.right - eyes.left
  angle = np.arctan2(d[1], d[0])
  side = alpha * eyes.distance
  scale = side / out_size  # input pixels per output pixel
  cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
  centre = (eyes.left + eyes.right) / 2.0
  # Output pixel (u, v) -> input: centre + R * scale * (u - out/2, v - eye_height*out).
  ox, oy = out_size / 2.0, eye_height * out_size
  matrix = np.array([[cos, -sin, centre[0] - cos * ox + sin * oy],
                     [sin, cos, centre[1] - sin * ox - cos * oy]])
  return matrix, side


def crop_face(image: np.ndarray, eyes: Eyes, out_size: int, alpha: float = 2.5,
              eye_height: float = 0.4) -> np.ndarray:
  """The normalised face, uint8 (out_size, out_size, 3); outside the photo is black."""
  from PIL import Image

  matrix, side = crop_matrix(eyes, out_size, alpha, eye_height)
  im = Image.fromarray(np.asarray(image, np.uint8))
  # Downscale large crops in two steps: PIL's affine transform does not antialias.
  shrink = int(side // (2 * out_size))
  if shrink >= 2:
    im = im.reduce(shrink)
    matrix = matrix / shrink
  out = im.transform((out_size, out_size), Image.AFFINE, data=tuple(matrix.ravel()),
                     resample=Image.BILINEAR)
  return np.asarray(out.convert("RGB"), np.uint8)


def centre_crop(image: np.ndarray, out_size: int) -> np.ndarray:
  """The fallback when no eyes are known: the central square, resized."""
  from PIL import Image

  h, w = image.shape[:2]
  s = min(h, w)
  top, left = (h - s) // 2, (w - s) // 2
  im = Image.fromarray(np.asarray(image[top:top + s, left:left + s], np.uint8))
  return np.asarray(im.convert("RGB").resize((out_size, out_size), Image.BILINEAR), np.uint8)


def stored_size(image_size: int, normalize_faces: bool = True) -> int:
  """The side of a stored crop: loose (``MARGIN`` wider) for eye-normalised faces."""
  return int(round(image_size * MARGIN)) if normalize_faces else image_size


def stored_crop(image: np.ndarray, eyes: Optional[Eyes], image_size: int,
                normalize_faces: bool = True, alpha: float = 2.5,
                eye_height: float = 0.4) -> np.ndarray:
  """The crop as datasets store it, at ``stored_size``: the eye-normalised face made
  ``MARGIN`` looser (its central ``image_size`` px are the face of side alpha * l with
  the eyes at ``eye_height``), the central square without eyes, or, with
  ``normalize_faces`` False, the whole image resized."""
  size = stored_size(image_size, normalize_faces)
  if not normalize_faces:
    return images.resize(image, size)
  if eyes is None:
    return centre_crop(image, size)
  return crop_face(image, eyes, size, alpha * MARGIN, 0.5 - (0.5 - eye_height) / MARGIN)


def fgnet_pts_path(points_dir: str, image_name: str) -> str:
  """FG-NET's points file for an image: the same stem in lower case (001A02.JPG -> 001a02.pts)."""
  return os.path.join(points_dir, os.path.splitext(image_name)[0].lower() + ".pts")
