"""notebooks/quickstart.ipynb runs top to bottom (an in-memory copy; the file stays cleared)."""

import os
import sys

import pytest

from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("skimage")

NOTEBOOKS = os.path.join(ROOT, "notebooks")
QUICKSTART = os.path.join(NOTEBOOKS, "quickstart.ipynb")


def text_of(cell):
  """The text a code cell printed or displayed."""
  parts = []
  for out in cell.get("outputs", []):
    if out.output_type == "stream":
      parts.append(out.text)
    elif out.output_type in ("execute_result", "display_data"):
      parts += [out.data.get(kind, "") for kind in ("text/plain", "text/markdown")]
  return "".join(parts)


def test_quickstart_is_committed_without_outputs():
  nb = nbformat.read(QUICKSTART, as_version=4)
  nbformat.validate(nb)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.slow
def test_quickstart_runs_top_to_bottom(tmp_path, monkeypatch):
  monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary workdir and photo
  nb = nbformat.read(QUICKSTART, as_version=4)
  # The kernel is this interpreter: jupyter_client runs a "python" kernel spec (ipykernel's
  # own, or the venv's share/jupyter/kernels/python3) with sys.executable.
  nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.executable)"))
  client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                   resources={"metadata": {"path": NOTEBOOKS}})
  client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
  outputs = [text_of(c) for c in nb.cells if c.cell_type == "code"]
  assert f"KERNEL {sys.executable}" in outputs[-1]
  assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
  text = "\n".join(outputs)
  # The astronaut's row, as the predict CLI prints it.
  assert f"'file': '{tmp_path}" in text and "astronaut.png" in text and "'age': " in text, text[:2000]
  assert "MAE " in text
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "display_data" and "image/png" in o.get("data", {})]
  assert len(images) >= 2  # the faces with their ages, and the report's figures
  if os.path.isdir(os.path.join(ROOT, "..", "shared", "data", "fgnet", "FGNET", "images")):
    assert "| file | true age | predicted age |" in text
