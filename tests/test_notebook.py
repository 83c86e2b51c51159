"""``notebooks/explore.ipynb`` runs top to bottom (nbclient) on a tiny project made by the real
default pipeline, so the notebook never rots."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import TINY_ENV, TINY_OFFLINE_ENV, TinyRun
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"
CELL_TIMEOUT_S = 300


def outputs_of(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                found.append(data[mime])
    return found


def test_explore_notebook_runs_on_a_tiny_project(
    tiny_tracked_project: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for name, value in {
        **TINY_OFFLINE_ENV,
        "POSE_ZSL_PROJECT": str(tiny_tracked_project.project),
        "POSE_ZSL_ENV": TINY_ENV,
        "MLFLOW_TRACKING_URI": tiny_tracked_project.tracking_uri,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }.items():
        monkeypatch.setenv(name, value)
    # started outside the project: the notebook must find it through POSE_ZSL_PROJECT alone
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    text = "\n".join(
        "".join(output.get("text", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert f"project: {tiny_tracked_project.project}, environment: {TINY_ENV}" in text
    assert "unseen classes:" in text
    # frames grid, bar chart and the joint-space map are images; the animation is HTML+JS
    assert len(outputs_of(notebook, "image/png")) >= 3
    html = outputs_of(notebook, "text/html")
    assert any("<script" in page and "Animation" in page for page in html)
    markdown = "\n".join(outputs_of(notebook, "text/markdown"))
    assert "ZSL top-1 accuracy" in markdown and "| relation_net | learned |" in markdown
