"""Faces in users' photos, cropped exactly as the training data was.

A model learns the framing of its training crops, so a photo goes through the
dataset builders' path (``read_image``, the face detector, ``stored_crop``)
with the workdir's ``face.normalize`` and ``face`` settings; with
``face.normalize`` False the whole photo is resized, as the ``resize<N>``
datasets were. ``detect=False`` takes each file as a face crop already.
"""

import dataclasses
import os
from typing import Any, Callable, Iterator, List, Optional, Sequence

import ml_collections
import numpy as np

from clustercnn_jax.data import faces, images

FaceFinder = Callable[[np.ndarray], Sequence[Any]]  # image -> detector.Face list


@dataclasses.dataclass
class Photo:
  """One file: the image as read, its faces' crops, boxes and eyes, or an error."""
  file: str
  image: Optional[np.ndarray] = None  # upright, long side at most images.DEFAULT_MAX_SIDE
  scale: float = 1.0  # pixels of the file per pixel of ``image``
  crops: List[np.ndarray] = dataclasses.field(default_factory=list)
  boxes: List[Optional[np.ndarray]] = dataclasses.field(default_factory=list)  # in ``image``
  eyes: List[Optional[faces.Eyes]] = dataclasses.field(default_factory=list)  # in ``image``
  error: Optional[str] = None


# The long side photos are detected at: at 320 px dlib's HOG detector finds as many faces
# as at 800 on FG-NET and UTKFace in half the time (benchmarks/detector.py); smaller faces
# are looked for again upsampled where none is found.
DETECT_SIDE = 320


def default_detector() -> FaceFinder:
  """dlib's detector, as the builders use it, giving every face of a photo."""
  from clustercnn_jax.data.detector import DlibEyeDetector

  return DlibEyeDetector(max_side=DETECT_SIDE).faces


def image_files(paths: Sequence[str]) -> List[str]:
  """Files as given; a folder becomes its image files (by extension, sorted, not recursive)."""
  from PIL import Image

  known = set(Image.registered_extensions())
  out = []
  for p in paths:
    if os.path.isdir(p):
      out += [os.path.join(p, n) for n in sorted(os.listdir(p))
              if not n.startswith(".") and os.path.splitext(n)[1].lower() in known]
    else:
      out.append(p)
  return out


def read_photo(path: str, config: ml_collections.ConfigDict,
               detector: Optional[FaceFinder] = None, detect: bool = True) -> Photo:
  """``path``'s face crops (``faces.stored_size`` px, or ``image_size`` without detection);
  a ``Photo`` with ``error`` set when the file cannot be read or holds no face.

  ``detector``: image -> faces (``DlibEyeDetector().faces``, made here if not given).
  """
  photo = Photo(path)
  try:
    photo.image, (width, _) = images.read_upright(path)
    photo.scale = width / photo.image.shape[1]
  except (images.ImageReadError, OSError) as e:
    photo.error = str(e)
    return photo
  if not detect or not config.face.normalize:
    photo.crops, photo.boxes, photo.eyes = [images.resize(photo.image, config.image_size)], \
        [None], [None]
    return photo
  for face in (detector or default_detector())(photo.image):
    if face.eyes.distance < 1.0:  # a degenerate detection: no crop to make
      continue
    photo.crops.append(faces.stored_crop(photo.image, face.eyes, config.image_size, True,
                                         config.face.alpha, config.face.eye_height))
    photo.boxes.append(face.box)
    photo.eyes.append(face.eyes)
  if not photo.crops:
    photo.error = f"{path}: no face found (--no_detect takes the file as a face crop)."
  return photo


def read_photos(paths: Sequence[str], config: ml_collections.ConfigDict,
                detector: Optional[FaceFinder] = None, detect: bool = True) -> Iterator[Photo]:
  """``read_photo`` for every file of ``paths`` (folders expanded), one detector for all."""
  if detect and config.face.normalize and detector is None:
    detector = default_detector()
  for path in image_files(paths):
    yield read_photo(path, config, detector, detect)
