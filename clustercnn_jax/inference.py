"""What a trained model computes for a batch, and what kind of input the batch holds.

One home for evaluation's forward pass (the expected age, averaged with the mirror
image's under ``eval.flip``), for embeddings, and for turning a batch's ``images`` into
the model's input: ``train.eval_step``, k-means++, the ``Predictor`` and the export all
call these, so an age is computed one way.

A batch's ``images`` are one of two kinds, chosen once (``inputs_for``): uint8 face crops
preprocessed on device (``ImageInputs``), or, with ``cache.enabled``, the frozen
blocks' output for each face's fixed views (B, V, ...) (``CachedInputs``; the views are
``preprocess.views``: the evaluation crop first, its mirror second).
"""

import dataclasses
from typing import Any, ClassVar, Dict, Union

import jax
import jax.numpy as jnp
import ml_collections

from clustercnn_jax import losses
from clustercnn_jax.data.preprocess import preprocess_for
from clustercnn_jax.random_keys import example_keys


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
  """Batches of uint8 crops (B, S, S, 3): augmented in training, the central crop (or its
  mirror image) in evaluation."""

  config: ml_collections.ConfigDict
  cached: ClassVar[bool] = False  # the model's ``cached`` argument

  def train(self, images: jnp.ndarray, rng: jax.Array,
            example_offset: jnp.ndarray | int) -> jnp.ndarray:
    return preprocess_for(self.config, images, rng, True, example_offset=example_offset)

  def eval(self, images: jnp.ndarray, mirror: bool = False) -> jnp.ndarray:
    x = preprocess_for(self.config, images, jax.random.PRNGKey(0), False)
    return x[:, :, ::-1] if mirror else x


@dataclasses.dataclass(frozen=True)
class CachedInputs:
  """Batches of cached frozen-block outputs (B, V, ...): a drawn view in training (it
  stands for the augmentation), the first view in evaluation, the second as its mirror."""

  config: ml_collections.ConfigDict
  cached: ClassVar[bool] = True

  def train(self, images: jnp.ndarray, rng: jax.Array,
            example_offset: jnp.ndarray | int) -> jnp.ndarray:
    return cached_view(images, rng, example_offset)

  def eval(self, images: jnp.ndarray, mirror: bool = False) -> jnp.ndarray:
    return images[:, 1 if mirror else 0]


Inputs = Union[ImageInputs, CachedInputs]


def inputs_for(config: ml_collections.ConfigDict) -> Inputs:
  """The kind of input a training run's batches hold (``cache.enabled``)."""
  return CachedInputs(config) if config.cache.enabled else ImageInputs(config)


def outputs(model: Any, variables: Dict[str, Any], inputs: Inputs, images: jnp.ndarray,
            eval_flip: bool) -> Dict[str, jnp.ndarray]:
  """Per example, in inference mode: age (the expected age; with ``eval.flip`` the mean of
  the face's and its mirror image's), std (of the softmax over ages) and, with a cluster
  module, cluster (the assignment), probs (p(c|x)) and p (p(cluster|x))."""
  apply = lambda x: model.apply(variables, x, train=False, cached=inputs.cached)
  logits, aux = apply(inputs.eval(images))
  out = {"age": losses.expected_age(logits), "std": losses.age_std(logits)}
  if eval_flip:
    mirror_logits, _ = apply(inputs.eval(images, mirror=True))
    out["age"] = (out["age"] + losses.expected_age(mirror_logits)) / 2
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
