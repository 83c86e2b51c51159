"""MLflow tracking of a real ``kedro run`` through kedro-mlflow, read back with ``MlflowClient``.

The tiny default pipeline (see ``test_pipelines``) runs once per store:

* ``mlflow_server``: a real ``mlflow server`` on 127.0.0.1 (random free port, its own SQLite
  backend store and artefact folder), reached through ``MLFLOW_TRACKING_URI=http://...``;
* ``temp_sqlite_store``: an embedded SQLite store, as by default. The default store lives at
  the real project root (``settings.PROJECT_ROOT``), so the run goes to a temporary
  ``sqlite:///`` file instead, and the default URI itself is checked from the configuration.

Each check is parametrised over both stores.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import (
    TINY_ENV,
    TINY_OFFLINE_ENV,
    TinyRun,
    make_tiny_project,
    mlflow_tracking_uri,
    run_tiny_default_pipeline,
)
from mlflow import MlflowClient
from mlflow.entities import Run
from servers import free_port, running

from pose_zsl.grid import HEADS, active, default_variant, variants

SPLITS = active().splits
EMBEDDINGS = active().embeddings

PROJECT = Path(__file__).resolve().parents[1]
MLFLOW_EXECUTABLE = Path(sys.executable).with_name("mlflow")
EXPERIMENT = "pose-zsl"


# ---- the two stores ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real ``mlflow server`` with its own SQLite store and proxied artefact folder:
    yields its URL and that artefact folder."""
    if not MLFLOW_EXECUTABLE.is_file():
        pytest.skip(f"no mlflow executable at {MLFLOW_EXECUTABLE}")
    root = tmp_path_factory.mktemp("mlflow_server")
    artifacts = root / "artifacts"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    command = [
        str(MLFLOW_EXECUTABLE), "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination", str(artifacts),
        "--serve-artifacts",
    ]  # fmt: skip
    environment = {**environment, **TINY_OFFLINE_ENV}
    with running(command, log, environment, ready_url=f"{url}/health"):
        yield url, artifacts


@pytest.fixture(scope="module")
def server_run(
    mlflow_server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> TinyRun:
    url, _ = mlflow_server
    project = make_tiny_project(tmp_path_factory.mktemp("server_run"))
    return run_tiny_default_pipeline(project, url)


@pytest.fixture(scope="module", params=["mlflow_server", "temp_sqlite_store"])
def tracked(request: pytest.FixtureRequest) -> TinyRun:
    """The tiny run in one of the two stores."""
    if request.param == "mlflow_server":
        return request.getfixturevalue("server_run")
    return request.getfixturevalue("tiny_tracked_project")


@pytest.fixture(scope="module")
def client(tracked: TinyRun) -> MlflowClient:
    return MlflowClient(tracking_uri=tracked.tracking_uri)


@pytest.fixture(scope="module")
def run(tracked: TinyRun, client: MlflowClient) -> Run:
    """The one run of the tiny ``kedro run`` in experiment ``pose-zsl``."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, f"no experiment {EXPERIMENT!r} in {tracked.tracking_uri}"
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def tiny_parameters(project: Path) -> dict[str, Any]:
    from kedro.config import OmegaConfigLoader

    from pose_zsl.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(project / "conf"), env=TINY_ENV, **CONFIG_LOADER_ARGS
    )
    return dict(loader["parameters"])


def flatten(parameters: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ---- what every run must record ----------------------------------------------------------


def test_the_experiment_opens_as_model_training_in_the_ui(tracked: TinyRun, run: Run) -> None:
    experiment = MlflowClient(tracked.tracking_uri).get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_run_is_recorded_finished_in_the_experiment(tracked: TinyRun, run: Run) -> None:
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"__default__ @ {TINY_ENV}"  # the environment names the data
    assert tracked.run_left_active is None, "kedro-mlflow left the run open after the session"


def test_parameters_are_logged_flattened(tracked: TinyRun, run: Run) -> None:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(tracked.project)
    used = {
        name.removeprefix("params:")
        for name in pipelines["__default__"].inputs()
        if name.startswith("params:")
    }
    parameters = {k: v for k, v in tiny_parameters(tracked.project).items() if k in used}
    expected = {key: str(value) for key, value in flatten(parameters).items()}
    logged = run.data.params
    assert "stgcn_training" in used and "zsl_training" in used
    assert logged["stgcn_training.epochs"] == "2"  # the tiny environment's, not base's 12
    assert logged["zsl_training.relation_net.episodes"] == "200"
    missing = sorted(set(expected) - set(logged))
    assert not missing, f"parameters not logged: {missing}"
    wrong = {k: (logged[k], v) for k, v in expected.items() if logged[k] != v}
    assert not wrong, f"logged vs configured values differ: {wrong}"


def test_the_effective_training_configs_are_logged(
    tracked: TinyRun, run: Run, client: MlflowClient, tmp_path: Path
) -> None:
    """The configs the models trained with, after the presets (the raw parameters show only
    the overrides): JSON artefacts under ``config/``, flattened ``effective_*`` parameters, and
    the same configs inside the trained ST-GCN and head artefacts."""
    import json
    from dataclasses import asdict

    from pose_zsl.datasets import TorchArtifactDataset
    from pose_zsl.models.heads import head_configs_from_params
    from pose_zsl.training.stgcn_trainer import train_config_from_params

    parameters = tiny_parameters(tracked.project)
    stgcn = train_config_from_params(parameters["stgcn_training"]).to_dict()
    heads = {
        kind: asdict(config)
        for kind, config in head_configs_from_params(parameters["zsl_training"]).items()
    }
    # the tiny environment's overrides and, from the synthetic preset, what no YAML file sets
    assert (stgcn["epochs"], stgcn["cpu_threads"], stgcn["val_fraction"]) == (2, 1, 0.15)
    assert (heads["relation_net"]["episodes"], heads["relation_net"]["lr"]) == (200, 0.002)

    def artefact(name: str) -> dict[str, Any]:
        copy = client.download_artifacts(run.info.run_id, f"config/{name}.json", str(tmp_path))
        return json.loads(Path(copy).read_text())

    assert artefact("effective_stgcn_config") == {"preset": "synthetic", **stgcn}
    assert artefact("effective_head_configs") == {"preset": "synthetic", **heads}
    logged = run.data.params
    expected = {
        **{f"effective_stgcn_config.{k}": str(v) for k, v in stgcn.items()},
        **{
            f"effective_head_configs.{kind}.{k}": str(v)
            for kind, config in heads.items()
            for k, v in config.items()
        },
    }
    assert {k: logged.get(k) for k in expected} == expected

    models = tracked.project / "data/06_models"
    for split in SPLITS:
        payload = TorchArtifactDataset(str(models / f"stgcn_{split}.pt")).load()
        assert payload["meta"]["config"] == stgcn, split
    for split, head, embedding in variants():
        payload = TorchArtifactDataset(str(models / f"zsl_{split}_{head}_{embedding}.pt")).load()
        assert payload["config"] == heads[head], (split, head, embedding)


def test_metrics_of_every_variant_match_the_metrics_table(tracked: TinyRun, run: Run) -> None:
    table = pd.read_parquet(tracked.project / "data/08_reporting/metrics.parquet")
    triples = set(table[["split", "head", "embedding"]].itertuples(index=False, name=None))
    references = {(split, head, "none") for split in SPLITS for head in ("vanilla_stgcn", "stgcn")}
    assert triples == set(variants()) | references
    # one MLflow key per row: no two measurements of a run may share (and overwrite) a key
    assert not table.duplicated(["split", "head", "embedding", "seed", "protocol", "metric"]).any()
    assert table.groupby(["split", "head", "embedding"])["seed"].nunique().max() > 1  # repeats
    assert {"top1_class_mean", "harmonic_mean_class_mean", "top_class_share"} <= set(
        table["metric"]
    )
    logged = run.data.metrics
    missing, wrong = [], {}
    first_seed = table.groupby(["split", "head", "embedding"])["seed"].transform("min")
    for row, first in zip(table.itertuples(index=False), first_seed, strict=True):
        # the exported head's seed keeps the plain key; further seeds carry theirs
        seed = "" if row.seed == first else f".seed{row.seed}"
        key = f"{row.split}.{row.head}.{row.embedding}{seed}.{row.protocol}.{row.metric}"
        if key not in logged:
            missing.append(key)
        elif not np.isclose(logged[key], row.value, rtol=1e-6, atol=1e-9):
            wrong[key] = (logged[key], row.value)
    assert not missing, (
        f"{len(missing)} of {len(table)} metrics not logged, e.g. {missing[:3]}; "
        f"the run has e.g. {sorted(logged)[:3]}"
    )
    assert not wrong, wrong


def test_training_curves_are_metric_histories(
    tracked: TinyRun, run: Run, client: MlflowClient
) -> None:
    run_id = run.info.run_id
    for split in SPLITS:
        history = pd.read_parquet(
            tracked.project / f"data/07_model_output/stgcn_history_{split}.parquet"
        )
        assert len(history) == 2  # the tiny environment's epochs
        for column in ("train_loss", "train_acc", "val_acc"):
            logged = sorted(
                client.get_metric_history(run_id, f"{split}.stgcn.{column}"),
                key=lambda p: p.step,
            )
            assert [p.step for p in logged] == list(history["epoch"]), f"{split}.stgcn.{column}"
            np.testing.assert_allclose([p.value for p in logged], history[column], rtol=1e-6)
    for split, head, embedding in variants():
        history = pd.read_parquet(
            tracked.project / f"data/07_model_output/zsl_history_{split}_{head}_{embedding}.parquet"
        )
        logged = sorted(
            client.get_metric_history(run_id, f"{split}.{head}.{embedding}.loss"),
            key=lambda p: p.step,
        )
        expected = history[["step", "loss"]].dropna()
        assert [p.step for p in logged] == list(expected["step"]), f"{split}.{head}.{embedding}"
        np.testing.assert_allclose([p.value for p in logged], expected["loss"], rtol=1e-6)


def test_figures_tables_and_reports_are_artifacts(
    tracked: TinyRun, run: Run, client: MlflowClient, tmp_path: Path
) -> None:
    def walk(path: str | None = None) -> list[str]:
        found = []
        for item in client.list_artifacts(run.info.run_id, path):
            found += walk(item.path) if item.is_dir else [item.path]
        return found

    listed = set(walk())
    per_variant = [f"{s}_{h}_{e}" for s, h, e in variants()]
    expected = {
        "figures/frames_histogram.png",
        *(f"figures/training/stgcn_training_{split}.png" for split in SPLITS),
        *(f"figures/confusion/confusion_{v}.png" for v in per_variant),
        *(f"figures/joint_space/joint_space_{v}.png" for v in per_variant),
        "tables/zsl_top1.md",
        "tables/gzsl.md",
        "tables/gzsl_seen_unseen.md",
        "reports/ingestion_report.md",
        "reports/splits.md",
        "reports/report.html",
    }
    assert not expected - listed, f"missing artefacts: {sorted(expected - listed)}"
    heavy = [p for p in listed if Path(p).suffix in {".parquet", ".npy", ".pt", ".arrow"}]
    assert not heavy, f"large catalog files double-written to MLflow: {heavy}"
    for name in ("zsl_top1", "gzsl"):
        copy = client.download_artifacts(run.info.run_id, f"tables/{name}.md", str(tmp_path))
        local = tracked.project / f"data/08_reporting/{name}.md"
        assert Path(copy).read_text() == local.read_text()


def test_artifacts_are_kept_by_the_store_not_the_project(
    tracked: TinyRun, run: Run, request: pytest.FixtureRequest
) -> None:
    """A server keeps the artefacts it is sent (the UI and other machines read them there);
    an embedded store keeps them beside its database. Neither may land in the project root."""
    location = run.info.artifact_uri
    if tracked.tracking_uri.startswith("http"):
        _, server_artifacts = request.getfixturevalue("mlflow_server")
        assert location.startswith("mlflow-artifacts:"), (
            f"{location}: the client wrote the artefacts itself instead of sending them to the "
            "server (an experiment artifact_location pinned to a local path?)"
        )
        on_disk = server_artifacts / urlparse(location).path.lstrip("/")
        assert (on_disk / "tables" / "zsl_top1.md").is_file(), list(server_artifacts.rglob("*"))
    else:
        store_folder = Path(tracked.tracking_uri.removeprefix("sqlite:///")).parent
        path = Path(urlparse(location).path)
        assert path.is_relative_to(store_folder), f"{location} is not beside {store_folder}"
        assert (path / "tables" / "zsl_top1.md").is_file()


# ---- models ------------------------------------------------------------------------------


def logged_models(tracked: TinyRun, run: Run) -> dict[str, Any]:
    with mlflow_tracking_uri(tracked.tracking_uri):
        models = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
    return {model.name: model for model in models}


def load_model(tracked: TinyRun, model_id: str) -> torch.nn.Module:
    with mlflow_tracking_uri(tracked.tracking_uri):
        return mlflow.pytorch.load_model(f"models:/{model_id}", map_location="cpu")


PREDICTOR = "zero_shot_predictor"


def test_every_model_is_logged_with_the_pytorch_flavour(tracked: TinyRun, run: Run) -> None:
    models = logged_models(tracked, run)
    expected = {f"stgcn_{split}" for split in SPLITS} | {
        f"zsl_{s}_{h}_{e}" for s in SPLITS for h in HEADS for e in EMBEDDINGS
    }
    assert set(models) == expected | {PREDICTOR}
    with mlflow_tracking_uri(tracked.tracking_uri):
        for name, model in models.items():
            if name == PREDICTOR:
                continue
            info = mlflow.models.get_model_info(f"models:/{model.model_id}")
            assert "pytorch" in info.flavors, (name, info.flavors)
            assert info.flavors["python_function"]["loader_module"] == "mlflow.pytorch", name


def test_stgcn_loads_back_by_uri_with_the_catalog_outputs(tracked: TinyRun, run: Run) -> None:
    from pose_zsl.datasets import TorchArtifactDataset
    from pose_zsl.training.stgcn_trainer import model_from_artifact

    model_id = logged_models(tracked, run)["stgcn_nearest"].model_id
    loaded = load_model(tracked, model_id)
    payload = TorchArtifactDataset(str(tracked.project / "data/06_models/stgcn_nearest.pt")).load()
    reference, _ = model_from_artifact(payload)
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(2, 3, 16, 25, 2, generator=generator)  # (N, C, T, V, M)
    with torch.no_grad():
        expected = reference(batch)
        got = loaded(batch)
    assert expected.shape == (2, 55)  # the seen classes of the split
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("head", HEADS)
def test_heads_load_back_by_uri_with_the_catalog_outputs(
    tracked: TinyRun, run: Run, head: str
) -> None:
    from pose_zsl.datasets import TorchArtifactDataset
    from pose_zsl.models.heads import head_from_artifact

    model_id = logged_models(tracked, run)[f"zsl_nearest_{head}_learned"].model_id
    loaded = load_model(tracked, model_id)
    payload = TorchArtifactDataset(
        str(tracked.project / f"data/06_models/zsl_nearest_{head}_learned.pt")
    ).load()
    reference = head_from_artifact(payload)
    generator = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(
        torch.randn(5, reference.feature_dim, generator=generator), dim=1
    )
    classes = torch.nn.functional.normalize(
        torch.randn(7, reference.embedding_dim, generator=generator), dim=1
    )
    with torch.no_grad():
        expected = reference(features, classes)
        got = loaded(features, classes)
    assert expected.shape == (5, 7)
    torch.testing.assert_close(got, expected)


def test_each_model_page_shows_only_its_own_evaluation_metrics(tracked: TinyRun, run: Run) -> None:
    """MLflow links a run's unattributed metrics at a model's step to the model (it once gave
    the predictor every split's first-epoch ST-GCN curves); each model must carry exactly its
    own variant's evaluation metrics, with the run's values."""
    models = logged_models(tracked, run)
    run_metrics = run.data.metrics
    split, head, embedding = default_variant()
    owners = {PREDICTOR: f"{split}.{head}.{embedding}."}
    owners |= {f"stgcn_{s}": f"{s}.vanilla_stgcn.none." for s in SPLITS}
    owners |= {
        f"zsl_{s}_{h}_{e}": f"{s}.{h}.{e}." for s in SPLITS for h in HEADS for e in EMBEDDINGS
    }
    table = pd.read_parquet(tracked.project / "data/08_reporting/metrics.parquet")
    first_seed = table[
        table["seed"] == table.groupby(["slot", "head", "embedding"])["seed"].transform("min")
    ]
    keys = {
        f"{r.split}.{r.head}.{r.embedding}.{r.protocol}.{r.metric}" for r in first_seed.itertuples()
    }
    for name, prefix in owners.items():
        linked = {metric.key: metric.value for metric in models[name].metrics}
        expected = {key: run_metrics[key] for key in keys if key.startswith(prefix)}
        assert expected, (name, prefix)
        assert linked == expected, (name, sorted(set(linked) ^ set(expected))[:5])


def test_the_run_logs_the_servable_predictor(tracked: TinyRun, run: Run) -> None:
    """The training run logs the whole chain as a pyfunc model that ranks new recordings
    exactly like the predictor built from the run's own catalog files, with a stored
    serving example."""
    from pose_zsl.inference import ZeroShotPredictor, requests_frame

    model_id = logged_models(tracked, run)[PREDICTOR].model_id
    predictor = ZeroShotPredictor.from_project(tracked.project)
    raw = sorted((tracked.project / "data/01_raw/synthetic_ntu60").glob("*.skeleton"))[:3]
    recordings, _ = predictor.read(raw)
    labels = ["drink water", "wave a flag", "kick something"]
    with mlflow_tracking_uri(tracked.tracking_uri):
        info = mlflow.models.get_model_info(f"models:/{model_id}")
        assert info.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
        assert info.saved_input_example_info is not None
        model = mlflow.pyfunc.load_model(f"models:/{model_id}")
        served = model.predict(requests_frame(recordings, labels), params={"top_k": 2})
    expected = predictor.predict(recordings, labels, top_k=2)
    assert served["error"].isna().all()
    assert served["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(served["score"], expected["score"], rtol=1e-6)


def test_predict_command_takes_the_model_of_a_training_run(
    tracked: TinyRun, run: Run, tmp_path: Path
) -> None:
    """``pose-zsl predict --run-id`` ranks with the run's logged model, like the project files."""
    from pose_zsl.cli import EXIT_OK, main

    raw = [
        str(p)
        for p in sorted((tracked.project / "data/01_raw/synthetic_ntu60").glob("*.skeleton"))[:2]
    ]
    labels = ["--labels", "drink water, wave a flag, kick something", "--top-k", "2"]
    from_run, from_files = tmp_path / "run.csv", tmp_path / "files.csv"
    with mlflow_tracking_uri(tracked.tracking_uri):
        source = ["--run-id", run.info.run_id, "--tracking-uri", tracked.tracking_uri]
        assert main(["predict", *raw, *labels, *source, "--output", str(from_run)]) == EXIT_OK
    project = ["--project", str(tracked.project)]
    assert main(["predict", *raw, *labels, *project, "--output", str(from_files)]) == EXIT_OK
    pd.testing.assert_frame_equal(pd.read_csv(from_run), pd.read_csv(from_files))


# ---- the default store -------------------------------------------------------------------


def mlflow_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The project's own ``mlflow.yml`` as kedro-mlflow reads it, resolved from ``tmp_path``."""
    from kedro.config import OmegaConfigLoader
    from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

    from pose_zsl.settings import CONFIG_LOADER_ARGS

    monkeypatch.chdir(tmp_path)  # resolution must not depend on the current directory
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"),
        config_patterns={"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
        **CONFIG_LOADER_ARGS,
    )
    config = KedroMlflowConfig.model_validate(loader["mlflow"])
    return config.model_dump()


def test_default_store_is_an_absolute_sqlite_file_in_the_project_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = mlflow_config(monkeypatch, tmp_path)
    uri = config["server"]["mlflow_tracking_uri"]
    assert uri.startswith("sqlite:///"), uri
    database = Path(uri.removeprefix("sqlite:///"))
    assert database.is_absolute(), uri
    assert database == PROJECT / "mlflow.db"
    artifacts = config["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"]
    assert Path(urlparse(str(artifacts)).path).is_relative_to(PROJECT), artifacts
    assert config["tracking"]["experiment"]["name"] == EXPERIMENT


def test_tracking_uri_environment_variable_selects_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    config = mlflow_config(monkeypatch, tmp_path)
    assert config["server"]["mlflow_tracking_uri"] == "http://127.0.0.1:5999"
