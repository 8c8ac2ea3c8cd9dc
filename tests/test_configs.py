"""Configs as data: variants are arguments of one file, and bad choices fail before any work."""

import pytest

from clustercnn_jax import config_checks, train
from configs import default, demo, fgnet, morph, utkface


def test_parse_arg_switches_values_and_unknown_names():
  arg = default.parse_arg("frozen, k=3", frozen=False, runlocal=False, k=5)
  assert arg.frozen and not arg.runlocal and arg.k == 3
  assert default.parse_arg(None, frozen=False).frozen is False
  with pytest.raises(ValueError, match="Unknown config argument 'frozn'.*frozen"):
    default.parse_arg("frozn", frozen=False)


@pytest.mark.parametrize("module,arg", [(demo, None), (demo, "runlocal"), (demo, "opposed"),
                                        (demo, "opposed,frozen"), (fgnet, None),
                                        (fgnet, "frozen"), (fgnet, "partial"), (fgnet, "runlocal"),
                                        (morph, None), (utkface, None), (utkface, "frozen"),
                                        (utkface, "partial"), (fgnet, "frozen,taps"),
                                        (utkface, "frozen,taps")])
def test_every_config_and_variant_is_valid(module, arg):
  config_checks.validate(module.get_config(arg), need_weights=False)


def test_variants_do_not_inherit_what_they_do_not_use():
  frozen = fgnet.get_config("frozen")
  assert frozen.model.backbone == "efficientnet_lite0"
  assert frozen.model.backbone_kwargs.to_dict() == {}  # no GoogLeNet depth to undo
  assert frozen.cache.enabled and frozen.model.freeze_backbone
  assert fgnet.get_config().model.backbone_kwargs.depth == 0.5
  assert fgnet.get_config().data.split.kind == "person"
  # The paper does not normalise FG-NET; our CPU-budget variant crops around the eyes.
  assert not fgnet.get_config().face.normalize and frozen.face.normalize


@pytest.mark.parametrize("field,value,match", [
    ("optimizer", "adamw", "optimizer='adamw'"),
    ("lr_schedule", "linear", "lr_schedule"),
    ("model.backbone", "resnet", "model.backbone"),
    ("data.name", "imdb", "data.name"),
    ("data.split.kind", "fold", "data.split.kind"),
    ("face.no_face", "drop", "face.no_face"),
    ("model.train_from", "stage9", "Unknown block 'stage9'.*'stage0', 'stage1', 'pool'"),
    ("cache.dtype", "int8", "cache.dtype"),
    ("model.feature_taps", "stage0,stage9", "Unknown block 'stage9'"),
    ("model.feature_taps", "pool", "last block.*'stage0', 'stage1'"),
])
def test_bad_choices_fail_before_any_work(tiny_config, tmp_path, field, value, match):
  node = tiny_config
  *path, leaf = field.split(".")
  for p in path:
    node = node[p]
  node[leaf] = value
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(tiny_config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_eval_flip_on_cached_features_needs_the_cached_mirror():
  config = utkface.get_config("frozen")  # the frozen-feature cache holds the crop only
  config.eval.flip = True
  with pytest.raises(ValueError, match="flip=True"):
    config_checks.validate(config, need_weights=False)
  config = utkface.get_config("partial")
  config.eval.flip = True
  config_checks.validate(config, need_weights=False)


def test_eval_zoom_needs_the_scale_noise_it_averages_over():
  config = utkface.get_config("partial")
  assert config.eval.zoom  # the partial variants' cache holds the zooms
  config_checks.validate(config, need_weights=False)
  config.scale_jitter = 0.0
  with pytest.raises(ValueError, match="scale_jitter > 0"):
    config_checks.validate(config, need_weights=False)


def test_split_kind_must_fit_the_dataset(tiny_config):
  tiny_config.data.split.kind = "random"
  with pytest.raises(ValueError, match="kind=given"):
    config_checks.validate(tiny_config)
  config = utkface.get_config()
  config.data.split.kind = "given"
  with pytest.raises(ValueError, match="kind=random"):
    config_checks.validate(config)


def test_paper_configs_ask_for_imagenet_googlenet_and_say_where_it_comes_from(tmp_path):
  for config in (morph.get_config(), fgnet.get_config()):
    assert config.model.backbone == "googlenet" and config.pretrained
    config.pretrained = str(tmp_path / "googlenet-1378be20.pth")
    with pytest.raises(FileNotFoundError) as e:
      train.train_and_evaluate(config, str(tmp_path / "w"))
    assert "download.pytorch.org/models/googlenet-1378be20.pth" in str(e.value)
    assert "--config.pretrained=''" in str(e.value)  # how to train from scratch instead


def test_taps_variants_tap_the_stages_of_the_backbone_in_the_config():
  """'stages' is resolved from the final config: a backbone override taps its own stages,
  and above a cut only those at or above the cached input remain."""
  from clustercnn_jax.models import model as model_lib

  config = fgnet.get_config("frozen,taps")
  assert model_lib.feature_taps(config) == ("_blocks_4", "_blocks_7", "_blocks_10",
                                            "_blocks_14")
  config.model.backbone = "efficientnet_lite2"
  assert model_lib.feature_taps(config) == ("_blocks_6", "_blocks_10", "_blocks_14",
                                            "_blocks_19")
  assert model_lib.build_model(config).feature_taps == "_blocks_6,_blocks_10,_blocks_14,_blocks_19"
  config.model.backbone = "efficientnet_lite1"  # deeper than Lite0 as Lite2 is, not wider
  assert model_lib.feature_taps(config)[-1] == "_blocks_19"
  partial = utkface.get_config("partial,taps")  # cut at _blocks_8: its input is _blocks_7's
  assert model_lib.feature_taps(partial) == ("_blocks_7", "_blocks_10", "_blocks_14")
  config.model.backbone = "small_cnn"
  with pytest.raises(ValueError, match="feature_taps=BLOCK,BLOCK"):
    model_lib.feature_taps(config)


def test_feature_taps_with_partial_fine_tuning_start_at_the_cached_input(tiny_config):
  """Above a cut the taps are computed in training: the block just before train_from
  (whose output is cached) is the lowest one."""
  tiny_config.model.train_from = "pool"
  tiny_config.model.feature_taps = "stage0"
  with pytest.raises(ValueError, match="'stage0' lies below the cached input.*tap 'stage1'"):
    config_checks.validate(tiny_config, need_weights=False)
  tiny_config.model.train_from = "stage1"
  config_checks.validate(tiny_config, need_weights=False)
  config = utkface.get_config("partial,taps")  # cut at _blocks_8: the stages from 7 on
  config_checks.validate(config, need_weights=False)
  config.model.feature_taps = "_blocks_4,_blocks_7"  # named by hand: not filtered
  with pytest.raises(ValueError, match="'_blocks_4' lies below the cached input"):
    config_checks.validate(config, need_weights=False)


def test_feature_taps_are_distinct_names(tiny_config):
  from clustercnn_jax.models import model as model_lib

  tiny_config.model.feature_taps = " stage0, stage0 ,"
  assert model_lib.feature_taps(tiny_config) == ("stage0",)
