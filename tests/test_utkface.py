"""UTKFace from its folder: labels from names (malformed ones included), bad files counted."""

import os

import numpy as np
import pytest
from PIL import Image

from clustercnn_jax.data import utkface

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "utkface", "UTKFace")


def test_parse_age_including_the_two_malformed_official_names():
  assert utkface.parse_age("25_0_2_20170116174525125.jpg.chip.jpg") == 25
  assert utkface.parse_age("55_0_0_20170116232725357jpg.chip.jpg") == 55
  assert utkface.parse_age("39_1_20170116174525125.jpg.chip.jpg") == 39
  assert utkface.parse_age("face.jpg") is None
  assert utkface.parse_age("999_0_0_x.jpg") is None


def test_read_folder_skips_and_counts(tmp_path):
  for name in ("10_0_0_a.jpg.chip.jpg", "70_1_2_b.jpg.chip.jpg"):
    Image.new("RGB", (200, 200), (100, 50, 20)).save(tmp_path / name)
  (tmp_path / "33_0_0_broken.jpg.chip.jpg").write_bytes(b"")
  Image.new("RGB", (200, 200)).save(tmp_path / "noage.jpg")
  ds, report = utkface.read_folder(str(tmp_path), 32)
  assert ds.images.shape == (2, 32, 32, 3) and sorted(ds.ages.tolist()) == [10, 70]
  assert report.read == 4 and report.kept == 2
  assert {k: len(v) for k, v in report.skipped.items()} == {"unparsable age": 1,
                                                            "unreadable image": 1}


def test_missing_folder_says_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match="UTKFace.tar.gz"):
    utkface.read_folder(str(tmp_path / "nope"), 32)


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data/utkface is not present")
def test_shared_copy_parses_completely():
  names = os.listdir(SHARED)
  ages = [utkface.parse_age(n) for n in names]
  assert len(names) == 18977 and None not in ages
  assert min(ages) == 1 and max(ages) == 116 and abs(np.mean(ages) - 33.4) < 0.05


def test_split_is_seeded_and_disjoint():
  images = np.arange(50, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
  ds = utkface.ArrayDataset(images, np.arange(50))
  a_train, a_test = utkface.split(ds, seed=1)
  b_train, b_test = utkface.split(ds, seed=1)
  assert len(a_test) == 10 and not set(a_train.ages) & set(a_test.ages)
  np.testing.assert_array_equal(a_test.ages, b_test.ages)


def test_tfds_builder_on_a_sample_of_the_shared_copy(tmp_path):
  """40 real UTKFace images (linked, not copied) plus the two malformed names and a bad file."""
  if not os.path.isdir(SHARED):
    pytest.skip("../shared/data/utkface is not present")
  from clustercnn_jax.data import builders

  manual = tmp_path / "UTKFace"
  manual.mkdir()
  names = sorted(os.listdir(SHARED))[::475][:38] + [
      "55_0_0_20170116232725357jpg.chip.jpg", "39_1_20170116174525125.jpg.chip.jpg"]
  for n in names:
    os.symlink(os.path.join(os.path.abspath(SHARED), n), manual / n)
  (manual / "x_broken.jpg").write_bytes(b"")
  ds, report = builders.load("utkface", "crop72", str(tmp_path / "tfds"), str(tmp_path))
  assert report["read"] == 41 and report["kept"] == 40
  assert report["skipped"] == {"unparsable age or file name": 1}
  assert ds.images.shape == (40, 90, 90, 3)
  assert sorted(ds.ages.tolist()) == sorted(utkface.parse_age(n) for n in names)
  # Faces in UTKFace are aligned and frontal: the detector finds nearly all of them.
  assert report["notes"].get("no face or eyes found: centre crop", 0) <= 4
