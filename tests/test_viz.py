"""``kedro viz build`` of the project, offline, and what its JSON shows.

The build runs in a throw-away copy of the project (it writes ``build/`` into the current
directory) and must list every registered pipeline, every node of the default pipeline, and
every dataset with its layer, in an order kedro-viz can draw (no circular layer references).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_OFFLINE_ENV

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = Path(sys.executable).with_name("kedro")
BUILD_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def viz_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``build/api`` folder of ``kedro viz build`` run in a copy of the project."""
    root = tmp_path_factory.mktemp("viz")
    project = root / "project"
    project.mkdir()
    shutil.copy(PROJECT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # the package is imported from the installed project
    shutil.copytree(PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")},
        **TINY_OFFLINE_ENV,
        # should anything open the MLflow store, it must not be the real project's
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    result = subprocess.run(
        [str(KEDRO), "viz", "build"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Success" in output, output[-5000:]
    api = project / "build" / "api"
    assert (api / "main").is_file(), sorted(str(p) for p in (project / "build").iterdir())
    (root / "build.log").write_text(output)
    return api


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def registered() -> dict[str, Any]:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    return dict(pipelines)


def test_every_registered_pipeline_is_listed(viz_build: Path, registered: dict) -> None:
    main = load(viz_build / "main")
    assert {p["id"] for p in main["pipelines"]} == set(registered)
    for name in registered:
        assert load(viz_build / "pipelines" / name)["selected_pipeline"] == name


def test_every_node_and_dataset_of_the_default_pipeline_is_listed(
    viz_build: Path, registered: dict
) -> None:
    default = registered["__default__"]
    shown = load(viz_build / "pipelines" / "__default__")["nodes"]
    tasks = {n["full_name"] for n in shown if n["type"] == "task"}
    assert tasks == {node.name for node in default.nodes}
    data = {n["name"] for n in shown if n["type"] == "data"}
    datasets = {d for d in default.datasets() if not d.startswith("params:")}
    assert data == datasets


@pytest.mark.parametrize("pipeline", ["main", "pipelines/__default__"])
def test_every_dataset_has_a_layer_in_a_drawable_order(viz_build: Path, pipeline: str) -> None:
    answer = load(viz_build / pipeline)
    datasets = [n for n in answer["nodes"] if n["type"] == "data"]
    assert datasets
    without = sorted(n["name"] for n in datasets if not n.get("layer"))
    assert not without, f"datasets without a kedro-viz layer: {without}"
    # kedro-viz disables layers (empty list) when they reference each other in a circle
    assert answer["layers"], f"circular layers: {layer_cycle(answer)}"
    assert {n["layer"] for n in datasets} <= set(answer["layers"])


def layer_cycle(answer: dict[str, Any]) -> list[str]:
    """A circle of layers, each step "a -> b" with datasets that make it (a node produces
    layer-b data from layer-a data); empty when the layers can be ordered."""
    nodes = {n["id"]: n for n in answer["nodes"]}
    inputs, outputs = defaultdict(set), defaultdict(set)
    for edge in answer["edges"]:
        source, target = nodes[edge["source"]], nodes[edge["target"]]
        if target["type"] == "task":
            inputs[target["id"]].add(source["id"])
        if source["type"] == "task":
            outputs[source["id"]].add(target["id"])
    steps: dict[tuple[str, str], set[str]] = defaultdict(set)
    for task, sources in inputs.items():
        for source in sources:
            for target in outputs[task]:
                before, after = nodes[source].get("layer"), nodes[target].get("layer")
                if before and after and before != after:
                    steps[before, after].add(f"{nodes[source]['name']} -> {nodes[target]['name']}")
    graph: dict[str, set[str]] = defaultdict(set)
    for before, after in steps:
        graph[after].add(before)
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        circle = list(error.args[1])
        if not all((a, b) in steps for a, b in zip(circle, circle[1:], strict=False)):
            circle.reverse()
        return [
            f"{a} -> {b} (e.g. {sorted(steps[a, b])[0]})"
            for a, b in zip(circle, circle[1:], strict=False)
        ]
    return []


def root_items(answer: dict[str, Any]) -> int:
    """What kedro-viz draws before anything is expanded: the root's tasks, datasets and
    collapsed modular pipelines (parameters are hidden by default)."""
    children = answer["modular_pipelines"]["__root__"]["children"]
    return sum(child["type"] != "parameters" for child in children)


def test_make_viz_opens_every_stage_once_in_a_readable_view(
    viz_build: Path, registered: dict
) -> None:
    makefile = (PROJECT / "Makefile").read_text()
    assert "kedro viz run --pipeline one_variant" in makefile
    chain = load(viz_build / "pipelines" / "one_variant")
    default = load(viz_build / "pipelines" / "__default__")
    # the full grid puts every variant's artefacts at the root (179 items with 18 variants)
    assert root_items(chain) <= 60 < root_items(default), (root_items(chain), root_items(default))
    stages = {tag for node in registered["__default__"].nodes for tag in node.tags} - {
        "gpu",
        "mlflow",
        "report",  # the report collects over the whole grid
    }
    shown = {tag for n in chain["nodes"] if n["type"] == "task" for tag in n["tags"]}
    assert stages <= shown, f"stages missing from the one-variant view: {stages - shown}"
    tasks = [n["full_name"] for n in chain["nodes"] if n["type"] == "task"]
    assert len(tasks) == len(set(tasks)) == len(registered["one_variant"].nodes)
