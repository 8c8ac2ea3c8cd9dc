"""UTKFace on a CPU budget: frozen ImageNet EfficientNet-Lite0, cached features.

Faces are re-normalised around the eyes found by the detector (the TFDS builder,
``dataset='utkface'``); the backbone runs once per face and only the cluster
module and the age head train. Compare with ``--config.model.use_cluster=False``:

  python -m clustercnn_jax.main --config=configs/utkface_frozen.py --workdir=DIR \\
      --config.data.manual_dir=/dir/with/UTKFace
"""

from configs import default, utkface


def get_config():
  config = utkface.get_config()
  config.dataset = "utkface"
  config.image_size = 112
  default.use_cached_features(config)
  config.batch_size = 128
  config.num_epochs = 10.0
  config.checkpoint_every_steps = 1000
  return config
