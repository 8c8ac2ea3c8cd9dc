"""Inference-mode BatchNorm folded into the convolution before it.

In inference a BatchNorm is a per-channel affine map, (x - mean) * scale / sqrt(var + eps)
+ bias. After a convolution without bias, its multiplier folds into the convolution's
kernel (each output channel scaled) and the rest is a bias. ``fold_batch_norms`` rewrites
a model's variables that way once, when a model is loaded for inference or a frozen part
is built, not in every step; ``folded`` then runs each folded BatchNorm as the bias add
alone.

The folded variables keep the tree's structure (each folded BatchNorm holds scale 1,
mean 0 and variance 1 - eps), so they give the same outputs with or without ``folded``,
and a checkpoint's restore, digest and export code never sees a different tree.
"""

import contextlib
import functools
from typing import Any, Callable, Collection, Dict, FrozenSet, Iterator, List, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from clustercnn_jax.models.layers import Conv, DepthwiseConv

Path = Tuple[str, ...]
CONVOLUTIONS = (Conv, DepthwiseConv, nn.Conv)


def _in_inference(module: nn.BatchNorm, args: tuple, kwargs: dict) -> bool:
  use_running_average = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
  return bool(nn.merge_param("use_running_average", module.use_running_average,
                             use_running_average))


def find_pairs(apply: Callable[..., Any], variables: Dict[str, Any], *args: Any
               ) -> List[Tuple[Path, Path, float]]:
  """(convolution, BatchNorm, eps) for each inference-mode BatchNorm that ``apply(variables,
  *args)`` feeds the output of a bias-free convolution directly: what can fold.

  Found by tracing shapes only (``jax.eval_shape``), so nothing is computed."""
  pairs, last = {}, {}

  def record(next_fun, call_args, call_kwargs, context):
    module = context.module
    if context.method_name != "__call__":
      return next_fun(*call_args, **call_kwargs)
    if isinstance(module, nn.BatchNorm):
      if (_in_inference(module, call_args, call_kwargs) and module.use_scale
          and module.use_bias and call_args[0] is last.get("out")):
        pairs[module.path] = (last["path"], module.path, float(module.epsilon))
      return next_fun(*call_args, **call_kwargs)
    out = next_fun(*call_args, **call_kwargs)
    if isinstance(module, CONVOLUTIONS) and not getattr(module, "use_bias", False):
      last.update(out=out, path=module.path)
    return out

  with nn.intercept_methods(record):  # a new function: no trace cached from an earlier call
    jax.eval_shape(lambda v, *a: apply(v, *a), variables, *args)
  return list(pairs.values())


def _at(tree: Dict[str, Any], path: Path) -> Dict[str, Any]:
  for name in path:
    tree = tree[name]
  return tree


def fold_batch_norms(apply: Callable[..., Any], variables: Dict[str, Any], *args: Any
                     ) -> Tuple[Dict[str, Any], FrozenSet[Path]]:
  """``variables`` with each BatchNorm that ``find_pairs`` finds folded into its convolution,
  and the folded BatchNorms' paths (for ``folded``).

  ``apply(variables, *args)`` is the inference computation the folded variables are for
  (``args`` may be ``jax.ShapeDtypeStruct``s)."""
  pairs = find_pairs(apply, variables, *args)
  out = flax.core.unfreeze(jax.tree_util.tree_map(lambda a: a, variables))
  for conv, bn, eps in pairs:  # in NumPy: one pass on the host, no op compiled per shape
    params, stats = _at(out["params"], bn), _at(out["batch_stats"], bn)
    scale, bias, mean, var = (np.asarray(a, np.float32) for a in (
        params["scale"], params["bias"], stats["mean"], stats["var"]))
    multiplier = scale / np.sqrt(var + np.float32(eps))
    conv_params = _at(out["params"], conv)
    kernel = conv_params["kernel"]
    conv_params["kernel"] = jnp.asarray(np.asarray(kernel, np.float32) * multiplier, kernel.dtype)
    params["bias"] = jnp.asarray(bias - mean * multiplier, params["bias"].dtype)
    params["scale"] = jnp.asarray(np.ones_like(scale), params["scale"].dtype)
    stats["mean"] = jnp.asarray(np.zeros_like(mean), stats["mean"].dtype)
    stats["var"] = jnp.asarray(np.full_like(var, 1.0 - eps), stats["var"].dtype)
  return out, frozenset(bn for _, bn, _ in pairs)


def _bias_add(paths, next_fun, args, kwargs, context):
  module = context.module
  if (context.method_name != "__call__" or not isinstance(module, nn.BatchNorm)
      or module.path not in paths or not _in_inference(module, args, kwargs)):
    return next_fun(*args, **kwargs)
  x = args[0]
  dtype = module.dtype or x.dtype
  return x.astype(dtype) + module.variables["params"]["bias"].astype(dtype)


@contextlib.contextmanager
def folded(paths: Collection[Path]) -> Iterator[None]:
  """The inference-mode BatchNorms at ``paths`` (from ``fold_batch_norms``, whose variables
  they must be given) run as their bias add alone."""
  with nn.intercept_methods(functools.partial(_bias_add, frozenset(paths))):
    yield


def run_folded(fn: Callable[..., Any], paths: Collection[Path]) -> Callable[..., Any]:
  """``fn`` (not jitted) traced under ``folded(paths)``: jit the result, so that its trace
  is cached apart from the unfolded function's."""

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with folded(paths):
      return fn(*args, **kwargs)

  return wrapped


def fold_function(fn: Callable[..., Any], variables: Dict[str, Any], *args: Any
                  ) -> Tuple[Callable[..., Any], Dict[str, Any]]:
  """(``fn`` with its BatchNorms run as bias adds, the variables folded for it): the same
  outputs as ``fn(variables, *args)``, each BatchNorm folded once here."""
  variables, paths = fold_batch_norms(fn, variables, *args)
  return run_folded(fn, paths), variables


def random_statistics(variables: Dict[str, Any], seed: int = 1) -> Dict[str, Any]:
  """``variables`` with every BatchNorm's scale, bias and running statistics drawn away from
  their initial 1s and 0s, so that folding has something to fold (tests, benchmarks)."""
  rng = np.random.RandomState(seed)

  def draw(path, a):
    name = path[-1].key
    if name in ("scale", "var"):
      return jnp.asarray(rng.uniform(0.5, 1.5, a.shape), a.dtype)
    if name in ("mean", "bias"):
      return jnp.asarray(rng.normal(0, 0.3, a.shape), a.dtype)
    return a

  return jax.tree_util.tree_map_with_path(draw, variables)
