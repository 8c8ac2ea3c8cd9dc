"""The cluster module against a plain NumPy reference of section 3.2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clustercnn_jax.cluster import ClusterModule, momentum_update

K, D, F, B = 4, 6, 3, 16
EPS = 1e-6


def np_probs(x, u):
  d2 = ((x[:, None, :] - u[None]) ** 2).sum(-1)
  inv = 1.0 / (d2 + EPS)
  return inv / inv.sum(-1, keepdims=True)


def np_branch(x, u, assign, kernel, bias):
  """The paper's v = relu(W_c (x - u_c) + b_c), one example at a time."""
  out = np.zeros((x.shape[0], kernel.shape[-1]))
  for b in range(x.shape[0]):
    c = assign[b]
    out[b] = np.maximum((x[b] - u[c]) @ kernel[c] + bias[c], 0.0)
  return out


def np_s_w(x, u, assign):
  return np.mean([np.linalg.norm(x[b] - u[assign[b]]) for b in range(len(x))])


def np_s_b(u):
  k = len(u)
  return np.mean([np.linalg.norm(u[i] - u[j]) for i in range(k) for j in range(k) if i != j])


def np_momentum(u, x, assign, alpha):
  """Per cluster: u <- a u + (1 - a) mean, a = alpha ** n_c."""
  u = u.copy()
  for c in range(len(u)):
    members = x[assign == c]
    if len(members):
      a = alpha ** len(members)
      u[c] = a * u[c] + (1 - a) * members.mean(0)
  return u


def setup(seed=0, momentum=0.9, sample=False, **kw):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(B, D)).astype(np.float32)
  u = rng.normal(size=(K, D)).astype(np.float32) * 2
  module = ClusterModule(K, F, momentum=momentum, sample_in_train=sample, eps=EPS, **kw)
  variables = module.init({"params": jax.random.PRNGKey(0), "cluster": jax.random.PRNGKey(1)},
                          jnp.asarray(x), train=False)
  variables = {"params": variables["params"],
               "clusters": {"centroids": jnp.asarray(u), "idle_steps": jnp.zeros(K, jnp.int32)}}
  return module, variables, x, u


def test_eval_matches_numpy_reference():
  module, variables, x, u = setup()
  v, aux = module.apply(variables, jnp.asarray(x), train=False)
  probs = np_probs(x, u)
  nearest = np.argmin(((x[:, None] - u[None]) ** 2).sum(-1), -1)
  kernel = np.asarray(variables["params"]["kernel"])
  bias = np.asarray(variables["params"]["bias"]) + 0.1  # non-zero bias is covered below
  np.testing.assert_allclose(aux["probs"], probs, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(aux["assign"], nearest)
  np.testing.assert_allclose(aux["s_w"], np_s_w(x, u, nearest), rtol=1e-5)
  np.testing.assert_allclose(aux["s_b"], np_s_b(u), rtol=1e-5)
  variables["params"] = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
  v, _ = module.apply(variables, jnp.asarray(x), train=False)
  np.testing.assert_allclose(v, np_branch(x, u, nearest, kernel, bias), rtol=1e-5, atol=1e-5)


def test_masked_einsum_equals_per_example_loop_with_sampled_clusters():
  module, variables, x, u = setup(sample=True)
  v, aux = module.apply(variables, jnp.asarray(x), train=True, rngs={"cluster": jax.random.PRNGKey(3)})
  assign = np.asarray(aux["assign"])
  kernel, bias = (np.asarray(variables["params"][n]) for n in ("kernel", "bias"))
  np.testing.assert_allclose(v, np_branch(x, u, assign, kernel, bias), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(aux["s_w"], np_s_w(x, u, assign), rtol=1e-5)


def test_momentum_update_matches_numpy():
  module, variables, x, u = setup(momentum=0.9)
  _, updates = module.apply(variables, jnp.asarray(x), train=True, mutable=["clusters"])
  nearest = np.argmin(((x[:, None] - u[None]) ** 2).sum(-1), -1)
  np.testing.assert_allclose(updates["clusters"]["centroids"], np_momentum(u, x, nearest, 0.9),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("centroid_update", ["assigned", "nearest"])
def test_sampled_branch_with_centroids_moved_by_the_assigned_or_the_nearest(centroid_update):
  """The branch always uses the sampled cluster; the momentum update and S_w use it too
  ('assigned') or the nearest centroid ('nearest')."""
  module, variables, x, u = setup(momentum=0.9, sample=True, centroid_update=centroid_update)
  (v, aux), updates = module.apply(variables, jnp.asarray(x), train=True, mutable=["clusters"],
                                   rngs={"cluster": jax.random.PRNGKey(3)})
  sampled = np.asarray(aux["assign"])
  nearest = np.argmin(((x[:, None] - u[None]) ** 2).sum(-1), -1)
  assert (sampled != nearest).any()  # the two differ on this batch
  kernel, bias = (np.asarray(variables["params"][n]) for n in ("kernel", "bias"))
  np.testing.assert_allclose(v, np_branch(x, u, sampled, kernel, bias), rtol=1e-5, atol=1e-5)
  moved_by = sampled if centroid_update == "assigned" else nearest
  np.testing.assert_allclose(updates["clusters"]["centroids"], np_momentum(u, x, moved_by, 0.9),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(aux["s_w"], np_s_w(x, u, moved_by), rtol=1e-5)


def test_an_unknown_centroid_update_is_an_error_naming_the_field():
  with pytest.raises(ValueError, match="model.cluster.centroid_update='mean'"):
    setup(centroid_update="mean")


def test_momentum_update_equals_repeated_per_example_rule_for_identical_examples():
  u = jnp.zeros((1, 2))
  x = np.array([1.0, 2.0])
  sequential = np.zeros(2)
  for _ in range(7):
    sequential = 0.999 * sequential + 0.001 * x
  batched = momentum_update(u, jnp.asarray(7 * x)[None], jnp.array([7.0]), 0.999)
  np.testing.assert_allclose(batched[0], sequential, rtol=1e-5)


def test_sampling_follows_p():
  rng = np.random.default_rng(1)
  u = rng.normal(size=(K, D)).astype(np.float32)
  x = np.repeat(rng.normal(size=(1, D)).astype(np.float32), 4000, 0)
  module = ClusterModule(K, F, sample_in_train=True, eps=EPS)
  variables = module.init({"params": jax.random.PRNGKey(0)}, jnp.asarray(x[:1]), train=False)
  variables["clusters"] = {"centroids": jnp.asarray(u), "idle_steps": jnp.zeros(K, jnp.int32)}
  _, aux = module.apply(variables, jnp.asarray(x), train=True, rngs={"cluster": jax.random.PRNGKey(5)})
  freq = np.bincount(np.asarray(aux["assign"]), minlength=K) / len(x)
  np.testing.assert_allclose(freq, np_probs(x[:1], u)[0], atol=0.03)  # ~4 sigma at n=4000


def test_example_on_a_centroid_is_safe():
  module, variables, x, u = setup()
  x[0] = u[2]
  def loss(x):
    v, aux = module.apply(variables, x, train=False)
    return jnp.sum(v) + aux["s_w"] + jnp.sum(aux["probs"])
  _, aux = module.apply(variables, jnp.asarray(x), train=False)
  assert np.all(np.isfinite(aux["probs"]))
  assert aux["probs"][0, 2] > 0.999
  assert np.all(np.isfinite(jax.grad(loss)(jnp.asarray(x))))


def test_branch_weights_of_empty_cluster_get_zero_gradient():
  module, variables, x, u = setup()
  nearest = np.argmin(((x[:, None] - u[None]) ** 2).sum(-1), -1)
  # Move cluster 3 far away so that no example is assigned to it.
  variables["clusters"]["centroids"] = variables["clusters"]["centroids"].at[3].set(100.0)
  def loss(params):
    v, aux = module.apply({**variables, "params": params}, jnp.asarray(x), train=False)
    return jnp.sum(v ** 2) + aux["s_w"]
  grads = jax.grad(loss)(variables["params"])
  assert np.all(np.asarray(grads["kernel"][3]) == 0) and np.all(np.asarray(grads["bias"][3]) == 0)
  used = [c for c in range(K - 1) if np.any(nearest == c)]
  assert all(np.abs(np.asarray(grads["kernel"][c])).sum() > 0 for c in used)


def test_s_w_gradient_reaches_the_features():
  module, variables, x, _ = setup()
  g = jax.grad(lambda x: module.apply(variables, x, train=False)[1]["s_w"])(jnp.asarray(x))
  assert np.abs(np.asarray(g)).sum() > 0


def test_dead_cluster_is_reseeded_on_the_worst_served_example():
  module, variables, x, u = setup(reseed_after=5)
  variables["clusters"]["centroids"] = variables["clusters"]["centroids"].at[3].set(100.0)
  variables["clusters"]["idle_steps"] = jnp.array([0, 0, 0, 5], jnp.int32)
  _, updates = module.apply(variables, jnp.asarray(x), train=True, mutable=["clusters"])
  new = updates["clusters"]
  centroids = np.asarray(variables["clusters"]["centroids"])
  d = np.sqrt(((x[:, None] - centroids[None]) ** 2).sum(-1)).min(-1)
  np.testing.assert_allclose(new["centroids"][3], x[np.argmax(d)])
  assert int(new["idle_steps"][3]) == 0
  # One step earlier it is merely counted.
  variables["clusters"]["idle_steps"] = jnp.array([0, 0, 0, 4], jnp.int32)
  _, updates = module.apply(variables, jnp.asarray(x), train=True, mutable=["clusters"])
  assert int(updates["clusters"]["idle_steps"][3]) == 5
  assert float(updates["clusters"]["centroids"][3, 0]) == 100.0


@pytest.mark.parametrize("k", [1, 2])
def test_small_k(k):
  module = ClusterModule(k, F)
  x = jnp.ones((3, D))
  variables = module.init(jax.random.PRNGKey(0), x, train=False)
  v, aux = module.apply(variables, x, train=False)
  assert v.shape == (3, F) and np.isfinite(float(aux["s_w"] / aux["s_b"]))


def test_s_b_in_training_is_taken_on_the_updated_centroids_and_has_a_gradient():
  """Our reading of 'maximise the margins': S_b on u + (1 - a)(x̄_c - u), a function of x."""
  module, variables, x, u = setup(momentum=0.9)
  nearest = np.argmin(((x[:, None] - u[None]) ** 2).sum(-1), -1)
  aux = module.apply(variables, jnp.asarray(x), train=True, mutable=["clusters"])[0][1]
  np.testing.assert_allclose(aux["s_b"], np_s_b(np_momentum(u, x, nearest, 0.9)), rtol=1e-5)
  _, eval_aux = module.apply(variables, jnp.asarray(x), train=False)
  np.testing.assert_allclose(eval_aux["s_b"], np_s_b(u), rtol=1e-5)  # stored centroids

  def s_b(x):
    (_, aux), _ = module.apply(variables, x, train=True, mutable=["clusters"])
    return aux["s_b"]

  g = np.asarray(jax.grad(s_b)(jnp.asarray(x)))
  assert np.abs(g).sum() > 0
  # Finite differences along a random direction.
  d = np.random.default_rng(3).normal(size=x.shape).astype(np.float32)
  h = 1e-2
  numeric = (float(s_b(jnp.asarray(x + h * d))) - float(s_b(jnp.asarray(x - h * d)))) / (2 * h)
  np.testing.assert_allclose(numeric, float(np.sum(g * d)), rtol=2e-2, atol=1e-5)


