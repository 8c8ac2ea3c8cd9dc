"""What every face-age TFDS builder shares: configs, features, the crop, the build report.

Each eye-normalised example holds a *loose* crop: the square of side
alpha * margin * l (``margin`` = 1.25), stored at ``margin * image_size``
pixels. Training crops the central 1 / margin of it with random scale jitter
on the device (``data/preprocess.py``), so the host never decodes twice. The
un-normalised baseline (``resize<N>``) stores the whole image at N pixels:
the model sees all of it, and scale jitter (part of normalisation) is off.
"""

import collections
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tarfile
import zipfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from clustercnn_jax.data import faces, images


class MissingManualDataError(FileNotFoundError):
  """The user has not put the dataset's files in the manual directory yet."""


class BadArchiveError(ValueError):
  """A downloaded archive is truncated or corrupt."""


def extract_archive(archive: str, out_dir: str) -> str:
  """Extracts a .zip or .tar(.gz) once into ``out_dir`` and returns it.

  Extraction goes to a temporary sibling first and is renamed when complete, so
  an interrupted run never leaves a half-extracted folder that a later run
  would take for the whole dataset. Members that would land outside
  ``out_dir`` are refused (zipfile and tarfile's "data" filter).
  """
  if os.path.isdir(out_dir):
    return out_dir
  partial = out_dir + ".partial"
  shutil.rmtree(partial, ignore_errors=True)
  os.makedirs(partial)
  logging.info("Extracting %s to %s ...", archive, out_dir)
  try:
    if archive.lower().endswith(".zip"):
      with zipfile.ZipFile(archive) as zf:
        bad = zf.testzip()
        if bad is not None:
          raise zipfile.BadZipFile(f"member {bad} fails its CRC check")
        zf.extractall(partial)
    else:
      with tarfile.open(archive) as tf:
        tf.extractall(partial, filter="data")
  except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
    shutil.rmtree(partial, ignore_errors=True)
    raise BadArchiveError(f"{archive} cannot be extracted ({type(e).__name__}: {e}). It is "
                          "probably truncated or corrupt: download it again, or extract it "
                          "yourself and put the folder in its place.") from e
  os.replace(partial, out_dir)
  return out_dir


def folder_in_archive(archive: str, dl_manager: Any, is_it: Callable[[str], bool], what: str,
                      instructions: str) -> str:
  """Extracts ``archive`` once under the TFDS download dir; returns its folder that ``is_it``."""
  name = os.path.basename(archive).split(".")[0].lower()
  out = extract_archive(archive, os.path.join(str(dl_manager.download_dir), "extracted", name))
  folder = find_folder(out, is_it)
  if folder is None:
    raise MissingManualDataError(f"{archive} holds no {what}.\n{instructions}")
  return folder


def find_folder(root: str, is_it: Callable[[str], bool], max_depth: int = 3) -> Optional[str]:
  """The shallowest folder under ``root`` (``root`` included) for which ``is_it`` holds."""
  level = [root]
  for _ in range(max_depth + 1):
    for folder in level:
      if is_it(folder):
        return folder
    level = [os.path.join(f, n) for f in level for n in sorted(os.listdir(f))
             if os.path.isdir(os.path.join(f, n))]
  return None


@dataclasses.dataclass(eq=False)
class CropConfig(tfds.core.BuilderConfig):
  """``crop<N>``: eye-normalised faces for N-pixel inputs; ``resize<N>``: plain resize."""
  image_size: int = 128
  normalize_faces: bool = True
  alpha: float = 2.5
  eye_height: float = 0.4
  no_face: str = "centre"  # 'centre' (centre crop) or 'skip' when no eyes are known

  @property
  def stored_size(self) -> int:
    return faces.stored_size(self.image_size, self.normalize_faces)


# 1.1.0: the whole image at the input size (1.0.0 stored it 1.25x larger, and training
# then saw only its central 80%).
RESIZE_VERSION = tfds.core.Version("1.1.0")
RESIZE_NOTES = {"1.1.0": "The whole image resized to the input size, no margin."}


def crop_configs(sizes: Sequence[int]) -> List[CropConfig]:
  out = []
  for s in sizes:
    out.append(CropConfig(name=f"crop{s}", image_size=s,
                          description=f"Eye-normalised {s}px faces (stored loose)."))
    out.append(CropConfig(name=f"resize{s}", image_size=s, normalize_faces=False,
                          version=RESIZE_VERSION, release_notes=RESIZE_NOTES,
                          description=f"The un-normalised baseline: whole image resized to {s}px."))
  return out


def crop_config(image_size: int, normalize_faces: bool = True, alpha: float = 2.5,
                eye_height: float = 0.4, no_face: str = "centre") -> CropConfig:
  """The builder config for these settings; non-default ones get a name of their own
  (e.g. ``crop72-a2.8-h0.38-skip``), so each variant is built once, side by side."""
  if no_face not in ("centre", "skip"):
    raise ValueError(f"no_face={no_face!r}: use 'centre' or 'skip'.")
  kind = "crop" if normalize_faces else "resize"
  name = f"{kind}{image_size}"
  if normalize_faces and (alpha, eye_height, no_face) != (2.5, 0.4, "centre"):
    name += f"-a{alpha:g}-h{eye_height:g}-{no_face}"
  versioned = {} if normalize_faces else dict(version=RESIZE_VERSION, release_notes=RESIZE_NOTES)
  return CropConfig(name=name, image_size=image_size, normalize_faces=normalize_faces,
                    alpha=alpha, eye_height=eye_height, no_face=no_face, **versioned,
                    description=f"{kind} {image_size}px, alpha {alpha}, eyes at {eye_height}.")


def features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Tensor(shape=(), dtype=np.object_),  # PNG bytes
      "age": np.int32,
      "person_id": np.int32,  # -1 where the dataset has none
      "gender": np.int32,  # 0 male, 1 female, -1 unknown
      "eyes": tfds.features.Tensor(shape=(2, 2), dtype=np.float32),  # (left, right) x, y
      "eye_source": tfds.features.Text(),  # annotation | detector | none
      "file_name": tfds.features.Text(),
  })


def dataset_info(builder: tfds.core.GeneratorBasedBuilder, description: str) -> tfds.core.DatasetInfo:
  return tfds.core.DatasetInfo(builder=builder, description=description, features=features())


class Report:
  """Counts of images read, kept and skipped (with reasons), logged after a build."""

  def __init__(self, name: str):
    self.name, self.read, self.kept = name, 0, 0
    self.skipped: Dict[str, List[str]] = collections.defaultdict(list)
    self.notes: Dict[str, List[str]] = collections.defaultdict(list)

  def skip(self, reason: str, detail: str) -> None:
    self.skipped[reason].append(detail)

  def note(self, reason: str, detail: str) -> None:
    self.notes[reason].append(detail)

  def as_dict(self) -> Dict[str, Any]:
    return {"dataset": self.name, "read": self.read, "kept": self.kept,
            "skipped": {k: len(v) for k, v in self.skipped.items()},
            "notes": {k: len(v) for k, v in self.notes.items()},
            "examples": {k: v[:20] for k, v in {**self.skipped, **self.notes}.items()}}

  def summary(self) -> str:
    parts = [f"{len(v)} {k}" for k, v in self.skipped.items()]
    notes = [f"{len(v)} {k}" for k, v in self.notes.items()]
    return (f"{self.name}: read {self.read}, kept {self.kept}, skipped {self.read - self.kept}"
            + (f" ({', '.join(parts)})" if parts else "")
            + (f"; notes: {', '.join(notes)}" if notes else ""))

  def log(self) -> None:
    logging.info("%s", self.summary())
    for reason, items in {**self.skipped, **self.notes}.items():
      logging.warning("%s: %d %s, e.g. %s", self.name, len(items), reason, items[:3])

  def save(self, path: str) -> None:
    with open(path, "w") as f:
      json.dump(self.as_dict(), f, indent=2)


def make_example(image: np.ndarray, eyes: Optional[faces.Eyes], eye_source: str,
                 config: CropConfig, *, age: int, person_id: int, gender: int, file_name: str,
                 report: Report) -> Optional[Dict[str, Any]]:
  """The stored example, or None (counted in ``report``) when it must be skipped."""
  if config.normalize_faces and eyes is None:
    if config.no_face == "skip":
      report.skip("no face or eyes found", file_name)
      return None
    report.note("no face or eyes found: centre crop", file_name)
  crop = faces.stored_crop(image, eyes, config.image_size, config.normalize_faces,
                           config.alpha, config.eye_height)
  eyes_arr = np.stack([eyes.left, eyes.right]).astype(np.float32) if eyes is not None \
      else np.full((2, 2), -1.0, np.float32)
  return {"image": images.encode_png(crop), "age": int(age), "person_id": int(person_id),
          "gender": int(gender), "eyes": eyes_arr, "eye_source": eye_source,
          "file_name": file_name}


class DetectorBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder whose eyes come from a face detector (pluggable: ``detector=``)."""

  def __init__(self, *, detector: Optional[Callable[[np.ndarray], Any]] = None, **kwargs):
    super().__init__(**kwargs)
    self._detector = detector

  def detector(self):
    if self._detector is None:
      from clustercnn_jax.data.detector import DlibEyeDetector

      self._detector = DlibEyeDetector()
    return self._detector

  def example_from_file(self, path: str, labels: Dict[str, Any], report: Report,
                        key: str) -> Optional[Dict[str, Any]]:
    """Read, detect, crop: the example for ``path``, or None (skipped and counted)."""
    try:
      image = images.read_image(path)
    except images.ImageReadError as e:
      report.skip("unreadable image", str(e))
      return None
    eyes, source = None, "none"
    if self.builder_config.normalize_faces:
      found = self.detector()(image)
      eyes, source = found.eyes, "detector"
      if found.num_faces > 1:
        report.note("several faces: the largest taken", key)
      if eyes is None:
        source = "none"
    return make_example(image, eyes, source, self.builder_config, report=report, file_name=key,
                        **labels)


def build(builder_cls, config: "str | CropConfig", data_dir: str, manual_dir: str,
          **builder_kwargs) -> tfds.core.DatasetBuilder:
  """Builds (once) and returns the builder; the build report lands beside the data.

  ``config`` is a name from BUILDER_CONFIGS ('crop72', 'resize128', ...) or a
  ``CropConfig`` (see ``crop_config``)."""
  config_name = config if isinstance(config, str) else config.name
  registered = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
  if not isinstance(config, str) and config_name in registered:
    fields = lambda c: (c.image_size, c.normalize_faces, c.alpha, c.eye_height, c.no_face)
    if fields(registered[config_name]) != fields(config):
      raise ValueError(f"{config} differs from the registered config {config_name!r}.")
    config = config_name  # TFDS refuses a custom config named like a registered one
  builder = builder_cls(config=config, data_dir=data_dir, file_format="array_record",
                        **builder_kwargs)
  if not builder.is_prepared():
    if not manual_dir or not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
      state = "is empty" if manual_dir and os.path.isdir(manual_dir) else "does not exist"
      raise MissingManualDataError(
          f"{builder.name}/{config_name} is not built in {data_dir!r} and the manual "
          f"directory {manual_dir!r} {state} (--config.data.manual_dir).\n"
          f"{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    logging.info("Building %s/%s from %s (once) into %s ...", builder.name, config_name,
                 manual_dir, builder.data_dir)
    with _without_download_banner(builder):
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    logging.info("Built %s/%s into %s: later runs read it from there.", builder.name,
                 config_name, builder.data_dir)
    report = getattr(builder, "build_report", None)
    if report is not None:
      report.save(os.path.join(builder.data_dir, "build_report.json"))
  return builder


@contextlib.contextmanager
def _without_download_banner(builder: tfds.core.DatasetBuilder) -> Iterator[None]:
  """Silences TFDS's "Downloading and preparing dataset Unknown size" and "downloaded and
  prepared" lines (printed, not logged) for this builder: nothing is downloaded, the
  user's files are read. Its logged messages and warnings are untouched."""
  quiet = lambda: None
  names = ("_log_download_bytes", "_log_download_done")
  for name in names:
    setattr(builder, name, quiet)
  try:
    yield
  finally:
    for name in names:
      if builder.__dict__.get(name) is quiet:
        delattr(builder, name)
