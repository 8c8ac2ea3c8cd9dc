"""The embedded default: synthetic faces, a small CNN, a few minutes on 2 CPU cores.

Nothing is downloaded. Compared with the paper's recipe it uses a small CNN
trained from scratch, 48 px images and a higher learning rate (no pretrained
weights to protect), so that it learns in minutes.

  configs/demo.py            the demo
  configs/demo.py:opposed    faces of two of the four modes age backwards: the cluster
                             study's task, trained end to end
                             (python -m clustercnn_jax.protocols.ablation)
  configs/demo.py:opposed,frozen  as :opposed, but the small CNN stays at its random
                             initialisation and its first stage's pooled output joins the
                             features: features that keep the appearance modes apart, as
                             a pretrained backbone's do, so that only the cluster module
                             (or its ablation) and the head learn
  configs/demo.py:runlocal   a tiny model and run for unit tests (seconds)
"""

from configs import default


VARIANTS = dict(frozen=False, opposed=False, runlocal=False)  # what ``configs/demo.py:VARIANT`` may name


def get_config(arg=None):
  arg = default.parse_arg(arg, **VARIANTS)
  config = default.get_config()
  config.data.name = "synthetic"
  config.data.split.kind = "given"
  config.data.synthetic.num_train = 6000
  config.data.synthetic.num_test = 1000
  config.image_size = 48
  config.max_age = 80
  config.scale_jitter = 0.0  # synthetic faces already vary in scale and are stored tight
  config.colour_jitter = 0.0
  config.model.backbone = "small_cnn"
  config.model.backbone_kwargs.widths = (16, 32, 64, 128)
  config.model.cluster.features = 128
  config.model.dropout_rate = 0.0
  config.model.cluster.reseed_after = 200
  config.model.cluster.kmeans_examples = 1024
  config.learning_rate = 2e-3
  config.lr_schedule = "cosine"
  config.warmup_steps = 50
  config.batch_size = 128
  config.num_epochs = 8.0
  config.log_every_steps = 25
  config.checkpoint_every_steps = 200
  if arg.opposed:
    # Smaller and shorter than the demo, so that three seeds a side take minutes; one
    # cluster per generating mode.
    config.data.synthetic.mode_ageing = "opposed"
    config.data.synthetic.num_train = 4000
    config.image_size = 32
    config.model.backbone_kwargs.widths = (16, 32, 64)
    config.model.cluster.features = 64
    config.model.cluster.num_clusters = 4
    config.num_epochs = 6.0
  if arg.frozen:
    # No backbone learning can undo the modes for the shared layer here, nor fold them
    # together for the clusters. Steps on fixed features are cheap, so train longer.
    config.model.freeze_backbone = True
    config.model.feature_taps = "stage0"
    config.num_epochs = 40.0
  if arg.runlocal:
    default.runlocal(config)
    config.model.backbone_kwargs.widths = (8, 16)
  return config
