"""MORPH II and user-folder builders on a fixture written here (MORPH is not redistributable),
the dlib eye detector on a real portrait, and the seeded splits."""

import csv

import numpy as np
import pytest
from PIL import Image

from clustercnn_jax.data import builders, splits
from clustercnn_jax.data.builders import morph
from clustercnn_jax.data.dataset import ArrayDataset

skimage_data = pytest.importorskip("skimage.data")


def test_parse_morph_names():
  assert morph.parse_name("009055_0M54.JPG") == {"person_id": 9055, "gender": 0, "age": 54}
  assert morph.parse_name("123456_12F07.jpg") == {"person_id": 123456, "gender": 1, "age": 7}
  assert morph.parse_name("holiday.jpg") is None
  assert morph.parse_leading_age("34_holiday.jpg") == {"age": 34}
  assert morph.parse_leading_age("holiday_34.jpg") is None


@pytest.mark.parametrize("max_side,grey", [(800, False), (320, False), (320, True)])
def test_detector_finds_the_astronauts_eyes(max_side, grey):
  from clustercnn_jax.data.detector import DlibEyeDetector

  det = DlibEyeDetector(max_side=max_side, grey=grey)
  found = det(skimage_data.astronaut())
  assert found.num_faces >= 1
  # Eyes of the portrait, read off the image by hand: about (204, 102) and (246, 104).
  np.testing.assert_allclose(found.eyes.left, [204, 102], atol=8)
  np.testing.assert_allclose(found.eyes.right, [246, 104], atol=8)
  assert det(np.full((300, 300, 3), 128, np.uint8)).eyes is None


def write_fixture(root, with_csv):
  root.mkdir(parents=True)
  face = Image.fromarray(skimage_data.astronaut())
  face.save(root / "009055_0M54.JPG")
  face.resize((256, 256)).save(root / "009056_1F31.JPG")
  Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 180, 3), np.uint8)).save(
      root / "010000_0M22.JPG")  # no face: centre crop
  (root / "010001_0M40.JPG").write_bytes(b"")  # unreadable
  Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(root / "notes.png")  # no labels
  if with_csv:
    with open(root / "morph_album2.csv", "w", newline="") as f:
      w = csv.writer(f)
      w.writerow(["id_num", "picture_num", "age", "gender", "race", "photo"])
      w.writerow(["9055", "0", "54", "M", "B", "Album2/009055_0M54.JPG"])
      w.writerow(["9056", "1", "31", "F", "W", "Album2/009056_1F31.JPG"])
      w.writerow(["10000", "0", "22", "M", "W", "Album2/010000_0M22.JPG"])
      w.writerow(["10001", "0", "40", "M", "W", "Album2/010001_0M40.JPG"])
      w.writerow(["10002", "0", "??", "M", "W", "Album2/010002_0M33.JPG"])
      w.writerow(["10003", "0", "35", "M", "W", "Album2/missing.JPG"])


@pytest.mark.parametrize("with_csv", [True, False])
def test_morph_builder_on_fixture(tmp_path, with_csv):
  write_fixture(tmp_path / "manual", with_csv)
  ds, report = builders.load("morph2", "crop72", str(tmp_path / "tfds"), str(tmp_path / "manual"))
  assert ds.images.shape == (3, 90, 90, 3)
  assert sorted(ds.ages.tolist()) == [22, 31, 54]
  assert sorted(ds.person_ids.tolist()) == [9055, 9056, 10000]
  assert report["kept"] == 3 and report["skipped"]["unreadable image"] == 1
  assert report["notes"]["no face or eyes found: centre crop"] == 1
  if with_csv:
    assert report["read"] == 6
    assert report["skipped"]["unparsable age or file name"] == 1
    assert report["skipped"]["image file missing"] == 1
  else:
    assert report["read"] == 5 and report["skipped"]["unparsable age or file name"] == 1


def test_face_age_folder_builder(tmp_path):
  root = tmp_path / "mine"
  root.mkdir()
  Image.fromarray(skimage_data.astronaut()).save(root / "47_astronaut.png")
  Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(root / "untitled.png")
  ds, report = builders.load("face_age_folder", "crop72", str(tmp_path / "tfds"), str(root))
  assert ds.ages.tolist() == [47] and report["skipped"] == {"unparsable age or file name": 1}


def test_missing_manual_dir_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="album 2"):
    builders.load("morph2", "crop72", str(tmp_path / "tfds"), str(tmp_path / "nothing"))


def distinct_images(n):
  return np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)


def test_random_splits():
  ds = ArrayDataset(distinct_images(100), np.arange(100), np.arange(100) // 4)
  train, test = splits.random_split(ds, seed=0)
  assert len(test) == 20 and len(train) == 80
  train, test = splits.random_split(ds, seed=0, by_person=True)
  assert not set(train.person_ids) & set(test.person_ids) and len(test) == 20
  again = splits.random_split(ds, seed=0, by_person=True)[1]
  np.testing.assert_array_equal(again.ages, test.ages)
  assert not np.array_equal(splits.random_split(ds, seed=1)[1].ages, splits.random_split(ds, 0)[1].ages)


def test_identical_images_stay_on_one_side():
  images = distinct_images(100)
  images[50:60] = images[0]  # 11 copies of one face
  images[70] = images[3]
  ds = ArrayDataset(images, np.arange(100))
  for seed in range(5):
    train, test = splits.random_split(ds, seed=seed)
    assert len(train) + len(test) == 100 and 12 <= len(test) <= 30
    assert not set(map(bytes, train.images)) & set(map(bytes, test.images))
  # Without duplicates the split is the plain positional one: exactly 20% test.
  assert len(splits.random_split(ArrayDataset(distinct_images(100), np.arange(100)), 0)[1]) == 20


def test_random_splits_summary(tmp_path):
  from clustercnn_jax.protocols import random_splits

  rng = np.random.default_rng(0)
  for s, err in ((0, 2.0), (1, 4.0)):
    d = tmp_path / f"split_{s}"
    d.mkdir()
    ages = rng.integers(10, 70, 50)
    np.savez(d / "predictions.npz", ages=ages, predictions=ages + err)
  summary = random_splits.summarise(str(tmp_path), [0, 1, 2])
  assert summary["finished_splits"] == [0, 1]
  assert summary["mae_mean"] == pytest.approx(3.0) and summary["mae_std"] == pytest.approx(2 ** 0.5)
  md = (tmp_path / "splits_results.md").read_text()
  assert "3.00 ± 1.41" in md
  # Pooled over both splits: 100 predictions, half off by 2 and half by 4.
  assert summary["pooled"]["num_examples"] == 100 and summary["pooled"]["mae"] == pytest.approx(3)
  assert summary["pooled"]["cs"][2] == pytest.approx(0.5) and "| CS(θ) | 0.000 | 0.000 | 0.500" in md
  from PIL import Image

  assert Image.open(tmp_path / "splits_results.png").size[0] > 500
  from clustercnn_jax.protocols import parse_ranges

  assert parse_ranges("0-2,4") == [0, 1, 2, 4] and parse_ranges("3") == [3]


def test_face_settings_from_the_config_name_their_own_build(tmp_path):
  from clustercnn_jax.data.builders import common

  assert common.crop_config(72).name == "crop72"
  assert common.crop_config(72, normalize_faces=False, alpha=3.0).name == "resize72"
  cfg = common.crop_config(72, alpha=2.8, eye_height=0.38, no_face="skip")
  assert cfg.name == "crop72-a2.8-h0.38-skip"
  with pytest.raises(ValueError, match="no_face"):
    common.crop_config(72, no_face="maybe")
  write_fixture(tmp_path / "manual", with_csv=False)
  ds, report = builders.load("morph2", cfg, str(tmp_path / "tfds"), str(tmp_path / "manual"))
  assert report["skipped"]["no face or eyes found"] == 1 and len(ds) == 2  # skipped, not cropped
  assert report["notes"]["several faces: the largest taken"] >= 1  # the astronaut photo


def test_default_settings_use_the_registered_config(tmp_path):
  """crop_config() with defaults is the registered 'crop72' (TFDS refuses a twin)."""
  from clustercnn_jax.data.builders import common

  write_fixture(tmp_path / "manual", with_csv=False)
  ds, _ = builders.load("morph2", common.crop_config(72), str(tmp_path / "tfds"),
                        str(tmp_path / "manual"))
  assert len(ds) == 3 and (tmp_path / "tfds" / "morph2" / "crop72").is_dir()
