"""A workdir's inference function saved once, so that later processes start in seconds.

The first ``predict`` (or ``load(workdir, serving=True)``) on a checkpoint
restores it, traces the model and writes ``WORKDIR/serving/outputs_<step>.jaxexport``
(``jax.export``: uint8 crops (b, S, S, 3) -> ``inference.outputs``, weights
inside, any b) with a sidecar naming the step, digests of ``config.json`` and of
this package's code, and the jax version. Later processes deserialize it instead: no checkpoint read, no
tracing; with XLA's persistent compilation cache (``cli.setup``), no compiling
either. A stale, unreadable or unwritable artifact is reported and the model is
served from the checkpoint as before: the artifact only ever saves time.
"""

import hashlib
import logging
import pathlib
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from clustercnn_jax import files, workdirs

ARTIFACT_DIR = "serving"


def latest_step(workdir: str) -> int:
  """The newest finished checkpoint's step."""
  steps = workdirs.finished_steps(workdir)
  if not steps:
    raise FileNotFoundError(
        f"No finished checkpoint in {files.join(workdir, workdirs.CHECKPOINT_DIR)}: train "
        "there first, or give the workdir of a trained run.")
  return steps[-1]


def artifact_path(workdir: str, step: int) -> str:
  return files.join(workdir, ARTIFACT_DIR, f"outputs_{step}.jaxexport")


def code_digest() -> str:
  """SHA-256 over this package's Python sources: the saved function bakes in how the model
  computed when it was traced, so a changed formulation (a faster layer, a fix) rebuilds it."""
  root = pathlib.Path(__file__).resolve().parent
  h = hashlib.sha256()
  for source in sorted(root.rglob("*.py")):
    h.update(source.relative_to(root).as_posix().encode())
    h.update(source.read_bytes())
  return h.hexdigest()


def fingerprint(workdir: str, step: int) -> Dict[str, Any]:
  """What the artifact was made from: another config, step, code or jax makes it stale."""
  config_text = files.read_text(files.join(workdir, workdirs.CONFIG_FILE))
  return {"step": step, "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
          "code_sha256": code_digest(), "jax": jax.__version__,
          "platform": jax.default_backend()}


# (config, model, variables, uint8 images) -> outputs: ``predictor.forward``.
Forward = Callable[[ml_collections.ConfigDict, Any, Dict[str, Any], jnp.ndarray], Any]


def export_outputs(config: ml_collections.ConfigDict, model: Any, variables: Dict[str, Any],
                   forward: Forward, platforms: Optional[Sequence[str]] = None
                   ) -> jax.export.Exported:
  """uint8 crops (b, S, S, 3) -> ``forward``'s outputs, b symbolic: one export serves any
  batch size. Its BatchNorms are folded into their convolutions (``models.folding``)."""
  from clustercnn_jax.models import folding  # flax: not needed to serve a saved function

  size = config.image_size
  (b,) = jax.export.symbolic_shape("b")
  fn, variables = folding.fold_function(
      lambda v, images: forward(config, model, v, images), variables,
      jax.ShapeDtypeStruct((1, size, size, 3), jnp.uint8))
  serve = jax.jit(lambda images: fn(variables, images))
  return jax.export.export(serve, platforms=platforms)(
      jax.ShapeDtypeStruct((b, size, size, 3), jnp.uint8))


def read(workdir: str, step: int) -> Optional[jax.export.Exported]:
  """The saved function of ``step``, or None (with the reason logged) where there is none
  that matches this workdir's config, the step and this jax."""
  path = artifact_path(workdir, step)
  if not files.exists(path):
    return None
  try:
    saved = files.read_json(path + ".json")
    if saved != fingerprint(workdir, step):
      logging.info("%s is stale (made from %s), rebuilding it.", path, saved)
      return None
    return jax.export.deserialize(bytearray(files.path(path).read_bytes()))
  except Exception as e:  # noqa: BLE001 -- any damage to a derived file: rebuild it
    logging.warning("%s cannot be read (%s: %s); serving from the checkpoint and "
                    "rewriting it.", path, type(e).__name__, e)
    return None


def write(workdir: str, step: int, exported: jax.export.Exported) -> Optional[str]:
  """Saves ``exported`` for later processes; a workdir that cannot be written (read-only,
  no permission) is reported and nothing else changes."""
  path = artifact_path(workdir, step)
  try:
    files.write_bytes(path, bytes(exported.serialize()))
    files.write_json(path + ".json", fingerprint(workdir, step))
  except OSError as e:
    logging.warning("Cannot save the serving function to %s (%s): later starts will restore "
                    "the checkpoint again.", path, e)
    return None
  return path


def load(workdir: str, step: Optional[int], forward: Forward
         ) -> Tuple[ml_collections.ConfigDict, jax.export.Exported]:
  """(config, the saved function) of a workdir's checkpoint (the latest where ``step`` is
  None), made from ``forward`` and saved if needed."""
  config = workdirs.load_config(workdir)
  step = latest_step(workdir) if step is None else step
  exported = read(workdir, step)
  if exported is None:
    from clustercnn_jax import train_state

    _, model, variables = train_state.load_model(workdir, step)
    exported = export_outputs(config, model, variables, forward)
    write(workdir, step, exported)
  return config, exported
