"""pyproject.toml lists every runtime dependency that requirements.txt pins."""

import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_ONLY = {"pytest", "pytest-xdist", "scikit-image", "nbclient", "nbformat", "ipykernel", "ruff"}


def canonical(name):
  return re.sub(r"[-_.]+", "-", name).lower()


def test_pyproject_lists_every_pinned_runtime_dependency():
  with open(os.path.join(ROOT, "requirements.txt")) as f:
    pinned = {canonical(line.split("==")[0].strip()) for line in f
              if line.strip() and not line.startswith("#")}
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  listed = {canonical(re.split(r"[<>=!~ \[]", d)[0]) for d in project["dependencies"]}
  assert pinned - TEST_ONLY <= listed, sorted(pinned - TEST_ONLY - listed)
  tests = {canonical(d) for d in project["optional-dependencies"]["test"]}
  assert TEST_ONLY <= tests
