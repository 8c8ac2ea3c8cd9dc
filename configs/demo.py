"""The embedded default: synthetic faces, a small CNN, a few minutes on 2 CPU cores.

Nothing is downloaded. Compared with the paper's recipe it uses a small CNN
trained from scratch, 48 px images and a higher learning rate (no pretrained
weights to protect), so that it learns in minutes.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = "synthetic"
  config.image_size = 48
  config.max_age = 80
  config.synthetic.num_train = 6000
  config.synthetic.num_test = 1000
  config.scale_jitter = 0.0  # synthetic faces already vary in scale and are stored tight
  config.colour_jitter = 0.0
  config.model.backbone = "small_cnn"
  config.model.backbone_kwargs.widths = (16, 32, 64, 128)
  config.model.cluster_features = 128
  config.model.dropout_rate = 0.0
  config.model.reseed_after = 200
  config.kmeans_examples = 1024
  config.learning_rate = 2e-3
  config.lr_schedule = "cosine"
  config.warmup_steps = 50
  config.batch_size = 128
  config.num_epochs = 8.0
  config.log_every_steps = 25
  config.checkpoint_every_steps = 200
  return config
