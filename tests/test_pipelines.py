"""The Kedro pipelines end to end, through a real Kedro session on tiny synthetic data.

Each test copies the project's configuration into a temporary project, adds a ``test``
environment that shrinks the data and the schedules, and runs ``KedroSession.run`` there, so
the real catalog, parameters, dataset factories and namespaces are exercised.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT = Path(__file__).resolve().parents[1]

TINY_CATALOG = {
    "raw_recordings": {
        "type": "pose_zsl.datasets.SyntheticSkeletonDataset",
        "path": "data/01_raw/synthetic_ntu60",
        "samples_per_action": 6,
        "seed": 1,
        "num_performers": 6,
    }
}
TINY_PARAMETERS = {
    "ingestion": {"workers": 1},
    "stgcn_training": {
        "epochs": 2,
        "batch_size": 32,
        "window": 16,
        "width": 0.125,
        "lr_milestones": [1],
    },
    "zsl_training": {
        "devise": {"epochs": 5},
        "relation_net": {"episodes": 200, "lr_step": 100, "log_every": 50},
    },
}


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away copy of the project (configuration only) with a tiny ``test`` environment."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # the package itself is imported from the installed project
    shutil.copytree(PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    test_env = project / "conf" / "test"
    test_env.mkdir()
    (test_env / "catalog.yml").write_text(yaml.safe_dump(TINY_CATALOG))
    (test_env / "parameters.yml").write_text(yaml.safe_dump(TINY_PARAMETERS))
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    bootstrap_project(project)
    return project


def run_pipelines(project: Path, pipelines: list[str]) -> None:
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=pipelines)


def test_ingestion_pipeline_writes_the_common_schema(kedro_project: Path) -> None:
    from pose_zsl.skeleton.store import SAMPLE_COLUMNS, SequenceStore

    run_pipelines(kedro_project, ["ingestion"])

    samples = pd.read_parquet(kedro_project / "data/02_intermediate/samples.parquet")
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert len(samples) == 60 * 6
    assert set(samples["source"]) == {"synthetic"}
    assert samples["action_id"].nunique() == 60
    assert set(samples["xsub"]) == {"train", "test"}

    import pyarrow.parquet as pq

    store = SequenceStore(pq.read_table(kedro_project / "data/02_intermediate/sequences.parquet"))
    assert store.ids == samples["sample_id"].tolist()
    first = store[0]
    assert first.shape == (samples["num_frames"].iloc[0], 2, 25, 3)

    actions = pd.read_parquet(kedro_project / "data/02_intermediate/actions.parquet")
    assert len(actions) == 60
    report = (kedro_project / "data/08_reporting/ingestion_report.md").read_text()
    assert "samples: 360" in report
    assert (kedro_project / "data/08_reporting/frames_histogram.png").stat().st_size > 0
