"""Backbone -> cluster module -> age head: the whole Cluster-CNN."""

import dataclasses
from typing import Any, Dict, Optional, Set, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from clustercnn_jax import models
from clustercnn_jax.models import blocks
from clustercnn_jax.cluster import ClusterModule
from clustercnn_jax.random_keys import example_keys, shard_offset


class AgeModel(nn.Module):
  """Returns (logits over ages 0..max_age, aux statistics of the cluster module).

  With ``use_cluster=False`` (the Table 2 ablation) the cluster module is
  replaced by one Dense+ReLU layer of the same width, so only the clustering
  differs between the two settings.
  """

  backbone: nn.Module
  cluster: ClusterModule  # called only with use_cluster; its width sizes the ablation too
  num_ages: int
  use_cluster: bool = True
  dropout_rate: float = 0.0
  freeze_backbone: bool = False
  train_from: str = ""  # a backbone block: the blocks before it are frozen ('' = none)
  feature_taps: str = ""  # ours: 'b1,b2', blocks whose spatially pooled output joins x
  axis_name: Optional[str] = None

  def frozen_part(self, images: jnp.ndarray) -> jnp.ndarray:
    """What a feature cache stores: the output of the backbone's frozen blocks (all of
    them with ``freeze_backbone``, else those before ``train_from``), in inference mode."""
    if self.freeze_backbone:
      return jax.lax.stop_gradient(self.tapped_backbone(images, train=False))
    return jax.lax.stop_gradient(self.backbone(images, train=False, stop=self.train_from))

  def tapped_backbone(self, x: jnp.ndarray, train: bool,
                      start: Optional[str] = None) -> jnp.ndarray:
    """The backbone's features (from block ``start`` on, ``x`` being its input), followed
    by the spatial mean of each ``feature_taps`` block's output (our extension): ImageNet's last layer is tuned to
    object classes, while the texture that ages a face (wrinkles, skin) is plainer in the
    middle blocks. A tap on the block just before ``start`` pools ``x`` itself."""
    taps = parse_taps(self.feature_taps)
    if not taps:
      return self.backbone(x, train=train, start=start)
    names = blocks.names(self.backbone.blocks(train=False))
    pooled = []
    for tap in sorted(taps, key=names.index):
      after = names[names.index(tap) + 1]
      if after != start:
        x = self.backbone(x, train=train, start=start, stop=after)
      pooled.append(jnp.mean(x, axis=(1, 2)))
      start = after
    return jnp.concatenate([self.backbone(x, train=train, start=start)] + pooled, axis=-1)

  def embed(self, inputs: jnp.ndarray, train: bool, cached: bool = False) -> jnp.ndarray:
    """Backbone features x: what the centroids live among (used by k-means++).

    Frozen blocks run in inference mode (BatchNorm running statistics) and pass
    no gradient back. ``cached``: ``inputs`` are ``frozen_part``'s output.
    """
    if self.freeze_backbone:
      x = inputs if cached else self.frozen_part(inputs)
    elif self.train_from:
      lower = inputs if cached else self.frozen_part(inputs)
      x = self.tapped_backbone(lower.astype(self.backbone.dtype), train, start=self.train_from)
    else:
      x = self.tapped_backbone(inputs, train)
    return x.astype(jnp.float32)

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool,
               cached: bool = False) -> Tuple[jnp.ndarray, Dict[str, Any]]:
    """``cached=True``: ``inputs`` are what ``frozen_part`` gives (cached features or
    activations); the frozen blocks' variables stay in the model, unused."""
    x = self.embed(inputs, train, cached)
    if self.use_cluster:
      v, aux = self.cluster(x, train)
    else:
      v, aux = nn.relu(nn.Dense(self.cluster.features, name="fc")(x)), {}
    if train and self.dropout_rate > 0:
      v = self._dropout(v)
    return nn.Dense(self.num_ages, name="head")(v), aux


  def _dropout(self, v: jnp.ndarray) -> jnp.ndarray:
    """Dropout with a key per *global* example index (as the cluster sampling), so that a
    batch is masked identically however it is split over devices."""
    batch = v.shape[0]
    keys = example_keys(self.make_rng("dropout"), batch, shard_offset(self.axis_name, batch))
    keep = jax.vmap(lambda k: jax.random.bernoulli(k, 1.0 - self.dropout_rate, v.shape[1:]))(keys)
    return jnp.where(keep, v / (1.0 - self.dropout_rate), 0.0)


def build_model(config: ml_collections.ConfigDict, axis_name: Optional[str] = None) -> AgeModel:
  """The model a config describes. ``axis_name`` is set inside pmap only.

  Parameters do not depend on ``axis_name``, so a model built with it (for the
  pmapped train step) shares variables with one built without it. The modules take
  the ``model`` and ``model.cluster`` entries that name their fields, so a new knob is
  a config line and a module field with the former behaviour as its default (which
  is also what a config.json saved before the knob gets).
  """
  m = config.model
  dtype = jnp.bfloat16 if m.half_precision else jnp.float32
  backbone = models.get_backbone(m.backbone, axis_name=axis_name, dtype=dtype,
                                 **m.backbone_kwargs.to_dict())
  cluster = ClusterModule(**module_fields(ClusterModule, m.cluster), axis_name=axis_name)
  fields = {**module_fields(AgeModel, m), "feature_taps": ",".join(feature_taps(config))}
  return AgeModel(backbone=backbone, cluster=cluster, num_ages=config.max_age + 1,
                  use_cluster=m.cluster.enabled, axis_name=axis_name, **fields)


_WIRED = {"parent", "name", "backbone", "cluster", "num_ages", "use_cluster", "axis_name"}


def module_fields(module: type, sub: ml_collections.ConfigDict) -> Dict[str, Any]:
  """The entries of a config sub-dict that name a (configurable) field of ``module``."""
  names = {f.name for f in dataclasses.fields(module)} - _WIRED
  return {k: v for k, v in sub.items() if k in names}


def module_defaults(module: type) -> Dict[str, Any]:
  """The defaults of ``module``'s configurable fields."""
  return {f.name: f.default for f in dataclasses.fields(module)
          if f.name not in _WIRED and f.default is not dataclasses.MISSING}


def parse_taps(taps: str) -> Tuple[str, ...]:
  """'_blocks_7,_blocks_10' -> distinct block names, in the order given."""
  return tuple(dict.fromkeys(t.strip() for t in taps.split(",") if t.strip()))


STAGE_TAPS = "stages"


def feature_taps(config: ml_collections.ConfigDict) -> Tuple[str, ...]:
  """``model.feature_taps`` as a tuple of distinct block names.

  'stages' stands for the backbone's stage outputs (the ``taps`` config variants), so that
  a backbone override taps that backbone's stages. Above a ``train_from`` cut, only the
  stages that the trained blocks compute or take as their cached input are kept.
  """
  m = config.model
  if m.feature_taps.strip() != STAGE_TAPS:
    return parse_taps(m.feature_taps)
  backbone = models.get_backbone(m.backbone, **m.backbone_kwargs.to_dict())
  if not hasattr(backbone, "stage_taps"):
    raise ValueError(f"model.feature_taps='stages': the stages of {m.backbone!r} are not "
                     "listed (EfficientNet-Lite's are); name its blocks instead, "
                     "--config.model.feature_taps=BLOCK,BLOCK.")
  taps = backbone.stage_taps()
  names = blocks.names(backbone.blocks(train=False))
  if m.train_from in names:  # an unknown cut is config_checks' error
    lowest = names.index(m.train_from) - 1
    taps = tuple(t for t in taps if names.index(t) >= lowest)
  return taps


def trained_variables(config: ml_collections.ConfigDict, tree: Any) -> Any:
  """``tree`` (params or batch_stats) with True on the variables that train: not the
  backbone's under ``freeze_backbone``, nor those of the blocks before ``train_from``."""
  frozen = frozen_blocks_params(config)
  mark = lambda sub, trained: jax.tree_util.tree_map(lambda _: trained, sub)
  return {k: ({b: mark(v, not config.model.freeze_backbone and b not in frozen)
               for b, v in sub.items()} if k == "backbone" else mark(sub, True))
          for k, sub in tree.items()}


def frozen_blocks_params(config: ml_collections.ConfigDict) -> Set[str]:
  """The backbone's top-level variable names that ``model.train_from`` freezes: those of
  the blocks before it (none when it is '')."""
  m = config.model
  if not m.train_from:
    return set()
  backbone = models.get_backbone(m.backbone, **m.backbone_kwargs.to_dict())
  return blocks.params_before(backbone.blocks(train=False), m.train_from)
