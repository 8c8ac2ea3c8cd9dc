"""Reads PyTorch checkpoints (.pth / .pt) into NumPy arrays without importing torch.

Two on-disk formats exist:

* zip (torch >= 1.6): ``<prefix>/data.pkl`` is a pickle whose tensors refer,
  by persistent id, to raw storages ``<prefix>/data/<key>``;
* legacy: five pickles in a row (magic number, protocol version, system info,
  the object, the storage keys), then each storage as an int64 element count
  followed by its raw little-endian bytes.

A pickle can run any code it names. The unpickler here resolves only the
globals a state dict needs (OrderedDict, torch's tensor-rebuild functions and
typed storage classes) and refuses every other name with ``UnsafeCheckpointError``
before anything is called, so a malicious checkpoint cannot run code.
"""

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Dict, Tuple

import ml_dtypes
import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
  """The checkpoint names a global that a state dict never needs."""


class _StorageType:
  def __init__(self, name: str):
    self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
  """A flat buffer; filled at once (zip) or after the pickle is read (legacy)."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype, self.numel, self.data = dtype, numel, None


class _Tensor:
  """A strided view of a storage, materialised once the storage has its bytes."""

  def __init__(self, storage: _Storage, offset: int, size: Tuple[int, ...],
               stride: Tuple[int, ...]):
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def numpy(self) -> np.ndarray:
    data = self.storage.data
    if data is None:
      raise pickle.UnpicklingError("A tensor refers to a storage with no data.")
    if not self.size:
      return data[self.offset].copy()
    needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
    if min(self.size) > 0 and needed > data.size:
      raise pickle.UnpicklingError(f"A tensor of size {self.size} overruns its storage "
                                   f"({data.size} elements): the checkpoint is truncated.")
    item = data.dtype.itemsize
    return np.lib.stride_tricks.as_strided(data[self.offset:], self.size,
                                           [s * item for s in self.stride]).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *_unused):
  return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, load_storage):
    super().__init__(file)
    self._load_storage = load_storage

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _ALLOWED:
      return _ALLOWED[module, name]
    if module == "torch" and name in STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafeCheckpointError(
        f"Refusing to load {module}.{name}: a state dict needs only tensors, storages and "
        "dicts. The file may be malicious, or it is a whole pickled model; save "
        "model.state_dict() instead.")

  def persistent_load(self, pid: Any) -> Any:
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise UnsafeCheckpointError(f"Unexpected persistent id {pid!r} in the checkpoint.")
    return self._load_storage(pid[1:])


def _load_zip(path: str) -> Any:
  with zipfile.ZipFile(path) as zf:
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
      raise pickle.UnpicklingError(f"{path}: a zip checkpoint must hold one data.pkl, "
                                   f"found {len(pkl)}.")
    prefix = pkl[0][:-len("data.pkl")]
    storages: Dict[str, _Storage] = {}

    def load_storage(args):
      storage_type, key, _location, numel = args[:4]
      if key not in storages:
        raw = zf.read(f"{prefix}data/{key}")
        storage = _Storage(storage_type.dtype, numel)
        storage.data = np.frombuffer(raw, storage_type.dtype)
        storages[key] = storage
      return storages[key]

    return _Unpickler(io.BytesIO(zf.read(pkl[0])), load_storage).load()


def _load_legacy(path: str) -> Any:
  with open(path, "rb") as f:
    safe = lambda: _Unpickler(f, lambda _: None).load()  # header pickles hold plain values
    if safe() != LEGACY_MAGIC:
      raise pickle.UnpicklingError(f"{path} is neither a zip nor a legacy PyTorch checkpoint.")
    safe()  # protocol version
    safe()  # system info
    storages: Dict[str, _Storage] = {}
    views = []

    def load_storage(args):
      storage_type, key, _location, numel, view = args
      if key not in storages:
        storages[key] = _Storage(storage_type.dtype, numel)
      if view is not None:
        views.append(view)
      return storages[key]

    obj = _Unpickler(f, load_storage).load()
    if views:
      raise pickle.UnpicklingError(f"{path} uses storage views (torch < 0.4), not supported.")
    keys = safe()
    for key in keys:
      storage = storages[key]
      header = f.read(8)
      if len(header) < 8:
        raise pickle.UnpicklingError(f"{path} is truncated (storage {key} missing).")
      (count,) = struct.unpack("<q", header)
      nbytes = count * storage.dtype.itemsize
      raw = f.read(nbytes)
      if len(raw) < nbytes:
        raise pickle.UnpicklingError(f"{path} is truncated in storage {key}.")
      storage.data = np.frombuffer(raw, storage.dtype)
  return obj


def _materialise(obj: Any) -> Any:
  if isinstance(obj, _Tensor):
    return obj.numpy()
  if isinstance(obj, dict):
    return collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialise(v) for v in obj)
  return obj


def load(path: str) -> Any:
  """The checkpoint's object with every tensor as a NumPy array."""
  if not os.path.exists(path):
    raise FileNotFoundError(path)
  obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
  return _materialise(obj)


def load_state_dict(path: str) -> "collections.OrderedDict[str, np.ndarray]":
  """A flat name -> array dict; unwraps {'state_dict': ...} / {'model': ...} wrappers."""
  obj = load(path)
  for wrapper in ("state_dict", "model", "model_state_dict"):
    if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
      obj = obj[wrapper]
  if not isinstance(obj, dict):
    raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict.")
  prefix = "module."  # saved from DataParallel
  if obj and all(k.startswith(prefix) for k in obj):
    obj = collections.OrderedDict((k[len(prefix):], v) for k, v in obj.items())
  return obj
