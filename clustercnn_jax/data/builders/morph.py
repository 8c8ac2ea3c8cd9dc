"""MORPH II (album 2) as a TFDS dataset; eyes from the face detector.

MORPH II is licensed and never redistributed: the user points ``manual_dir``
at their copy. Labels come from the release's CSV where there is one, else
from album-2 file names such as ``009055_0M54.JPG`` (id 009055, photo 0, male,
age 54).
"""

import csv
import os
import re
from typing import Any, Dict, Iterator, Optional, Tuple

import tensorflow_datasets as tfds

from clustercnn_jax.data.builders import common

_NAME = re.compile(r"^(\d+)_(\d+)([MF])(\d{1,3})\.(jpe?g|png)$", re.IGNORECASE)
_IMAGE_EXT = (".jpg", ".jpeg", ".png")
_COLUMNS = {  # our field: accepted CSV headers (case-insensitive)
    "person_id": ("id_num", "id", "subject_id", "person_id"),
    "age": ("age",),
    "gender": ("gender", "sex"),
    "path": ("photo", "path", "file", "filename", "image", "image_path"),
}


def parse_name(name: str) -> Optional[Dict[str, int]]:
  """'009055_0M54.JPG' -> {'person_id': 9055, 'gender': 0, 'age': 54}; None if not MORPH-like."""
  m = _NAME.match(os.path.basename(name))
  if not m:
    return None
  return {"person_id": int(m.group(1)), "gender": 0 if m.group(3).upper() == "M" else 1,
          "age": int(m.group(4))}


def _gender(value: str) -> int:
  v = value.strip().upper()
  return 0 if v in ("M", "MALE", "0") else 1 if v in ("F", "FEMALE", "1") else -1


class Morph2(common.DetectorBuilder):
  name_parser = staticmethod(parse_name)
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Album 2; eyes from dlib's 5-point detector."}
  BUILDER_CONFIGS = common.crop_configs((128, 72))
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
MORPH II is licensed: obtain album 2 from its distributor (https://uncw.edu/oic/tech/morph.html).
Put in the manual directory its images (any sub-folders) and, if you have it, the CSV of
the release (columns id_num/id, age, gender, photo/path; race is ignored). Without a CSV,
labels are read from album-2 file names such as 009055_0M54.JPG.
"""

  def _info(self) -> tfds.core.DatasetInfo:
    return common.dataset_info(self, "MORPH II album 2, faces normalised around detected eyes.")

  def _split_generators(self, dl_manager):
    root = str(dl_manager.manual_dir)
    if not os.path.isdir(root):
      raise common.MissingManualDataError(f"{root!r} does not exist.\n"
                                          f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return {"train": self._generate_examples(root)}

  def _generate_examples(self, root: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    report = self.build_report = common.Report(self.name)
    files = {}
    for d, _, names in os.walk(root):
      for n in names:
        if n.lower().endswith(_IMAGE_EXT):
          files.setdefault(n.lower(), os.path.join(d, n))
    rows = list(_csv_rows(root, report)) or [
        {"path": p, **(self.name_parser(n) or {})} for n, p in sorted(files.items())]
    if not rows:
      raise common.MissingManualDataError(f"No MORPH images or CSV in {root!r}.\n"
                                          f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    seen = set()
    for row in rows:
      report.read += 1
      path = row.get("path", "")
      key = os.path.basename(path)
      if "age" not in row:
        report.skip("unparsable age or file name", key)
        continue
      full = path if os.path.isabs(path) and os.path.exists(path) else files.get(key.lower())
      if full is None or key in seen:
        report.skip("image file missing" if full is None else "duplicate row", key)
        continue
      seen.add(key)
      labels = {"age": row["age"], "person_id": row.get("person_id", -1),
                "gender": row.get("gender", -1)}
      example = self.example_from_file(full, labels, report, key)
      if example is not None:
        report.kept += 1
        yield key, example
    report.log()


def _csv_rows(root: str, report: common.Report) -> Iterator[Dict[str, Any]]:
  for name in sorted(os.listdir(root)):
    if not name.lower().endswith(".csv"):
      continue
    with open(os.path.join(root, name), newline="") as f:
      reader = csv.DictReader(f)
      headers = {h.strip().lower(): h for h in reader.fieldnames or []}
      cols = {field: next((headers[c] for c in options if c in headers), None)
              for field, options in _COLUMNS.items()}
      if cols["path"] is None or cols["age"] is None:
        report.note("CSV without photo/age columns, ignored", name)
        continue
      for raw in reader:
        row: Dict[str, Any] = {"path": raw[cols["path"]].strip()}
        try:
          row["age"] = int(float(raw[cols["age"]]))
        except (TypeError, ValueError):
          pass
        if cols["person_id"] and raw[cols["person_id"]].strip().isdigit():
          row["person_id"] = int(raw[cols["person_id"]])
        if cols["gender"]:
          row["gender"] = _gender(raw[cols["gender"]] or "")
        yield row


def parse_leading_age(name: str) -> Optional[Dict[str, int]]:
  """'34_anything.jpg' -> {'age': 34} (UTKFace-style names); None otherwise."""
  m = re.match(r"^(\d{1,3})[_\-.]", os.path.basename(name))
  return {"age": int(m.group(1))} if m and int(m.group(1)) <= 120 else None


class FaceAgeFolder(Morph2):
  """Your own photos: a folder of images plus a CSV (path, age[, id, gender]), or names
  that start with the age ('34_holiday.jpg'). Eyes from the detector."""

  name_parser = staticmethod(parse_leading_age)
  RELEASE_NOTES = {"1.0.0": "A user's folder of images with ages."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put your images (any sub-folders) in the manual directory, with either a CSV file there
(columns: path or file, age; optional: id, gender as M/F) or file names that begin with
the age, e.g. 34_holiday.jpg.
"""

  def _info(self) -> tfds.core.DatasetInfo:
    return common.dataset_info(self, "A user's face images with ages.")
