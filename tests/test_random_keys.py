"""Per-example keys: fold_in(rng, global index), however the batch is split."""

import jax
import jax.numpy as jnp
import numpy as np

from clustercnn_jax.random_keys import example_keys, shard_offset


def key_bits(keys):
  return np.asarray(jax.random.key_data(keys))


def test_example_keys_are_fold_in_of_the_global_index():
  rng = jax.random.PRNGKey(7)
  reference = np.stack([key_bits(jax.random.fold_in(rng, 5 + i)) for i in range(4)])
  np.testing.assert_array_equal(key_bits(example_keys(rng, 4, 5)), reference)
  np.testing.assert_array_equal(key_bits(jax.jit(example_keys, static_argnums=1)(
      rng, 4, jnp.int32(5))), reference)
  # The second half of a batch of 8, alone with its offset, gets the keys it had in the batch.
  np.testing.assert_array_equal(key_bits(example_keys(rng, 8)[4:]),
                                key_bits(example_keys(rng, 4, 4)))


def test_shard_offset_is_the_device_index_times_the_shard():
  assert shard_offset(None, 16) == 0
  n = jax.local_device_count()
  offsets = jax.pmap(lambda x: shard_offset("d", 16) + 0 * x, axis_name="d")(jnp.zeros(n))
  np.testing.assert_array_equal(np.asarray(offsets), 16 * np.arange(n))
