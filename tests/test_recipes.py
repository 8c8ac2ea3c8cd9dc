"""Every recipe's chain at test size, on real data from ../shared (so no recipe rots), and
the manifests in results/ against docs/results.md."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

SHARED = os.path.join(ROOT, "..", "shared", "data")
needs_shared = pytest.mark.skipif(
    not (os.path.isdir(os.path.join(SHARED, "fgnet", "FGNET"))
         and os.path.isdir(os.path.join(SHARED, "utkface", "UTKFace"))),
    reason="../shared/data (FG-NET and UTKFace) is not present")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
  """FG-NET whole, 120 UTKFace faces (linked, not copied), and a MORPH-named stand-in
  (MORPH II is licensed) of skimage's astronaut at several ages."""
  from skimage import data as skimage_data

  root = tmp_path_factory.mktemp("data_root")
  os.symlink(os.path.abspath(os.path.join(SHARED, "fgnet")), root / "fgnet")
  utk = root / "utkface" / "UTKFace"
  utk.mkdir(parents=True)
  source = os.path.abspath(os.path.join(SHARED, "utkface", "UTKFace"))
  for name in sorted(os.listdir(source))[::150][:120]:
    os.symlink(os.path.join(source, name), utk / name)
  morph = root / "morph"
  morph.mkdir()
  face = Image.fromarray(skimage_data.astronaut())
  for i in range(40):
    face.resize((200 + 2 * i, 200 + 2 * i)).save(morph / f"{9000 + i:06d}_0M{18 + i}.JPG")
  return str(root)


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo", "utkface_partial", "fgnet_imagenet",
                                  "fgnet_frozen_taps", "fgnet_from_utkface",
                                  "utkface_on_fgnet", "fgnet_paper", "morph_paper"])
def test_every_recipe_runs_its_chain_at_test_size(name, data_root, tmp_path):
  from clustercnn_jax import recipes, reproduce

  assert name in recipes.RECIPES
  cache = {"cache.dir": str(tmp_path / "cache"),
           "data.data_dir": str(tmp_path.parent / "tfds")}  # shared by the recipes
  out = reproduce.reproduce(name, str(tmp_path / "run"), data_root=data_root, runlocal=True,
                            extra=cache)
  recipe = recipes.get(name)
  assert out["metrics"]["num_examples"] > 0 and np.isfinite(out["mae"])
  for stage in recipe.stages:
    assert os.path.isdir(tmp_path / "run" / stage.name)
  if recipe.stages[-1].protocol == "lopo":
    assert out["metrics"]["sub_runs"] == len(reproduce.RUNLOCAL_FOLDS)
  # A second call finds every stage finished and only reads the results.
  again = reproduce.reproduce(name, str(tmp_path / "run"), data_root=data_root, runlocal=True,
                              extra=cache)
  assert again["mae"] == out["mae"]
  assert reproduce.summary_line(again).startswith(f"{name}: MAE")
  # The wall time is that of both invocations: a resumed recipe counts all it cost.
  second = sum(json.load(open(tmp_path / "run" / stage.name / reproduce.TIME_FILE))
               ["invocations_s"][-1] for stage in recipe.stages)
  assert again["wall_time_s"] == pytest.approx(out["wall_time_s"] + second, abs=0.2)


def test_a_finished_training_stage_is_skipped_unless_its_config_changed(tmp_path, monkeypatch):
  from clustercnn_jax import reproduce, train

  workdir = str(tmp_path / "run")
  out = reproduce.reproduce("demo", workdir, runlocal=True)

  def no_training(*args, **kwargs):
    raise AssertionError("a finished stage was trained or evaluated again")

  monkeypatch.setattr(train, "train_and_evaluate", no_training)
  again = reproduce.reproduce("demo", workdir, runlocal=True)
  assert again["mae"] == out["mae"]
  # Another model in the same stage directory is refused, as a resume would be.
  with pytest.raises(ValueError, match="another config"):
    reproduce.reproduce("demo", workdir, runlocal=True, extra={"max_age": 60})
  # A longer budget is not "finished": it goes back to training (which resumes).
  with pytest.raises(AssertionError, match="trained or evaluated again"):
    reproduce.reproduce("demo", workdir, runlocal=True, extra={"num_train_steps": 1000})
  # Other evaluation settings: evaluated again with them, not trained again.
  with pytest.raises(AssertionError, match="trained or evaluated again"):
    reproduce.reproduce("demo", workdir, runlocal=True, extra={"eval.flip": True})
  monkeypatch.undo()
  steps = lambda: open(os.path.join(workdir, "demo", "metrics.jsonl")).read().count("train/")
  before = steps()
  flipped = reproduce.reproduce("demo", workdir, runlocal=True, extra={"eval.flip": True})
  assert flipped["mae"] != out["mae"] and steps() == before
  from clustercnn_jax import workdirs

  assert workdirs.load_config(os.path.join(workdir, "demo")).eval.flip is True


@needs_shared
@pytest.mark.slow
def test_recipes_in_one_workdir_share_their_first_stage(data_root, tmp_path, monkeypatch):
  """utkface_on_fgnet after utkface_partial: the UTKFace model is not trained again, its
  time counts in both recipes, and all of FG-NET is scored with person ids."""
  from clustercnn_jax import recipes, reproduce, train

  extra = {"cache.dir": str(tmp_path / "cache"), "data.data_dir": str(tmp_path / "tfds")}
  workdir = str(tmp_path / "run")
  first = reproduce.reproduce("utkface_partial", workdir, data_root=data_root, runlocal=True,
                              extra=extra)

  def no_training(*args, **kwargs):
    raise AssertionError("the shared stage was trained again")

  monkeypatch.setattr(train, "train_and_evaluate", no_training)
  out = reproduce.reproduce("utkface_on_fgnet", workdir, data_root=data_root, runlocal=True,
                            extra=extra)
  assert out["metrics"]["num_examples"] == 1002 and np.isfinite(out["mae"])
  assert out["wall_time_s"] > first["wall_time_s"]
  from clustercnn_jax import manifests

  pooled = manifests.pooled(os.path.join(workdir, "fgnet"))
  assert sorted(set(pooled["person_ids"].tolist())) == list(range(1, 83))
  assert recipes.get("utkface_on_fgnet").stages[0] is recipes.get("utkface_partial").stages[0]


def test_every_recipe_stage_builds_its_config():
  from clustercnn_jax import config_checks, recipes

  for recipe in recipes.RECIPES.values():
    for stage in recipe.stages:
      assert stage.protocol in recipes.PROTOCOLS
      if stage.init_from:
        assert stage.init_from in [s.name for s in recipe.stages]
      config = recipes.stage_config(stage, data_root="/data")
      for key, value in stage.overrides.items():
        node = config
        for part in key.split("."):
          node = node[part]
        assert node == value, (recipe.name, key)
      config_checks.validate(config, need_weights=False)


def test_the_listing_names_every_recipe():
  run = subprocess.run([sys.executable, "-m", "clustercnn_jax.reproduce"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]
  from clustercnn_jax import recipes

  for name in recipes.RECIPES:
    assert name in run.stdout


def test_docs_results_md_is_generated_from_the_manifests():
  from clustercnn_jax import manifests

  with open(manifests.DOC) as f:
    assert f.read() == manifests.render(manifests.load_all()), (
        "docs/results.md and results/ disagree: python -m clustercnn_jax.manifests")
  with open(manifests.README) as f:
    readme = f.read()
  table = manifests.readme_table(manifests.load_all())
  assert manifests.with_readme_table(readme, table) == readme, (
      "README.md's results table and results/ disagree: python -m clustercnn_jax.manifests")
  for m in manifests.load_all():
    assert f"**{m['mae']:.2f}**" in table and f"`{m['recipe']}`" in table
  for m in manifests.load_all():
    with np.load(os.path.join(manifests.RESULTS_DIR, m["predictions"])) as z:
      from clustercnn_jax import losses

      assert losses.mae(z["predictions"], z["ages"]) == pytest.approx(m["mae"], abs=1e-6)
      assert len(z["ages"]) == m["num_examples"]


def test_a_manifest_records_a_run_and_its_reruns(tmp_path, trained_workdir, tiny_config):
  from clustercnn_jax import manifests, recipes, reproduce

  recipe = recipes.get("demo")
  first = manifests.write(recipe, trained_workdir, tiny_config, 12.0, str(tmp_path))
  second = manifests.write(recipe, trained_workdir, tiny_config, 13.0, str(tmp_path))
  assert second["reruns"] == [round(first["mae"], 4)] * 2
  assert manifests.spread(second) == 0.0
  assert reproduce.verdict(first["mae"] + 0.01, second)["inside"] is False
  assert reproduce.verdict(second["reruns"][0], second)["inside"] is True
  assert manifests.load("demo", str(tmp_path))["config"]["model"]["cluster"]["num_clusters"] == 3
  text = manifests.render([second])
  assert "`demo`" in text and f"**{first['mae']:.2f}**" in text


def test_a_changed_recipe_starts_its_manifest_afresh(tmp_path, trained_workdir, tiny_config):
  """Reruns of the old settings measured another recipe: they must not form the new one's
  spread, and a seeded rerun cannot join a manifest of other settings."""
  from clustercnn_jax import manifests, recipes

  recipe = recipes.get("demo")
  manifests.write(recipe, trained_workdir, tiny_config, 12.0, str(tmp_path))
  manifests.write(recipe, trained_workdir, tiny_config, 12.0, str(tmp_path))
  moved = tiny_config.copy_and_resolve_references()
  moved.seed, moved.data.manual_dir = 3, "/elsewhere"  # a rerun, not another recipe
  assert manifests.changed_settings(manifests.load("demo", str(tmp_path))["config"], moved) == []
  changed = tiny_config.copy_and_resolve_references()
  changed.num_epochs, changed.learning_rate = 7.0, 2 * tiny_config.learning_rate
  with pytest.raises(ValueError, match="learning_rate, num_epochs.*without --seed"):
    manifests.write(recipe, trained_workdir, changed, 13.0, str(tmp_path), rerun=True)
  assert len(manifests.load("demo", str(tmp_path))["reruns"]) == 2
  fresh = manifests.write(recipe, trained_workdir, changed, 13.0, str(tmp_path))
  assert len(fresh["reruns"]) == 1 and fresh["config"]["num_epochs"] == 7.0


def test_a_changed_earlier_stage_changes_the_recipe(tmp_path, trained_workdir, tiny_config):
  """A chain's manifest records every stage: pretraining with other settings is another
  recipe even where the final stage's config is the same."""
  from clustercnn_jax import manifests, recipes

  recipe = recipes.get("demo")
  pretraining = tiny_config.copy_and_resolve_references()
  manifests.write(recipe, trained_workdir, tiny_config, 12.0, str(tmp_path),
                  earlier={"pre": pretraining})
  same = manifests.write(recipe, trained_workdir, tiny_config, 12.0, str(tmp_path), rerun=True,
                         earlier={"pre": pretraining})
  assert len(same["reruns"]) == 2
  assert manifests.load("demo", str(tmp_path))["earlier_stages"]["pre"]["num_epochs"] == (
      tiny_config.num_epochs)
  other = pretraining.copy_and_resolve_references()
  other.learning_rate = 2 * pretraining.learning_rate
  with pytest.raises(ValueError, match="pre: learning_rate"):
    manifests.write(recipe, trained_workdir, tiny_config, 13.0, str(tmp_path), rerun=True,
                    earlier={"pre": other})
  with pytest.raises(ValueError, match=r"pre2 \(not recorded\)"):
    manifests.write(recipe, trained_workdir, tiny_config, 13.0, str(tmp_path), rerun=True,
                    earlier={"pre": other, "pre2": other})


def test_a_manifest_names_the_commit_of_the_code_not_of_the_results(tmp_path, monkeypatch):
  from clustercnn_jax import manifests

  git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True,
                                  capture_output=True)
  git("init", "-q")
  (tmp_path / "results").mkdir()
  for name in ("code.py", "results/r.json", "README.md"):
    (tmp_path / name).write_text("0\n")
  git("add", "-A")
  git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
  monkeypatch.setattr(manifests, "ROOT", str(tmp_path))
  head = manifests.commit()
  assert len(head) >= 7 and "+" not in head
  (tmp_path / "results" / "r.json").write_text("1\n")  # what a recipe writes
  (tmp_path / "README.md").write_text("1\n")
  assert manifests.commit() == head
  (tmp_path / "code.py").write_text("1\n")
  assert manifests.commit() == head + "+changes"
