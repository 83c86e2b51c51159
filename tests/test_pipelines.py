"""The Kedro pipelines end to end, through a real Kedro session on tiny synthetic data.

Each test copies the project's configuration into a temporary project, adds a ``test``
environment that shrinks the data and the schedules, and runs ``KedroSession.run`` there, so
the real catalog, parameters, dataset factories and namespaces are exercised.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT = Path(__file__).resolve().parents[1]

SAMPLES_PER_ACTION = 5
TINY_CATALOG = {
    "raw_recordings": {
        "type": "pose_zsl.datasets.SyntheticSkeletonDataset",
        "path": "data/01_raw/synthetic_ntu60",
    }
}
TINY_PARAMETERS = {
    "synthetic_data": {"samples_per_action": SAMPLES_PER_ACTION, "seed": 1, "num_performers": 6},
    "ingestion": {"workers": 1},
    "stgcn_training": {
        "epochs": 2,
        "batch_size": 32,
        "window": 16,
        "width": 0.125,
        "lr_milestones": [1],
    },
    "zsl_training": {
        "seed": 3,  # not the ST-GCN's 0: the metrics' seed column must tell them apart
        "repeats": 2,  # the multi-seed path end to end, at the smallest cost
        "devise": {"epochs": 5},
        "relation_net": {"episodes": 200, "lr_step": 100, "log_every": 50},
        "infonce": {"epochs": 5},
    },
}


@pytest.fixture(scope="module")
def kedro_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throw-away copy of the project (configuration only) with a tiny ``test`` environment."""
    tmp_path = tmp_path_factory.mktemp("kedro")
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
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        patch.setenv("DO_NOT_TRACK", "true")
        bootstrap_project(project)
        yield project


def run_pipelines(project: Path, pipelines: list[str]) -> None:
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=pipelines)


# The tests below run in order on one project: each pipeline reads what the previous wrote.


def test_ingestion_pipeline_writes_the_common_schema(kedro_project: Path) -> None:
    from pose_zsl.skeleton.store import SAMPLE_COLUMNS, SequenceStore

    run_pipelines(kedro_project, ["ingestion"])

    samples = pd.read_parquet(kedro_project / "data/02_intermediate/samples.parquet")
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert len(samples) == 60 * SAMPLES_PER_ACTION
    assert set(samples["source"]) == {"synthetic"}
    assert samples["action_id"].nunique() == 60
    assert set(samples["xsub"]) == {"train", "test"}

    from pose_zsl.datasets import ArrowTableDataset

    path = kedro_project / "data/02_intermediate/sequences.arrow"
    store = SequenceStore(ArrowTableDataset(str(path)).load())
    assert store.ids == samples["sample_id"].tolist()
    first = store[0]
    assert first.shape == (samples["num_frames"].iloc[0], 2, 25, 3)

    actions = pd.read_parquet(kedro_project / "data/02_intermediate/actions.parquet")
    assert len(actions) == 60
    report = (kedro_project / "data/08_reporting/ingestion_report.md").read_text()
    assert f"samples: {60 * SAMPLES_PER_ACTION}" in report
    assert (kedro_project / "data/08_reporting/frames_histogram.png").stat().st_size > 0


def test_label_embedding_and_split_selection(kedro_project: Path) -> None:
    run_pipelines(kedro_project, ["label_embedding", "split_selection"])

    learned = pd.read_parquet(kedro_project / "data/04_feature/label_embeddings_learned.parquet")
    random = pd.read_parquet(kedro_project / "data/04_feature/label_embeddings_random.parquet")
    assert len(learned) == len(random) == 60
    assert set(learned["embedder"]) == {"sentence_transformers"}
    assert set(random["embedder"]) == {"random"}
    assert learned["dim"].iloc[0] == random["dim"].iloc[0] == 384

    splits = pd.read_parquet(kedro_project / "data/05_model_input/splits.parquet")
    assert set(splits["split"]) == {"nearest", "random", "furthest"}
    for _, rows in splits.groupby("split"):
        assert (rows["role"] == "unseen").sum() == 5
        assert not rows.loc[rows["role"] == "unseen", "pseudo_unseen"].any()
    nearest = pd.read_parquet(kedro_project / "data/05_model_input/split_classes_nearest.parquet")
    assert set(nearest["split"]) == {"nearest"}
    assert "nearest seen class" in (kedro_project / "data/08_reporting/splits.md").read_text()


def test_stgcn_training_and_feature_extraction(kedro_project: Path) -> None:
    run_pipelines(kedro_project, ["stgcn_training", "feature_extraction"])

    for split in ("nearest", "random", "furthest"):
        classes = pd.read_parquet(
            kedro_project / f"data/05_model_input/split_classes_{split}.parquet"
        )
        unseen = set(classes.loc[classes["role"] == "unseen", "action_id"])
        features = pd.read_parquet(kedro_project / f"data/04_feature/features_{split}.parquet")
        assert len(features) == 60 * SAMPLES_PER_ACTION  # every sample, seen and unseen
        assert set(features.loc[~features["is_seen"], "action_id"]) == unseen
        assert len(features["feature"].iloc[0]) == 32  # 256 x width 0.125
        assert len(features["seen_logits"].iloc[0]) == 55
        history = pd.read_parquet(
            kedro_project / f"data/07_model_output/stgcn_history_{split}.parquet"
        )
        assert len(history) == 2


def test_zero_shot_grid_and_paper_tables(kedro_project: Path) -> None:
    run_pipelines(kedro_project, ["zsl_training", "evaluation"])

    metrics = pd.read_parquet(kedro_project / "data/08_reporting/metrics.parquet")
    for column in ("dataset", "split", "head", "embedding", "protocol", "metric", "value"):
        assert column in metrics.columns
    for column in ("seed", "n", "ci_low", "ci_high"):
        assert column in metrics.columns
    heads = metrics[~metrics["head"].isin(["vanilla_stgcn", "stgcn"])]
    variants = heads.groupby(["split", "head", "embedding"]).size()
    assert len(variants) == 3 * 3 * 2
    assert set(heads["protocol"]) == {"zsl", "gzsl", "gzsl_calibrated"}
    vanilla = metrics[(metrics["head"] == "vanilla_stgcn") & (metrics["metric"] == "unseen_acc")]
    assert len(vanilla) == 3 and (vanilla["value"] == 0).all()
    _check_counts_intervals_and_class_means(kedro_project, metrics)
    _check_supervised_reference_and_over_splits(kedro_project, metrics)

    table1 = (kedro_project / "data/08_reporting/zsl_top1.md").read_text()
    table2 = (kedro_project / "data/08_reporting/gzsl.md").read_text()
    assert "| relation_net | learned |" in table1 and "| devise | random |" in table1
    # 70.8 [52.6, 83.8] for one seed; 70.8 ± 3.1 [52.6, 83.8] for several
    cell = r"\d+\.\d(?: ± \d+\.\d)? \[\d+\.\d, \d+\.\d\]"
    assert re.search(rf"\| relation_net \| learned \| {cell} \|", table1), table1
    assert "n = unseen test samples per split: nearest " in table1
    assert re.search(rf"\| devise \| random \| {cell} / {cell} \|", table2), table2
    suh = (kedro_project / "data/08_reporting/gzsl_seen_unseen.md").read_text()
    assert "Calibrated" in suh


def _check_supervised_reference_and_over_splits(project: Path, metrics: pd.DataFrame) -> None:
    """The seen-class ST-GCN's own top-1 per split, recomputed from its logits, and the summary
    over the splits built from the per-split rows."""
    supervised = metrics[(metrics["protocol"] == "supervised") & (metrics["metric"] == "top1")]
    assert set(supervised["head"]) == {"stgcn"} and len(supervised) == 3
    for row in supervised.itertuples():
        features = pd.read_parquet(project / f"data/04_feature/features_{row.slot}.parquet")
        seen_test = features[(features["protocol_split"] == "test") & features["is_seen"]]
        classes = pd.read_parquet(project / f"data/05_model_input/split_classes_{row.slot}.parquet")
        seen = np.sort(classes.loc[classes["role"] == "seen", "action_id"].to_numpy())
        predicted = seen[np.argmax(np.stack(seen_test["seen_logits"].to_numpy()), axis=1)]
        expected = 100.0 * np.mean(predicted == seen_test["action_id"].to_numpy())
        assert row.n == len(seen_test)
        assert row.value == pytest.approx(expected, abs=1e-9)  # same hits, one division
    over = pd.read_parquet(project / "data/08_reporting/metrics_over_splits.parquet")
    reference = over[(over["protocol"] == "supervised") & (over["comparison"] == "")]
    assert reference["splits"].tolist() == [3]
    assert reference["mean"].iloc[0] == pytest.approx(supervised["value"].mean())
    paired = over[over["comparison"] == "learned - random"]
    assert set(paired["head"]) == {"devise", "relation_net", "infonce"}
    assert "Learned minus random" in (project / "data/08_reporting/over_splits.md").read_text()


def _check_counts_intervals_and_class_means(project: Path, metrics: pd.DataFrame) -> None:
    """n, intervals, seeds and per-class means of the evaluation against what produced them."""
    import torch

    for split, rows in metrics.groupby("slot"):
        features = pd.read_parquet(project / f"data/04_feature/features_{split}.parquet")
        test = features[features["protocol_split"] == "test"]
        unseen_test = int((~test["is_seen"]).sum())
        zsl = rows[rows["protocol"] == "zsl"]
        assert (zsl["n"] == unseen_test).all(), (split, unseen_test, zsl["n"].unique())
        seen_acc = rows[rows["metric"] == "seen_acc"]
        assert (seen_acc["n"] == len(test) - unseen_test).all()
    # Every interval holds its value; only the collapse diagnostics have none.
    bounded = metrics.dropna(subset=["ci_low", "ci_high"])
    assert (bounded["ci_low"] <= bounded["value"]).all()
    assert (bounded["value"] <= bounded["ci_high"]).all()
    assert bounded["ci_low"].ge(0).all() and bounded["ci_high"].le(100).all()
    unbounded = set(metrics.loc[metrics[["ci_low", "ci_high"]].isna().any(axis=1), "metric"])
    assert unbounded == {"top_class_share", "prediction_entropy"}
    # One row of each new kind per variant and seed: 18 heads x repeats, and 3 vanilla
    # baselines (one backbone seed, no calibration).
    heads = 18 * TINY_PARAMETERS["zsl_training"]["repeats"]
    for protocol, metric, count in [
        ("zsl", "top1_class_mean", heads + 3),
        ("gzsl", "unseen_acc_class_mean", heads + 3),
        ("gzsl", "harmonic_mean_class_mean", heads + 3),
        ("gzsl_calibrated", "harmonic_mean_class_mean", heads),
        ("zsl", "top_class_share", heads + 3),
        ("zsl", "prediction_entropy", heads + 3),
    ]:
        chosen = metrics[(metrics["protocol"] == protocol) & (metrics["metric"] == metric)]
        assert len(chosen) == count, (protocol, metric, len(chosen))
    # The GZSL per-class means are the means of the per-class accuracy table's rows.
    main_seed = TINY_PARAMETERS["zsl_training"]["seed"]
    indexed = metrics[metrics["seed"] == main_seed].set_index(
        ["slot", "head", "embedding", "protocol", "metric"]
    )
    per_class = pd.read_parquet(
        project / "data/08_reporting/per_class_furthest_devise_learned.parquet"
    )
    classes = pd.read_parquet(project / "data/05_model_input/split_classes_furthest.parquet")
    unseen = set(classes.loc[classes["role"] == "unseen", "action_id"])
    for metric, chosen in (
        ("unseen_acc_class_mean", per_class["action_id"].isin(unseen)),
        ("seen_acc_class_mean", ~per_class["action_id"].isin(unseen)),
    ):
        expected = per_class.loc[chosen, "accuracy"].mean()
        value = indexed.loc[("furthest", "devise", "learned", "gzsl", metric), "value"]
        assert value == pytest.approx(expected, rel=1e-12)  # the same hits, averaged alike
    # The seed column is the one the head artefact records (the ST-GCN's for the baseline).
    head = torch.load(project / "data/06_models/zsl_furthest_devise_learned.pt", weights_only=True)
    assert head["meta"]["seed"] == TINY_PARAMETERS["zsl_training"]["seed"]
    devise = metrics[(metrics["slot"] == "furthest") & (metrics["head"] == "devise")]
    assert set(devise["seed"]) == {main_seed, main_seed + 1}
    assert set(metrics.loc[metrics["head"] == "vanilla_stgcn", "seed"]) == {0}


def test_model_export_saves_a_servable_predictor(kedro_project: Path) -> None:
    """The exported pyfunc folder ranks exactly like the predictor built from the catalog
    files of the same variant."""
    import mlflow

    from pose_zsl.inference import ZeroShotPredictor, requests_frame

    run_pipelines(kedro_project, ["model_export"])

    folder = kedro_project / "data/06_models/zero_shot_predictor"
    assert (folder / "MLmodel").is_file()
    model = mlflow.pyfunc.load_model(str(folder))
    assert model.model_config == {"device": "auto", "batch_size": 64}

    predictor = ZeroShotPredictor.from_project(kedro_project)
    raw = sorted((kedro_project / "data/01_raw/synthetic_ntu60").glob("*.skeleton"))[:4]
    sequences, unreadable = predictor.read(raw)
    assert len(sequences) == 4 and unreadable.empty
    labels = ["drink water", "wave a flag", "kick something", "sit down"]
    expected = predictor.predict(sequences, labels, top_k=3)
    served = model.predict(requests_frame(sequences, labels), params={"top_k": 3})
    assert served["error"].isna().all()
    assert served["label"].tolist() == expected["label"].tolist()
    pd.testing.assert_series_equal(served["score"], expected["score"], rtol=1e-6)


def test_a_composed_pipeline_runs_by_name(kedro_project: Path) -> None:
    """``kedro run --pipelines one_variant`` failed with an ImportError (Kedro 1.x imports only
    the named pipeline's package, and the composed pipeline has none). Its last node reads what
    the runs above made."""
    folder = kedro_project / "data/06_models/zero_shot_predictor"
    before = (folder / "MLmodel").stat().st_mtime_ns
    with KedroSession.create(project_path=kedro_project, env="test") as session:
        session.run(pipeline_names=["one_variant"], node_names=["package_predictor"])
    assert (folder / "MLmodel").stat().st_mtime_ns > before
