"""The cluster module of Cluster-CNN (Shang & Ai, section 3.2).

Read next to the paper:

* centroids u_c (k x D) live in the mutable ``clusters`` collection, never in
  ``params``: they move by momentum, not by gradient;
* p(c|x) is proportional to ||x - u_c||^-2, computed as a softmax over
  -log(||x - u_c||^2 + eps) so an example sitting on a centroid gets p ~ 1
  instead of a division by zero;
* training samples c ~ p(c|x) per example (rng stream ``cluster``); evaluation
  (or ``sample_in_train=False``, the ablation) takes the nearest centroid;
* v = phi(W_c (x - u_c) + b_c). The one-hot assignment masks the centred
  features to (B, k, D) and a single einsum over (k, D) contracts them with the
  stacked weights (k, D, F): one matmul, no loop over clusters, no per-example
  gather of weight matrices, and the weights of a cluster with no example get
  an exactly zero gradient;
* momentum update, per cluster c with n_c examples of mean x̄_c in the (global)
  batch: u_c <- a u_c + (1 - a) x̄_c with a = momentum ** n_c. That is what the
  paper's per-example rule u <- 0.999 u + 0.001 x gives when applied n_c times
  to examples near x̄_c, so the drift per epoch does not depend on batch size;
* S_w = mean_b ||x_b - u_{c_b}||, S_b = mean over pairs c != c' of
  ||u_c - u_c'||. S_w's gradient reaches the backbone through x. The paper
  minimises S_w / S_b to *maximise the margins* between clusters, but the
  centroids are not parameters, so S_b on the centroids before the step has no
  gradient at all. Our reading: in training, S_b is taken on the centroids
  *after* this step's momentum update, u_c + (1 - a)(x̄_c - u_c), which depend
  on the batch means x̄_c; its gradient then pushes each cluster's examples
  away from the other clusters (scaled by 1 - a, about n_c / 1000). The stored
  centroids are the same update without gradient. In evaluation S_b is taken
  on the stored centroids. (With a frozen backbone nothing upstream of x
  learns, so the whole S_w / S_b term has no gradient either way.)

Centroid updates (ours, ``centroid_update``): with 'assigned' (the default) the
momentum update, S_w and the idle counts follow the assignment the branch uses, sampled
in training. Sampled assignments spread every cluster over the whole batch, so each
centroid drifts towards the global feature mean and p(c|x) flattens further. With
'nearest' they follow the nearest centroid (the paper's section 3.2.1 assigns a sample to
its nearest cluster) while the branch is still sampled from p(c|x): the centroids stay
where the data are, and the sampling keeps its robustness.

Dead clusters: ``idle_steps`` counts the training steps since a cluster last
received an example. Once it exceeds ``reseed_after`` the cluster (the
longest-idle one, one per step) is moved onto the batch example that lies
farthest from its assigned centroid, taken over all devices. That example is
the worst-served point, so the re-seeded cluster starts where it is needed.
"""

from typing import Any, Callable, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from clustercnn_jax.random_keys import example_keys, shard_offset

CLUSTERS = "clusters"
CENTROID_UPDATES = ("assigned", "nearest")


def squared_distances(x: jnp.ndarray, centroids: jnp.ndarray) -> jnp.ndarray:
  """(B, D), (k, D) -> (B, k), exact (no ||x||^2 - 2xu + ||u||^2 cancellation)."""
  return jnp.sum(jnp.square(x[:, None, :] - centroids[None]), axis=-1)


def assignment_logits(d2: jnp.ndarray, eps: float) -> jnp.ndarray:
  """Logits whose softmax is p(c|x) = d_c^-2 / sum_c' d_c'^-2."""
  return -jnp.log(d2 + eps)


def between_cluster_distance(centroids: jnp.ndarray, eps: float) -> jnp.ndarray:
  """S_b: mean Euclidean distance over ordered pairs of distinct centroids."""
  k = centroids.shape[0]
  if k < 2:
    return jnp.ones((), centroids.dtype)  # S_w / S_b degenerates to S_w.
  d = jnp.sqrt(squared_distances(centroids, centroids) + eps)
  off_diagonal = 1.0 - jnp.eye(k, dtype=d.dtype)
  return jnp.sum(d * off_diagonal) / (k * (k - 1))


class ClusterModule(nn.Module):
  """Maps backbone features x (B, D) to branch outputs v (B, F) plus statistics."""

  num_clusters: int
  features: int
  momentum: float = 0.999
  sample_in_train: bool = True
  reseed_after: int = 1000
  centroid_update: str = "assigned"  # 'assigned' | 'nearest' (ours; see the module docstring)
  eps: float = 1e-6
  activation: Callable[[jnp.ndarray], jnp.ndarray] = nn.relu
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> Tuple[jnp.ndarray, Dict[str, Any]]:
    x = x.astype(jnp.float32)
    batch, dim = x.shape
    k = self.num_clusters
    centroids = self.variable(CLUSTERS, "centroids", jnp.zeros, (k, dim), jnp.float32)
    idle_steps = self.variable(CLUSTERS, "idle_steps", jnp.zeros, (k,), jnp.int32)
    kernel = self.param("kernel", nn.initializers.lecun_normal(batch_axis=(0,)),
                        (k, dim, self.features))
    bias = self.param("bias", nn.initializers.zeros, (k, self.features))

    u = centroids.value
    diff = x[:, None, :] - u[None]  # (B, k, D): x - u_c for every cluster.
    d2 = jnp.sum(jnp.square(diff), axis=-1)
    logits = assignment_logits(d2, self.eps)
    probs = jax.nn.softmax(logits, axis=-1)

    if self.centroid_update not in CENTROID_UPDATES:
      raise ValueError(f"model.cluster.centroid_update={self.centroid_update!r}: use one of "
                       f"{list(CENTROID_UPDATES)}.")
    nearest = jnp.argmin(d2, axis=-1)
    assign = self._sample(logits) if train and self.sample_in_train else nearest
    onehot = jax.nn.one_hot(assign, k, dtype=x.dtype)  # (B, k)
    masked = onehot[:, :, None] * diff  # only the assigned cluster's row survives
    v = self.activation(jnp.einsum("bkd,kdf->bf", masked, kernel) + onehot @ bias)

    # What moves the centroids and measures S_w: the branch's assignment or the nearest.
    if self.centroid_update == "nearest":
      onehot = jax.nn.one_hot(nearest, k, dtype=x.dtype)
    dist_assigned = jnp.sqrt(jnp.sum(onehot * d2, axis=-1) + self.eps)  # (B,)
    s_w = jnp.mean(dist_assigned)
    counts = jnp.sum(onehot, axis=0)
    if self.axis_name is not None and train:
      counts_global = jax.lax.psum(counts, self.axis_name)
    else:
      counts_global = counts

    if train:
      # S_b on this step's updated centroids: differentiable through the batch means.
      sums = onehot.T @ x  # (k, D)
      if self.axis_name is not None:
        sums = jax.lax.psum(sums, self.axis_name)
      s_b = between_cluster_distance(momentum_update(u, sums, counts_global, self.momentum),
                                     self.eps)
    else:
      s_b = between_cluster_distance(u, self.eps)

    if train and self.is_mutable_collection(CLUSTERS) and not self.is_initializing():
      new_u = momentum_update(u, jax.lax.stop_gradient(sums), counts_global, self.momentum)
      idle = jnp.where(counts_global > 0, 0, idle_steps.value + 1)
      new_u, idle = self._reseed(new_u, idle, jax.lax.stop_gradient(x),
                                 jax.lax.stop_gradient(dist_assigned))
      centroids.value = new_u
      idle_steps.value = idle

    aux = {
        "assign": assign,
        "probs": probs,
        "s_w": s_w,
        "s_b": s_b,
        "occupancy": counts_global / jnp.maximum(jnp.sum(counts_global), 1.0),
    }
    return v, aux

  def _sample(self, logits: jnp.ndarray) -> jnp.ndarray:
    """Draws c ~ p(c|x) with a key per *global* example index.

    Keying by the global index makes the draw independent of how the batch is
    split over devices, so 1 and 8 devices train identically.
    """
    batch = logits.shape[0]
    keys = example_keys(self.make_rng("cluster"), batch, shard_offset(self.axis_name, batch))
    return jax.vmap(jax.random.categorical)(keys, logits)

  def _reseed(self, u: jnp.ndarray, idle: jnp.ndarray, x: jnp.ndarray,
              dist: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    j = jnp.argmax(dist)
    candidate, candidate_dist = x[j], dist[j]
    if self.axis_name is not None:
      all_dist = jax.lax.all_gather(candidate_dist, self.axis_name)
      candidate = jax.lax.all_gather(candidate, self.axis_name)[jnp.argmax(all_dist)]
    worst = jnp.argmax(idle)
    dead = (jnp.arange(u.shape[0]) == worst) & (idle > self.reseed_after)
    u = jnp.where(dead[:, None], candidate[None], u)
    idle = jnp.where(dead, 0, idle)
    return u, idle


def momentum_update(u: jnp.ndarray, sums: jnp.ndarray, counts: jnp.ndarray,
                    momentum: float) -> jnp.ndarray:
  """u_c <- a u_c + (1 - a) mean_c with a = momentum ** n_c (unchanged if n_c = 0)."""
  mean = sums / jnp.maximum(counts, 1.0)[:, None]
  # 1 - a via expm1, with log(momentum) taken in float64: in float32,
  # 1 - 0.999**n loses ~3 digits to cancellation and 0.999 itself is off by 1e-8.
  step = -jnp.expm1(counts * np.log(momentum))[:, None]
  return u + step * (mean - u)
