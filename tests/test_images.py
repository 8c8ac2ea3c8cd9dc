"""Every kind of awkward input file gives an RGB array or a clear error naming the file."""

import numpy as np
import pytest
from PIL import Image

from clustercnn_jax.data.images import (ImageReadError, decode, encode_png, read_image,
                                        read_upright)


def save(tmp_path, name, im, **kw):
  path = tmp_path / name
  im.save(path, **kw)
  return str(path)


def gradient(w=40, h=30):
  x = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
  y = np.linspace(0, 255, h, dtype=np.float64)[:, None, None]
  return np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                         np.full((h, w, 1), 60.0)], -1).astype(np.uint8)


def test_rgb_jpeg_and_png(tmp_path):
  arr = gradient()
  out = read_image(save(tmp_path, "a.png", Image.fromarray(arr)))
  np.testing.assert_array_equal(out, arr)
  out = read_image(save(tmp_path, "a.jpg", Image.fromarray(arr), quality=95))
  assert out.shape == arr.shape and np.abs(out.astype(int) - arr).mean() < 3


def test_zero_byte_truncated_and_corrupt(tmp_path):
  empty = tmp_path / "empty.jpg"
  empty.write_bytes(b"")
  with pytest.raises(ImageReadError, match="empty.jpg: empty file"):
    read_image(str(empty))
  good = save(tmp_path, "t.jpg", Image.fromarray(gradient(200, 200)))
  data = open(good, "rb").read()
  trunc = tmp_path / "truncated.jpg"
  trunc.write_bytes(data[: len(data) // 2])
  with pytest.raises(ImageReadError, match="truncated.jpg: corrupt or truncated"):
    read_image(str(trunc))
  junk = tmp_path / "junk.jpg"
  junk.write_bytes(b"this is not a jpeg" * 10)
  with pytest.raises(ImageReadError, match="junk.jpg: not an image"):
    read_image(str(junk))
  with pytest.raises(ImageReadError, match="missing.jpg: cannot open"):
    read_image(str(tmp_path / "missing.jpg"))


def test_alpha_is_composited_over_grey(tmp_path):
  rgba = np.zeros((10, 10, 4), np.uint8)
  rgba[..., 0] = 255
  rgba[:5, :, 3] = 255  # top half opaque red, bottom half transparent
  out = read_image(save(tmp_path, "alpha.png", Image.fromarray(rgba, "RGBA")))
  np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
  np.testing.assert_array_equal(out[9, 9], [128, 128, 128])


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1", "LA"])
def test_other_modes_become_rgb(tmp_path, mode):
  im = Image.fromarray(gradient()).convert(mode)
  ext = "jpg" if mode == "CMYK" else "png"
  if mode == "LA":
    ext = "png"
  out = read_image(save(tmp_path, f"m.{ext}", im))
  assert out.shape == (30, 40, 3) and out.dtype == np.uint8


def test_16_bit(tmp_path):
  a = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
  out = read_image(save(tmp_path, "deep.png", Image.fromarray(a)))  # mode I;16
  assert out.shape == (30, 40, 3)
  assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_exif_rotation(tmp_path):
  arr = gradient(40, 30)
  im = Image.fromarray(arr)
  exif = im.getexif()
  exif[0x0112] = 6  # "rotate 90 CW to display"
  out = read_image(save(tmp_path, "rot.jpg", im, exif=exif, quality=95))
  assert out.shape == (40, 30, 3)


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_upright_size_is_the_files_frame_rotated_and_before_downscaling(tmp_path, ext):
  im = Image.fromarray(gradient(400, 300))
  exif = im.getexif()
  exif[0x0112] = 6
  out, size = read_upright(save(tmp_path, f"rot.{ext}", im, exif=exif), max_side=100)
  assert size == (300, 400)
  assert out.shape == (100, 75, 3)
  _, size = read_upright(save(tmp_path, f"plain.{ext}", im), max_side=100)
  assert size == (400, 300)


def test_huge_image_is_downscaled(tmp_path):
  big = Image.new("RGB", (8000, 8000), (10, 200, 30))
  path = save(tmp_path, "big.jpg", big, quality=50)
  out = read_image(path, max_side=1024)
  assert max(out.shape[:2]) <= 1024
  assert abs(int(out[500, 500, 1]) - 200) < 5


def test_png_round_trip():
  arr = gradient()
  np.testing.assert_array_equal(decode(encode_png(arr)), arr)
