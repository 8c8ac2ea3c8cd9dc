"""A trained model as one self-contained serving function (``jax.export``, StableHLO).

  python -m clustercnn_jax.export --workdir=DIR model.jaxexport

writes ``model.jaxexport`` (the function with its weights inside: uint8 face
crops (N, S, S, 3) -> expected ages (N,), any N) and ``model.jaxexport.json``
(S, how the crops are framed, what was exported). Serving it needs jax and
numpy only, not this package:

  exported = jax.export.deserialize(bytearray(open("model.jaxexport", "rb").read()))
  ages = exported.call(crops)

Crops are the face normalisation the model was trained on, at S =
``image_size``: ``data.faces.crop_face(photo, eyes, S, alpha, eye_height)``
with the sidecar's values (or the whole photo resized when
``face.normalize`` is false).
"""

from typing import Any, Dict, Optional, Sequence

import jax
import ml_collections
from absl import app, flags

from clustercnn_jax import cli, files, predictor, serving, train_state

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (see ``predict``)."""
  cli.define_model_flags()
  flags.adopt_module_key_flags(cli)  # --workdir, --step in --help
  if "platforms" not in FLAGS:
    flags.DEFINE_list("platforms", None, "Platforms to lower for, e.g. cpu,cuda (default: "
                      "this machine's).")


def export_ages(config: ml_collections.ConfigDict, model: Any, variables: Dict[str, Any],
                platforms: Optional[Sequence[str]] = None) -> jax.export.Exported:
  """uint8 crops (b, S, S, 3) -> ages (b,), b symbolic."""
  def ages(*args):
    return predictor.forward(*args)["age"]

  return serving.export_outputs(config, model, variables, ages, platforms)


def sidecar(config: ml_collections.ConfigDict, exported: jax.export.Exported,
            step: int) -> Dict[str, Any]:
  """What a server needs besides the function: the input it takes and where it came from."""
  return {
      "input": {"shape": ["N", config.image_size, config.image_size, 3], "dtype": "uint8"},
      "output": {"shape": ["N"], "dtype": "float32", "meaning": "expected age, years"},
      "image_size": config.image_size,
      "config": f"{config.data.name}/{config.model.backbone}",
      "normalize_faces": bool(config.face.normalize),
      "face": {"alpha": config.face.alpha, "eye_height": config.face.eye_height},
      "max_age": config.max_age,
      "step": step,
      "platforms": list(exported.platforms),
  }


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError("Give one output path: python -m clustercnn_jax.export "
                         "--workdir=DIR OUT")
  out = argv[1]
  cli.setup()
  config, model, variables = train_state.load_model(FLAGS.workdir, FLAGS.step)
  step = serving.latest_step(FLAGS.workdir) if FLAGS.step is None else FLAGS.step
  exported = export_ages(config, model, variables, FLAGS.platforms)
  blob = exported.serialize()
  files.write_bytes(out, bytes(blob))
  files.write_json(out + ".json", sidecar(config, exported, step))
  print(f"{out}: uint8 (N, {config.image_size}, {config.image_size}, 3) -> ages (N,), "
        f"step {step}, {', '.join(exported.platforms)}")


if __name__ == "__main__":
  cli.run(main, define_flags)
