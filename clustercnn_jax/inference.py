"""What a trained model computes for a batch, and what kind of input the batch holds.

One home for evaluation's forward pass (the expected age, averaged over
``preprocess.eval_views``: the mirror image under ``eval.flip``, a zoom under
``eval.zoom``), for embeddings, and for turning a batch's ``images`` into
the model's input: ``train.eval_step``, k-means++, the ``Predictor`` and the export all
call these, so an age is computed one way.

A batch's ``images`` are one of two kinds, chosen once (``inputs_for``): uint8 face crops
preprocessed on device (``ImageInputs``), or, with ``cache.enabled``, the frozen
blocks' output for each face's fixed views (B, V, ...) (``CachedInputs``; the views are
``preprocess.views``: the evaluation crop first, its mirror second).
"""

import dataclasses
from typing import Any, ClassVar, Dict, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import ml_collections

from clustercnn_jax import losses
from clustercnn_jax.data.preprocess import preprocess_for, preprocess_view, views
from clustercnn_jax.random_keys import example_keys

View = Tuple[float, bool]  # (zoom, mirror), as preprocess.views
CROP: View = (1.0, False)


def cached_view(cached: jnp.ndarray, rng: jax.Array, example_offset: jnp.ndarray | int
                ) -> jnp.ndarray:
  """One of the V cached views (B, V, ...) of each example, drawn uniformly and keyed by
  its global index (as the augmentation it stands for)."""
  batch, num_views = cached.shape[:2]
  if num_views == 1:
    return cached[:, 0]
  keys = example_keys(rng, batch, example_offset)
  view = jax.vmap(lambda k: jax.random.randint(k, (), 0, num_views))(keys)
  return cached[jnp.arange(batch), view]


@dataclasses.dataclass(frozen=True)
class ImageInputs:
  """Batches of uint8 crops (B, S, S, 3): augmented in training, the central crop (or
  another fixed view of it) in evaluation."""

  config: ml_collections.ConfigDict
  cached: ClassVar[bool] = False  # the model's ``cached`` argument

  def train(self, images: jnp.ndarray, rng: jax.Array,
            example_offset: jnp.ndarray | int) -> jnp.ndarray:
    return preprocess_for(self.config, images, rng, True, example_offset=example_offset)

  def eval(self, images: jnp.ndarray, view: View = CROP) -> jnp.ndarray:
    zoom, mirror = view
    if zoom != 1.0:
      return preprocess_view(self.config, images, zoom, mirror)
    x = preprocess_for(self.config, images, jax.random.PRNGKey(0), False)
    return x[:, :, ::-1] if mirror else x


@dataclasses.dataclass(frozen=True)
class CachedInputs:
  """Batches of cached frozen-block outputs (B, V, ...): a drawn view in training (it
  stands for the augmentation), the cached one asked for in evaluation."""

  config: ml_collections.ConfigDict
  cached: ClassVar[bool] = True

  def train(self, images: jnp.ndarray, rng: jax.Array,
            example_offset: jnp.ndarray | int) -> jnp.ndarray:
    return cached_view(images, rng, example_offset)

  def eval(self, images: jnp.ndarray, view: View = CROP) -> jnp.ndarray:
    return images[:, views(self.config).index(view)]


Inputs = Union[ImageInputs, CachedInputs]


def inputs_for(config: ml_collections.ConfigDict) -> Inputs:
  """The kind of input a training run's batches hold (``cache.enabled``)."""
  return CachedInputs(config) if config.cache.enabled else ImageInputs(config)


def outputs(model: Any, variables: Dict[str, Any], inputs: Inputs, images: jnp.ndarray,
            eval_views: Sequence[View] = (CROP,)) -> Dict[str, jnp.ndarray]:
  """Per example, in inference mode: age (the expected age, averaged over ``eval_views``,
  ``preprocess.eval_views(config)``), std (of the softmax over ages, of the crop) and,
  with a cluster module, cluster (the crop's assignment), probs (p(c|x)) and p
  (p(cluster|x))."""
  apply = lambda x: model.apply(variables, x, train=False, cached=inputs.cached)
  first, *others = eval_views
  logits, aux = apply(inputs.eval(images, first))
  out = {"age": losses.expected_age(logits), "std": losses.age_std(logits)}
  for view in others:
    out["age"] = out["age"] + losses.expected_age(apply(inputs.eval(images, view))[0])
  out["age"] = out["age"] / len(eval_views)
  if "assign" in aux:
    out["cluster"], out["probs"] = aux["assign"], aux["probs"]
    out["p"] = jnp.take_along_axis(aux["probs"], aux["assign"][:, None], axis=-1)[:, 0]
  return out


def embed(model: Any, variables: Dict[str, Any], inputs: Inputs,
          images: jnp.ndarray) -> jnp.ndarray:
  """Backbone features (B, D) in inference mode: what the centroids live among. BatchNorm
  uses its running statistics, so each example's features depend on that example alone."""
  return model.apply(variables, inputs.eval(images), train=False, cached=inputs.cached,
                     method="embed")
