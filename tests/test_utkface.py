"""UTKFace, one loader (the TFDS builder): labels from names (malformed ones included), bad
files counted, and the plain-resize variant that keeps UTKFace's own alignment."""

import os

import numpy as np
import pytest
from PIL import Image

from clustercnn_jax import data
from clustercnn_jax.data import builders, images, splits
from clustercnn_jax.data.builders import common
from clustercnn_jax.data.builders.utkface import parse_name
from clustercnn_jax.data.dataset import ArrayDataset

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "utkface", "UTKFace")


def age(name):
  labels = parse_name(name)
  return None if labels is None else labels["age"]


def test_parse_names_including_the_two_malformed_official_ones():
  assert parse_name("25_0_2_20170116174525125.jpg.chip.jpg") == {"age": 25, "gender": 0}
  assert age("55_0_0_20170116232725357jpg.chip.jpg") == 55
  assert age("39_1_20170116174525125.jpg.chip.jpg") == 39
  assert age("face.jpg") is None
  assert age("999_0_0_x.jpg") is None


def test_plain_resize_variant_skips_counts_and_keeps_the_whole_image(tmp_path):
  folder = tmp_path / "manual" / "UTKFace"
  folder.mkdir(parents=True)
  gradient = np.broadcast_to(np.arange(200, dtype=np.uint8)[None, :, None], (200, 200, 3))
  for name in ("10_0_0_a.jpg.chip.jpg", "70_1_2_b.jpg.chip.jpg"):
    Image.fromarray(np.ascontiguousarray(gradient)).save(folder / name, quality=100)
  (folder / "33_0_0_broken.jpg.chip.jpg").write_bytes(b"")
  Image.new("RGB", (200, 200)).save(folder / "noage.jpg")
  crop = common.crop_config(32, normalize_faces=False)
  ds, report = builders.load("utkface", crop, str(tmp_path / "tfds"), str(tmp_path / "manual"))
  assert ds.images.shape == (2, 32, 32, 3) and sorted(ds.ages.tolist()) == [10, 70]
  assert report["read"] == 4 and report["kept"] == 2
  assert report["skipped"] == {"unparsable age or file name": 1, "unreadable image": 1}
  # The whole image, resized to the input size: no margin, nothing cut off.
  expected = images.resize(images.read_image(str(folder / "10_0_0_a.jpg.chip.jpg")), 32)
  np.testing.assert_array_equal(ds.images[0], expected)
  assert ds.images[0, :, 0].mean() < 10 and ds.images[0, :, -1].mean() > 190


def test_missing_folder_says_what_to_do(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="UTKFace.tar.gz"):
    builders.load("utkface", "resize72", str(tmp_path / "tfds"), str(tmp_path / "empty"))


def test_one_config_shape_selects_dataset_and_split(tmp_path):
  """data.name, data.manual_dir and data.split are all a loader needs."""
  from configs import utkface

  folder = tmp_path / "UTKFace"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(20):
    Image.fromarray(rng.integers(0, 255, (60, 60, 3), np.uint8)).save(
        folder / f"{i + 1}_0_0_{i}.jpg.chip.jpg")
  config = utkface.get_config()
  config.image_size = 16
  config.data.manual_dir = str(tmp_path)
  config.data.data_dir = str(tmp_path / "tfds")
  config.data.split.test_fraction = 0.25
  train, test = data.load(config)
  assert (len(train), len(test)) == (15, 5) and train.images.shape[1:] == (16, 16, 3)
  config.data.split.seed = 1
  train1, test1 = data.load(config)
  assert not np.array_equal(np.sort(test.ages), np.sort(test1.ages))


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data/utkface is not present")
def test_shared_copy_parses_completely():
  names = os.listdir(SHARED)
  ages = [age(n) for n in names]
  assert len(names) == 18977 and None not in ages
  assert min(ages) == 1 and max(ages) == 116 and abs(np.mean(ages) - 33.4) < 0.05


def test_split_is_seeded_and_disjoint():
  pixels = np.arange(50, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
  ds = ArrayDataset(pixels, np.arange(50))
  a_train, a_test = splits.random_split(ds, seed=1)
  b_train, b_test = splits.random_split(ds, seed=1)
  assert len(a_test) == 10 and not set(a_train.ages) & set(a_test.ages)
  np.testing.assert_array_equal(a_test.ages, b_test.ages)


def test_tfds_builder_on_a_sample_of_the_shared_copy(tmp_path):
  """40 real UTKFace images (linked, not copied) plus the two malformed names and a bad file."""
  if not os.path.isdir(SHARED):
    pytest.skip("../shared/data/utkface is not present")
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
  assert sorted(ds.ages.tolist()) == sorted(age(n) for n in names)
  # Faces in UTKFace are aligned and frontal: the detector finds nearly all of them.
  assert report["notes"].get("no face or eyes found: centre crop", 0) <= 4
