"""The exported predictor behind a real ``mlflow models serve`` on loopback: a request as an
HTTP client sends it, strict JSON back, per-row errors worded for the API."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY_OFFLINE_ENV, TinyRun
from servers import free_port, running

MLFLOW_EXECUTABLE = Path(sys.executable).with_name("mlflow")


@pytest.fixture(scope="module")
def served(
    tiny_tracked_project: TinyRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The tiny run's ``data/06_models/zero_shot_predictor`` served in this environment
    (``--env-manager local``: the test's own packages); yields the server's URL."""
    model = tiny_tracked_project.project / "data/06_models/zero_shot_predictor"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(MLFLOW_EXECUTABLE), "models", "serve",
        "--model-uri", str(model),
        "--env-manager", "local",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    # as the README's command: the venv's bin first on PATH (the server execs its uvicorn)
    path = f"{MLFLOW_EXECUTABLE.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    environment = {**os.environ, **TINY_OFFLINE_ENV, "PATH": path}
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running(command, log, environment, ready_url=f"{url}/ping"):
        yield url


def strict_json(text: str) -> Any:
    """Parse as a strict client does: the bare tokens NaN / Infinity are errors."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def invoke(url: str, request: dict[str, Any]) -> tuple[int, Any]:
    call = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(request).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(call, timeout=120) as answer:
            return answer.status, strict_json(answer.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def example_request(tiny_tracked_project: TinyRun) -> dict[str, Any]:
    model = tiny_tracked_project.project / "data/06_models/zero_shot_predictor"
    return json.loads((model / "serving_input_example.json").read_text())


def test_the_stored_example_is_answered_with_ranked_names(
    served: str, tiny_tracked_project: TinyRun
) -> None:
    request = example_request(tiny_tracked_project)
    status, answer = invoke(served, request)
    assert status == 200, answer
    rows = answer["predictions"]
    labels = request["dataframe_split"]["data"][0][3]
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert {row["label"] for row in rows} <= set(labels)
    assert all(row["error"] is None for row in rows)
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < row["share"] <= 1 for row in rows)


def test_a_row_without_labels_is_an_error_row_in_strict_json_not_a_failed_batch(
    served: str, tiny_tracked_project: TinyRun
) -> None:
    request = example_request(tiny_tracked_project)
    good = request["dataframe_split"]["data"][0]
    empty = ["no labels", good[1], good[2], []]
    request["dataframe_split"]["data"] = [good, empty]
    request["params"] = {"top_k": 2}
    status, answer = invoke(served, request)
    assert status == 200, answer
    rows = answer["predictions"]
    by_recording = {row["recording"]: [] for row in rows}
    for row in rows:
        by_recording[row["recording"]].append(row)
    assert [row["rank"] for row in by_recording[good[0]]] == [1, 2]
    (failed,) = by_recording["no labels"]
    assert failed["score"] is None and failed["share"] is None and failed["raw_score"] is None
    assert "labels" in failed["error"] and "--labels" not in failed["error"], failed["error"]


def test_served_scores_equal_the_predictor_in_process(
    served: str, tiny_tracked_project: TinyRun
) -> None:
    from pose_zsl.inference import ZeroShotPredictor

    request = example_request(tiny_tracked_project)
    name, skeleton, shape, labels = request["dataframe_split"]["data"][0]
    predictor = ZeroShotPredictor.from_project(tiny_tracked_project.project)
    recording = np.asarray(skeleton, dtype=np.float32).reshape(shape)
    expected = predictor.predict([recording], labels, top_k=3, names=[name])
    request["params"] = {"top_k": 3}
    _, answer = invoke(served, request)
    served_rows = answer["predictions"]
    assert [row["label"] for row in served_rows] == expected["label"].tolist()
    # the same float32 network on the same input in another process: equal up to the last
    # bits of float32 accumulation (a few ulps of scores of order 1)
    np.testing.assert_allclose(
        [row["score"] for row in served_rows], expected["score"], rtol=1e-5, atol=1e-7
    )
