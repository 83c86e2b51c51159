"""Zero-shot inference (:mod:`pose_zsl.inference`) with a tiny model set trained in the test.

The model set is real but small: synthetic NTU-format recordings of six actions, ingested like
real data, a 1/8-width ST-GCN trained for one epoch on four seen classes, its features, a small
Relation Network on random label embeddings of the 60 NTU class names, and a calibration
constant, written where the catalog (and so the CLI) expects them. ``test_cli.py`` reuses it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import require_shared

from pose_zsl.inference import (
    MissingModelError,
    ModelFiles,
    ModelMismatchError,
    Recording,
    ZeroShotPredictor,
    check_labels,
    embedder_from_table,
    infer_templates,
    rank_requests,
    read_recordings,
    requests_frame,
    split_labels,
    text_model_path,
)
from pose_zsl.text.label_text import normalise_label

SHARED = Path(__file__).resolve().parents[2] / "shared"
NTU_SAMPLES = SHARED / "data" / "ntu_samples"
MSR_DIR = SHARED / "data" / "real" / "MSRAction3D" / "real_world_coordinates"

SPLIT, HEAD, EMBEDDING = "nearest", "relation_net", "random"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
NTU_ACTIONS = [1, 2, 3, 4, 5, 6]  # 1-based: drink water ... pickup
NTU_SEEN = [0, 1, 2, 3]  # drink water, eat meal/snack, brushing teeth, brushing hair
NTU_UNSEEN = [4, 5]  # drop, pickup
MSR_SEEN = [0, 1]  # high arm wave, horizontal arm wave
GAMMA = 0.05
EMBED_DIM = 32


@dataclass(frozen=True)
class ModelSet:
    """A project folder holding one trained variant, plus what it was trained on."""

    project: Path
    files: ModelFiles
    samples: pd.DataFrame
    sequences: object  # pa.Table
    features: pd.DataFrame
    raw_dir: Path | None


_MODEL_SETS: dict[str, ModelSet] = {}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_model_set(
    project: Path,
    samples: pd.DataFrame,
    sequences,
    seen: list[int],
    action_names: list[str],
    *,
    max_bodies: int,
    raw_dir: Path | None = None,
) -> ModelSet:
    """Train ST-GCN -> features -> head on ``seen`` and write the four catalog files."""
    from pose_zsl.models.heads import RelationNetConfig, head_artifact
    from pose_zsl.text.embedders import RandomEmbedder, embedding_matrix, label_embedding_table
    from pose_zsl.training.features import extract_features
    from pose_zsl.training.head_trainer import train_head
    from pose_zsl.training.stgcn_trainer import TrainConfig, stgcn_artifact, train_stgcn

    config = TrainConfig(
        epochs=1,
        batch_size=16,
        window=16,
        width=0.125,
        max_bodies=max_bodies,
        val_fraction=0.0,
        device="cpu",
        precision="fp32",
    )
    present = set(samples["action_id"].astype(int))
    unseen = sorted(present - set(seen))
    model, result = train_stgcn(samples, sequences, seen, config)
    meta = result.artifact_meta()
    features = extract_features(
        model, samples, sequences, seen, unseen_ids=unseen, meta=meta, device="cpu"
    )
    table = label_embedding_table(action_names, RandomEmbedder(seed=3, dim=EMBED_DIM))
    train = features[features["is_seen"]]
    head, _ = train_head(
        HEAD,
        np.stack(train["feature"].to_numpy()),
        train["action_id"].to_numpy(),
        embedding_matrix(table),
        table["action_id"].to_numpy(),
        seen_class_ids=seen,
        config=RelationNetConfig(
            episodes=60, lr=1e-3, attribute_hidden=32, relation_hidden=16, log_every=30
        ),
    )
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "pose_zsl"\n')
    # the configuration a real project has: the model files are where its catalog says
    copy_configuration(project)
    files = ModelFiles.for_variant(project, SPLIT, HEAD, EMBEDDING)
    for path in files.as_dict().values():
        path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stgcn_artifact(model, meta), files.stgcn)
    head_meta = {"split": SPLIT, "embedder": "random", "seen_class_ids": seen}
    torch.save(head_artifact(head, {**head_meta, "unseen_class_ids": unseen}), files.head)
    table.to_parquet(files.label_embeddings)
    files.calibration.write_text(json.dumps({"gamma": GAMMA}))
    return ModelSet(project, files, samples, sequences, features, raw_dir)


def ntu_model_set(base: Path) -> ModelSet:
    if "ntu" not in _MODEL_SETS:
        from pose_zsl.skeleton.ingest import ingest_ntu_dir
        from pose_zsl.skeleton.ntu_tables import action_names
        from pose_zsl.skeleton.synthetic import generate_dataset

        raw = base / "raw"
        generate_dataset(
            raw, samples_per_action=4, actions=NTU_ACTIONS, num_performers=2, cameras=(1,),
            workers=1,
        )  # fmt: skip
        ingested = ingest_ntu_dir(raw, source="synthetic", skip_missing_list=False, workers=1)
        _MODEL_SETS["ntu"] = write_model_set(
            base / "project", ingested.samples, ingested.sequences, NTU_SEEN,
            action_names(60), max_bodies=2, raw_dir=raw,
        )  # fmt: skip
    return _MODEL_SETS["ntu"]


def msr_model_set(base: Path) -> ModelSet:
    if "msr" not in _MODEL_SETS:
        from pose_zsl.skeleton import msr
        from pose_zsl.skeleton.ingest import ingest_msr_dir

        # The files sort by action: the first 40 are actions a01 and a02.
        ingested = ingest_msr_dir(MSR_DIR, workers=1, limit=40)
        _MODEL_SETS["msr"] = write_model_set(
            base / "project", ingested.samples, ingested.sequences, MSR_SEEN,
            msr.action_names(), max_bodies=1,
        )  # fmt: skip
    return _MODEL_SETS["msr"]


@pytest.fixture
def predictor(ntu_models: ModelSet) -> ZeroShotPredictor:
    return ZeroShotPredictor.from_project(ntu_models.project, SPLIT, HEAD, EMBEDDING)


CANDIDATES = ["drink water", "Brushing teeth.", "pickup", "wave a flag", "juggle three balls"]


# ---------------------------------------------------------------------------------------------
# ranking


def test_ranks_real_ntu_recordings_with_mixed_candidates(predictor, ntu_files):
    recordings, unreadable = predictor.read(ntu_files)
    assert unreadable.empty
    frame = predictor.predict(recordings, CANDIDATES, top_k=3)

    assert list(frame.columns) == [
        "recording", "rank", "label", "score", "share", "raw_score", "seen", "matched_class",
    ]  # fmt: skip
    assert len(frame) == 3 * len(ntu_files)
    assert frame["recording"].unique().tolist() == [str(p) for p in ntu_files]
    for _, group in frame.groupby("recording", sort=False):
        assert group["rank"].tolist() == [1, 2, 3]
        assert group["score"].is_monotonic_decreasing
        assert group["label"].is_unique
        assert group["share"].is_monotonic_decreasing
    by_label = frame.drop_duplicates("label").set_index("label")
    # Training classes are "seen" whatever their spelling; a test-split class and new phrases
    # are not; matched_class names the official class.
    seen = {"drink water": True, "Brushing teeth.": True, "pickup": False}
    for label, row in by_label.iterrows():
        assert row["seen"] == seen.get(label, False)
        expected = {"drink water": "drink water", "Brushing teeth.": "brushing teeth"}
        expected["pickup"] = "pickup"
        assert (None if pd.isna(row["matched_class"]) else row["matched_class"]) == expected.get(
            label
        )
    shift = np.where(frame["seen"], GAMMA, 0.0)
    np.testing.assert_allclose(frame["score"], frame["raw_score"] - shift)
    assert frame.attrs["skipped"] == []


def test_same_features_and_scores_as_the_training_pipeline(predictor, ntu_models):
    """A raw file read by the predictor gives exactly the feature the feature-extraction step
    computed for it from the ingested table, and the head's score for each candidate."""
    from pose_zsl.models.heads import load_head, score
    from pose_zsl.text.embedders import embedding_matrix

    sample_ids = ["S001C001P001R001A001", "S001C001P002R002A005"]
    recordings, _ = predictor.read([ntu_models.raw_dir / f"{s}.skeleton" for s in sample_ids])
    features, names, skipped = predictor.features(recordings)
    assert skipped.empty and len(names) == 2
    stored = ntu_models.features.set_index("sample_id").loc[sample_ids, "feature"]
    np.testing.assert_allclose(features, np.stack(stored.to_numpy()), rtol=1e-5, atol=1e-6)

    table = pd.read_parquet(ntu_models.files.label_embeddings)
    ranking = predictor.rank(recordings, ["drink water", "drop"], top_k=2)
    head = load_head(ntu_models.files.head)
    expected = score(head, features, embedding_matrix(table)[[0, 4]])
    got = ranking.predictions.pivot(index="recording", columns="label", values="raw_score")
    got = got.loc[[str(r.name) for r in recordings], ["drink water", "drop"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_calibration_pushes_seen_classes_down(ntu_models, ntu_files):
    files = ntu_models.files
    stgcn = torch.load(files.stgcn, weights_only=True)
    head = torch.load(files.head, weights_only=True)
    table = pd.read_parquet(files.label_embeddings)
    harsh = ZeroShotPredictor(stgcn, head, table, {"gamma": 10.0})
    plain = ZeroShotPredictor(stgcn, head, table, None)
    recordings, _ = harsh.read(ntu_files[:2])
    labels = ["drink water", "eat meal or snack", "drop", "wave a flag"]
    ranked = harsh.predict(recordings, labels, top_k=4)
    for _, group in ranked.groupby("recording"):
        assert group["seen"].tolist() == [False, False, True, True]
    uncalibrated = plain.predict(recordings, labels, top_k=4)
    np.testing.assert_allclose(uncalibrated["score"], uncalibrated["raw_score"])


def test_calibration_choice_auto_off_or_a_number(predictor, ntu_files):
    recordings, _ = predictor.read(ntu_files[:2])
    labels = ["drink water", "eat meal or snack", "drop", "wave a flag"]
    choices = [("auto", GAMMA), (" AUTO ", GAMMA), ("off", 0.0), ("0.5", 0.5), (-1, -1.0)]
    for choice, shift in choices:
        frame = predictor.predict(recordings, labels, top_k=4, calibration=choice)
        expected = frame["raw_score"] - np.where(frame["seen"], shift, 0.0)
        # the subtraction is done once in float64 on the same raw scores: equal to the ulp
        np.testing.assert_allclose(frame["score"], expected, rtol=0, atol=1e-12)
    assert predictor.calibration_constant("auto") == GAMMA
    assert predictor.calibration_constant("off") is None


@pytest.mark.parametrize("value", ["sometimes", "", "nan", "inf", float("nan"), None, True, [1]])
def test_bad_calibration_values_are_refused_naming_the_setting(predictor, ntu_files, value):
    from pose_zsl.inference import parse_calibration

    with pytest.raises(ValueError, match=r"^--calibration must be 'auto'.*'off'.*number"):
        parse_calibration(value, "--calibration")
    recordings, _ = predictor.read(ntu_files[:1])
    with pytest.raises(ValueError, match="^calibration must be"):
        predictor.rank(recordings, ["drink water"], calibration=value)
    with pytest.raises(ValueError, match="^calibration must be"):
        rank_requests(predictor, requests_frame([], []), calibration=value)


def test_inference_pipeline_refuses_a_bad_calibration_parameter(ntu_models):
    from pose_zsl.pipelines.inference.nodes import predict_actions

    files = ntu_models.files
    params = {**inference_params([], ""), "calibration": "strong"}
    with pytest.raises(ValueError, match="^inference.calibration must be"):
        predict_actions(
            torch.load(files.stgcn, weights_only=True),
            torch.load(files.head, weights_only=True),
            pd.read_parquet(files.label_embeddings),
            json.loads(files.calibration.read_text()),
            requests_frame([], []),
            params,
        )


def test_only_new_phrases_need_no_calibration(predictor, ntu_files):
    recordings, _ = predictor.read(ntu_files[:2])
    frame = predictor.predict(recordings, ["wave a flag", "drop", "sit on a chair"], top_k=3)
    assert not frame["seen"].any()
    np.testing.assert_array_equal(frame["score"], frame["raw_score"])


def test_top_k_is_capped_and_must_be_positive(predictor, ntu_files):
    recordings, _ = predictor.read(ntu_files[:1])
    assert len(predictor.predict(recordings, ["drink water", "drop"], top_k=10)) == 2
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        predictor.predict(recordings, ["drink water"], top_k=0)


def test_requests_table_gives_the_same_ranking(predictor, ntu_files):
    recordings, _ = predictor.read(ntu_files[:3])
    direct = predictor.rank(recordings, CANDIDATES, top_k=3).predictions
    requests = requests_frame(recordings, CANDIDATES)
    assert list(requests.columns) == ["recording", "skeleton", "shape", "labels"]
    via_table = rank_requests(predictor, requests, top_k=3)
    pd.testing.assert_frame_equal(via_table.predictions, direct)
    # one comma-separated string per row is accepted too
    requests["labels"] = ", ".join(CANDIDATES)
    pd.testing.assert_frame_equal(rank_requests(predictor, requests, 3).predictions, direct)


def test_stgcn_array_files_are_read(predictor, ntu_models, tmp_path):
    """ST-GCN ``(N, C, T, V, M)`` arrays, zero-padded in time, give the same ranking as the
    recordings they hold."""
    recordings, _ = predictor.read(sorted(ntu_models.raw_dir.glob("*.skeleton"))[:3])
    padded = np.zeros((3, 3, 160, 25, 2), np.float32)
    for i, recording in enumerate(recordings):
        padded[i, :, : recording.data.shape[0]] = recording.data.transpose(3, 0, 2, 1)
    np.save(tmp_path / "val_data.npy", padded)
    from_arrays, skipped = predictor.read([tmp_path / "val_data.npy"])
    assert skipped.empty
    assert [r.name for r in from_arrays] == [f"{tmp_path / 'val_data.npy'}[{i}]" for i in range(3)]
    expected = predictor.rank(recordings, CANDIDATES, 2).predictions
    got = predictor.rank(from_arrays, CANDIDATES, 2).predictions
    np.testing.assert_allclose(got["raw_score"], expected["raw_score"], rtol=1e-5, atol=1e-6)
    assert got["label"].tolist() == expected["label"].tolist()


# ---------------------------------------------------------------------------------------------
# candidate names


def test_label_normalisation_and_parsing():
    assert normalise_label("Put on a hat/cap.") == normalise_label("put on a hat or cap")
    assert normalise_label("  Hands up (both hands) ") == "hands up"
    assert split_labels(["wave, kick a ball,", " drink water"]) == [
        "wave", "kick a ball", "drink water",
    ]  # fmt: skip
    assert check_labels([" wave ", "kick"]) == ["wave", "kick"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "no candidate action names"),
        (["", "  "], "no candidate action names"),
        (["wave", "kick", "Wave."], "duplicate candidate action names 'wave' and 'Wave.'"),
        (["(only a note)"], "has no words"),
    ],
)
def test_bad_label_lists(labels, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_labels(labels)


def test_duplicates_and_empty_lists_reach_the_predictor_as_errors(predictor, ntu_files):
    recordings, _ = predictor.read(ntu_files[:1])
    with pytest.raises(ValueError, match="duplicate candidate action names"):
        predictor.predict(recordings, ["drink water", "Drink  water"])
    with pytest.raises(ValueError, match="no candidate action names"):
        predictor.predict(recordings, [])


def test_new_phrases_use_the_tables_embedder_and_templates():
    from pose_zsl.text.embedders import RandomEmbedder, embed_labels, label_embedding_table
    from pose_zsl.text.label_text import class_texts

    names = ["drink water", "eat meal/snack", "hand waving"]
    templates = ["a person {name}", "{official}"]
    embedder = RandomEmbedder(seed=5, dim=16)
    table = label_embedding_table(names, embedder, class_texts(names, templates=templates))
    assert infer_templates(table) == templates
    rebuilt = embedder_from_table(table)
    texts = class_texts(["juggle"], templates=infer_templates(table))
    np.testing.assert_array_equal(embed_labels(texts, rebuilt), embed_labels(texts, embedder))
    plain = label_embedding_table(names, embedder)
    assert infer_templates(plain) == ["{name}"]


def test_an_embedder_that_does_not_reproduce_the_table_is_refused(ntu_models, ntu_files):
    files = ntu_models.files
    table = pd.read_parquet(files.label_embeddings)
    table["embedder_model"] = table["embedder_model"].str.replace("seed=3", "seed=4")
    predictor = ZeroShotPredictor(
        torch.load(files.stgcn, weights_only=True),
        torch.load(files.head, weights_only=True),
        table,
        {"gamma": GAMMA},
    )
    recordings, _ = predictor.read(ntu_files[:1])
    predictor.predict(recordings, ["drink water", "drop"])  # table classes need no embedder
    with pytest.raises(ModelMismatchError, match="does not reproduce the label table"):
        predictor.predict(recordings, ["drink water", "wave a flag"])


def test_text_model_path_finds_the_files_a_served_model_needs(tmp_path):
    """The local file or folder behind a label table, resolved as the embedders resolve it:
    relative paths from the project, package and cache names need no file."""

    def table(embedder: str, model: str) -> pd.DataFrame:
        return pd.DataFrame({"embedder": [embedder], "embedder_model": [model]})

    (tmp_path / "my_minilm").mkdir()
    assert text_model_path(table("sentence_transformers", "my_minilm"), tmp_path) == (
        tmp_path / "my_minilm"
    )
    assert text_model_path(table("sentence_transformers", "all-MiniLM-L6-v2"), tmp_path) is None
    assert text_model_path(table("sentence_transformers", "org/cached-model"), tmp_path) is None
    sent2vec = table("sent2vec", "data/01_raw/wiki.bin (wiki tokenisation)")
    assert text_model_path(sent2vec, tmp_path) == tmp_path / "data/01_raw/wiki.bin"
    assert text_model_path(table("random", "gaussian(seed=0, like=sent2vec)"), tmp_path) is None


# ---------------------------------------------------------------------------------------------
# bad recordings


def test_unreadable_recordings_are_skipped_with_their_reason(predictor, ntu_files, tmp_path):
    broken = tmp_path / "S001C001P001R001A001.skeleton"
    broken.write_text("3\n1\nnot a body line\n")
    other = tmp_path / "notes.json"
    other.write_text("{}")
    not_numeric = tmp_path / "names.npy"
    np.save(not_numeric, np.array([[[["wave"]]]]))
    paths = [ntu_files[0], broken, tmp_path / "absent.skeleton", other, not_numeric, ntu_files[1]]
    recordings, unreadable = predictor.read(paths)
    assert [r.name for r in recordings] == [str(ntu_files[0]), str(ntu_files[1])]
    reasons = dict(unreadable.itertuples(index=False))
    assert set(reasons) == {
        str(broken), str(tmp_path / "absent.skeleton"), str(other), str(not_numeric),
    }  # fmt: skip
    assert reasons[str(broken)].startswith(f"{broken}:")  # path:line: reason
    assert reasons[str(tmp_path / "absent.skeleton")] == "no such file or folder"
    assert "unsupported recording format" in reasons[str(other)]
    assert reasons[str(not_numeric)].startswith("not a usable array: could not convert string")
    assert predictor.predict(recordings, CANDIDATES, 2)["recording"].nunique() == 2


def test_folders_are_expanded(predictor, ntu_models, tmp_path):
    recordings, unreadable = read_recordings([ntu_models.raw_dir])
    assert len(recordings) == len(list(ntu_models.raw_dir.glob("*.skeleton")))
    assert unreadable.empty
    _, empty = read_recordings([tmp_path])
    assert "folder holds no" in empty["reason"].iloc[0]


def test_wrong_layout_and_empty_recordings_are_skipped(predictor, ntu_files):
    require_shared(MSR_DIR, "the MSR Action3D recordings")
    good, _ = predictor.read(ntu_files[:1])
    msr_file = MSR_DIR / "a01_s01_e01_skeleton3D.txt"
    msr_recordings, _ = predictor.read([msr_file])
    nan = np.full((10, 1, 25, 3), np.nan, np.float32)
    zeros = np.zeros((10, 2, 25, 3), np.float32)
    ranking = predictor.rank(
        [*good, *msr_recordings, Recording("nan", nan), Recording("zeros", zeros)], CANDIDATES
    )
    assert ranking.predictions["recording"].unique().tolist() == [good[0].name]
    reasons = dict(ranking.skipped.itertuples(index=False))
    assert "has 20 joints (a kinect-v1 recording?)" in reasons[str(msr_file)]
    assert "'ntu-rgb+d' with 25 joints" in reasons[str(msr_file)]
    assert reasons["nan"] == "non-finite coordinates"
    assert reasons["zeros"].startswith("no valid frames")
    nothing = predictor.rank(msr_recordings, CANDIDATES)
    assert nothing.predictions.empty and len(nothing.skipped) == 1


def test_kinect_v1_model_predicts_msr_recordings(msr_models):
    predictor = ZeroShotPredictor.from_project(msr_models.project, SPLIT, HEAD, EMBEDDING)
    assert predictor.layout == "kinect-v1" and predictor.max_bodies == 1
    files = [MSR_DIR / f"a{a:02d}_s02_e01_skeleton3D.txt" for a in (1, 3, 5)]
    recordings, unreadable = predictor.read(files)
    assert unreadable.empty
    frame = predictor.predict(recordings, ["high arm wave", "hammer", "draw a circle"], top_k=3)
    assert len(frame) == 9
    assert frame.loc[frame["label"] == "high arm wave", "seen"].all()
    assert not frame.loc[frame["label"] != "high arm wave", "seen"].any()


# ---------------------------------------------------------------------------------------------
# model files


def copy_configuration(project: Path) -> None:
    """The project's base configuration (and an empty local one) in ``project``."""
    shutil.copytree(PROJECT_ROOT / "conf" / "base", project / "conf" / "base", dirs_exist_ok=True)
    (project / "conf" / "local").mkdir(exist_ok=True)


def test_model_files_are_where_the_environments_catalog_keeps_them(tmp_path):
    copy_configuration(tmp_path)
    (tmp_path / "conf" / "other").mkdir()
    (tmp_path / "conf" / "other" / "globals.yml").write_text("data_root: data/other\n")
    files = ModelFiles.for_variant(tmp_path, "random_3", "devise", "learned_desc", env="other")
    data = tmp_path / "data" / "other"
    assert files.stgcn == data / "06_models" / "stgcn_random_3.pt"
    assert files.head == data / "06_models" / "zsl_random_3_devise_learned_desc.pt"
    assert files.label_embeddings == data / "04_feature" / "label_embeddings_learned_desc.parquet"
    assert (
        files.calibration
        == data / "07_model_output" / "calibration_random_3_devise_learned_desc.json"
    )


def test_missing_models_name_the_pipelines_to_run(tmp_path):
    copy_configuration(tmp_path)
    files = ModelFiles.for_variant(tmp_path, SPLIT, HEAD, EMBEDDING)
    with pytest.raises(MissingModelError) as error:
        ZeroShotPredictor.from_files(files)
    message = str(error.value)
    assert str(files.stgcn) in message and str(files.calibration) in message
    variant = f"{SPLIT}.{HEAD}.{EMBEDDING}"
    outputs = f"{SPLIT}.stgcn_model,{variant}.zsl_model,label_embeddings_{EMBEDDING}"
    assert f"run `kedro run --to-outputs {outputs},{variant}.calibration`" in message


def test_only_the_head_missing(ntu_models, tmp_path):
    files = dataclasses.replace(
        ntu_models.files,
        head=tmp_path / "zsl_nearest_devise_random.pt",
        entries={"head": "nearest.devise.random.zsl_model"},
        env="ntu60",
    )
    command = "`kedro run --env ntu60 --to-outputs nearest.devise.random.zsl_model`"
    with pytest.raises(MissingModelError, match=re.escape(command)):
        files.require()


def test_models_from_different_splits_are_refused(ntu_models):
    files = ntu_models.files
    stgcn = torch.load(files.stgcn, weights_only=True)
    head = torch.load(files.head, weights_only=True)
    table = pd.read_parquet(files.label_embeddings)
    other_split = {**head, "seen_class_ids": [0, 1, 2, 5]}
    with pytest.raises(ModelMismatchError, match="different splits"):
        ZeroShotPredictor(stgcn, other_split, table, {"gamma": 0.0})
    with pytest.raises(ModelMismatchError, match="expects 32-D label embeddings"):
        short = table.assign(vector=[v[:16] for v in table["vector"]], dim=np.full(len(table), 16))
        ZeroShotPredictor(stgcn, head, short, {"gamma": 0.0})
    with pytest.raises(ValueError, match="no 'gamma' key"):
        ZeroShotPredictor(stgcn, head, table, {"lambda": 0.1})


# ---------------------------------------------------------------------------------------------
# the Kedro pipeline

PROJECT = Path(__file__).resolve().parents[1]


def project_catalog(params: dict):
    """The project's real catalog as the default environment resolves it, and ``params``;
    paths resolve against the current folder."""
    from kedro.io import DataCatalog, MemoryDataset

    from pose_zsl.environments import config_loader

    catalog = DataCatalog.from_config(config_loader(None)["catalog"])
    catalog["params:inference"] = MemoryDataset(params)
    return catalog


def inference_params(recordings: list[str], labels: str) -> dict:
    import yaml

    text = (PROJECT / "conf" / "base" / "parameters_inference.yml").read_text()
    params = yaml.safe_load(text)["inference"]
    return {**params, "recordings": recordings, "labels": labels, "top_k": 2}


def test_inference_pipeline_runs_on_the_catalog(ntu_models, ntu_files, tmp_path, monkeypatch):
    from kedro.runner import SequentialRunner

    from pose_zsl.pipelines.inference import create_pipeline

    monkeypatch.chdir(ntu_models.project)
    broken = tmp_path / "S001C001P001R001A002.skeleton"
    broken.write_text("1\n")
    recordings = f"{ntu_files[0]};{broken};{ntu_files[1]}"  # as `kedro run --params` gives it
    labels = "drink water;pickup;wave a flag"
    catalog = project_catalog(inference_params(recordings, labels))
    pipeline = create_pipeline(split=SPLIT, head=HEAD, embedding=EMBEDDING)
    assert pipeline.inputs() == {
        f"{SPLIT}.stgcn_model", f"{SPLIT}.{HEAD}.{EMBEDDING}.zsl_model",
        f"label_embeddings_{EMBEDDING}", f"{SPLIT}.{HEAD}.{EMBEDDING}.calibration",
        "params:inference",
    }  # fmt: skip
    SequentialRunner().run(pipeline, catalog)

    written = pd.read_parquet("data/07_model_output/inference_predictions.parquet")
    predictor = ZeroShotPredictor.from_files(ntu_models.files)
    read, _ = predictor.read(ntu_files[:2])
    expected = predictor.predict(read, labels.split(";"), top_k=2)
    assert written["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(written["score"], expected["score"], rtol=1e-6)
    assert written["error"].isna().all()
    unreadable = pd.read_parquet("data/08_reporting/inference_unreadable.parquet")
    assert unreadable["recording"].tolist() == [str(broken)]

    params = {**inference_params(recordings, labels), "calibration": "off"}
    SequentialRunner().run(pipeline, project_catalog(params))
    raw = pd.read_parquet("data/07_model_output/inference_predictions.parquet")
    assert raw["seen"].any()
    np.testing.assert_array_equal(raw["score"], raw["raw_score"])


def test_inference_pipeline_without_recordings_does_nothing(ntu_models, monkeypatch):
    from kedro.runner import SequentialRunner

    from pose_zsl.pipelines.inference import create_pipeline

    monkeypatch.chdir(ntu_models.project)
    catalog = project_catalog(inference_params([], ""))
    SequentialRunner().run(create_pipeline(SPLIT, HEAD, EMBEDDING), catalog)
    assert pd.read_parquet("data/07_model_output/inference_predictions.parquet").empty


def test_serving_pipeline_fits_pipeline_ml_factory():
    """The prediction step alone has the one free input and one output kedro-mlflow needs, and
    every other input is an output of the training pipelines."""
    from kedro_mlflow.pipeline import pipeline_ml_factory

    from pose_zsl.pipelines import label_embedding, stgcn_training, zsl_training
    from pose_zsl.pipelines.inference import create_serving_pipeline

    training = (
        label_embedding.create_pipeline()
        + stgcn_training.create_pipeline()
        + zsl_training.create_pipeline()
    )
    serving = create_serving_pipeline("furthest", "devise", "learned")
    assert serving.outputs() == {"inference_predictions"}
    pipeline = pipeline_ml_factory(training, serving, input_name="inference_requests")
    assert pipeline.inference.inputs() - {"inference_requests", "params:inference"} <= (
        training.all_outputs()
    )


def test_shares_are_a_scale_free_softmax_over_all_the_candidates() -> None:
    from pose_zsl.inference import candidate_shares

    scores = np.array([[3e-11, 1e-11, 2e-11], [0.9, 0.1, 0.5], [0.2, 0.2, 0.2]])
    shares = candidate_shares(scores)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    # rows 0 and 1 are the same ranking on scales 1e10 apart: the same shares
    np.testing.assert_allclose(shares[0], shares[1], rtol=1e-9)
    assert shares[0].argmax() == 0 and shares[0].argmin() == 1
    np.testing.assert_allclose(shares[2], 1 / 3)  # equal scores share equally
    # softmax of z-scores: the top candidate of row 1 (z = +1.22) has exp(1.22) / sum
    z = (scores[1] - scores[1].mean()) / scores[1].std()
    np.testing.assert_allclose(shares[1], np.exp(z) / np.exp(z).sum(), rtol=1e-12)


def test_shares_in_the_predictions_cover_all_candidates_not_only_the_top_k(predictor, ntu_files):
    recordings, _ = predictor.read(ntu_files[:2])
    top = predictor.predict(recordings, CANDIDATES, top_k=2)
    every = predictor.predict(recordings, CANDIDATES, top_k=len(CANDIDATES))
    for name, group in every.groupby("recording", sort=False):
        np.testing.assert_allclose(group["share"].sum(), 1.0, rtol=1e-9)
        kept = top[top["recording"] == name]
        np.testing.assert_allclose(kept["share"], group["share"].iloc[:2], rtol=1e-12)


def test_auto_calibration_fits_the_candidate_list(ntu_models, ntu_files):
    # With the proxy kept, `auto` takes the constant chosen for the list's share of training
    # names (composition_gamma); every class name gets the evaluation's constant.
    from test_composition import proxy_problem

    from pose_zsl.zsl.calibration import CalibrationProxy, composition_gamma

    files, proxy = ntu_models.files, proxy_problem()
    head = torch.load(files.head, weights_only=True)
    seen, unseen = head["meta"]["seen_class_ids"], head["meta"]["unseen_class_ids"]
    table = pd.read_parquet(files.label_embeddings)
    predictor = ZeroShotPredictor(
        torch.load(files.stgcn, weights_only=True),
        head,
        table,
        {"gamma": proxy.gamma, "proxy": proxy.to_dict()},
    )
    labels = ["drink water", "wave a flag", "juggle three balls"]  # 1 of the 4 seen classes
    assert predictor.candidates(labels).seen.tolist() == [True, False, False]
    stored = CalibrationProxy.from_dict(proxy.to_dict())  # its scores kept as float32
    expected = composition_gamma(stored, 1 / len(seen), 2 / len(unseen))
    assert expected != proxy.gamma
    assert predictor.calibration_constant("auto", labels) == expected
    assert predictor.calibration_constant("auto", table["action_name"]) == proxy.gamma
    assert predictor.calibration_constant("0.5", labels) == 0.5
    recordings, _ = predictor.read(ntu_files[:2])
    frame = predictor.predict(recordings, labels, top_k=len(labels))
    np.testing.assert_allclose(
        frame["score"], frame["raw_score"] - np.where(frame["seen"], expected, 0.0), atol=1e-12
    )
