"""FG-NET as a TFDS dataset: 1,002 images of 82 people, faces cropped around the annotated eyes.

Built once from files the user downloads (FG-NET's licence forbids
redistribution) and read back with ``tfds.data_source`` (array_record, random
access). Neither building nor reading needs TensorFlow: crops are stored as
PNG bytes and decoded with Pillow.
"""

import os
import re
from typing import Any, Dict, Iterator, Tuple

import tensorflow_datasets as tfds

from clustercnn_jax.data import faces, images
from clustercnn_jax.data.builders import common

_NAME = re.compile(r"^(\d{3})A(\d{2})([a-z]?)\.jpe?g$", re.IGNORECASE)


def parse_name(name: str) -> Tuple[int, int]:
  """'001A43a.JPG' -> (person 1, age 43); ValueError for anything else."""
  m = _NAME.match(name)
  if not m:
    raise ValueError(f"{name}: not an FG-NET image name (PPPAaa[x].JPG)")
  return int(m.group(1)), int(m.group(2))


class Fgnet(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Eye-normalised loose crops; eyes from the 68-point annotation."}
  BUILDER_CONFIGS = common.crop_configs((72, 128))
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Get FGNET.zip from the FG-NET ageing database (https://yanweifu.github.io/FG_NET_data/),
then put either the zip itself, or its extracted FGNET/ folder (with images/ and
points/ inside), in the manual directory:
  <manual_dir>/FGNET.zip            or
  <manual_dir>/FGNET/images/001A02.JPG ...  and  <manual_dir>/FGNET/points/001a02.pts ...
Pass the manual directory with --config.data.manual_dir (or DownloadConfig(manual_dir=...)).
"""

  def _info(self) -> tfds.core.DatasetInfo:
    return common.dataset_info(self, "FG-NET with faces normalised around the annotated eyes.")

  def _split_generators(self, dl_manager):
    root = _find_root(str(dl_manager.manual_dir), dl_manager)
    return {"train": self._generate_examples(root)}

  def _generate_examples(self, root: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    report = self.build_report = common.Report(self.name)
    image_dir, points_dir = os.path.join(root, "images"), os.path.join(root, "points")
    for name in sorted(os.listdir(image_dir)):
      report.read += 1
      try:
        person, age = parse_name(name)
      except ValueError:
        report.skip("unparsable file name", name)
        continue
      try:
        image = images.read_image(os.path.join(image_dir, name))
      except images.ImageReadError as e:
        report.skip("unreadable image", str(e))
        continue
      try:
        pts = faces.read_pts(faces.fgnet_pts_path(points_dir, name))
        eyes, source = faces.eyes_from_points(pts, faces.FGNET_EYES), "annotation"
      except faces.BadLandmarksError as e:
        eyes, source = None, "none"
        report.note("bad or missing landmarks", str(e))
      example = common.make_example(image, eyes, source, self.builder_config, age=age,
                                    person_id=person, gender=-1, file_name=name, report=report)
      if example is not None:
        report.kept += 1
        yield name, example
    report.log()


def _is_root(folder: str) -> bool:
  return os.path.isdir(os.path.join(folder, "images")) and \
      os.path.isdir(os.path.join(folder, "points"))


def _find_root(manual_dir: str, dl_manager) -> str:
  for candidate in (os.path.join(manual_dir, "FGNET"), manual_dir):
    if _is_root(candidate):
      return candidate
  archive = os.path.join(manual_dir, "FGNET.zip")
  if os.path.exists(archive):
    return common.folder_in_archive(archive, dl_manager, _is_root,
                                    "folder with images/ and points/",
                                    Fgnet.MANUAL_DOWNLOAD_INSTRUCTIONS)
  raise common.MissingManualDataError(
      f"FG-NET not found in {manual_dir!r}.\n{Fgnet.MANUAL_DOWNLOAD_INSTRUCTIONS}")
