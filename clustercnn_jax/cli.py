"""What every command-line entry point shares: flags, logging, the compilation cache, and
one ``error:`` line instead of a traceback when the command line or the config is wrong."""

import difflib
import importlib
import logging as py_logging
import os
import pkgutil
import re
import sys
from typing import Any, Callable, Iterator, List, NoReturn, Optional, Sequence

import jax
from absl import app, flags, logging
from ml_collections import config_dict
from ml_collections.config_flags.config_flags import ConfigFileFlagParser, is_config_flag

from clustercnn_jax import workdirs

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "compilation_cache", "~/.cache/clustercnn_jax/xla",
    "Directory for XLA's persistent compilation cache, so that each fold, split or rerun "
    "does not recompile the same steps; '' turns it off. Used on GPU and TPU; on CPU by "
    "predict, and by the other commands only with --compilation_cache_on_cpu.")
flags.DEFINE_bool(
    "compilation_cache_on_cpu", False,
    "Also use the compilation cache on CPU for training and evaluation. Off by default: a "
    "CPU training step read back from the cache crashed (segfault) once in 82 folds.")
flags.DEFINE_bool(
    "verbose", False,
    "On a usage or config error, show the traceback instead of one 'error:' line (so does "
    "setting JAX_TRACEBACK_FILTERING).")

# What a mistaken command line, config or path raises: one line, exit status 2. Anything
# else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError,
               workdirs.WorkdirInUse, app.UsageError, flags.Error)


def define_model_flags() -> None:
  """--workdir and --step, for the commands that use a trained model (predict, export);
  defined once per process, so that their modules can define their flags together. Their
  ``define_flags`` adopt this module's key flags, so that --help lists these."""
  if "workdir" not in flags.FLAGS:
    flags.DEFINE_string("workdir", None, "A training workdir (config.json and checkpoints/).")
  if "step" not in flags.FLAGS:
    flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
  flags.mark_flag_as_required("workdir")


def setup_logging() -> None:
  """Short timestamps; orbax's per-save INFO lines hidden (warnings still shown)."""
  logging.set_verbosity(logging.INFO)
  handler = logging.get_absl_handler()
  handler.setFormatter(py_logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
  handler.addFilter(lambda r: r.levelno >= py_logging.WARNING or "/orbax/" not in r.pathname)
  logging.info("JAX %s: process %d of %d, %d local / %d global devices (%s).", jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].platform)


def enable_compilation_cache(path: str, on_cpu: bool = False) -> None:
  """Compiled steps are kept on disk and reused by any later process with the same program.

  Not on CPU unless ``on_cpu``: reading a CPU executable back from the cache
  segfaulted once in our 82-fold FG-NET run (jax 0.10.2; cf. jax-ml/jax#28908).
  """
  if not path:
    return
  if jax.default_backend() == "cpu" and not on_cpu:
    logging.info("Compilation cache off on CPU (--compilation_cache_on_cpu turns it on).")
    return
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def setup(cache_on_cpu: bool = False) -> None:
  """What every entry point does first, once flags are parsed: logging, compilation cache
  (on CPU where the command asks, as predict does, or --compilation_cache_on_cpu)."""
  setup_logging()
  enable_compilation_cache(flags.FLAGS.compilation_cache,
                           cache_on_cpu or flags.FLAGS.compilation_cache_on_cpu)


def run(main: Callable[[List[str]], Any], define_flags: Optional[Callable[[], None]] = None,
        help_extra: Optional[Callable[[], str]] = None) -> None:
  """``app.run(main)`` for a command, with ``define_flags`` called first.

  A mistake (a misspelt flag or config field, a missing file, a bad value) ends the run
  with one ``error:`` line and exit status 2: a user needs the fix, not absl's and
  ml_collections' stack. --verbose or JAX_TRACEBACK_FILTERING keep the traceback for
  debugging. --help shows the command's own flags (and ``help_extra``) and exits 0.
  """
  argv = list(sys.argv)
  verbose = wants_traceback(argv)
  try:
    _check_workdir(argv)
    if define_flags:
      define_flags()
    FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS["verbose"])  # key to every command
    asked = _help_asked(argv)
    if asked:
      print_help(full=asked == "helpfull", extra=help_extra() if help_extra else "")
      sys.exit(0)
    _check_config_files(argv)
    app.run(_reporting(main, verbose), flags_parser=_parse_flags)
  except USER_ERRORS as e:
    if verbose:
      raise
    fail(e)


def wants_traceback(argv: Sequence[str] = ()) -> bool:
  """--verbose (the last of --verbose / --noverbose) or JAX_TRACEBACK_FILTERING set: read
  from argv, since flag parsing is one of the things that can fail."""
  verbose = "JAX_TRACEBACK_FILTERING" in os.environ
  for arg in _flag_args(argv):
    name, has_value, value = arg.lstrip("-").partition("=")
    if name == "verbose":
      verbose = not has_value or value.lower() in ("true", "t", "1")
    elif name == "noverbose":
      verbose = False
  return verbose


def fail(error: BaseException) -> NoReturn:
  """The error as one ``error:`` line on stderr (its message may span lines), exit 2."""
  sys.stdout.flush()
  sys.stderr.write(f"error: {message(error)}\n")
  sys.stderr.flush()
  sys.exit(2)


def message(error: BaseException) -> str:
  """What to tell the user: the error's own message, without absl's wrapping."""
  text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
  text = text.rstrip()
  if isinstance(error, flags.Error):
    required = re.findall(r"Flag (--\w+) must have a value other than None", text)
    if required:
      return " and ".join(required) + (" is" if len(required) == 1 else " are") + \
          " required (--help shows the usage)."
    if "Error whilst parsing config file" in text:  # config_flags adds the config's stack
      root = error
      while root.__context__ is not None:
        root = root.__context__
      return f"{text.split(': Error whilst', 1)[0].removeprefix('flag ')}: {message(root)}"
    text = text.removeprefix("flag ")
  if isinstance(error, (flags.Error, app.UsageError)):
    text += " (--help shows the usage)"
  return text


def _reporting(main: Callable[[List[str]], Any], verbose: bool) -> Callable[[List[str]], Any]:
  """``main`` with its user errors reported as one line (app.run would print all of
  --help for a UsageError)."""

  def reporting_main(argv: List[str]) -> Any:
    try:
      return main(argv)
    except USER_ERRORS as e:
      if verbose:
        raise
      fail(e)

  return reporting_main


def _parse_flags(argv: List[str]) -> List[str]:
  """Parses the flags; a misspelt ``--config.*`` field becomes a ValueError naming the
  closest real one (ml_collections raises a KeyError chained three times)."""
  try:
    return FLAGS(argv)
  except (KeyError, AttributeError) as e:
    problem = _unknown_override(argv)
    if problem is None:
      raise
    raise ValueError(problem) from e


def _unknown_override(argv: Sequence[str]) -> Optional[str]:
  """What is wrong with the first ``--config.a.b=...`` of argv that names no field of its
  config flag's config; None when every override names a field."""
  for name in list(FLAGS):
    flag = FLAGS[name]
    if not is_config_flag(flag) or not _overrides(argv, name):
      continue
    given = _argv_value(argv, name)
    try:
      config = flag.parser.parse(given if given is not None else flag.default)
    except Exception:  # pylint: disable=broad-except  (then ml_collections' error stands)
      continue
    try:
      check_overrides(config, argv, name)
    except ValueError as e:
      return str(e)
  return None


def check_overrides(config: config_dict.ConfigDict, argv: Sequence[str],
                    name: str = "config") -> None:
  """A ValueError naming the closest real field for the first ``--NAME.a.b=...`` of argv
  that names no field of ``config``. For a config flag whose overrides apply when it is
  defined (``DEFINE_config_dict``), before flag parsing: call it first."""
  for path in _overrides(argv, name):
    if not _has_field(config, path):
      close = difflib.get_close_matches(path, sorted(_leaf_paths(config)), n=1)
      hint = f"; did you mean --{name}.{close[0]}?" if close else ", nor one named like it"
      raise ValueError(f"--{name}.{path}: no such field{hint}")


def _overrides(argv: Sequence[str], name: str) -> List[str]:
  """The field paths of argv's ``--NAME.a.b=...`` overrides."""
  return [a.lstrip("-")[len(name) + 1:].partition("=")[0] for a in _flag_args(argv)
          if a.lstrip("-").startswith(name + ".")]


def _has_field(config: Any, path: str) -> bool:
  node = config
  for part in path.split("."):
    if "[" in part:  # an index (a[0]): left to ml_collections
      return True
    if not isinstance(node, (config_dict.ConfigDict, dict)) or part not in node:
      return False
    node = node[part]
  return True


def _leaf_paths(config: Any, prefix: str = "") -> Iterator[str]:
  """Dotted names of the config's fields that hold values (an empty dict is one)."""
  for key, value in config.items():
    if isinstance(value, (config_dict.ConfigDict, dict)) and value:
      yield from _leaf_paths(value, f"{prefix}{key}.")
    else:
      yield prefix + key


def _flag_args(argv: Sequence[str]) -> Iterator[str]:
  """The arguments that look like flags, up to ``--``."""
  for arg in argv[1:]:
    if arg == "--":
      return
    if arg.startswith("-"):
      yield arg


def _argv_value(argv: Sequence[str], name: str) -> Optional[str]:
  """The last value given to --name (``--name=V`` or ``--name V``), or None."""
  value = None
  args = list(argv[1:])
  for i, arg in enumerate(args):
    if arg == "--":
      break
    if arg.lstrip("-") == name and arg.startswith("-") and i + 1 < len(args):
      value = args[i + 1]
    elif arg.startswith("-") and arg.lstrip("-").startswith(name + "="):
      value = arg.lstrip("-")[len(name) + 1:]
  return value


def _check_workdir(argv: Sequence[str]) -> None:
  """A --workdir that is a file would fail late, deep in a checkpoint library's stack."""
  workdir = _argv_value(argv, "workdir")
  if workdir and os.path.isfile(os.path.expanduser(workdir)):
    raise NotADirectoryError(f"--workdir={workdir} is a file, not a directory: give a "
                             "directory (a new one, or a workdir a run wrote).")


def _check_config_files(argv: Sequence[str]) -> None:
  """A missing config file: ml_collections would defer the error to the first use of the
  config, as an OSError that lists its import attempts."""
  for name in list(FLAGS):
    flag = FLAGS[name]
    if not (is_config_flag(flag)
            and isinstance(flag.parser, ConfigFileFlagParser)):
      continue
    given = _argv_value(argv, name)
    if given is not None and not os.path.isfile(given.split(":", 1)[0]):
      raise FileNotFoundError(f"--{name}={given}: no such file {given.split(':', 1)[0]!r} "
                              f"(from {os.getcwd()}); give a configs/*.py path, e.g. "
                              "configs/demo.py or configs/fgnet.py:frozen.")


def _help_asked(argv: Sequence[str]) -> Optional[str]:
  """'help' or 'helpfull' when argv asks for it (absl's help flags exit with status 1)."""
  asked = None
  for arg in _flag_args(argv):
    name, has_value, value = arg.lstrip("-").partition("=")
    if has_value and value.lower() in ("false", "f", "0"):
      continue
    if name in ("help", "helpshort", "?"):
      asked = asked or "help"
    elif name == "helpfull":
      asked = "helpfull"
  return asked


def print_help(full: bool = False, extra: str = "") -> None:
  """The command's docstring, ``extra``, then its own flags (all flags with ``full``)."""
  doc = (sys.modules["__main__"].__doc__ or f"USAGE: {sys.argv[0]} [flags]").strip("\n")
  flag_help = FLAGS.get_help() if full else FLAGS.main_module_help()
  parts = [doc, extra.rstrip("\n"), "flags:\n" + flag_help]
  if not full:
    parts.append("Try --helpfull to get a list of all flags.")
  print("\n\n".join(p for p in parts if p))


def config_list() -> str:
  """The config files in configs/ and their variants (each file's ``VARIANTS``), with the
  first line of each file's docstring."""
  try:
    import configs  # pylint: disable=g-import-not-at-top  (the repository's configs/)
  except ImportError:
    return ""
  lines = [f"Configs, in {os.path.dirname(os.path.abspath(configs.__file__))} "
           "(--config=configs/NAME.py or configs/NAME.py:VARIANT[,VARIANT]):"]
  for info in sorted(pkgutil.iter_modules(configs.__path__), key=lambda m: m.name):
    path = f"configs/{info.name}.py"
    try:
      module = importlib.import_module(f"configs.{info.name}")
    except Exception as e:  # pylint: disable=broad-except  (help still lists the others)
      lines.append(f"  {path}: cannot be imported ({type(e).__name__}: {e})")
      continue
    variants = getattr(module, "VARIANTS", None)
    if variants is None:  # default.py: what the configs share, not a config itself
      continue
    names = [n if isinstance(v, bool) else f"{n}={v!r}" for n, v in sorted(variants.items())]
    lines.append(f"  {path}: {', '.join(names) if names else '(no variants)'}")
    summary = (module.__doc__ or "").strip().splitlines()
    if summary:
      lines.append(f"      {summary[0]}")
  return "\n".join(lines)
