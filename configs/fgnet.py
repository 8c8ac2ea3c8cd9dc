"""FG-NET, the paper's setting: half-depth GoogLeNet on 72x72 faces, k = 5.

The protocol is leave one person out (82 folds):
  python -m clustercnn_jax.protocols.fgnet_lopo --config=configs/fgnet.py --workdir=DIR \\
      --config.data.manual_dir=/dir/with/FGNET
A single run trains the fold of ``fgnet.test_person``.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = "fgnet"
  config.image_size = 72
  config.max_age = 70
  config.model.backbone = "googlenet"
  config.model.backbone_kwargs.depth = 0.5
  config.model.num_clusters = 5
  config.model.momentum = 0.999
  config.kmeans_examples = 5000  # capped at the training-set size (about 990 per fold)
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.batch_size = 128
  config.num_epochs = 5.0
  return config
