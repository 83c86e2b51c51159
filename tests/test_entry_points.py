"""What a mistyped ``kedro run`` gets: one line naming the value and the valid ones, exit 1,
no traceback, and nothing run (through a real ``kedro`` subprocess, as a user types it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def kedro_run(*args: str, **variables: str) -> subprocess.CompletedProcess:
    environment = os.environ | {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "COLUMNS": "400",  # one message, one line: no wrapping by the console
        # a run that gets as far as MLflow must not write into the project's own store
        "MLFLOW_TRACKING_URI": f"sqlite:///{tempfile.mkdtemp()}/mlflow.db",
        **variables,
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


def test_a_missing_data_folder_names_the_variable_that_set_it() -> None:
    result = kedro_run("--env", "ntu60", **{"NTU60_SKELETON_DIR": "/nonexistent/ntu60"})
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.strip().splitlines()[-1] == (
        "Error: raw recordings folder /nonexistent/ntu60 does not exist; it comes from the "
        "environment variable NTU60_SKELETON_DIR: point it at your data"
    )
    assert "Traceback" not in output and "Running node" not in output


def test_a_failing_node_is_one_line_and_the_traceback_is_one_variable_away(
    skeleton_ntu_samples, tmp_path
) -> None:
    """An NTU folder given as MSR Action3D fails inside the ingestion node."""
    folder = tmp_path / "not_msr"
    folder.mkdir()
    for path in sorted(skeleton_ntu_samples.glob("*.skeleton"))[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    variables = {"MSR_ACTION3D_DIR": str(folder)}
    result = kedro_run("--env", "msr_action3d", "--pipelines", "ingestion", **variables)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    last_two = output.strip().splitlines()[-2:]
    assert last_two[0].startswith(
        f"Error: ValueError: no usable recording in {folder}: expected MSR Action3D"
    )
    assert last_two[1] == "(set POSE_ZSL_TRACEBACK=1 for the traceback)"
    assert "Traceback" not in output
    variables["POSE_ZSL_TRACEBACK"] = "1"
    verbose = kedro_run("--env", "msr_action3d", "--pipelines", "ingestion", **variables)
    assert verbose.returncode == 1 and "Traceback" in verbose.stdout + verbose.stderr
