"""Training: gradients, multi-device equivalence, checkpoints and resumption, the CLI."""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax import checkpoint, inference, losses, train
from clustercnn_jax.data.preprocess import preprocess_for
from clustercnn_jax.models.model import build_model
from clustercnn_jax.train_state import abstract_train_state, load_model
from conftest import ROOT, RUNLOCAL, cli_flags


def run_cli(workdir, overrides, devices=1, timeout=300, extra=()):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu")
  cmd = [sys.executable, "-m", "clustercnn_jax.main", f"--config={RUNLOCAL}",
         f"--workdir={workdir}", *cli_flags(overrides), *extra]
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def leaves(tree):
  return jax.tree_util.tree_leaves_with_path(jax.device_get(tree))


def assert_trees_close(a, b, atol, rtol=0.0):
  la, lb = leaves(a), leaves(b)
  assert [p for p, _ in la] == [p for p, _ in lb]
  for (path, x), (_, y) in zip(la, lb):
    np.testing.assert_allclose(x, y, atol=atol, rtol=rtol, err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
def test_gradients_reach_the_backbone(tiny_config):
  model = train.build_model(tiny_config)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10)
  images = jax.random.normal(jax.random.PRNGKey(1), (8, 32, 32, 3))
  state.clusters["cluster"]["centroids"] = jax.random.normal(jax.random.PRNGKey(2), (3, 16))

  def loss(params):
    (logits, aux), _ = model.apply({"params": params, "batch_stats": state.batch_stats,
                                    "clusters": state.clusters}, images, train=True,
                                   mutable=["batch_stats", "clusters"],
                                   rngs={"cluster": jax.random.PRNGKey(3)})
    return losses.age_loss(logits, jnp.arange(8.0) * 5, aux, ce_weight=0.5,
                           sw_sb_weight=0.1)["loss"]

  grads = jax.grad(loss)(state.params)
  for name, g in grads["backbone"].items():
    assert float(jax.tree_util.tree_reduce(lambda s, x: s + jnp.abs(x).sum(), g, 0.0)) > 0, name


def test_batch_must_divide_over_devices(tiny_config):
  tiny_config.batch_size = 30
  with pytest.raises(ValueError, match="does not divide evenly over 8 devices"):
    train._check_batch(tiny_config, 8)


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(tiny_config, tmp_path):
  full = train.train_and_evaluate(tiny_config, str(tmp_path / "full"))
  stopped = train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"), stop_after_steps=3)
  assert stopped == {"stopped_at": 3}
  mngr = checkpoint.manager(str(tmp_path / "resumed"), tiny_config)
  assert mngr.all_steps() == [3]
  resumed = train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
  a = load_model(str(tmp_path / "full"))[2]
  b = load_model(str(tmp_path / "resumed"))[2]
  assert_trees_close(a, b, atol=1e-6)
  assert resumed["test_mae"] == pytest.approx(full["test_mae"], abs=1e-4)


@pytest.mark.slow
def test_cli_writes_checkpoints_events_and_results(tmp_path):
  cache = tmp_path.parent / f"{tmp_path.name}_xla"
  result = run_cli(tmp_path, {}, extra=[f"--compilation_cache={cache}",
                                                        "--compilation_cache_on_cpu"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "test MAE" in result.stdout and "always predicting the training mean" in result.stdout
  assert "ETA" in result.stderr
  assert os.listdir(cache)  # compiled steps kept for the next run
  names = os.listdir(tmp_path)
  assert any(n.startswith("events.out.tfevents") for n in names), names
  assert {"config.json", "metrics.jsonl", "results.json", "checkpoints"} <= set(names)
  assert os.listdir(tmp_path / "checkpoints") == ["6"]
  config, model, variables = load_model(str(tmp_path))
  logits, _ = model.apply(variables, jnp.zeros((2, 32, 32, 3)), train=False)
  assert logits.shape == (2, config.max_age + 1)


def test_a_workdir_loads_whatever_layout_its_optimiser_state_has(trained_workdir, tmp_path):
  """load_model (load, evaluate, export, init_from) reads only the model's variables: a
  workdir whose optimiser state no longer matches the one its config builds (another
  optimiser here; an older masking of frozen blocks in practice) still loads, to the same
  variables; a wrong shape still fails and says which."""
  workdir = tmp_path / "sgd"
  shutil.copytree(trained_workdir, workdir)
  with open(workdir / "config.json") as f:
    saved = json.load(f)
  assert saved["optimizer"] == "adam"

  def rewrite(**fields):
    with open(workdir / "config.json", "w") as f:
      json.dump({**saved, **fields}, f)

  rewrite(optimizer="sgd")
  config = checkpoint.load_config(str(workdir))
  with pytest.raises(ValueError, match="(?i)structure"):  # the whole state would not restore
    checkpoint.restore(checkpoint.manager(str(workdir), config),
                       abstract_train_state(config, build_model(config)))
  original = load_model(trained_workdir)[2]
  loaded = load_model(str(workdir))[2]
  assert [p for p, _ in leaves(loaded)] == [p for p, _ in leaves(original)]
  for (path, a), (_, b) in zip(leaves(loaded), leaves(original)):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))

  rewrite(max_age=saved["max_age"] + 1)
  with pytest.raises(ValueError,
                     match=r"arrays of the model .*head.*bias.*: config \(82,\), checkpoint \(81,\)"):
    load_model(str(workdir))


def test_cli_rejects_unknown_config_field(tmp_path):
  result = run_cli(tmp_path, {}, extra=["--config.model.num_clustrs=3"])
  assert result.returncode != 0
  assert "num_clustrs" in result.stderr


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  cmd = [sys.executable, "-m", "clustercnn_jax.main", f"--config={RUNLOCAL}",
         f"--workdir={tmp_path}", "--config.num_train_steps=100000"]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
  lines, deadline = [], time.time() + 240
  for line in proc.stderr:
    lines.append(line)
    if "step 3/100000" in line or time.time() > deadline:
      break
  proc.send_signal(signal.SIGTERM)
  _, rest = proc.communicate(timeout=120)
  log = "".join(lines) + rest
  assert proc.returncode == 0, log[-3000:]
  assert "Stopped at step" in log and "SIGTERM" in log
  steps = [int(s) for s in os.listdir(tmp_path / "checkpoints")]
  assert len(steps) == 1 and 3 <= steps[0] < 100000


@pytest.mark.slow
def test_frozen_backbone_does_not_move(tiny_config, tmp_path):
  tiny_config.model.freeze_backbone = True
  tiny_config.num_train_steps = 2
  model = train.build_model(tiny_config)
  init_rng, _ = jax.random.split(jax.random.PRNGKey(tiny_config.seed))  # as train_and_evaluate
  init = train.create_train_state(init_rng, tiny_config, model, 2)
  train.train_and_evaluate(tiny_config, str(tmp_path))
  trained = load_model(str(tmp_path))[2]
  assert_trees_close(init.params["backbone"], trained["params"]["backbone"], atol=0)
  assert_trees_close(init.batch_stats, trained["batch_stats"], atol=0)
  moved = np.abs(np.asarray(trained["params"]["head"]["kernel"]) -
                 np.asarray(init.params["head"]["kernel"])).max()
  assert moved > 0


def test_compilation_cache_stays_off_on_cpu_unless_asked(tmp_path):
  from clustercnn_jax import cli

  before = jax.config.jax_compilation_cache_dir
  cli.enable_compilation_cache(str(tmp_path / "xla"))
  assert jax.config.jax_compilation_cache_dir == before


def test_kmeans_features_do_not_depend_on_batch_padding(tiny_config):
  """k-means++ features come from inference mode: the padded last batch changes nothing."""
  from clustercnn_jax import data

  model = train.build_model(tiny_config)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10)
  state = state.replace(batch_stats=jax.tree_util.tree_map(lambda a: a + 0.5, state.batch_stats))
  ds, _ = data.load(tiny_config)
  ds = ds.subset(np.arange(37))  # batch 32: the second batch is 5 real + 27 padding
  inputs = inference.inputs_for(tiny_config)
  feats = train.compute_features(state, model, ds, tiny_config, inputs)
  tiny_config.batch_size = 37  # one unpadded batch
  whole = train.compute_features(state, model, ds, tiny_config, inputs)
  tiny_config.batch_size = 1  # every example alone
  alone = train.compute_features(state, model, ds.subset(np.arange(32, 37)), tiny_config,
                                 inputs)
  np.testing.assert_allclose(feats, whole, atol=1e-5)
  np.testing.assert_allclose(feats[32:], alone, atol=1e-5)


def test_replicated_state_is_laid_out_as_the_step_returns_it():
  """Otherwise the pmapped step compiles twice: once for the state replicate() made and
  once for the state the first step returned (seconds per run; minutes per protocol)."""
  import jax
  import jax.numpy as jnp

  tree = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(0)}
  replicated = train.replicate(tree)
  stepped = jax.pmap(lambda t: jax.tree_util.tree_map(lambda x: x + 1, t),
                     axis_name=train.AXIS)(replicated)
  for a, b in zip(jax.tree_util.tree_leaves(replicated), jax.tree_util.tree_leaves(stepped)):
    assert a.sharding == b.sharding and a.shape == (jax.local_device_count(),) + a.shape[1:]
  assert int(stepped["step"][0]) == 1


@pytest.mark.slow
def test_init_from_starts_where_the_source_ended(tiny_config, tmp_path, caplog):
  """Fine-tuning from a trained workdir starts from its parameters and centroids (no
  k-means++); with a zero learning rate they stay exactly the source's. Input of another
  size is said before anything else."""
  import jax

  train.train_and_evaluate(tiny_config.copy_and_resolve_references(), str(tmp_path / "source"))
  source = load_model(str(tmp_path / "source"))[2]
  config = tiny_config.copy_and_resolve_references()
  config.init_from = str(tmp_path / "source")
  config.learning_rate, config.model.cluster.momentum = 0.0, 1.0  # nothing may move
  config.seed = 7  # another seed would give other initial weights and centroids
  train.train_and_evaluate(config, str(tmp_path / "tuned"))
  tuned = load_model(str(tmp_path / "tuned"))[2]
  for collection in ("params", "clusters"):
    for a, b in zip(jax.tree_util.tree_leaves(source[collection]),
                    jax.tree_util.tree_leaves(tuned[collection])):
      np.testing.assert_array_equal(a, b)

  assert "learnt with" not in caplog.text

  config.max_age = 50  # another head
  config.image_size = tiny_config.image_size + 8
  with pytest.raises(ValueError, match="max_age.*head"):
    train.train_and_evaluate(config, str(tmp_path / "other_head"))
  assert f"learnt with image_size={tiny_config.image_size}" in caplog.text
  config.init_from = str(tmp_path / "nothing")
  with pytest.raises(FileNotFoundError, match="init_from"):
    train.train_and_evaluate(config, str(tmp_path / "missing"))


def test_start_from_needs_no_random_initialisation(tiny_config):
  """Resuming and ``init_from`` start from ``abstract_train_state`` (shapes only: ~20 s of
  compiling EfficientNet's initialisers saved per fold): the state is the one a random
  initialisation overwritten would give, with a fresh optimiser at step 0."""
  from clustercnn_jax import train_state

  model = train.build_model(tiny_config)
  source = train.create_train_state(jax.random.PRNGKey(3), tiny_config, model, 10)
  source = source.replace(step=5, opt_state=jax.tree_util.tree_map(
      lambda x: x + 1, source.opt_state))  # as a trained state's would be
  variables = {"params": source.params, "batch_stats": source.batch_stats,
               "clusters": source.clusters}
  concrete = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10)
  abstract = train_state.abstract_train_state(tiny_config, model, 10)
  assert not isinstance(jax.tree_util.tree_leaves(abstract.params)[0], jax.Array)
  a = train_state.start_from(abstract, variables)
  b = train_state.start_from(concrete, variables)
  assert int(a.step) == int(b.step) == 0
  for field in ("params", "batch_stats", "clusters", "opt_state"):
    assert_trees_close(getattr(a, field), getattr(b, field), atol=0)
  assert_trees_close(a.params, source.params, atol=0)
  assert all(float(jnp.max(jnp.abs(x))) == 0 for x in jax.tree_util.tree_leaves(a.opt_state))


@pytest.mark.slow
def test_cpu_initialisation_draws_what_the_default_compilation_draws(tiny_config):
  """create_train_state compiles the initialisers at XLA's lowest optimisation on CPU;
  the weights must be those of a plain ``jax.jit(model.init)``."""
  from clustercnn_jax import train_state

  model = train.build_model(tiny_config)
  state = train.create_train_state(jax.random.PRNGKey(1), tiny_config, model, 10)
  plain = jax.jit(functools.partial(model.init, train=False))(
      *train_state._init_args(jax.random.PRNGKey(1), tiny_config))
  assert_trees_close(state.params, plain["params"], atol=1e-6, rtol=1e-6)


def test_batch_norm_step_gives_each_trained_layers_batch_statistics(tiny_config):
  """Precise BN: the statistics ``batch_norm_step`` returns are the trained BatchNorms'
  batch mean and (biased) variance of their input, computed in NumPy from the captured
  convolution outputs; the frozen block's running statistics come back unchanged."""
  tiny_config.model.train_from = "stage1"
  tiny_config.flip, tiny_config.scale_jitter, tiny_config.colour_jitter = False, 0.0, 0.0
  model = train.build_model(tiny_config)
  p_model = train.build_model(tiny_config, axis_name=train.AXIS)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (1, 16, 32, 32, 3), np.uint8)
  batch = {"images": images, "ages": rng.uniform(1, 80, (1, 16)).astype(np.float32)}
  step = jax.pmap(functools.partial(train.batch_norm_step, model=p_model, config=tiny_config,
                                    inputs=inference.inputs_for(tiny_config)),
                  axis_name=train.AXIS)
  stats = jax.device_get(jax.tree_util.tree_map(
      lambda a: a[0], step(train.replicate(state), batch, train.replicate(jax.random.PRNGKey(1)))))

  x = preprocess_for(tiny_config, jnp.asarray(images[0]), jax.random.PRNGKey(0), False)
  _, captured = model.apply(
      {"params": state.params, "batch_stats": state.batch_stats, "clusters": state.clusters},
      x, train=True, mutable=["batch_stats", "clusters", "intermediates"],
      capture_intermediates=lambda mdl, _: mdl.name == "conv", rngs={"cluster": jax.random.PRNGKey(2),
                                                                   "dropout": jax.random.PRNGKey(3)})
  for name in ("stage1_0", "stage1_1"):
    conv_out = np.asarray(captured["intermediates"]["backbone"][name]["conv"]["__call__"][0],
                          np.float64)
    bn = stats["backbone"][name]["bn"]
    np.testing.assert_allclose(bn["mean"], conv_out.mean((0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn["var"], conv_out.var((0, 1, 2)), rtol=1e-4, atol=1e-5)
  for leaf, start in zip(jax.tree_util.tree_leaves(stats["backbone"]["stage0_0"]),
                         jax.tree_util.tree_leaves(state.batch_stats["backbone"]["stage0_0"])):
    np.testing.assert_array_equal(leaf, start)
