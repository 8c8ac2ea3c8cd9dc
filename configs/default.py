"""Defaults shared by every config: the paper's training recipe (section 4).

Every field is overridable on the command line, e.g. ``--config.model.cluster.num_clusters=3``.
Each factor of the paper's Table 2 is one field:

  pretrained                   '' (random init) or ImageNet weights: a .pth path or a package name
  optimizer                    'adam' | 'sgd'
  loss.ce_weight               λ; 0 turns the classification loss off (L1 only)
  face.normalize               eye-based face normalisation on/off (dataset builders)
  model.cluster.enabled        cluster module on/off
  model.cluster.num_clusters   k
"""

from typing import Any, Optional

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Data: one shape for every dataset (clustercnn_jax/data/__init__.py reads it).
  config.data = ml_collections.ConfigDict(dict(
      name="synthetic",  # synthetic | fgnet | morph2 | utkface | face_age_folder
      # Real datasets are TFDS builders, built once from files the user downloaded:
      # manual_dir holds the downloaded files, data_dir the built datasets.
      manual_dir="", data_dir="~/tensorflow_datasets",
      # kind: 'given' (the dataset's own train/test: synthetic), 'random' (a seeded split
      # of test_fraction, by image or, with by_person, by person: MORPH II, UTKFace) or
      # 'person' (test_person held out: one fold of FG-NET's leave one person out).
      split=dict(kind="given", seed=0, test_fraction=0.2, by_person=False, test_person=1),
      max_examples=0,  # > 0: a seeded subset of that many before a random split
      # mode_ageing 'opposed': two of the four appearance modes age backwards, a task
      # for the cluster module against its ablation (data/synthetic.py).
      synthetic=dict(num_train=8000, num_test=2000, seed=0, max_age=80, mode_ageing="shared"),
  ))
  config.image_size = 128
  config.max_age = 100  # softmax over integer ages 0..max_age
  # Face normalisation (paper section 3.1), done by the dataset builders: a square of side
  # alpha * l around the eyes (l: inter-eye distance), eyes at eye_height of the crop's
  # height. alpha = 2.5 spans brow to chin; eyes at 0.4 leave room for mouth and chin.
  # no_face: 'centre' (centre crop) or 'skip' for images where no face or eyes are found.
  # normalize=False: the whole image, resized.
  config.face = ml_collections.ConfigDict(dict(normalize=True, alpha=2.5, eye_height=0.4,
                                               no_face="centre"))
  config.grain_workers = 0  # > 0: batch in that many worker processes
  config.flip = True
  # ε: the crop side varies by ±10% in training (on the device). Part of face
  # normalisation: with face.normalize=False the whole image is used and ε is off.
  config.scale_jitter = 0.1
  config.colour_jitter = 0.5  # 0: none; 1: brightness ±0.2, contrast ±30%
  config.mean = (0.485, 0.456, 0.406)  # ImageNet statistics (RGB, in [0, 1])
  config.std = (0.229, 0.224, 0.225)

  # Model: the backbone and its training (cut, taps), then the cluster module.
  config.model = ml_collections.ConfigDict()
  config.model.backbone = "googlenet"
  config.model.backbone_kwargs = ml_collections.ConfigDict()
  config.model.dropout_rate = 0.2
  config.model.half_precision = False  # bfloat16 compute in the backbone
  config.model.freeze_backbone = False  # True: train only the cluster module and head
  # Partial fine-tuning: a backbone block (e.g. '_blocks_11' of EfficientNet-Lite0, whose
  # MBConv blocks are _blocks_0.._blocks_15, Lite1/2's .._blocks_20; the blocks are listed
  # by an unknown name's error) from which on the backbone trains; the
  # blocks before it are frozen. '' = the whole backbone trains (or none: freeze_backbone).
  config.model.train_from = ""
  # Ours, not the paper's (''): comma-separated backbone blocks ('_blocks_7,_blocks_10'),
  # or 'stages' for the backbone's stage outputs, whose output, averaged over space, is
  # appended to the features x. Mid-level blocks see skin texture that the last,
  # object-tuned layer pools away.
  config.model.feature_taps = ""
  # The cluster module: its fields are those of cluster.ClusterModule (built from this
  # sub-dict), plus whether it is on and how its centroids start.
  config.model.cluster = ml_collections.ConfigDict(dict(
      enabled=True,  # False: one Dense+ReLU layer of the same width (the ablation)
      num_clusters=5,  # k
      features=512,  # the width of each branch's output v
      momentum=0.999,
      sample_in_train=True,  # False: nearest centroid in training too (ablation)
      reseed_after=1000,  # steps without an example before a cluster is re-seeded
      # Ours: what moves the centroids, 'assigned' (the branch's, sampled in training) or
      # 'nearest' (the branch still sampled); cluster.py says why.
      centroid_update="assigned",
      kmeans_examples=5000,  # k-means++ initialisation on this many training features
  ))
  # ImageNet weights for the backbone: a .pth path or a package carrying one ('' = random
  # init). See clustercnn_jax/pretrained/__init__.py; the checkpoint's input normalisation
  # then replaces mean/std above.
  config.pretrained = ""
  # A trained workdir to fine-tune from (its backbone, cluster module and head; the
  # optimiser starts afresh): e.g. UTKFace pretraining for FG-NET. '' = ImageNet/random.
  config.init_from = ""

  # With freeze_backbone or train_from: run the frozen blocks once per image and view
  # (the evaluation crop, plus its mirror with flip, plus two zooms with scale_jitter) and
  # train on their cached outputs: minutes instead of hours on a CPU.
  config.cache = ml_collections.ConfigDict(dict(
      enabled=False,
      dir="~/.cache/clustercnn_jax/features",
      dtype="float32",  # 'float16' halves memory and disk; predictions move by ~1e-3 years
  ))

  # Loss: λ·CE + (1 − λ)·L1 + γ·S_w/S_b. The paper gives neither λ nor γ: 0.5 and 0.1
  # are our choices, not the paper's. label_sigma > 0 (ours): the CE's target is a Gaussian
  # of that many years around the true age instead of its one-hot class (0: the paper's).
  config.loss = ml_collections.ConfigDict(dict(ce_weight=0.5, sw_sb_weight=0.1,
                                               label_sigma=0.0))

  # Optimisation.
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.lr_schedule = "constant"  # 'constant' | 'cosine'
  config.warmup_steps = 0
  config.batch_size = 128  # global, split evenly over local devices
  config.num_epochs = 5.0
  config.num_train_steps = -1  # > 0 overrides num_epochs

  # Bookkeeping.
  config.log_every_steps = 50
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 3
  # > 0: after the last step, each trained BatchNorm's running statistics become the mean
  # of its batch statistics on this many training batches under the final weights
  # ("precise BN"; running averages lag weights that move fast). 0: the running averages.
  config.bn_recalibration_batches = 0

  # Evaluation.
  config.eval = ml_collections.ConfigDict(dict(
      every_steps=0,  # 0: evaluate at the end only
      # Ours, not the paper's: the predicted age is the mean of the expected ages of the
      # face and its mirror image (test-time augmentation; the cluster is the face's).
      flip=False,
      # Ours: the crop zoomed in by 1 - ε (face normalisation's scale noise) joins the
      # mean; a feature cache already holds it.
      zoom=False,
  ))
  return config


# torchvision's ImageNet GoogLeNet, which the paper's configs start from (Table 2 reports
# pretrained networks). It is a download (https://download.pytorch.org/models/
# googlenet-1378be20.pth), so users put it here once or pass --config.pretrained=PATH;
# --config.pretrained='' trains from random weights.
GOOGLENET_WEIGHTS = "~/.cache/clustercnn_jax/weights/googlenet-1378be20.pth"


def parse_arg(arg: Optional[str], **defaults: Any) -> ml_collections.ConfigDict:
  """``'frozen,runlocal'`` or ``'k=3'`` -> the config variant's switches, as in big_vision.

  ``--config=configs/fgnet.py:frozen`` passes 'frozen' to ``get_config``. Each
  known name is a switch (True when given); ``name=value`` sets a value of the
  default's type. Unknown names are an error that lists the known ones.
  """
  out = ml_collections.ConfigDict(defaults)
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    name, has_value, value = token.partition("=")
    if name not in defaults:
      raise ValueError(f"Unknown config argument {name!r}; this config takes "
                       f"{sorted(defaults)} (e.g. configs/fgnet.py:frozen).")
    kind = type(defaults[name])
    if not has_value:
      out[name] = True
    elif kind is bool:
      out[name] = value.lower() in ("1", "true", "yes")
    else:
      out[name] = kind(value)
  return out


def runlocal(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The ``:runlocal`` variant: a model and run small enough for unit tests (seconds)."""
  config.image_size = 32
  config.data.synthetic.num_train = 256
  config.data.synthetic.num_test = 64
  config.model.cluster.features = 16
  config.model.cluster.num_clusters = 3
  config.model.cluster.kmeans_examples = 64
  config.batch_size = 32
  config.num_train_steps = 6
  config.warmup_steps = 2
  config.log_every_steps = 1
  config.checkpoint_every_steps = 1000
  return config


def use_cached_features(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A frozen backbone run once per face: only the cluster module and head train (CPU budget).

  Features come from the evaluation crop, so the augmentations are off.
  """
  config.model.freeze_backbone = True
  config.cache.enabled = True
  config.flip, config.scale_jitter, config.colour_jitter = False, 0.0, 0.0
  config.learning_rate = 1e-3  # only the cluster module and head learn
  config.log_every_steps = 200
  return config


def use_feature_taps(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The ``taps`` variant (ours): the spatial means of the backbone's stage outputs join
  its features. 'stages' is resolved when the model is built, from the backbone and
  ``train_from`` then in the config, so ``--config.model.backbone`` picks that backbone's
  stages (models/model.py: feature_taps)."""
  config.model.feature_taps = "stages"
  return config


def use_cached_activations(config: ml_collections.ConfigDict,
                           train_from: str) -> ml_collections.ConfigDict:
  """Partial fine-tuning on a CPU budget: the blocks before ``train_from`` run once per face
  and view (the crop, its mirror, two zooms); the blocks from it on, the cluster module
  and the head train on their cached output."""
  config.model.train_from = train_from
  config.cache.enabled = True
  config.flip, config.colour_jitter = True, 0.0
  config.eval.flip = True  # our extension: the mirror is cached anyway
  config.eval.zoom = True  # and so is the zoom
  config.bn_recalibration_batches = 50  # the trained blocks' BatchNorm (train.py says why)
  config.learning_rate = 1e-3
  config.log_every_steps = 200
  return config
