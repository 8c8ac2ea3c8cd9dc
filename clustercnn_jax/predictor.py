"""A trained model as one object, for notebooks and scripts.

  import clustercnn_jax
  model = clustercnn_jax.load(workdir)  # the latest checkpoint, or load(workdir, step=N)
  model.predict(crops)                  # uint8 (N, S, S, 3) face crops -> ages
  model.predict_files(["me.jpg"])       # photos -> one row per face (as the predict CLI)
  model.embed(crops)                    # backbone features, where the centroids live
  model.clusters(crops)                 # nearest cluster and p(c|x) per face

Crops are the model's input (``config.image_size``) or a little larger (up to
``MAX_LOOSENESS`` times): the central ``image_size`` pixels are used, as
training did with its loose crops. Anything larger is refused rather than
cut down to a middle that is no face: photos go through ``predict_files``.
Faces go through the model in padded batches of a few fixed shapes (powers of
two up to ``batch_size``), so each function compiles a handful of times at most.
"""

import functools
import warnings
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from clustercnn_jax import inference
from clustercnn_jax import serving as serving_lib
from clustercnn_jax.data import photos
from clustercnn_jax.data.preprocess import eval_views

# The largest crop, over the model's input, taken as a loose face crop: stored crops are
# faces.MARGIN (1.25) times the input; a larger image is a photo or a crop at another scale.
MAX_LOOSENESS = 1.5


class SyntheticModelWarning(UserWarning):
  """The model learnt drawn faces only: its ages for real faces mean nothing."""


class Clusters(NamedTuple):
  index: np.ndarray  # (N,) the nearest centroid, as evaluation assigns
  p: np.ndarray  # (N,) p(index | x)
  probs: np.ndarray  # (N, k) p(c | x) for every cluster


def forward(config: ml_collections.ConfigDict, model: Any, variables: Dict[str, Any],
            images: jnp.ndarray) -> Dict[str, jnp.ndarray]:
  """Per face of uint8 crops (B, image_size, image_size, 3): ``inference.outputs`` (age,
  std and, with a cluster module, cluster, p and probs), as training's evaluation computes
  them. Always from images: a model trained on cached features is a whole model."""
  return inference.outputs(model, variables, inference.ImageInputs(config), images,
                           eval_views(config))


def central_crops(images: np.ndarray, size: int) -> np.ndarray:
  """The central ``size`` pixels of uint8 squares (..., S, S, 3), size <= S <= 1.5 size:
  what preprocessing keeps of a loose crop, taken on the host so one shape is compiled.

  A larger square is refused: its centre is not the face the model was trained on."""
  images = np.asarray(images)
  s = images.shape[-2] if images.ndim >= 3 else 0
  if (images.ndim < 3 or images.shape[-3] != s or s < size or images.shape[-1] != 3
      or images.dtype != np.uint8):
    raise ValueError(f"Expected uint8 square images (N, S, S, 3) with S >= {size} (the "
                     f"central {size}px are used), got {images.dtype} {images.shape}.")
  if s > MAX_LOOSENESS * size:
    raise ValueError(
        f"Got images of shape {images.shape}: {s}px is more than {MAX_LOOSENESS:g}x the "
        f"model's {size}px input, so their centre is not a face crop as training saw them "
        f"(loose crops of at most {int(MAX_LOOSENESS * size)}px). For photos use "
        f"predict_files (or the predict CLI), which finds and crops the faces; resize face "
        f"crops to {size}px.")
  start = (s - size) // 2
  return images[..., start:start + size, start:start + size, :]


def synthetic_warning(config: ml_collections.ConfigDict, workdir: str = "") -> Optional[str]:
  """The warning for a model trained on synthetic faces (None for real data)."""
  if config.get("data", {}).get("name") != "synthetic":
    return None
  where = f" in {workdir}" if workdir else ""
  return (f"The model{where} was trained on synthetic faces (config.data.name='synthetic', "
          "e.g. configs/demo.py): its ages for real faces mean nothing. Train on a real "
          "dataset for real predictions, e.g. --config=configs/utkface.py.")


def padded_size(n: int, batch_size: int) -> int:
  """The batch ``n`` faces are padded to: the next power of two, at most ``batch_size``, so
  that one photo is not padded to a full batch and few shapes are ever compiled."""
  return min(batch_size, 1 << max(0, n - 1).bit_length())


class Predictor:
  """A restored model with its config: ages, features and clusters for face crops or photos.

  ``detector``: image -> faces (``DlibEyeDetector().faces`` by default, made on first use).
  """

  def __init__(self, config: ml_collections.ConfigDict, model: Any, variables: Dict[str, Any],
               batch_size: int = 32, detector: Optional[photos.FaceFinder] = None):
    from clustercnn_jax.models import folding  # flax: not needed to serve a saved function

    self.config, self.model, self.variables = config, model, variables
    self.batch_size = batch_size
    self._detector = detector
    # BatchNorm folded into the convolutions once, here: the same outputs (docs/speed.md).
    size = config.image_size
    outputs = functools.partial(forward, config, model)
    self._folded, paths = folding.fold_batch_norms(
        outputs, variables, jax.ShapeDtypeStruct((1, size, size, 3), jnp.uint8))
    self._forward = jax.jit(folding.run_folded(outputs, paths))
    inputs = inference.ImageInputs(config)
    self._embed = jax.jit(folding.run_folded(
        lambda v, im: inference.embed(model, v, inputs, im), paths))

  @classmethod
  def served(cls, config: ml_collections.ConfigDict, exported: jax.export.Exported,
             batch_size: int = 32, detector: Optional[photos.FaceFinder] = None
             ) -> "Predictor":
    """A predictor on a saved function (``serving``): ages and clusters, no embeddings."""
    self = cls.__new__(cls)
    self.config, self.model, self.variables, self._folded = config, None, None, None
    self.batch_size, self._detector = batch_size, detector
    call = jax.jit(exported.call)
    self._forward = lambda variables, images: call(images)
    self._embed = None
    return self

  def _batched(self, fn: Any, images: np.ndarray) -> Any:
    """``fn(variables, batch)`` over ``images`` in padded batches of ``batch_size``."""
    images = np.asarray(images)
    if images.ndim != 4:  # checked first, so that the shape given is the one reported
      hint = " (one image: images[None])" if images.ndim == 3 else ""
      raise ValueError(f"Expected a batch (N, S, S, 3), got {images.shape}{hint}.")
    images = central_crops(images, self.config.image_size)
    outs = []
    for start in range(0, len(images), self.batch_size):
      chunk = images[start:start + self.batch_size]
      pad = np.zeros((padded_size(len(chunk), self.batch_size) - len(chunk),)
                     + chunk.shape[1:], np.uint8)
      out = fn(self._folded, np.concatenate([chunk, pad]) if len(pad) else chunk)
      outs.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[:len(chunk)], out))
    if not outs:  # no images: empty results of the right structure
      shapes = jax.eval_shape(fn, self._folded, jax.ShapeDtypeStruct(images.shape, np.uint8))
      return jax.tree_util.tree_map(lambda a: np.zeros(a.shape, a.dtype), shapes)
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *outs)

  def outputs(self, images: np.ndarray) -> Dict[str, np.ndarray]:
    """``forward``'s age, std, cluster, p and probs for uint8 crops (N, S, S, 3)."""
    return self._batched(self._forward, images)

  def predict(self, images: np.ndarray) -> np.ndarray:
    """Expected ages (N,) for uint8 face crops (N, S, S, 3), image_size <= S <= 1.5
    image_size (``MAX_LOOSENESS``); photos go through ``predict_files``."""
    return self.outputs(images)["age"]

  def embed(self, images: np.ndarray) -> np.ndarray:
    """Backbone features (N, D): what the cluster centroids live among."""
    if self._embed is None:
      raise ValueError("This predictor runs the saved serving function, which gives ages and "
                       "clusters only: load(workdir) without serving=True for embeddings.")
    return self._batched(self._embed, images)

  def clusters(self, images: np.ndarray) -> Clusters:
    """The nearest cluster of each face, with p(c|x); models without clusters refuse."""
    if not self.config.model.cluster.enabled:
      raise ValueError("This model has no cluster module (config.model.cluster.enabled=False).")
    out = self.outputs(images)
    return Clusters(out["cluster"], out["p"], out["probs"])

  def predict_files(self, paths: Sequence[str], detect: bool = True) -> List[Dict[str, Any]]:
    """One row per face of each photo (folders expanded), or one row with ``error``."""
    return [row for _, rows in self.iter_files(paths, detect) for row in rows]

  def iter_files(self, paths: Sequence[str], detect: bool = True,
                 keep_images: bool = False) -> Iterator[Tuple[photos.Photo, List[Dict[str, Any]]]]:
    """(photo, its rows) per file in order; faces of several files share a batch."""
    if detect and self.config.face.normalize and self._detector is None:
      self._detector = photos.default_detector()
    pending, num_faces = [], 0
    for photo in photos.read_photos(paths, self.config, self._detector, detect):
      if not keep_images:
        photo.image = None
      pending.append(photo)
      num_faces += len(photo.crops)
      if num_faces >= self.batch_size:
        yield from self._rows(pending)
        pending, num_faces = [], 0
    yield from self._rows(pending)

  def _rows(self, pending: List[photos.Photo]) -> Iterator[Tuple[photos.Photo, List[Dict]]]:
    size = self.config.image_size
    crops = [central_crops(c, size) for p in pending for c in p.crops]
    out = self.outputs(np.stack(crops)) if crops else {}
    i = 0
    for photo in pending:
      n = len(photo.crops)
      yield photo, face_rows(photo, {k: v[i:i + n] for k, v in out.items()})
      i += n


def face_rows(photo: photos.Photo, out: Dict[str, np.ndarray]) -> List[Dict[str, Any]]:
  """The rows of one photo: file, box, eyes (pixels of the file), age, std, cluster, p."""
  if not photo.crops:
    return [{"file": photo.file, "error": photo.error}]
  px = lambda v: round(float(v) * photo.scale, 1)
  rows = []
  for i, (box, eyes) in enumerate(zip(photo.boxes, photo.eyes)):
    rows.append({
        "file": photo.file,
        "box": None if box is None else [px(v) for v in box],
        "eyes": None if eyes is None else [[px(v) for v in e] for e in eyes],
        "age": round(float(out["age"][i]), 3),
        "std": round(float(out["std"][i]), 3),
        "cluster": int(out["cluster"][i]) if "cluster" in out else None,
        "p": round(float(out["p"][i]), 4) if "p" in out else None,
    })
  return rows


def load(workdir: str, step: Optional[int] = None, batch_size: int = 32, *,
         serving: bool = False, stacklevel: int = 2) -> Predictor:
  """The model of a workdir (the latest checkpoint, or ``step``) as a ``Predictor``; warns
  (``SyntheticModelWarning``, attributed ``stacklevel`` frames up: the caller's line) when
  it learnt synthetic faces only, as the demo does.

  ``serving``: run the function saved in the workdir (``serving.py``; made on first use),
  which starts in a fraction of the time: ages and clusters, no ``embed``."""
  if serving:
    config, exported = serving_lib.load(workdir, step, forward)
  else:
    from clustercnn_jax import train_state  # orbax and the models: not needed when serving

    config, model, variables = train_state.load_model(workdir, step)
  message = synthetic_warning(config, str(workdir))
  if message:
    warnings.warn(message, SyntheticModelWarning, stacklevel=stacklevel)
  if serving:
    return Predictor.served(config, exported, batch_size=batch_size)
  return Predictor(config, model, variables, batch_size=batch_size)
