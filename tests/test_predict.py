"""Using a trained model: the predict CLI on photos and crops, and ``clustercnn_jax.load``."""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from PIL import Image

import clustercnn_jax
from clustercnn_jax import predict, predictor
from clustercnn_jax.data import faces, photos, synthetic
from conftest import ROOT

skimage_data = pytest.importorskip("skimage.data")
FGNET = os.path.join(ROOT, "..", "shared", "data", "fgnet", "FGNET")
# The astronaut's face, found by dlib (tests/test_morph.py reads her eyes off the image).
ASTRONAUT_BOX = np.array([179.0, 83.0, 266.0, 170.0])
ASTRONAUT_EYES = np.array([[204.0, 102.0], [246.0, 104.0]])


@pytest.fixture(scope="module")
def model(trained_workdir):
  return clustercnn_jax.load(trained_workdir, batch_size=8)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("photos") / "astronaut.png")
  Image.fromarray(skimage_data.astronaut()).save(path)
  return path


def run_predict(capsys, workdir, *args):
  """The CLI in this process (no jax start-up per call): exit code and stdout."""
  predict.define_flags()
  flags.FLAGS.unparse_flags()
  # No compilation cache: this test process's later training steps must not use it
  # (predict turns it on on CPU, cli.setup).
  argv = flags.FLAGS(["predict", f"--workdir={workdir}", "--compilation_cache=", *args])
  capsys.readouterr()
  code = predict.main(argv)
  return code, capsys.readouterr().out


def json_rows(out):
  return [json.loads(line) for line in out.splitlines()]


def same_rows(a, b):
  assert [sorted(r) for r in a] == [sorted(r) for r in b]
  for x, y in zip(a, b):
    assert {k: v for k, v in x.items() if k not in ("age", "std", "p")} == \
        {k: v for k, v in y.items() if k not in ("age", "std", "p")}
    for k in ("age", "std", "p"):
      if k in x:
        assert abs(x[k] - y[k]) < 2e-3, (k, x, y)


def box_iou(a, b):
  """Intersection over union of two (x0, y0, x1, y1) boxes."""
  w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
  return w * h / (area(a) + area(b) - w * h)


def check_face_row(row, max_age=80, num_clusters=3):
  assert 0 <= row["age"] <= max_age and row["std"] > 0
  assert row["cluster"] in range(num_clusters) and 0 < row["p"] <= 1
  assert "error" not in row


def test_cli_finds_the_astronaut_and_annotates(capsys, trained_workdir, astronaut, tmp_path):
  code, out = run_predict(capsys, trained_workdir, astronaut, f"--annotate={tmp_path / 'ann'}")
  assert code == 0
  (row,) = json_rows(out)
  assert row["file"] == astronaut
  # The box is the detector's window at the scale it found the face (photos.DETECT_SIDE):
  # the same face, not the same pixels; the eyes are what the crop is made from.
  assert box_iou(row["box"], ASTRONAUT_BOX) > 0.5
  np.testing.assert_allclose(row["eyes"], ASTRONAUT_EYES, atol=8)
  check_face_row(row)
  with Image.open(tmp_path / "ann" / "astronaut.png") as im:  # PNG in, PNG out
    assert im.size == (512, 512)
    drawn = np.asarray(im.convert("RGB"), np.int16)
  box_edge = drawn[int(row["box"][1]) + 5:int(row["box"][3]) - 5, int(row["box"][0])]
  yellow = (box_edge[:, 0] > 200) & (box_edge[:, 1] > 200) & (box_edge[:, 2] < 150)
  assert yellow.mean() > 0.8  # the box, drawn in yellow


def test_bad_files_give_error_rows_and_the_run_goes_on(capsys, trained_workdir, astronaut,
                                                       tmp_path, model):
  folder = tmp_path / "mixed"
  folder.mkdir()
  (folder / "broken.jpg").write_bytes(b"not a JPEG at all")
  Image.fromarray(np.full((240, 200, 3), 128, np.uint8)).save(folder / "blank.png")
  # 8000 px: read_image decodes it at most 2048 px; boxes come back in the file's pixels.
  Image.fromarray(skimage_data.astronaut()).resize((8000, 8000)).save(folder / "big.jpg",
                                                                      quality=85)
  Image.open(astronaut).save(folder / "portrait.png")
  (folder / "notes.txt").write_text("not an image name: ignored in folders")
  code, out = run_predict(capsys, trained_workdir, str(folder))
  assert code == 1
  rows = {}
  for r in json_rows(out):  # one row per face
    rows.setdefault(os.path.basename(r["file"]), []).append(r)
  assert sorted(rows) == ["big.jpg", "blank.png", "broken.jpg", "portrait.png"]
  rows = {name: r[0] if len(r) == 1 else r for name, r in rows.items()}
  assert "not an image file" in rows["broken.jpg"]["error"]
  assert "no face found" in rows["blank.png"]["error"]
  check_face_row(rows["portrait.png"])
  # Her face among those found (dlib's HOG finds two false faces on the suit at 800 px).
  big = rows["big.jpg"] if isinstance(rows["big.jpg"], list) else [rows["big.jpg"]]
  for row in big:
    check_face_row(row)
  assert any(box_iou(r["box"], ASTRONAUT_BOX * 8000 / 512) > 0.5 for r in big), big
  # predict_files gives the CLI's rows (up to the last digit: another batch size here).
  same_rows(model.predict_files([str(folder)]), json_rows(out))


def test_csv_in_a_real_process(trained_workdir, astronaut, tmp_path):
  broken = tmp_path / "broken.png"
  broken.write_bytes(b"")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-m", "clustercnn_jax.predict", f"--workdir={trained_workdir}",
       "--format=csv", astronaut, str(broken)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1, result.stderr[-2000:]
  rows = list(csv.DictReader(io.StringIO(result.stdout)))
  assert list(rows[0]) == list(predict.COLUMNS)
  assert rows[0]["file"] == astronaut and not rows[0]["error"]
  assert box_iou([float(v) for v in rows[0]["box"].split()], ASTRONAUT_BOX) > 0.5
  assert 0 <= float(rows[0]["age"]) <= 80 and int(rows[0]["cluster"]) in range(3)
  assert rows[1]["file"] == str(broken) and "empty file" in rows[1]["error"]
  assert not rows[1]["age"]


def test_no_detect_matches_predict(capsys, trained_workdir, model, tmp_path):
  crops = synthetic.generate(11, model.config.image_size, seed=5).images
  for i, crop in enumerate(crops):
    Image.fromarray(crop).save(tmp_path / f"face{i:02d}.png")
  code, out = run_predict(capsys, trained_workdir, "--no-detect", str(tmp_path))
  assert code == 0
  rows = json_rows(out)
  assert [os.path.basename(r["file"]) for r in rows] == [f"face{i:02d}.png" for i in range(11)]
  assert all(r["box"] is None and r["eyes"] is None for r in rows)
  expected = model.predict(crops)
  np.testing.assert_allclose([r["age"] for r in rows], expected, atol=1e-3)
  clusters = model.clusters(crops)
  assert [r["cluster"] for r in rows] == clusters.index.tolist()
  np.testing.assert_allclose([r["p"] for r in rows], clusters.p, atol=1e-4)


def test_load_object(trained_workdir, model):
  config, variables = model.config, model.variables
  assert config.image_size == 32 and "params" in variables
  crops = synthetic.generate(13, config.image_size, seed=3).images
  ages = model.predict(crops)
  assert ages.shape == (13,) and ages.dtype == np.float32
  # In padded batches as one batch: the faces it is batched with change no face's age.
  whole = predictor.forward(config, model.model, variables, crops)["age"]
  np.testing.assert_allclose(ages, whole, atol=1e-4)
  # Loose crops (as datasets store them) give the ages of their central square.
  loose = np.pad(crops, ((0, 0), (4, 4), (4, 4), (0, 0)))
  np.testing.assert_allclose(model.predict(loose), ages, atol=1e-4)
  # The clusters are the nearest centroids of the embedding, with p(c|x) ~ ||x - u_c||^-2.
  x = model.embed(crops).astype(np.float64)
  centroids = np.asarray(variables["clusters"]["cluster"]["centroids"], np.float64)
  d2 = ((x[:, None] - centroids[None]) ** 2).sum(-1)
  c = model.clusters(crops)
  assert c.index.tolist() == d2.argmin(1).tolist()
  inv = 1.0 / (d2 + 1e-6)
  np.testing.assert_allclose(c.probs, inv / inv.sum(1, keepdims=True), rtol=1e-3, atol=1e-5)
  np.testing.assert_allclose(c.p, c.probs[np.arange(13), c.index], atol=1e-6)
  assert model.predict(crops[:0]).shape == (0,)
  with pytest.raises(ValueError, match="uint8 square images"):
    model.predict(crops[:, :20])


def test_rows_without_a_cluster_module():
  photo = photos.Photo("a.png", crops=[np.zeros((32, 32, 3), np.uint8)],
                                 boxes=[None], eyes=[None])
  (row,) = predictor.face_rows(photo, {"age": np.array([30.0]), "std": np.array([4.0])})
  assert row["cluster"] is None and row["p"] is None and row["age"] == 30.0


@pytest.mark.skipif(not os.path.isdir(FGNET), reason="FG-NET is not in ../shared")
def test_predict_on_fgnet_photos(capsys, trained_workdir):
  names = ["001A02.JPG", "002A16.JPG", "020A30.JPG"]
  paths = [os.path.join(FGNET, "images", n) for n in names]
  code, out = run_predict(capsys, trained_workdir, *paths)
  assert code == 0
  rows = json_rows(out)
  assert [r["file"] for r in rows] == paths
  for name, row in zip(names, rows):
    check_face_row(row)
    truth = faces.eyes_from_points(faces.read_pts(faces.fgnet_pts_path(
        os.path.join(FGNET, "points"), name)))
    # The detected eyes lie within a fifth of the eye distance of FG-NET's annotation.
    np.testing.assert_allclose(row["eyes"], np.stack(truth), atol=0.2 * truth.distance)
