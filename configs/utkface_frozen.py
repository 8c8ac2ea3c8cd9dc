"""UTKFace on a CPU budget: frozen ImageNet EfficientNet-Lite0, cached features.

Faces are re-normalised around the eyes found by the detector (the TFDS builder,
``dataset='utkface'``); the backbone runs once per face and only the cluster
module and the age head train. Compare with ``--config.model.use_cluster=False``:

  python -m clustercnn_jax.main --config=configs/utkface_frozen.py --workdir=DIR \\
      --config.data.manual_dir=/dir/with/UTKFace
"""

from configs import utkface


def get_config():
  config = utkface.get_config()
  config.dataset = "utkface"
  config.image_size = 112
  config.model.freeze_backbone = True
  config.model.cached_features = True
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  config.input_pipeline = "numpy"  # features are tiny; nothing for grain to overlap
  config.learning_rate = 1e-3  # only the cluster module and head learn
  config.batch_size = 128
  config.num_epochs = 10.0
  config.log_every_steps = 200
  config.checkpoint_every_steps = 1000
  return config
