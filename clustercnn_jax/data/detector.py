"""Eye detection for images without landmark annotations (MORPH II, users' own photos).

A detector is any callable ``image (H, W, 3) uint8 -> Detection``. The default
is dlib's HOG face detector with its 5-point shape predictor (PyPI packages
``dlib-bin`` and ``face-recognition-models``: prebuilt, nothing downloaded at
run time). Where several faces are found, the largest is used and the count is
reported so that builders can say so; ``DlibEyeDetector.faces`` gives them all
(prediction on users' photos).
"""

import dataclasses
from typing import Callable, List, Optional

import numpy as np

from clustercnn_jax.data.faces import Eyes


@dataclasses.dataclass(frozen=True)
class Detection:
  eyes: Optional[Eyes]  # None: no face found
  num_faces: int


@dataclasses.dataclass(frozen=True)
class Face:
  box: np.ndarray  # (x0, y0, x1, y1) in pixels of the image given
  eyes: Eyes


EyeDetector = Callable[[np.ndarray], Detection]


MODELS = ("hog", "mmod")


class DlibEyeDetector:
  """A face detector + 5-point landmarks; eye centre = mean of each eye's two corners.

  Detection runs on a copy whose long side is at most ``max_side`` pixels
  (speed), first at that scale and, where no face is found, upsampled
  ``upsample`` times (faces down to ~40 px); coordinates are mapped back to
  the full image. ``model``: dlib's HOG frontal detector, or the MMOD CNN that
  face-recognition-models ships (``benchmarks/detector.py`` compares them).
  ``grey``: detect and place the landmarks on the image's luminance (ITU-R 601), where
  HOG computes one gradient per pixel instead of the strongest of three.
  """

  def __init__(self, max_side: int = 800, upsample: int = 1, model: str = "hog",
               grey: bool = False):
    if model not in MODELS:
      raise ValueError(f"Unknown face detector {model!r}; choose one of {MODELS}.")
    try:
      import dlib
      import face_recognition_models
    except ImportError as e:
      raise ImportError(
          "The default eye detector needs dlib and its 5-point model: "
          "pip install dlib-bin face-recognition-models") from e
    if model == "hog":
      self._detector = dlib.get_frontal_face_detector()
    else:
      cnn = dlib.cnn_face_detection_model_v1(
          face_recognition_models.cnn_face_detector_model_location())
      self._detector = lambda image, up: [d.rect for d in cnn(image, up)]
    self._predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location())
    self._max_side, self._upsample, self._grey = max_side, upsample, grey

  def __call__(self, image: np.ndarray) -> Detection:
    """The largest face's eyes, and how many faces there are."""
    small, scale, rects = self._find(image)
    if not rects:
      return Detection(None, 0)
    return Detection(self._face(small, scale, max(rects, key=_area)).eyes, len(rects))

  def faces(self, image: np.ndarray) -> List[Face]:
    """Every face, largest first, with its box and eyes."""
    small, scale, rects = self._find(image)
    return [self._face(small, scale, r) for r in sorted(rects, key=lambda r: -_area(r))]

  def _find(self, image: np.ndarray):
    from PIL import Image

    image = np.ascontiguousarray(image, np.uint8)
    h, w = image.shape[:2]
    scale = min(1.0, self._max_side / max(h, w))
    small = image
    if scale < 1.0 or self._grey:
      pil = Image.fromarray(image)
      pil = pil.convert("L") if self._grey else pil  # first: a third of the pixels to resize
      if scale < 1.0:
        pil = pil.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
      small = np.asarray(pil)
    # Faces of 80 px and more are found at the native scale, which is several times
    # faster; only when none is found, look again with the image upsampled.
    rects = list(self._detector(small, 0))
    if not rects and self._upsample > 0:
      rects = list(self._detector(small, self._upsample))
    return small, scale, rects

  def _face(self, small: np.ndarray, scale: float, rect) -> Face:
    shape = self._predictor(small, rect)
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64) / scale
    a, b = pts[0:2].mean(0), pts[2:4].mean(0)  # parts 0-1: one eye's corners, 2-3: the other
    box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float64) / scale
    return Face(box, Eyes(*sorted((a, b), key=lambda p: p[0])))


def _area(rect) -> int:
  return rect.width() * rect.height()
