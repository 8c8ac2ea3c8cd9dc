"""Predictions that would be silently wrong are refused or flagged: a model trained on
synthetic faces, photos passed as crops; annotated copies and dataset builds say the truth."""

import io
import logging
import os
import warnings

import numpy as np
import pytest
from absl import flags
from PIL import Image

import clustercnn_jax
from clustercnn_jax import predict, predictor
from clustercnn_jax.data import builders, photos
from clustercnn_jax.data.builders import common
from configs import utkface

YELLOW = (255, 255, 0)


@pytest.fixture(scope="module")
def model(trained_workdir):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", predictor.SyntheticModelWarning)
    return clustercnn_jax.load(trained_workdir, batch_size=4)


def synthetic_warnings(record):
  return [w for w in record if issubclass(w.category, predictor.SyntheticModelWarning)]


def test_each_load_of_a_synthetic_model_warns_once(trained_workdir):
  for _ in range(2):  # each load says it (the default filter shows it once per line)
    with warnings.catch_warnings(record=True) as record:
      warnings.simplefilter("always")
      clustercnn_jax.load(trained_workdir, batch_size=4)
    (w,) = synthetic_warnings(record)
    assert "synthetic faces" in str(w.message) and "configs/utkface.py" in str(w.message)
    assert trained_workdir in str(w.message)
    assert w.filename == __file__  # the caller's line, not the package's
  with pytest.warns(predictor.SyntheticModelWarning):
    predictor.load(trained_workdir)


def test_real_data_models_do_not_warn(tiny_config):
  assert predictor.synthetic_warning(tiny_config) is not None
  assert predictor.synthetic_warning(utkface.get_config()) is None


def test_the_cli_warns_once(trained_workdir, capsys, tmp_path):
  Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "crop.png")
  predict.define_flags()
  flags.FLAGS.unparse_flags()
  # No compilation cache: this test process's later training steps must not use it.
  argv = flags.FLAGS(["predict", f"--workdir={trained_workdir}", "--compilation_cache=",
                      "--no-detect", str(tmp_path / "crop.png")])
  with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    assert predict.main(argv) == 0
  assert len(synthetic_warnings(record)) == 1


def test_photos_are_refused_as_crops_with_the_shape_given(model):
  size = model.config.image_size  # 32
  crops = np.random.default_rng(0).integers(0, 255, (3, size, size, 3), np.uint8)
  # Loose crops (1.25x, as datasets store them) and up to 1.5x give their centre's ages.
  ages = model.predict(crops)
  for loose in (40, 48):
    pad = (loose - size) // 2
    padded = np.pad(crops, ((0, 0), (pad, loose - size - pad), (pad, loose - size - pad),
                            (0, 0)))
    np.testing.assert_allclose(model.predict(padded), ages, atol=1e-4)
  photo = np.zeros((1, 512, 512, 3), np.uint8)
  for fn in (model.predict, model.outputs, model.embed, model.clusters):
    with pytest.raises(ValueError, match=r"(?s)\(1, 512, 512, 3\).*predict_files"):
      fn(photo)
  with pytest.raises(ValueError, match=r"\(2, 49, 49, 3\)"):
    model.predict(np.zeros((2, 49, 49, 3), np.uint8))
  with pytest.raises(ValueError, match=r"got \(512, 512, 3\) \(one image: images\[None\]\)"):
    model.predict(photo[0])
  with pytest.raises(ValueError, match=r"got \(48, 48, 3\) \(one image"):
    model.predict(np.zeros((48, 48, 3), np.uint8))


def yellow(a):
  return (a[..., 0] > 200) & (a[..., 1] > 200) & (a[..., 2] < 100)


@pytest.mark.parametrize("box", [(20, -30, 120, 60), (20, 0, 120, 60), (-40, 10, 60, 90),
                                 (150, 5, 260, 80)])
def test_labels_stay_on_the_canvas(tmp_path, box):
  """A face box at or past the image's top or sides: its age is drawn inside the image."""
  photo = photos.Photo("face.png", image=np.zeros((120, 200, 3), np.uint8),
                       crops=[np.zeros((40, 40, 3), np.uint8)], boxes=[np.array(box, float)],
                       eyes=[[(60.0, 40.0), (90.0, 40.0)]])
  path = predict.annotate(photo, [{"age": 42.0}], str(tmp_path))
  with Image.open(path) as im:
    drawn = np.asarray(im.convert("RGB"))
  x0, y0, x1, y1 = box
  width = 2
  lines = np.zeros(drawn.shape[:2], bool)  # where the box's own outline may be
  for x in (x0, x1):
    lines[:, max(0, x - width):max(0, x + width + 1)] = True
  for y in (y0, y1):
    lines[max(0, y - width):max(0, y + width + 1), :] = True
  assert (yellow(drawn) & ~lines).sum() > 20  # the label's yellow digits


@pytest.mark.parametrize("name,fmt,out", [("a.png", "PNG", "a.png"), ("b.JPG", "JPEG", "b.JPG"),
                                          ("c.jpeg", "JPEG", "c.jpeg"),
                                          ("d.webp", "WEBP", "d.webp"),
                                          ("e.psd", "JPEG", "e.jpg"), ("f", "JPEG", "f.jpg")])
def test_annotated_copies_keep_the_format(tmp_path, name, fmt, out):
  photo = photos.Photo(os.path.join("/photos", name), image=np.zeros((64, 64, 3), np.uint8),
                       crops=[np.zeros((40, 40, 3), np.uint8)], boxes=[None], eyes=[None])
  path = predict.annotate(photo, [{"age": 3.0}], str(tmp_path))
  assert path == str(tmp_path / out)
  with Image.open(path) as im:
    assert im.format == fmt and im.size == (64, 64)
  stem, ext = os.path.splitext(out)
  assert predict.annotate(photo, [{"age": 3.0}], str(tmp_path)) == str(tmp_path / f"{stem}-1{ext}")


def test_annotate_writes_through_files(tmp_path, monkeypatch):
  """A bucket as --annotate: exists and write_bytes of clustercnn_jax.files, not open()."""
  from clustercnn_jax import files

  monkeypatch.chdir(tmp_path)  # anything written locally by mistake lands here
  written = {}
  monkeypatch.setattr(files, "exists", lambda p: str(p) in written)
  monkeypatch.setattr(files, "write_bytes", lambda p, data: written.__setitem__(str(p), data))
  photo = photos.Photo("/photos/me.png", image=np.zeros((64, 64, 3), np.uint8),
                       crops=[np.zeros((40, 40, 3), np.uint8)], boxes=[None], eyes=[None])
  for _ in range(2):
    predict.annotate(photo, [{"age": 3.0}], "gs://bucket/ann")
  assert sorted(written) == ["gs://bucket/ann/me-1.png", "gs://bucket/ann/me.png"]
  with Image.open(io.BytesIO(written["gs://bucket/ann/me.png"])) as im:
    assert im.format == "PNG"
  assert not os.listdir(tmp_path)


def test_building_from_local_files_says_so(tmp_path, capsys, caplog):
  """TFDS's "Downloading and preparing dataset Unknown size" is not printed: nothing is
  downloaded. Our line says what happens; the build's own warnings still show."""
  manual = tmp_path / "mine"
  manual.mkdir()
  for age in (21, 34):
    Image.fromarray(np.full((40, 40, 3), age, np.uint8)).save(manual / f"{age}_me.png")
  Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(manual / "untitled.png")
  config = common.crop_config(32, normalize_faces=False)  # no detector: a second's build
  caplog.set_level(logging.INFO)
  capsys.readouterr()
  ds, report = builders.load("face_age_folder", config, str(tmp_path / "tfds"), str(manual))
  out = capsys.readouterr()
  assert sorted(ds.ages.tolist()) == [21, 34] and report["kept"] == 2
  printed = out.out + out.err + caplog.text
  assert "Downloading and preparing" not in printed and "downloaded and" not in printed
  data_dir = str(tmp_path / "tfds" / "face_age_folder" / "resize32")
  assert f"Building face_age_folder/resize32 from {manual} (once) into {data_dir}" in caplog.text
  assert "Built face_age_folder/resize32" in caplog.text
  assert any(r.levelno == logging.WARNING and "unparsable" in r.getMessage()
             for r in caplog.records)  # real warnings are not hidden
  caplog.clear()
  builders.load("face_age_folder", config, str(tmp_path / "tfds"), str(manual))
  assert "Building" not in caplog.text  # built once
