"""The embedded default learns: a shortened demo run beats the mean predictor by far."""

import pytest

from clustercnn_jax import train


@pytest.mark.slow
def test_demo_learns(tmp_path):
  from configs import demo

  config = demo.get_config()
  config.num_epochs = 3.0  # the full demo runs 8
  results = train.train_and_evaluate(config, str(tmp_path))
  print(results)
  assert results["test_mae"] < 0.5 * results["mean_baseline_mae"]
  assert min(results["cluster_counts"]) > 0  # no cluster left empty on the test set
