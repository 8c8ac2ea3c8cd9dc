"""The commands as a user meets them: a mistake is one ``error:`` line (exit status 2) that
says the fix, --help shows each command's own flags, and configs load from any directory.

Each case fails before any training, so each subprocess takes seconds (jax's start-up).
"""

import os
import re
import subprocess
import sys

import pytest
from absl import flags

from conftest import RUNLOCAL, ROOT

LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING) ")  # cli.setup_logging's format


def run(module, *args, cwd=ROOT, **env):
  environ = {k: v for k, v in os.environ.items() if k != "JAX_TRACEBACK_FILTERING"}
  return subprocess.run([sys.executable, "-m", f"clustercnn_jax.{module}", *args], cwd=cwd,
                        env={**environ, **env}, capture_output=True, text=True, timeout=120)


def error_of(result):
  """The error a failed command printed: all of stderr but the log lines, which must
  start with 'error: ' and hold no traceback."""
  assert result.returncode == 2, result.stderr
  text = "\n".join(l for l in result.stderr.splitlines() if not LOG_LINE.match(l))
  assert text.startswith("error: ") and "Traceback" not in text, result.stderr
  return text


@pytest.mark.parametrize("field,closest", [("num_epoch", "num_epochs"),
                                           ("model.num_cluster", "model.cluster.num_clusters"),
                                           ("modle.num_clusters", "model.cluster.num_clusters")])
def test_a_misspelt_config_field_is_one_line_naming_the_closest(tmp_path, field, closest):
  result = run("main", f"--config={RUNLOCAL}", f"--workdir={tmp_path}", f"--config.{field}=3")
  assert error_of(result) == f"error: --config.{field}: no such field; did you mean " \
      f"--config.{closest}?"


@pytest.mark.parametrize("args,says", [
    ([f"--config={RUNLOCAL}", "--config.data.name=foo"], "config.data.name='foo': use one of"),
    # No built dataset, whatever this machine has in ~/tensorflow_datasets.
    (["--config=configs/fgnet.py:frozen", "--config.data.data_dir=TMP/tfds"],
     "Pass the manual directory with --config.data.manual_dir"),
    # No GoogLeNet weights, whatever this machine has in ~/.cache.
    (["--config=configs/fgnet.py", "--config.pretrained=TMP/googlenet-1378be20.pth"],
     "To get googlenet-1378be20.pth: download"),
    (["--config=configs/nothere.py"], "--config=configs/nothere.py: no such file"),
    (["--config=configs/demo.py:partial"], "Unknown config argument 'partial'"),
])
def test_config_errors_before_training_are_one_error_without_traceback(tmp_path, args, says):
  result = run("main", f"--workdir={tmp_path / 'w'}",
               *(a.replace("TMP", str(tmp_path)) for a in args))
  assert says in error_of(result)


def test_a_rerun_with_another_config_prints_the_whole_message(tmp_path):
  from clustercnn_jax import checkpoint
  from configs import demo

  checkpoint.save_config(str(tmp_path), demo.get_config("runlocal"))
  os.makedirs(tmp_path / "checkpoints" / "6")  # a finished step, as far as resuming knows
  result = run("main", f"--config={RUNLOCAL}", f"--workdir={tmp_path}",
               "--config.model.cluster.num_clusters=4")
  text = error_of(result)
  assert "another config" in text and "model.cluster.num_clusters: 3" in text and "\n" in text


def test_a_run_in_a_workdir_another_run_holds_is_one_line_naming_it(tmp_path):
  from clustercnn_jax import workdirs

  with workdirs.exclusive(str(tmp_path)):
    result = run("main", f"--config={RUNLOCAL}", f"--workdir={tmp_path}")
  assert f"is in use by process {os.getpid()} on " in error_of(result)


def test_verbose_or_jax_traceback_filtering_show_the_traceback(tmp_path):
  args = [f"--config={RUNLOCAL}", f"--workdir={tmp_path}", "--config.num_epoch=3"]
  verbose = run("main", *args, "--verbose")
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr
  assert "did you mean --config.num_epochs?" in verbose.stderr
  assert "Traceback" in run("main", *args, JAX_TRACEBACK_FILTERING="off").stderr
  assert "Traceback" not in run("main", *args, "--verbose", "--noverbose").stderr


@pytest.mark.slow  # a subprocess per command: the fast tier keeps one of each kind
@pytest.mark.parametrize("module,args", [
    ("main", [f"--config={RUNLOCAL}"]), ("predict", ["photo.jpg"]), ("evaluate", []),
    ("export", ["model.jaxexport"]), ("protocols.fgnet_lopo", ["--config=configs/fgnet.py"]),
    ("protocols.random_splits", ["--config=configs/morph.py"])])
def test_a_workdir_that_is_a_file_is_one_line(tmp_path, module, args):
  path = tmp_path / "a_file"
  path.write_text("")
  assert error_of(run(module, f"--workdir={path}", *args)).startswith(
      f"error: --workdir={path} is a file, not a directory")


@pytest.mark.slow  # a subprocess per command: the fast tier keeps one of each kind
@pytest.mark.parametrize("module,args,says", [
    ("main", [f"--config={RUNLOCAL}", "--workdir=WORKDIR", "extra"], "Unexpected arguments"),
    ("main", [f"--config={RUNLOCAL}", "--workdr=WORKDIR"], "Unknown command line flag 'workdr'"),
    ("main", [f"--config={RUNLOCAL}"], "--workdir is required"),
    ("main", [f"--config={RUNLOCAL}", "--workdir=WORKDIR", "--num_processes=2"],
     "need --multihost"),
    ("predict", ["--workdir=WORKDIR"], "Give photos or folders"),
    ("predict", ["--workdir=WORKDIR", "--step=last", "photo.jpg"], "--step=last: invalid"),
    ("evaluate", ["--workdir=WORKDIR"], "holds no checkpoint"),
    ("evaluate", ["--workdir=WORKDIR", "--config.data.name=utkface"], "holds none"),
    ("export", ["--workdir=WORKDIR"], "Give one output path"),
    ("protocols.fgnet_lopo", [f"--config={RUNLOCAL}", "--workdir=WORKDIR"],
     "data.split.kind='person'"),
    ("protocols.random_splits", [f"--config={RUNLOCAL}", "--workdir=WORKDIR"],
     "use --config.data.split.kind=random"),
    ("protocols.compare", ["only_one"], "A_DIR B_DIR"),
    ("protocols.compare", ["WORKDIR", "WORKDIR"], "no predictions.npz"),
    ("protocols.ensemble", ["--output=WORKDIR", "only_one"], "RUN_A RUN_B"),
    ("protocols.ensemble", ["run_a", "run_b"], "--output is required"),
    ("pretrained", ["classify", "--backbone=nope", "photo.jpg"], "invalid choice: 'nope'"),
    ("pretrained", ["classify", "--backbone=googlenet", "--weights=/nothere.pth", "photo.jpg"],
     "'/nothere.pth' is neither a file nor an installed package"),
])
def test_usage_mistakes_are_one_line_for_every_command(tmp_path, module, args, says):
  result = run(module, *(a.replace("WORKDIR", str(tmp_path)) for a in args))
  text = error_of(result)
  assert says in text and len(text.splitlines()) == 1, text


@pytest.mark.slow  # a subprocess per command: the fast tier keeps one of each kind
@pytest.mark.parametrize("module,own_flags", [
    ("main", ["--config", "--workdir", "--multihost", "--compilation_cache"]),
    ("predict", ["--workdir", "--step", "--no_detect", "--format", "--annotate"]),
    ("evaluate", ["--workdir", "--step", "--split", "--out", "--config"]),
    ("export", ["--workdir", "--step", "--platforms"]),
    ("protocols.fgnet_lopo", ["--config", "--workdir", "--folds", "--compilation_cache"]),
    ("protocols.random_splits", ["--config", "--workdir", "--seeds"]),
    ("protocols.compare", ["--names", "--unit", "--resamples"]),
    ("protocols.ablation", ["--config", "--workdir", "--seeds"]),
    ("protocols.ensemble", ["--output"])])
def test_help_shows_the_commands_own_flags_and_exits_0(module, own_flags):
  result = run(module, "--help")
  assert result.returncode == 0, result.stderr
  listed = re.findall(r"^  --(?:\[no\])?(\w+)", result.stdout, re.M)
  for flag in own_flags + ["--verbose"]:
    assert flag[2:] in listed, (flag, result.stdout)
  assert "--helpfull" in result.stdout and "--jax_" not in result.stdout  # not all flags


def test_main_help_lists_the_configs_and_their_variants():
  result = run("main", "--help")
  assert result.returncode == 0, result.stderr
  out = result.stdout
  assert "configs/fgnet.py: frozen, partial, runlocal, taps" in out
  assert "configs/demo.py: frozen, opposed, runlocal" in out and "configs/utkface.py: frozen, partial, taps" in out
  assert "configs/morph.py: (no variants)" in out
  assert "FG-NET, leave one person out (82 folds), k = 5." in out  # the docstring's first line
  assert "configs/default.py" not in out  # shared by the configs, not one itself


def test_each_configs_variants_are_what_it_accepts():
  from configs import demo, fgnet, morph, utkface

  for module in (demo, fgnet, morph, utkface):
    with pytest.raises(ValueError, match=re.escape(str(sorted(module.VARIANTS)))):
      module.get_config("no_such_variant")


def test_an_absolute_config_path_works_from_any_directory(tmp_path):
  """configs/*.py import ``configs.default``: the package is installed with the project."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  config = os.path.join(ROOT, RUNLOCAL)
  result = subprocess.run([sys.executable, "-m", "clustercnn_jax.main", f"--config={config}",
                           f"--workdir={tmp_path / 'w'}", "--only_check_args"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  typo = subprocess.run([sys.executable, "-m", "clustercnn_jax.main", f"--config={config}",
                         f"--workdir={tmp_path / 'w'}", "--config.num_epoch=3"], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=120)
  assert error_of(typo) == "error: --config.num_epoch: no such field; did you mean " \
      "--config.num_epochs?"


def test_no_detect_is_the_flag_and_no_hyphen_detect_its_alias():
  from clustercnn_jax import predict

  predict.define_flags()
  try:
    for args, value in [([], False), (["--no_detect"], True), (["--no-detect"], True),
                        (["--nono_detect"], False)]:
      flags.FLAGS.unparse_flags()
      flags.FLAGS(["predict", "--workdir=w", *args])
      assert flags.FLAGS.no_detect is value, args
  finally:
    flags.FLAGS.unparse_flags()
