import jax
import jax.numpy as jnp
import numpy as np

from clustercnn_jax import losses


def test_loss_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(5, 11)).astype(np.float32)
  ages = np.array([0, 3, 10, 7.0, 4], np.float32)
  aux = {"s_w": jnp.float32(2.0), "s_b": jnp.float32(4.0)}
  t = losses.age_loss(jnp.asarray(logits), jnp.asarray(ages), aux, ce_weight=0.3, sw_sb_weight=0.2)
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  ce = -np.mean(np.log(p[np.arange(5), ages.astype(int)]))
  pred = p @ np.arange(11)
  l1 = np.mean(np.abs(ages - pred))
  np.testing.assert_allclose(t["ce"], ce, rtol=1e-5)
  np.testing.assert_allclose(t["l1"], l1, rtol=1e-5)
  np.testing.assert_allclose(t["loss"], 0.3 * ce + 0.7 * l1 + 0.2 * 0.5, rtol=1e-5)
  np.testing.assert_allclose(losses.expected_age(jnp.asarray(logits)), pred, rtol=1e-5)


def test_ce_weight_zero_is_pure_l1_and_no_cluster_terms():
  logits = jnp.zeros((2, 5))
  t = losses.age_loss(logits, jnp.array([0.0, 4.0]), {}, ce_weight=0.0, sw_sb_weight=1.0)
  np.testing.assert_allclose(t["loss"], 2.0)  # prediction 2 for both
  assert "sw_sb" not in t
  g = jax.grad(lambda l: losses.age_loss(l, jnp.array([0.0, 4.0]), {}, ce_weight=0.0,
                                         sw_sb_weight=1.0)["loss"])(logits)
  # d/dlogit_j of mean_b |a_b - E[age]| at uniform p = 1/5: sign(E - a_b) p_j (j - E) / 2.
  j = np.arange(5.0)
  expected = np.stack([0.5 * 0.2 * (j - 2), -0.5 * 0.2 * (j - 2)])
  np.testing.assert_allclose(g, expected, atol=1e-6)  # no cross-entropy term


def test_cumulative_score_and_mae():
  pred = np.array([10.0, 12.0, 20.0])
  ages = np.array([10, 10, 10])
  assert losses.mae(pred, ages) == 4.0
  cs = losses.cumulative_score(pred, ages)
  assert cs[0] == 1 / 3 and cs[2] == 2 / 3 and cs[10] == 1.0


def test_label_distribution_loss_matches_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(4, 30)).astype(np.float32)
  ages = np.array([0, 3.0, 17, 29], np.float32)
  t = losses.age_loss(jnp.asarray(logits), jnp.asarray(ages), {}, ce_weight=0.5,
                      sw_sb_weight=0.1, label_sigma=2.0)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  q = np.exp(-0.5 * ((np.arange(30)[None] - ages[:, None]) / 2.0) ** 2)
  q /= q.sum(-1, keepdims=True)  # truncated at both ends of the age range, renormalised
  ce = -np.mean((q * logp).sum(-1))
  np.testing.assert_allclose(t["ce"], ce, rtol=1e-5)
  l1 = np.mean(np.abs(ages - np.exp(logp) @ np.arange(30)))
  np.testing.assert_allclose(t["loss"], 0.5 * ce + 0.5 * l1, rtol=1e-5)
  # A tiny width is the one-hot class again.
  sharp = losses.age_loss(jnp.asarray(logits), jnp.asarray(ages), {}, ce_weight=0.5,
                          sw_sb_weight=0.1, label_sigma=1e-3)
  onehot = losses.age_loss(jnp.asarray(logits), jnp.asarray(ages), {}, ce_weight=0.5,
                           sw_sb_weight=0.1)
  np.testing.assert_allclose(sharp["ce"], onehot["ce"], rtol=1e-5)
