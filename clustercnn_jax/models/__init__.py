"""Backbone registry: a backbone is chosen by name in the config.

A backbone is a Flax module called as ``backbone(images, train=...)`` that
returns pooled features of shape (B, D) and accepts ``axis_name`` (for
cross-device BatchNorm) and ``dtype``. Add one by passing a new mapping to
``get_backbone(..., registry=...)`` or by adding it to ``BACKBONES`` here.
"""

from typing import Any, Mapping, Optional, Type

import flax.linen as nn

from clustercnn_jax.models.efficientnet import (EfficientNetLite0, EfficientNetLite1,
                                                 EfficientNetLite2)
from clustercnn_jax.models.googlenet import GoogLeNet
from clustercnn_jax.models.mobilenet import MobileNetV2
from clustercnn_jax.models.small_cnn import SmallCNN

BACKBONES: Mapping[str, Type[nn.Module]] = {
    "googlenet": GoogLeNet,
    "efficientnet_lite0": EfficientNetLite0,
    "efficientnet_lite1": EfficientNetLite1,
    "efficientnet_lite2": EfficientNetLite2,
    "mobilenet_v2": MobileNetV2,
    "small_cnn": SmallCNN,
}


# Bumped when a backbone's numbers change for the same weights (a fix, not a new model),
# so that anything derived from its outputs, such as cached features, is recomputed.
# efficientnet_lite0 2: TensorFlow "SAME" padding.
REVISIONS: Mapping[str, int] = {"efficientnet_lite0": 2}


def revision(name: str) -> int:
  return REVISIONS.get(name, 1)


def get_backbone(name: str, *, axis_name: Optional[str] = None, dtype: Any = None,
                 registry: Optional[Mapping[str, Type[nn.Module]]] = None,
                 **kwargs: Any) -> nn.Module:
  registry = BACKBONES if registry is None else registry
  if name not in registry:
    raise ValueError(f"Unknown backbone {name!r}; known backbones: {sorted(registry)}. "
                     "Set --config.model.backbone to one of them.")
  if dtype is not None:
    kwargs["dtype"] = dtype
  return registry[name](axis_name=axis_name, **kwargs)
