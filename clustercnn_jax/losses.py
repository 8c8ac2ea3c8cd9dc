"""The loss E = λ·CE + (1 − λ)·|age − prediction| + γ·S_w/S_b, and age metrics.

With ``label_sigma`` > 0 the cross-entropy's target is a Gaussian over ages around the
true one instead of its one-hot class (ours, after the label-distribution methods of the
field): neighbouring ages look alike, so a one-year miss is not punished like a fifty-year one.
"""

from typing import Any, Dict, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def expected_age(logits: jnp.ndarray) -> jnp.ndarray:
  """The prediction: the mean age under the softmax over ages 0..A-1."""
  ages = jnp.arange(logits.shape[-1], dtype=jnp.float32)
  return jax.nn.softmax(logits.astype(jnp.float32), axis=-1) @ ages


def age_std(logits: jnp.ndarray) -> jnp.ndarray:
  """The standard deviation of the softmax over ages: how unsure the prediction is."""
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  ages = jnp.arange(logits.shape[-1], dtype=jnp.float32)
  mean = probs @ ages
  return jnp.sqrt(jnp.sum(probs * jnp.square(ages - mean[..., None]), axis=-1))


def label_distribution(ages: jnp.ndarray, num_ages: int, sigma: float) -> jnp.ndarray:
  """A Gaussian of width ``sigma`` over ages 0..num_ages-1 around each age, summing to 1."""
  grid = jnp.arange(num_ages, dtype=jnp.float32)
  logp = -0.5 * jnp.square((grid - ages.astype(jnp.float32)[:, None]) / sigma)
  return jax.nn.softmax(logp, axis=-1)


def age_loss(logits: jnp.ndarray, ages: jnp.ndarray, aux: Mapping[str, Any], *,
             ce_weight: float, sw_sb_weight: float,
             label_sigma: float = 0.0) -> Dict[str, jnp.ndarray]:
  """Returns the scalar ``loss`` and its terms (all means over the batch)."""
  logits = logits.astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  if label_sigma > 0:
    target = label_distribution(ages, logits.shape[-1], label_sigma)
    ce = -jnp.mean(jnp.sum(target * log_probs, axis=-1))
  else:
    labels = jnp.clip(jnp.round(ages).astype(jnp.int32), 0, logits.shape[-1] - 1)
    ce = -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))
  pred = jnp.exp(log_probs) @ jnp.arange(logits.shape[-1], dtype=jnp.float32)
  l1 = jnp.mean(jnp.abs(ages.astype(jnp.float32) - pred))
  loss = ce_weight * ce + (1.0 - ce_weight) * l1
  terms = {"ce": ce, "l1": l1, "mae": l1}
  if "s_w" in aux:
    ratio = aux["s_w"] / aux["s_b"]
    loss = loss + sw_sb_weight * ratio
    terms.update(s_w=aux["s_w"], s_b=aux["s_b"], sw_sb=ratio)
  terms["loss"] = loss
  return terms


def mae(pred: np.ndarray, ages: np.ndarray) -> float:
  return float(np.mean(np.abs(np.asarray(pred, np.float64) - ages)))


def cumulative_score(pred: np.ndarray, ages: np.ndarray,
                     thresholds: Sequence[int] = tuple(range(11))) -> Dict[int, float]:
  """CS(θ): the fraction of examples with absolute error ≤ θ years."""
  err = np.abs(np.asarray(pred, np.float64) - ages)
  return {int(t): float(np.mean(err <= t)) for t in thresholds}


def mae_by_decade(pred: np.ndarray, ages: np.ndarray) -> Dict[str, Dict[str, float]]:
  """MAE and count per true-age decade ('0-9', '10-19', ...)."""
  err = np.abs(np.asarray(pred, np.float64) - ages)
  decade = (np.asarray(ages) // 10).astype(int)
  return {f"{10 * d}-{10 * d + 9}": {"mae": float(err[decade == d].mean()),
                                      "count": int((decade == d).sum())}
          for d in np.unique(decade)}


def age_metrics(pred: np.ndarray, ages: np.ndarray) -> Dict[str, Any]:
  """MAE, CS(0..10) and MAE per decade, as the protocols report them."""
  return {"mae": mae(pred, ages), "cs": cumulative_score(pred, ages),
          "mae_by_decade": mae_by_decade(pred, ages), "num_examples": int(len(ages))}
