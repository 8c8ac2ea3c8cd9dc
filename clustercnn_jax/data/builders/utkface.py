"""UTKFace ("Aligned & Cropped") as a TFDS dataset; eyes from the face detector.

Labels come from the file names ``age_gender_race_datetime.jpg.chip.jpg``. Two
names in the official archive are malformed and parse like the others:
``55_0_0_20170116232725357jpg.chip.jpg`` (no dot before jpg) and
``39_1_20170116174525125.jpg.chip.jpg`` (no race field).
"""

import os
import re
from typing import Any, Dict, Iterator, Optional, Tuple

import tensorflow_datasets as tfds

from clustercnn_jax.data.builders import common

_LABELS = re.compile(r"^(\d{1,3})_([01])_")


def parse_name(name: str) -> Optional[Dict[str, int]]:
  """'25_1_3_2017....jpg.chip.jpg' -> {'age': 25, 'gender': 1}; None if unparsable."""
  m = _LABELS.match(os.path.basename(name))
  if m and int(m.group(1)) <= 120:
    return {"age": int(m.group(1)), "gender": int(m.group(2))}
  m = re.match(r"^(\d{1,3})_", os.path.basename(name))  # gender field missing or odd
  if m and int(m.group(1)) <= 120:
    return {"age": int(m.group(1)), "gender": -1}
  return None


def _has_images(folder: str) -> bool:
  return os.path.isdir(folder) and any(n.endswith(".jpg") for n in os.listdir(folder))


class Utkface(common.DetectorBuilder):
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Aligned & Cropped faces; eyes from dlib's 5-point detector."}
  BUILDER_CONFIGS = common.crop_configs((128, 72, 96))
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download UTKFace.tar.gz ("Aligned & Cropped Faces") from https://susanqq.github.io/UTKFace/
and put it, or the extracted UTKFace/ folder of *.jpg.chip.jpg files, in the manual directory.
"""

  def _info(self) -> tfds.core.DatasetInfo:
    return common.dataset_info(self, "UTKFace aligned & cropped, normalised around detected eyes.")

  def _split_generators(self, dl_manager):
    manual = str(dl_manager.manual_dir)
    for candidate in (os.path.join(manual, "UTKFace"), manual):
      if _has_images(candidate):
        return {"train": self._generate_examples(candidate)}
    archive = os.path.join(manual, "UTKFace.tar.gz")
    if os.path.exists(archive):
      folder = common.folder_in_archive(archive, dl_manager, _has_images, ".jpg images",
                                        self.MANUAL_DOWNLOAD_INSTRUCTIONS)
      return {"train": self._generate_examples(folder)}
    raise common.MissingManualDataError(f"UTKFace not found in {manual!r}.\n"
                                        f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def _generate_examples(self, folder: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    report = self.build_report = common.Report(self.name)
    for name in sorted(os.listdir(folder)):
      if not name.lower().endswith((".jpg", ".jpeg", ".png")):
        continue
      report.read += 1
      labels = parse_name(name)
      if labels is None:
        report.skip("unparsable age or file name", name)
        continue
      example = self.example_from_file(os.path.join(folder, name),
                                       {"person_id": -1, **labels}, report, name)
      if example is not None:
        report.kept += 1
        yield name, example
    report.log()
