"""The exported serving function: written by the CLI, served by jax and numpy alone."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from absl import flags

from clustercnn_jax import export, predictor
from clustercnn_jax.data import synthetic
from clustercnn_jax.train_state import load_model

# Runs in a fresh interpreter: nothing of this package may be imported to serve.
SERVE = textwrap.dedent("""
    import sys
    import jax
    import numpy as np

    exported = jax.export.deserialize(bytearray(open(sys.argv[1], "rb").read()))
    crops = np.load(sys.argv[2])
    ages = [np.asarray(exported.call(crops[:n])) for n in (1, len(crops))]  # any batch size
    np.save(sys.argv[3], np.concatenate(ages))
    assert not [m for m in sys.modules if m.startswith("clustercnn_jax")], "package imported"
""")


def test_export_round_trip(trained_workdir, tmp_path):
  out = str(tmp_path / "model.jaxexport")
  export.define_flags()
  flags.FLAGS.unparse_flags()
  export.main(flags.FLAGS(["export", f"--workdir={trained_workdir}", out]))
  with open(out + ".json") as f:
    meta = json.load(f)
  assert meta["image_size"] == 32 and meta["input"]["shape"] == ["N", 32, 32, 3]
  assert meta["config"] == "synthetic/small_cnn" and meta["step"] == 6
  assert meta["platforms"] == ["cpu"]

  crops = synthetic.generate(7, 32, seed=9).images
  np.save(tmp_path / "crops.npy", crops)
  (tmp_path / "serve.py").write_text(SERVE)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, str(tmp_path / "serve.py"), out,
                           str(tmp_path / "crops.npy"), str(tmp_path / "ages.npy")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  served = np.load(tmp_path / "ages.npy")
  expected = predictor.Predictor(*load_model(trained_workdir)).predict(crops)
  np.testing.assert_allclose(served[:1], expected[:1], atol=1e-4)
  np.testing.assert_allclose(served[1:], expected, atol=1e-4)
