"""Files of workdirs, reports and protocols, on a local disk or in a bucket (gs://).

A pod run's workdir is a bucket that every host shares, so nothing a run, a
protocol, ``evaluate``, ``compare``, ``ensemble``, ``export`` or ``predict``
reads or writes there may go through plain ``open()`` or ``os.path``: it goes
through ``etils.epath`` (what orbax uses too), which takes local paths and
``gs://`` alike. Small files are written whole and atomically where the
store allows it (a temporary name, then a rename), so that a crash never
leaves half a config.json. Only the feature cache stays on the local disk.
"""

import io
import json
import os
import uuid
from typing import Any, Dict, Union

import numpy as np
from etils import epath

PathLike = Union[str, os.PathLike]


def path(p: PathLike) -> epath.Path:
  """``p`` as an epath: ``~`` expanded and made absolute when local, as given when remote."""
  s = os.fspath(p)
  if is_remote(s):
    return epath.Path(s)
  return epath.Path(os.path.abspath(os.path.expanduser(s)))


def is_remote(p: PathLike) -> bool:
  """Whether ``p`` names an object store (``gs://``, ``s3://``, ...) rather than a disk."""
  return "://" in os.fspath(p)


def join(p: PathLike, *names: str) -> str:
  """``p / name / ...`` as a string, for either kind of path (``os.path.join`` would
  break nothing here, but this says which paths may be remote)."""
  return os.fspath(path(p).joinpath(*names)) if names else os.fspath(path(p))


def exists(p: PathLike) -> bool:
  return path(p).exists()


def makedirs(p: PathLike) -> epath.Path:
  """Creates ``p`` (and its parents); a file in the way is a clear error."""
  d = path(p)
  if d.exists() and not d.is_dir():
    raise NotADirectoryError(f"{p} is a file, not a directory: pass a directory path "
                             "(or remove the file).")
  d.mkdir(parents=True, exist_ok=True)
  return d


def write_bytes(p: PathLike, data: bytes) -> None:
  """Writes ``data`` whole: to a temporary name beside ``p``, then renamed onto it, so
  a reader sees the old file or the new one, never a part."""
  target = path(p)
  makedirs(target.parent)
  tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
  tmp.write_bytes(data)
  tmp.replace(target)


def write_text(p: PathLike, text: str) -> None:
  write_bytes(p, text.encode("utf-8"))


def read_text(p: PathLike) -> str:
  return path(p).read_text()


def write_json(p: PathLike, obj: Any) -> None:
  write_text(p, json.dumps(obj, indent=2, sort_keys=True))


def read_json(p: PathLike) -> Any:
  return json.loads(read_text(p))


def save_npz(p: PathLike, **arrays: Any) -> None:
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  write_bytes(p, buf.getvalue())


def load_npz(p: PathLike) -> Dict[str, np.ndarray]:
  """Every array of an .npz file, read into memory."""
  with np.load(io.BytesIO(path(p).read_bytes())) as z:
    return {k: z[k] for k in z.files}


def save_figure(fig: Any, p: PathLike, **kwargs: Any) -> str:
  """A matplotlib Figure as the file ``p`` (its format from the suffix); returns ``p``."""
  buf = io.BytesIO()
  fig.savefig(buf, format=os.path.splitext(os.fspath(p))[1][1:] or "png", **kwargs)
  write_bytes(p, buf.getvalue())
  return os.fspath(p)
