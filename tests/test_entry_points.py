"""What a mistyped ``kedro run`` gets: one line naming the value and the valid ones, exit 1,
no traceback, and nothing run (through a real ``kedro`` subprocess, as a user types it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def kedro_run(*args: str) -> subprocess.CompletedProcess:
    environment = os.environ | {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "COLUMNS": "400",  # one message, one line: no wrapping by the console
    }
    return subprocess.run(
        [KEDRO, "run", *args], cwd=PROJECT, env=environment, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--env", "does_not_exist"],
            "Error: environment 'does_not_exist' does not exist (no folder ",
        ),
        (
            ["--pipelines", "evaluation,does_not_exist"],
            "Error: unknown pipeline 'does_not_exist'; registered pipelines: __default__, "
            "evaluation, feature_extraction, inference, ingestion,",
        ),
    ],
)
def test_a_mistyped_environment_or_pipeline_is_one_line_naming_it(args, expected) -> None:
    result = kedro_run(*args)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    last = output.strip().splitlines()[-1]
    assert last.startswith(expected), output
    assert "Traceback" not in output and "MlflowException" not in output
    assert "Running node" not in output and "ImportError" not in output
    if "--env" in args:
        assert "environments: kinect_v1_pooled, local, msr_action3d" in last
