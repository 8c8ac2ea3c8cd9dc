"""MORPH II, the paper's setting: GoogLeNet on 128x128 normalised faces, k = 5.

Built from your copy of album 2 (--config.data.manual_dir); one run is the 80/20
split of ``data.split.seed``; protocols/random_splits.py runs the paper's five.
``--config.data.split.by_person=True`` makes the split subject-exclusive. The
paper's numbers start from ImageNet weights: put torchvision's googlenet-1378be20.pth
in ~/.cache/clustercnn_jax/weights/ or pass --config.pretrained=PATH
(--config.pretrained='' trains from random weights).
"""

from configs import default


VARIANTS = dict()  # none: the split seed and the rest are --config.* overrides


def get_config(arg=None):
  default.parse_arg(arg, **VARIANTS)
  config = default.get_config()
  config.data.name = "morph2"
  config.data.split.kind = "random"
  config.data.split.test_fraction = 0.2
  config.image_size = 128
  config.max_age = 100
  config.model.backbone = "googlenet"
  config.pretrained = default.GOOGLENET_WEIGHTS  # ImageNet, as in the paper
  config.model.cluster.num_clusters = 5
  config.model.cluster.momentum = 0.999
  config.model.cluster.kmeans_examples = 5000
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.batch_size = 128
  config.num_epochs = 5.0
  return config
