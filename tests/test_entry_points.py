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


def test_a_run_ends_by_saying_what_it_made_and_where(tmp_path) -> None:
    import mlflow
    from conftest import mlflow_tracking_uri

    from pose_zsl.hooks import run_summary

    outputs = {"zsl_top1_table", "html_report", "zero_shot_predictor"}
    params = {"env": "msr_action3d", "project_path": PROJECT, "pipeline_names": []}
    with mlflow_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        # an experiment of this store: the process may remember another store's experiment
        experiment = mlflow.set_experiment("summary")
        with mlflow.start_run(
            run_name="__default__", experiment_id=experiment.experiment_id
        ) as run:
            # renamed during the run, as MlflowRunNameHooks does
            mlflow.set_tag("mlflow.runName", "__default__ @ msr_action3d")
            text = run_summary(params, outputs)
    lines = text.splitlines()
    assert lines[0] == "pose-zsl: finished __default__ @ msr_action3d"
    assert lines[1].startswith("  results: data/msr_action3d/08_reporting/zsl_top1.md")
    assert lines[2].startswith("  report:  data/msr_action3d/08_reporting/report.html")
    assert lines[3].startswith("  models:  data/msr_action3d/06_models")
    assert f"run {run.info.run_id} (__default__ @ msr_action3d)" in lines[4]
    assert lines[5].endswith("--env msr_action3d")
    # an ingestion-only run made no report or model: it says so by not listing them
    quiet = run_summary(
        {"env": None, "project_path": PROJECT, "pipeline_names": ["ingestion"]}, set()
    )
    assert quiet == "pose-zsl: finished ingestion @ local"


def test_the_names_checked_before_a_run_are_the_registrys() -> None:
    """``kedro run --pipelines one_variant`` was refused as unknown: the check before the run
    must know every registered pipeline, the composed ones included."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    from pose_zsl.pipeline_registry import pipeline_names

    bootstrap_project(PROJECT)
    assert pipeline_names() == set(pipelines)
    assert "one_variant" in pipeline_names()


def test_a_run_that_reads_ungenerated_synthetic_recordings_names_the_command(tmp_path) -> None:
    """``kedro run --from-nodes ingest_recordings`` in the default environment before any run
    generated the recordings: stopped before any node, told how to generate them; a pipeline
    with the generator node writes them itself and is let through."""
    import click
    from kedro.pipeline import Pipeline, node

    from pose_zsl.datasets import SyntheticSkeletonDataset
    from pose_zsl.hooks import EntryPointHooks
    from pose_zsl.pipelines.ingestion.nodes import action_table, synthetic_recordings

    folder = tmp_path / "synthetic_ntu60"
    catalog = {"raw_recordings": SyntheticSkeletonDataset(str(folder))}
    reads = Pipeline([node(action_table, "raw_recordings", "actions")])
    with pytest.raises(click.ClickException, match=r"no synthetic recordings in .*synthetic_ntu60"):
        EntryPointHooks().before_pipeline_run({}, reads, catalog)
    generates = Pipeline([node(synthetic_recordings, "params:synthetic_data", "raw_recordings")])
    EntryPointHooks().before_pipeline_run({}, generates + reads, catalog)
    assert not folder.exists()  # checking reads nothing into being
