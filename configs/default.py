"""Defaults shared by every config: the paper's training recipe (section 4).

Every field is overridable on the command line, e.g. ``--config.model.num_clusters=3``.
Each factor of the paper's Table 2 is one field:

  pretrained          '' (random init) or ImageNet weights: a .pth path or a package name
  optimizer           'adam' | 'sgd'
  loss.ce_weight      λ; 0 turns the classification loss off (L1 only)
  normalize_faces     eye-based face normalisation on/off (dataset builders)
  model.use_cluster   cluster module on/off
  model.num_clusters  k
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Data.
  config.dataset = "synthetic"
  config.image_size = 128
  config.max_age = 100  # softmax over integer ages 0..max_age
  config.normalize_faces = True
  # Face normalisation (paper section 3.1): a square of side alpha * l around the eyes
  # (l: inter-eye distance), eyes at eye_height of the crop's height. alpha = 2.5 spans
  # brow to chin; eyes at 0.4 leave room for mouth and chin. no_face: 'centre' (centre
  # crop) or 'skip' for images where no face or eyes are found.
  config.face = ml_collections.ConfigDict(dict(alpha=2.5, eye_height=0.4, no_face="centre"))
  config.input_pipeline = "grain"  # 'grain' (state saved in checkpoints) or 'numpy'
  config.grain_workers = 0  # > 0: decode/batch in that many worker processes
  config.flip = True
  config.scale_jitter = 0.1  # ε: the crop side varies by ±10% in training (on the device)
  config.colour_jitter = 0.5  # 0: none; 1: brightness ±0.2, contrast ±30%
  config.mean = (0.485, 0.456, 0.406)  # ImageNet statistics (RGB, in [0, 1])
  config.std = (0.229, 0.224, 0.225)
  config.synthetic = ml_collections.ConfigDict(
      dict(num_train=8000, num_test=2000, seed=0, max_age=80))
  # Real datasets (TFDS builders, built once from files the user downloaded):
  # data_dir holds the built datasets, manual_dir the downloaded files.
  config.data = ml_collections.ConfigDict(dict(data_dir="~/tensorflow_datasets", manual_dir=""))
  # dataset='fgnet': leave-one-person-out fold; the person (1..82) held out for testing.
  config.fgnet = ml_collections.ConfigDict(dict(test_person=1))
  # dataset='morph2': a random 80/20 split by image (the paper), or by person.
  config.morph = ml_collections.ConfigDict(dict(split_seed=0, subject_exclusive=False))
  # dataset='utkface' (TFDS builder, from data.manual_dir) or 'utkface_folder' (the
  # extracted UTKFace/ folder in utkface.data_dir, resized, cached in cache_dir): a seeded
  # 80/20 split of what is there; max_examples > 0 takes a seeded subset first.
  config.utkface = ml_collections.ConfigDict(
      dict(data_dir="", cache_dir="", split_seed=0, test_fraction=0.2, max_examples=0))

  # Model.
  config.model = ml_collections.ConfigDict()
  config.model.backbone = "googlenet"
  config.model.backbone_kwargs = ml_collections.ConfigDict()
  config.model.use_cluster = True
  config.model.num_clusters = 5
  config.model.cluster_features = 512
  config.model.momentum = 0.999
  config.model.sample_in_train = True  # False: nearest centroid in training too (ablation)
  config.model.reseed_after = 1000  # steps without an example before a cluster is re-seeded
  config.model.dropout_rate = 0.2
  config.model.sync_batch_norm = True
  config.model.freeze_backbone = False  # True: train only the cluster module and head
  # With freeze_backbone: run the backbone once per image (no augmentation) and train on
  # its cached features (feature_cache_dir), minutes instead of hours on a CPU.
  config.model.cached_features = False
  config.feature_cache_dir = "~/.cache/clustercnn_jax/features"
  # ImageNet weights for the backbone: a .pth path or a package carrying one ('' = random
  # init). See clustercnn_jax/pretrained/__init__.py; the checkpoint's input normalisation
  # then replaces mean/std below.
  config.pretrained = ""
  config.half_precision = False  # bfloat16 compute in the backbone

  # Cluster initialisation: k-means++ on backbone features of training images.
  config.kmeans_examples = 5000
  config.kmeans_iterations = 10

  # Loss: λ·CE + (1 − λ)·L1 + γ·S_w/S_b.
  config.loss = ml_collections.ConfigDict(dict(ce_weight=0.5, sw_sb_weight=0.1))

  # Optimisation.
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.lr_schedule = "constant"  # 'constant' | 'cosine'
  config.warmup_steps = 0
  config.sgd_momentum = 0.9
  config.weight_decay = 0.0
  config.batch_size = 128  # global, split evenly over local devices
  config.num_epochs = 5.0
  config.num_train_steps = -1  # > 0 overrides num_epochs

  # Bookkeeping.
  config.log_every_steps = 50
  config.eval_every_steps = 0  # 0: evaluate at the end only
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 3
  return config


def use_cached_features(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A frozen backbone run once per face: only the cluster module and head train (CPU budget).

  Features come from the evaluation crop, so the augmentations are off.
  """
  config.model.freeze_backbone = True
  config.model.cached_features = True
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  config.input_pipeline = "numpy"  # features are tiny; nothing for grain to overlap
  config.learning_rate = 1e-3  # only the cluster module and head learn
  config.log_every_steps = 200
  return config
