"""Every notebook in ``notebooks/`` runs top to bottom on generated sample data.

Each one is executed with nbclient in a fresh kernel (this interpreter's ipykernel),
with its temporary files under the test's ``tmp_path``, and must render at least one
plot (an ``image/png`` output) and raise nothing.
"""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REQUIRES = {  # modules a notebook imports beyond the core dependencies
    "duckdb_tables": ["duckdb"],
    "torchgeo_training": ["torch", "torchgeo"],
}
TIMEOUT = 240  # seconds per cell: the first torchgeo import alone can take ~25 s here

#: executes every notebook (about 45 s)
pytestmark = pytest.mark.slow


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_listed_here_or_needs_nothing_extra() -> None:
    names = {path.stem for path in _notebooks()}
    assert {"quickstart", "ndvi_timeseries", "duckdb_tables", "torchgeo_training"} <= names
    assert "point_sampling" in names
    assert set(REQUIRES) <= names


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_and_plots(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ["nbclient", "nbformat", "ipykernel", "matplotlib", *REQUIRES.get(path.stem, [])]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{path.name} needs {module!r} (install the test / notebook extras)")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' tempfile.mkdtemp() land here
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell and traceback

    images = [
        base64.b64decode(output["data"]["image/png"])
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} rendered no plot"
    assert all(image.startswith(b"\x89PNG") and len(image) > 2000 for image in images)
    errors = [
        output
        for cell in book.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
