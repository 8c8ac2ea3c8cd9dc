"""Maps a PyTorch state dict onto the Flax variables of a backbone.

The backbones name their modules after the torch keys, with "_<n>" standing
for ".<n>" (Flax module names cannot hold dots), so the mapping is one rule:

  flax  inception3a/branch2_0/conv/kernel  <->  torch  inception3a.branch2.0.conv.weight

and a layout change per kind of leaf: conv kernels OIHW -> HWIO (depthwise
(C, 1, H, W) -> (H, W, 1, C)), dense kernels (out, in) -> (in, out), BatchNorm
weight/bias/running_mean/running_var -> scale/bias/mean/var.
"""

import re
from typing import Any, Dict, Iterable, List, Mapping, Tuple

import numpy as np
from flax import traverse_util

_LEAF = {("params", "kernel"): "weight", ("params", "bias"): "bias",
         ("params", "scale"): "weight", ("batch_stats", "mean"): "running_mean",
         ("batch_stats", "var"): "running_var"}


class StateDictMismatchError(ValueError):
  """Keys missing, unexpected or of the wrong shape: all of them are listed."""


def torch_key(collection: str, path: Tuple[str, ...]) -> str:
  modules = [re.sub(r"_(\d+)", r".\1", p).lstrip(".") for p in path[:-1]]
  return ".".join(modules + [_LEAF[collection, path[-1]]])


def _to_flax(value: np.ndarray, target_shape: Tuple[int, ...]) -> np.ndarray:
  if value.ndim == 4:  # conv: OIHW -> HWIO
    value = value.transpose(2, 3, 1, 0)
  elif value.ndim == 2:  # dense: (out, in) -> (in, out)
    value = value.T
  return value


def convert(state_dict: Mapping[str, np.ndarray], template: Mapping[str, Any],
            ignore: Iterable[str] = ("num_batches_tracked",)) -> Dict[str, Any]:
  """Returns {'params': ..., 'batch_stats': ...} shaped like ``template``.

  ``template`` holds the backbone's variables (arrays or ShapeDtypeStructs).
  Torch keys containing any of the ``ignore`` substrings (e.g. the ImageNet
  head we replace) may be left unused. Everything else must match exactly;
  otherwise the error lists every missing, unexpected and mis-shaped key.
  """
  out: Dict[str, Dict[Tuple[str, ...], np.ndarray]] = {}
  used, missing, mismatched = set(), [], []
  for collection in ("params", "batch_stats"):
    flat = traverse_util.flatten_dict(dict(template.get(collection, {})))
    out[collection] = {}
    for path, leaf in flat.items():
      key = torch_key(collection, path)
      if key not in state_dict:
        missing.append(f"{key} (for {collection}/{'/'.join(path)}, shape {tuple(leaf.shape)})")
        continue
      used.add(key)
      value = _to_flax(np.asarray(state_dict[key]), tuple(leaf.shape))
      if value.shape != tuple(leaf.shape):
        mismatched.append(f"{key}: checkpoint {tuple(np.shape(state_dict[key]))} -> "
                          f"{value.shape}, model expects {tuple(leaf.shape)}")
        continue
      out[collection][path] = value.astype(leaf.dtype)
  unexpected = [k for k in state_dict if k not in used and not any(s in k for s in ignore)]
  if missing or unexpected or mismatched:
    lines: List[str] = ["The checkpoint does not match the model."]
    for title, items in (("missing", missing), ("unexpected", unexpected),
                         ("wrong shape", mismatched)):
      if items:
        lines.append(f"{len(items)} {title}:")
        lines += [f"  {item}" for item in items]
    raise StateDictMismatchError("\n".join(lines))
  return {c: traverse_util.unflatten_dict(v) for c, v in out.items() if v}
