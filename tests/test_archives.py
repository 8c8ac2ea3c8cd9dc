"""Builders read the official archives (FGNET.zip, UTKFace.tar.gz) as well as their folders."""

import io
import os
import tarfile
import zipfile

import numpy as np
import pytest

from clustercnn_jax.data import builders
from clustercnn_jax.data.builders import common
from conftest import ROOT

SHARED = os.path.join(ROOT, "..", "shared", "data")
FGNET = os.path.join(SHARED, "fgnet", "FGNET")
UTKFACE = os.path.join(SHARED, "utkface", "UTKFace")
needs_fgnet = pytest.mark.skipif(not os.path.isdir(FGNET), reason="../shared/data/fgnet absent")
needs_utk = pytest.mark.skipif(not os.path.isdir(UTKFACE), reason="../shared/data/utkface absent")


def fgnet_files(people=("001", "002")):
  """(archive name, path) of the images and landmarks of a few people."""
  out = []
  for sub in ("images", "points"):
    for n in sorted(os.listdir(os.path.join(FGNET, sub))):
      if n[:3] in people:
        out.append((f"{sub}/{n}", os.path.join(FGNET, sub, n)))
  return out


def folder_build(tmp_path, files, top):
  manual = tmp_path / "folder_manual" / top
  for arc, path in files:
    (manual / os.path.dirname(arc)).mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.abspath(path), manual / arc)
  return manual.parent


@needs_fgnet
@pytest.mark.parametrize("prefix", ["FGNET/", ""])
def test_fgnet_zip_builds_the_same_as_its_folder(tmp_path, prefix):
  files = fgnet_files()
  manual = tmp_path / "zip_manual"
  manual.mkdir()
  with zipfile.ZipFile(manual / "FGNET.zip", "w") as zf:
    for arc, path in files:
      zf.write(path, prefix + arc)
  from_zip, report = builders.load("fgnet", "crop72", str(tmp_path / "tfds_zip"), str(manual))
  n_images = sum(arc.startswith("images/") for arc, _ in files)
  assert report["read"] == n_images == report["kept"] and set(from_zip.person_ids) == {1, 2}

  folder = folder_build(tmp_path, files, "FGNET")
  from_dir, _ = builders.load("fgnet", "crop72", str(tmp_path / "tfds_dir"), str(folder))
  np.testing.assert_array_equal(from_zip.images, from_dir.images)
  np.testing.assert_array_equal(from_zip.ages, from_dir.ages)


def test_truncated_zip_names_the_file_and_leaves_nothing_behind(tmp_path):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as zf:
    zf.writestr("FGNET/images/001A02.JPG", os.urandom(50_000))
  (tmp_path / "FGNET.zip").write_bytes(buf.getvalue()[:30_000])
  with pytest.raises(common.BadArchiveError, match=r"(?s)FGNET\.zip.*download it again"):
    builders.load("fgnet", "crop72", str(tmp_path / "tfds"), str(tmp_path))
  leftovers = [d for d, _, _ in os.walk(tmp_path / "tfds") if "extracted" in d]
  assert all(not os.listdir(d) for d in leftovers)


def test_corrupt_zip_member_is_refused(tmp_path):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
    zf.writestr("FGNET/images/001A02.JPG", b"A" * 1000)
  data = bytearray(buf.getvalue())
  data[data.index(b"A" * 1000) + 10] = ord("B")  # the CRC no longer matches
  (tmp_path / "FGNET.zip").write_bytes(bytes(data))
  with pytest.raises(common.BadArchiveError, match="CRC"):
    builders.load("fgnet", "crop72", str(tmp_path / "tfds"), str(tmp_path))


def utk_sample(n=6):
  names = sorted(os.listdir(UTKFACE))[::1000][:n]
  return [(f"UTKFace/{m}", os.path.join(UTKFACE, m)) for m in names]


@needs_utk
def test_utkface_tar_gz_builds_the_same_as_its_folder(tmp_path):
  files = utk_sample()
  manual = tmp_path / "tar_manual"
  manual.mkdir()
  with tarfile.open(manual / "UTKFace.tar.gz", "w:gz") as tf:
    for arc, path in files:
      tf.add(path, arc)
  from_tar, report = builders.load("utkface", "crop72", str(tmp_path / "tfds_tar"),
                                   str(manual))
  assert report["read"] == len(files) == report["kept"]

  folder = folder_build(tmp_path, [(a.split("/", 1)[1], p) for a, p in files], "UTKFace")
  from_dir, _ = builders.load("utkface", "crop72", str(tmp_path / "tfds_dir"), str(folder))
  np.testing.assert_array_equal(from_tar.images, from_dir.images)
  np.testing.assert_array_equal(from_tar.ages, from_dir.ages)


def test_tar_member_escaping_the_folder_is_refused(tmp_path):
  with tarfile.open(tmp_path / "UTKFace.tar.gz", "w:gz") as tf:
    info = tarfile.TarInfo("../../escaped_1_0_0_1.jpg.chip.jpg")
    info.size = 3
    tf.addfile(info, io.BytesIO(b"abc"))
  with pytest.raises(common.BadArchiveError, match="UTKFace.tar.gz"):
    builders.load("utkface", "crop72", str(tmp_path / "tfds"), str(tmp_path))
  assert not list(tmp_path.rglob("escaped*"))


def test_truncated_tar_gz_names_the_file(tmp_path):
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as tf:
    info = tarfile.TarInfo("UTKFace/30_0_0_1.jpg.chip.jpg")
    payload = os.urandom(100_000)
    info.size = len(payload)
    tf.addfile(info, io.BytesIO(payload))
  (tmp_path / "UTKFace.tar.gz").write_bytes(buf.getvalue()[:50_000])
  with pytest.raises(common.BadArchiveError, match=r"(?s)UTKFace\.tar\.gz.*truncated or corrupt"):
    builders.load("utkface", "crop72", str(tmp_path / "tfds"), str(tmp_path))
