"""``pose-zsl predict`` end to end, and the MLflow pyfunc model against it.

Uses the tiny model sets of ``test_inference.py`` (built once per session): an NTU-layout
model trained on synthetic recordings and a Kinect v1 model trained on MSR Action3D files,
applied to the real NTU samples and MSR files in /work/shared, read in place.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import require_shared
from test_inference import (
    EMBEDDING,
    HEAD,
    MSR_DIR,
    SPLIT,
    ModelSet,
    copy_configuration,
    inference_params,
    project_catalog,
)

from pose_zsl.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from pose_zsl.inference import MissingModelError, ModelFiles, ZeroShotPredictor, requests_frame
from pose_zsl.mlflow_model import (
    load_predictor,
    log_pyfunc_model,
    pyfunc_signature,
    write_model_files,
)

SENT2VEC_MODEL = Path(__file__).resolve().parents[2] / "shared/fixtures/sent2vec/tiny_unigram.bin"
LABELS = "drink water, brushing teeth, pickup, wave a flag, juggle three balls"
VARIANT = ["--split", SPLIT, "--head", HEAD, "--embedding", EMBEDDING]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory):
    """One throw-away SQLite MLflow store for the module (creating one takes seconds)."""
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/m.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield uri
    mlflow.set_tracking_uri(previous)


def run_cli(*args: str) -> int:
    return main(["predict", *args])


def predict_args(models: ModelSet, files: list[Path], *extra: str) -> list[str]:
    return [
        *map(str, files),
        "--labels",
        LABELS,
        *VARIANT,
        "--project",
        str(models.project),
        *extra,
    ]


def test_predict_real_ntu_recordings(ntu_models, ntu_files, tmp_path, capsys):
    output = tmp_path / "ranked.csv"
    status = run_cli(*predict_args(ntu_models, ntu_files, "--top-k", "3", "--output", str(output)))
    printed = capsys.readouterr()
    assert status == EXIT_OK, printed.err
    header = printed.out.splitlines()[0].split()
    assert header == [
        "recording",
        "rank",
        "label",
        "score",
        "share",
        "raw_score",
        "seen",
        "matched_class",
    ]
    for path in ntu_files:
        assert printed.out.count(str(path)) == 3
    written = pd.read_csv(output)
    assert len(written) == 3 * len(ntu_files)
    predictor = ZeroShotPredictor.from_project(ntu_models.project, SPLIT, HEAD, EMBEDDING)
    recordings, _ = predictor.read(ntu_files)
    expected = predictor.predict(recordings, LABELS.split(", "), top_k=3)
    assert written["label"].tolist() == expected["label"].tolist()
    assert written["recording"].tolist() == expected["recording"].tolist()
    np.testing.assert_allclose(written["score"], expected["score"], rtol=1e-6)


def test_console_script_finds_the_project(ntu_models, ntu_files, tmp_path):
    """The installed ``pose-zsl`` entry point, run from inside the project without --project,
    with the candidates in a file."""
    script = Path(sys.executable).with_name("pose-zsl")
    command = str(script) if script.exists() else shutil.which("pose-zsl")
    if command is None:
        pytest.skip("the pose-zsl console script is not installed")
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("# candidates\ndrink water\n\nwave a flag, then bow\npickup\n")
    output = tmp_path / "ranked.parquet"
    result = subprocess.run(
        [command, "predict", *map(str, ntu_files[:2]), "--labels-file", str(labels_file),
         *VARIANT, "--top-k", "2", "--output", str(output)],
        cwd=ntu_models.project / "data",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == EXIT_OK, result.stderr
    written = pd.read_parquet(output)
    assert len(written) == 4
    assert set(written["label"]) <= {"drink water", "wave a flag, then bow", "pickup"}
    assert written["recording"].unique().tolist() == [str(p) for p in ntu_files[:2]]
    assert all(str(p) in result.stdout for p in ntu_files[:2])


def test_predict_msr_recordings_with_a_kinect_model(msr_models, tmp_path, capsys):
    files = [MSR_DIR / f"a{a:02d}_s02_e01_skeleton3D.txt" for a in (1, 2, 7)]
    output = tmp_path / "msr.parquet"
    status = run_cli(
        *map(str, files), "--labels", "high arm wave, horizontal arm wave, draw x, clap hands",
        *VARIANT, "--project", str(msr_models.project), "--top-k", "4", "--output", str(output),
    )  # fmt: skip
    assert status == EXIT_OK, capsys.readouterr().err
    written = pd.read_parquet(output)
    assert len(written) == 12
    seen = written.drop_duplicates("label").set_index("label")["seen"].to_dict()
    assert seen == {
        "high arm wave": True, "horizontal arm wave": True, "draw x": False, "clap hands": False,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# bad input


def test_unreadable_recording_is_skipped_and_the_rest_predicted(ntu_models, ntu_files, tmp_path):
    broken = tmp_path / "S001C001P001R001A009.skeleton"
    broken.write_text("12\n")
    output = tmp_path / "out.csv"
    args = predict_args(ntu_models, [broken, ntu_files[0]], "--output", str(output))
    assert run_cli(*args) == EXIT_PARTIAL
    written = pd.read_csv(output)
    predicted, failed = written[written["error"].isna()], written[written["error"].notna()]
    assert predicted["recording"].unique().tolist() == [str(ntu_files[0])]
    assert len(predicted) == 5  # the default --top-k
    # the skipped recording is a row a script keeping the CSV still sees, with its reason
    assert failed["recording"].tolist() == [str(broken)] and failed["rank"].tolist() == [0]
    assert failed["error"].iloc[0].startswith(f"{broken}:") and failed["label"].isna().all()


def test_skipped_recordings_are_reported(ntu_models, ntu_files, tmp_path, capsys):
    broken = tmp_path / "S001C001P001R001A009.skeleton"
    broken.write_text("12\n")
    assert run_cli(*predict_args(ntu_models, [broken, ntu_files[0]])) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert f"pose-zsl: skipped {broken}: {broken}:" in err


def test_nothing_predicted_is_a_failure(ntu_models, tmp_path, capsys):
    broken = tmp_path / "S001C001P001R001A009.skeleton"
    broken.write_text("garbage\n")
    output = tmp_path / "out.csv"
    args = predict_args(ntu_models, [broken, tmp_path / "absent.skeleton"], "--output", str(output))
    assert run_cli(*args) == EXIT_FAILED
    assert pd.read_csv(output)["error"].notna().sum() == 2
    err = capsys.readouterr().err
    assert "none of the 2 recording(s) could be predicted" in err
    assert f"skipped {tmp_path / 'absent.skeleton'}: no such file or folder" in err


def test_wrong_layout_is_reported(ntu_models, capsys):
    require_shared(MSR_DIR, "the MSR Action3D recordings")
    msr_file = MSR_DIR / "a01_s01_e01_skeleton3D.txt"
    assert run_cli(*predict_args(ntu_models, [msr_file])) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "has 20 joints (a kinect-v1 recording?)" in err
    assert "'ntu-rgb+d' with 25 joints" in err


def test_calibration_flag(ntu_models, ntu_files, tmp_path, capsys):
    from test_inference import GAMMA

    for choice, shift in (("auto", GAMMA), ("off", 0.0), ("0.25", 0.25)):
        output = tmp_path / f"{choice}.csv"
        args = predict_args(ntu_models, ntu_files[:2], "--top-k", "5", "--output", str(output))
        assert run_cli(*args, "--calibration", choice) == EXIT_OK
        written = pd.read_csv(output)
        assert written["seen"].any()
        # scores are written with full float64 precision and the shift is one subtraction
        np.testing.assert_allclose(
            written["score"],
            written["raw_score"] - np.where(written["seen"], shift, 0.0),
            rtol=0,
            atol=1e-12,
        )
    capsys.readouterr()
    bad = predict_args(ntu_models, ntu_files[:1], "--calibration", "strong")
    assert run_cli(*bad) == EXIT_USAGE
    assert "--calibration must be 'auto'" in capsys.readouterr().err


def test_cli_reproduces_the_evaluations_gzsl_seen_and_unseen_accuracy(
    tiny_tracked_project, tmp_path
):
    """On the run's test recordings, with every class name as a candidate, the CLI's top-1
    gives the evaluation's GZSL S and U: calibrated with ``--calibration auto``, uncalibrated
    with ``off`` (same features, same scores, same constant)."""
    from pose_zsl.models.heads import load_head, score
    from pose_zsl.zsl.metrics import calibrated_stacking
    from pose_zsl.zsl.tables import class_embeddings

    project = tiny_tracked_project.project
    split, head, embedding = "nearest", "relation_net", "learned"
    data = project / "data"
    features = pd.read_parquet(data / "04_feature" / f"features_{split}.parquet")
    test = features[features["protocol_split"] == "test"]
    table = pd.read_parquet(data / "04_feature" / f"label_embeddings_{embedding}.parquet")
    name_of = dict(zip(table["action_id"].astype(int), table["action_name"], strict=True))
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(table.sort_values("action_id")["action_name"]) + "\n")
    classes = pd.read_parquet(data / "05_model_input" / f"split_classes_{split}.parquet")
    seen = set(classes.loc[classes["role"] == "seen", "action_id"].astype(int))
    raw = data / "01_raw" / "synthetic_ntu60"
    truth = pd.Series(
        test["action_id"].astype(int).to_numpy(),
        index=[str(raw / f"{sample}.skeleton") for sample in test["sample_id"]],
    )
    assert truth.map(seen.__contains__).any() and not truth.map(seen.__contains__).all()
    head_model = load_head(data / "06_models" / f"zsl_{split}_{head}_{embedding}.pt")
    gamma = json.loads(
        (data / "07_model_output" / f"calibration_{split}_{head}_{embedding}.json").read_text()
    )
    vectors, class_ids = class_embeddings(table)
    metrics = pd.read_parquet(data / "08_reporting" / "metrics.parquet")
    variant = metrics[
        (metrics["slot"] == split)
        & (metrics["head"] == head)
        & (metrics["embedding"] == embedding)
        & (metrics["seed"] == gamma["seed"])  # the served head's seed; other seeds have rows
    ]
    for choice, protocol in (("auto", "gzsl_calibrated"), ("off", "gzsl")):
        output = tmp_path / f"{choice}.parquet"
        status = run_cli(
            *truth.index, "--labels-file", str(labels_file), "--top-k", "1",
            "--split", split, "--head", head, "--embedding", embedding,
            "--project", str(project), "--calibration", choice, "--output", str(output),
        )  # fmt: skip
        assert status == EXIT_OK
        top1 = pd.read_parquet(output).set_index("recording")["label"]
        assert sorted(top1.index) == sorted(truth.index)
        hits = top1.loc[truth.index] == truth.map(name_of)
        is_seen = truth.map(seen.__contains__)
        expected = variant[variant["protocol"] == protocol].set_index("metric")["value"]
        # Both are shares of the same recordings: equal unless a feature differed enough to
        # flip a top-1, which the identical-features test rules out.
        assert 100.0 * hits[is_seen].mean() == pytest.approx(expected["seen_acc"], abs=1e-9)
        assert 100.0 * hits[~is_seen].mean() == pytest.approx(expected["unseen_acc"], abs=1e-9)
        # Sample by sample too: the evaluation's scoring of the stored features.
        scores = calibrated_stacking(
            score(head_model, np.stack(test["feature"].to_numpy()), vectors),
            class_ids,
            sorted(seen),
            float(gamma["gamma"]) if choice == "auto" else 0.0,
        )
        evaluated = pd.Series(class_ids[scores.argmax(axis=1)], index=truth.index).map(name_of)
        assert top1.loc[truth.index].tolist() == evaluated.tolist()


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["--labels", " , "], "no candidate action names"),
        ([], "no candidate action names"),
        (["--labels", "drink water, Drink water."], "duplicate candidate action names"),
        (["--labels", "wave", "--top-k", "0"], "--top-k must be >= 1"),
        (["--labels", "wave", "--output", "out.txt"], "use a .parquet or .csv"),
        (["--labels", "wave", "--model-uri", "m", "--run-id", "r"], "not both"),
    ],
)
def test_bad_arguments(ntu_models, ntu_files, labels, message, capsys):
    args = [str(ntu_files[0]), *labels, *VARIANT, "--project", str(ntu_models.project)]
    assert run_cli(*args) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_missing_models_say_which_pipelines_to_run(ntu_files, tmp_path, capsys):
    copy_configuration(tmp_path)
    args = [str(ntu_files[0]), "--labels", "wave", "--project", str(tmp_path)]
    assert run_cli(*args) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "trained model files are missing" in err
    assert str(tmp_path / "data" / "06_models" / "stgcn_nearest.pt") in err
    match = re.search(r"run `kedro run --to-outputs (\S+)`", err)
    assert match is not None, err
    outputs = match[1].split(",")
    assert outputs == [
        "nearest.stgcn_model",
        "nearest.relation_net.learned.zsl_model",
        "label_embeddings_learned",
        "nearest.relation_net.learned.calibration",
    ]
    # Kedro can run up to exactly these datasets of the project's pipeline
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(Path(__file__).resolve().parents[1])
    needed = pipelines["__default__"].to_outputs(*outputs)
    assert {"ingest_recordings", "nearest.train_stgcn"} <= {n.name for n in needed.nodes}


def test_env_picks_that_environments_models(ntu_models, ntu_files, tmp_path, capsys):
    """The models live under another environment's data root only: the default environment
    finds none, ``--env`` finds them (and its first split, as no --split is given)."""
    project = tmp_path / "project"
    shutil.copytree(ntu_models.project, project)
    (project / "data").rename(tmp_path / "data")
    (project / "data").mkdir()
    (tmp_path / "data").rename(project / "data" / "other")
    (project / "conf" / "other").mkdir()
    (project / "conf" / "other" / "globals.yml").write_text("data_root: data/other\n")
    args = [str(ntu_files[0]), "--labels", LABELS, "--head", HEAD, "--embedding", EMBEDDING]
    args += ["--project", str(project)]
    assert run_cli(*args) == EXIT_FAILED
    assert str(project / "data" / "06_models" / f"stgcn_{SPLIT}.pt") in capsys.readouterr().err
    assert run_cli(*args, "--env", "other") == EXIT_OK


def test_a_project_without_configuration_is_a_usage_error(ntu_files, tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "pose_zsl"\n')
    args = [str(ntu_files[0]), "--labels", "wave", "--project", str(tmp_path)]
    assert run_cli(*args) == EXIT_USAGE
    assert f"--project {tmp_path}: no conf/base folder" in capsys.readouterr().err


def test_an_unknown_environment_is_a_usage_error_listing_them(ntu_models, ntu_files, capsys):
    args = predict_args(ntu_models, ntu_files[:1], "--env", "nope")
    assert run_cli(*args) == EXIT_USAGE
    assert "--env: environment 'nope' does not exist" in capsys.readouterr().err


def test_no_project_found(ntu_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(str(ntu_files[0]), "--labels", "wave") == EXIT_USAGE
    assert "not inside a Kedro project" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# MLflow


def test_pyfunc_model_ranks_like_the_cli(ntu_models, ntu_files, tmp_path, tracking_uri, capsys):
    predictor = ZeroShotPredictor.from_project(ntu_models.project, SPLIT, HEAD, EMBEDDING)
    recordings, _ = predictor.read(ntu_files)
    example = requests_frame([recordings[0].data[:20]], ["drink water", "wave"], ["example"])
    files = ntu_models.files
    # from in-memory catalog objects, as a Kedro node has them, written out as the catalog would
    (tmp_path / "model_files").mkdir()
    written = write_model_files(
        torch.load(files.stgcn, weights_only=True),
        torch.load(files.head, weights_only=True),
        pd.read_parquet(files.label_embeddings),
        json.loads(files.calibration.read_text()),
        tmp_path / "model_files",
    )
    with mlflow.start_run() as run:
        info = log_pyfunc_model(written, input_example=example)

    cli_output = tmp_path / "cli.csv"
    args = predict_args(ntu_models, ntu_files, "--top-k", "3", "--output", str(cli_output))
    assert run_cli(*args) == EXIT_OK
    from_cli = pd.read_csv(cli_output)

    model = mlflow.pyfunc.load_model(info.model_uri)
    assert model.metadata.signature.params.to_dict()[0]["name"] == "top_k"
    requests = requests_frame(recordings, LABELS.split(", "))
    served = model.predict(requests, params={"top_k": 3})
    assert served["error"].isna().all()
    for column in ("recording", "rank", "label"):
        assert served[column].tolist() == from_cli[column].tolist()
    np.testing.assert_allclose(served["score"], from_cli["score"], rtol=1e-6)

    # calibration is a request parameter: "off" serves the raw scores, as the predictor does.
    params = model.metadata.signature.params.to_dict()
    assert {"name": "calibration", "type": "string", "default": "auto", "shape": None} in params
    expected = predictor.predict(recordings, LABELS.split(", "), top_k=3, calibration="off")
    raw = model.predict(requests, params={"top_k": 3, "calibration": "off"})
    assert raw["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(raw["score"], raw["raw_score"], rtol=0, atol=0)
    with pytest.raises(Exception, match="the calibration parameter must be 'auto'"):
        model.predict(requests, params={"calibration": "strong"})

    # The CLI can load the same model by URI and by run id.
    for source in (["--model-uri", info.model_uri], ["--run-id", run.info.run_id]):
        output = tmp_path / "via_mlflow.csv"
        args = [*map(str, ntu_files), "--labels", LABELS, *source, "--top-k", "3"]
        assert run_cli(*args, "--tracking-uri", tracking_uri, "--output", str(output)) == EXIT_OK
        pd.testing.assert_frame_equal(pd.read_csv(output), from_cli)

    # A malformed request row comes back as an error row; the others are still ranked.
    bad = requests.iloc[:1].assign(shape=[np.array([7, 1, 25, 3])], recording="bad")
    mixed = model.predict(pd.concat([bad, requests.iloc[1:2]], ignore_index=True))
    assert mixed.loc[mixed["recording"] == "bad", "error"].str.contains("shape").all()
    assert mixed.loc[mixed["recording"] != "bad", "error"].isna().all()
    assert len(mixed) == 1 + 5


def test_load_predictor_refuses_other_models(tmp_path, tracking_uri):
    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="echo", python_model=Echo(), pip_requirements=["mlflow"]
        )
    with pytest.raises(ValueError, match="not a pose-zsl zero-shot predictor"):
        load_predictor(info.model_uri)


def test_serving_pipeline_as_kedro_mlflow_model(
    ntu_models, ntu_files, tracking_uri, tmp_path, monkeypatch
):
    """What kedro-mlflow's pipeline_ml_factory logs at the end of a training run (the serving
    pipeline as a KedroPipelineModel with the catalog files as artefacts) ranks like the
    predictor."""
    from kedro_mlflow.mlflow import KedroPipelineModel

    from pose_zsl.pipelines.inference import create_serving_pipeline

    monkeypatch.chdir(ntu_models.project)
    labels = LABELS.split(", ")
    catalog = project_catalog({**inference_params([], ""), "top_k": 3})
    model = KedroPipelineModel(
        pipeline=create_serving_pipeline(SPLIT, HEAD, EMBEDDING),
        catalog=catalog,
        input_name="inference_requests",
    )
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="kedro_serving",
            python_model=model,
            artifacts=model.extract_pipeline_artifacts(tmp_path),
            signature=pyfunc_signature(with_params=False),
            pip_requirements=["mlflow"],
        )
    predictor = ZeroShotPredictor.from_files(ntu_models.files)
    recordings, _ = predictor.read(ntu_files[:2])
    served = mlflow.pyfunc.load_model(info.model_uri).predict(requests_frame(recordings, labels))
    expected = predictor.predict(recordings, labels, top_k=3)
    assert served["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(served["score"], expected["score"], rtol=1e-6)


def catalog_bundle(models: ModelSet, **options: object) -> dict:
    """What the model_export node hands to the catalog: the variant's objects + options."""
    files = models.files
    return {
        "stgcn_model": torch.load(files.stgcn, weights_only=True),
        "zsl_model": torch.load(files.head, weights_only=True),
        "label_embeddings": pd.read_parquet(files.label_embeddings),
        "calibration": json.loads(files.calibration.read_text()),
        "device": "cpu",
        "batch_size": 8,
        **options,
    }


def test_predictor_dataset_saves_a_folder_and_logs_only_in_an_active_run(
    ntu_models, ntu_files, tracking_uri, tmp_path
):
    from mlflow import MlflowClient
    from mlflow.models import Model

    from pose_zsl.datasets import ZeroShotPredictorDataset

    registered = "pose-zsl-dataset-test"
    folder = tmp_path / "predictor"
    dataset = ZeroShotPredictorDataset(
        str(folder), name="predictor", registered_model_name=registered
    )
    client = MlflowClient(tracking_uri)

    dataset.save(catalog_bundle(ntu_models))  # no active run: the folder only
    assert dataset.exists()
    first = Model.load(str(folder)).model_uuid
    assert client.search_registered_models(f"name = '{registered}'") == []

    with mlflow.start_run() as run:
        dataset.save(catalog_bundle(ntu_models))
    assert Model.load(str(folder)).model_uuid != first  # the folder was replaced whole
    assert not list(tmp_path.glob(".predictor.*"))  # no staging folder left behind
    versions = client.search_model_versions(f"name = '{registered}'")
    assert [(str(v.version), v.run_id) for v in versions] == [("1", run.info.run_id)]

    labels = LABELS.split(", ")
    predictor = ZeroShotPredictor.from_files(ntu_models.files)
    recordings, _ = predictor.read(ntu_files[:2])
    expected = predictor.predict(recordings, labels, top_k=2)
    for model in (dataset.load(), mlflow.pyfunc.load_model(f"models:/{registered}/1")):
        assert model.model_config == {"device": "cpu", "batch_size": 8}
        served = model.predict(requests_frame(recordings, labels), params={"top_k": 2})
        assert served["label"].tolist() == expected["label"].tolist()
        np.testing.assert_allclose(served["score"], expected["score"], rtol=1e-6)


def test_models_that_do_not_belong_together_are_refused_before_anything_is_written(
    ntu_models, tmp_path, tracking_uri
):
    """A head from another split fails the export node, naming the artefacts, and the
    dataset too; no folder or logged model is left."""
    from kedro.io import DatasetError

    from pose_zsl.datasets import ZeroShotPredictorDataset
    from pose_zsl.inference import ModelMismatchError
    from pose_zsl.pipelines.model_export.nodes import package_predictor

    bundle = catalog_bundle(ntu_models)
    bundle["zsl_model"] = {**bundle["zsl_model"], "seen_class_ids": [0, 1]}
    models = [bundle[key] for key in ("stgcn_model", "zsl_model", "label_embeddings")]
    with pytest.raises(ModelMismatchError, match="zero-shot head artefact was trained on"):
        package_predictor(*models, bundle["calibration"], {"device": "cpu", "batch_size": 8})
    folder = tmp_path / "predictor"
    with mlflow.start_run() as run, pytest.raises(DatasetError, match="different splits"):
        ZeroShotPredictorDataset(str(folder)).save(bundle)
    assert not folder.exists() and not list(tmp_path.glob(".predictor.*"))
    logged = mlflow.search_logged_models(
        filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list"
    )
    assert logged == []


def test_a_sent2vec_model_travels_with_the_pyfunc(
    ntu_models, ntu_files, tracking_uri, tmp_path, monkeypatch
):
    """A model whose labels were embedded with a project's Sent2Vec ``.bin`` embeds new names
    after the project (and its ``.bin``) is gone; without the file logging fails, naming it."""
    from pose_zsl.mlflow_model import write_model_files
    from pose_zsl.models.heads import RelationNetConfig, head_artifact
    from pose_zsl.skeleton.ntu_tables import action_names
    from pose_zsl.text.embedders import embedding_matrix, label_embedding_table, make_embedder
    from pose_zsl.training.head_trainer import train_head

    require_shared(SENT2VEC_MODEL, "the tiny Sent2Vec model")
    project = tmp_path / "project"
    (project / "data" / "01_raw").mkdir(parents=True)
    shutil.copy(SENT2VEC_MODEL, project / "data" / "01_raw" / "tiny.bin")
    monkeypatch.chdir(project)  # the catalog's relative model path, as under `kedro run`
    table = label_embedding_table(
        action_names(60), make_embedder("sent2vec", model_path="data/01_raw/tiny.bin")
    )
    seen = ntu_models.features[ntu_models.features["is_seen"]]
    head, _ = train_head(
        HEAD,
        np.stack(seen["feature"].to_numpy()),
        seen["action_id"].to_numpy(),
        embedding_matrix(table),
        table["action_id"].to_numpy(),
        seen_class_ids=sorted(set(seen["action_id"].astype(int))),
        config=RelationNetConfig(episodes=20, attribute_hidden=16, relation_hidden=8),
    )
    bundle = catalog_bundle(ntu_models)
    files = write_model_files(
        bundle["stgcn_model"],
        head_artifact(head, {"split": SPLIT, "embedder": "sent2vec"}),
        table,
        bundle["calibration"],
        project,
    )
    with mlflow.start_run():
        info = log_pyfunc_model(files, "sent2vec_predictor", base_dir=project)

    (project / "data" / "01_raw" / "tiny.bin").unlink()
    monkeypatch.chdir(tmp_path)
    labels = ["drink water", "juggle three balls", "brushing hair"]
    predictor = ZeroShotPredictor.from_files(files, text_model=SENT2VEC_MODEL)
    recordings, _ = predictor.read(ntu_files[:2])
    expected = predictor.predict(recordings, labels, top_k=3)
    served = mlflow.pyfunc.load_model(info.model_uri).predict(requests_frame(recordings, labels))
    assert served["error"].isna().all()
    assert served["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(served["score"], expected["score"], rtol=1e-6)

    with mlflow.start_run(), pytest.raises(FileNotFoundError, match="tiny.bin"):
        log_pyfunc_model(files, "sent2vec_predictor", base_dir=project)


def test_logging_needs_the_trained_models(tmp_path, tracking_uri):
    copy_configuration(tmp_path)
    with mlflow.start_run(), pytest.raises(MissingModelError, match="kedro run --to-outputs"):
        log_pyfunc_model(ModelFiles.for_variant(tmp_path))


def test_kedro_project_command_forwards_to_the_cli(ntu_models, ntu_files, tmp_path):
    """Kedro loads ``pose_zsl.cli.cli`` for project commands: ``kedro predict`` is the same
    command (and without that group every ``kedro`` call in the project would fail)."""
    import click
    from click.testing import CliRunner

    from pose_zsl.cli import cli

    assert isinstance(cli, click.Group)
    output = tmp_path / "kedro.csv"
    args = ["predict", *predict_args(ntu_models, ntu_files[:1], "--output", str(output))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == EXIT_OK, result.output
    assert len(pd.read_csv(output)) == 5
    assert CliRunner().invoke(cli, ["predict", str(ntu_files[0])]).exit_code == EXIT_USAGE
