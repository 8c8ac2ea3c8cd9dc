"""Eye-based face normalisation, on synthetic geometry and on FG-NET's real landmarks."""

import os

import numpy as np
import pytest

from clustercnn_jax.data import faces

FGNET = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fgnet", "FGNET")


def write_pts(path, points, declared=None):
  declared = len(points) if declared is None else declared
  body = "\n".join(f"{x} {y}" for x, y in points)
  path.write_text(f"version: 1\nn_points: {declared}\n{{\n{body}\n}}\n")


def test_read_pts_and_its_errors(tmp_path):
  pts = np.random.default_rng(0).uniform(0, 100, (68, 2))
  good = tmp_path / "good.pts"
  write_pts(good, pts)
  np.testing.assert_allclose(faces.read_pts(str(good)), pts, rtol=1e-6)
  short = tmp_path / "short.pts"
  write_pts(short, pts[:60])
  with pytest.raises(faces.BadLandmarksError, match="short.pts: 60 points"):
    faces.read_pts(str(short))
  lying = tmp_path / "lying.pts"
  write_pts(lying, pts, declared=70)
  with pytest.raises(faces.BadLandmarksError, match="header says 70"):
    faces.read_pts(str(lying))
  garbage = tmp_path / "garbage.pts"
  garbage.write_text("hello\n")
  with pytest.raises(faces.BadLandmarksError, match="garbage.pts: not an IBUG .pts file"):
    faces.read_pts(str(garbage))


@pytest.mark.parametrize("angle_deg", [0.0, 17.0, -30.0])
def test_crop_puts_the_eyes_where_it_promises(angle_deg):
  """Two bright dots as eyes, rotated and scaled: after the crop they sit level at the
  promised pixels, alpha * l apart in the crop's coordinates."""
  size, alpha, eye_height = 64, 2.5, 0.4
  img = np.zeros((400, 500, 3), np.uint8)
  centre, half = np.array([260.0, 190.0]), 40.0
  a = np.deg2rad(angle_deg)
  offset = half * np.array([np.cos(a), np.sin(a)])
  left, right = centre - offset, centre + offset
  yy, xx = np.mgrid[:400, :500]
  for p in (left, right):
    img[(xx - p[0]) ** 2 + (yy - p[1]) ** 2 <= 16] = 255
  out = faces.crop_face(img, faces.Eyes(left, right), size, alpha, eye_height)[..., 0].astype(float)
  ys, xs = np.nonzero(out > 100)
  found = sorted([(xs[xs < size / 2].mean(), ys[xs < size / 2].mean()),
                  (xs[xs >= size / 2].mean(), ys[xs >= size / 2].mean())])
  expected_dx = size / alpha / 2  # half the eye distance in output pixels
  np.testing.assert_allclose(found[0], (size / 2 - expected_dx, eye_height * size), atol=1.0)
  np.testing.assert_allclose(found[1], (size / 2 + expected_dx, eye_height * size), atol=1.0)


def test_centre_crop_fallback():
  img = np.zeros((300, 200, 3), np.uint8)
  img[50:250] = 200
  out = faces.centre_crop(img, 32)
  assert out.shape == (32, 32, 3) and out.min() == 200


@pytest.mark.skipif(not os.path.isdir(FGNET), reason="../shared/data/fgnet is not present")
def test_fgnet_markup_eyes_are_points_27_to_36():
  """FG-NET's 68 points are not in the IBUG order: on every one of its 1,002 files the
  eyes found by faces.FGNET_EYES are ~0.45 jaw widths apart, the IBUG indices ~0.11."""
  names = sorted(os.listdir(os.path.join(FGNET, "points")))
  assert len(names) == 1002
  ratios = {"fgnet": [], "ibug": []}
  for name in names:
    p = faces.read_pts(os.path.join(FGNET, "points", name))
    jaw = np.linalg.norm(p[0] - p[14])
    for layout, key in ((faces.FGNET_EYES, "fgnet"), (faces.IBUG_EYES, "ibug")):
      ratios[key].append(faces.eyes_from_points(p, layout).distance / jaw)
  assert 0.35 < np.percentile(ratios["fgnet"], 1) and np.percentile(ratios["fgnet"], 99) < 0.6
  assert np.percentile(ratios["ibug"], 99) < 0.2
