"""UTKinect-Action3D: segment cutting on the real release, joint order, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pose_zsl.skeleton import utkinect
from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.ingest import (
    BAD_FILE,
    MISSING_FILE,
    NO_VALID_FRAME,
    UNLABELLED,
    ingest_utkinect_dir,
)
from pose_zsl.skeleton.layouts import get_layout


@pytest.fixture(scope="module")
def modified(skeleton_utkinect_root: Path):
    return ingest_utkinect_dir(skeleton_utkinect_root)


def test_release_counts_match_its_sources(modified, skeleton_utkinect_root) -> None:
    """SOURCES.md: 199 labelled segments, 20 per action but 19 for carry; 5-110 unique frames
    per segment (mean 29.3) with the modified labels, 5-170 (mean 30.4) with the original."""
    samples = modified.samples
    assert len(samples) == 199
    per_action = samples.groupby("action_name").size().to_dict()
    assert per_action == {name: 19 if name == "carry" else 20 for name in utkinect.action_names()}
    frames = samples["num_frames"]
    assert (frames.min(), frames.max(), round(frames.mean(), 1)) == (5, 110, 29.3)
    assert modified.skipped[["sample_id", "category"]].values.tolist() == [
        ["s10_e02_a05", UNLABELLED]
    ]
    original = ingest_utkinect_dir(skeleton_utkinect_root, labels="original")
    frames = original.samples["num_frames"]
    assert (len(frames), frames.max(), round(frames.mean(), 1)) == (199, 170, 30.4)
    assert set(samples["layout"]) == {"kinect-v1"}
    assert samples.loc[samples["performer"] % 2 == 1, "xsub"].eq("train").all()
    assert samples.loc[samples["performer"] % 2 == 0, "xsub"].eq("test").all()


def test_joints_are_in_the_msr_action3d_order(modified) -> None:
    """Reordered into kinect-v1 (MSR order): the head is the highest joint, the feet lowest,
    and the hands are further from the hip centre than the elbows."""
    layout = get_layout("kinect-v1")
    index = {name: i for i, name in enumerate(layout.joint_names)}
    first = modified.sequences.column("data")[0].values.to_numpy().reshape(-1, 1, 20, 3)
    height = first[:, 0, :, 1].mean(axis=0)
    assert int(np.argmax(height)) == index["head"]
    assert set(np.argsort(height)[:2]) == {index["left_foot"], index["right_foot"]}
    for side in ("left", "right"):
        hip = first[:, 0, index["hip_center"]]
        hand = np.linalg.norm(first[:, 0, index[f"{side}_hand"]] - hip, axis=1).mean()
        elbow = np.linalg.norm(first[:, 0, index[f"{side}_elbow"]] - hip, axis=1).mean()
        assert hand > elbow


def _row(frame_id: int, value: float) -> str:
    return " ".join([str(frame_id), *[f"{value + j * 0.01:.3f}" for j in range(60)]])


def test_repeated_frame_ids_keep_the_first_row(tmp_path) -> None:
    path = tmp_path / "joints_s01_e01.txt"
    path.write_text("\n".join([_row(10, 1.0), _row(12, 2.0), _row(12, 9.0), _row(16, 3.0)]) + "\n")
    frame_ids, joints = utkinect.read_recording(path)
    assert frame_ids.tolist() == [10, 12, 16]
    assert joints[:, 0, 0].tolist() == [1.0, 2.0, 3.0]
    segment = utkinect.Segment(1, 1, 1, 11, 16)
    cut = utkinect.cut_segment(frame_ids, joints, segment)
    assert cut.shape == (2, 1, 20, 3) and cut.dtype == np.float32


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("10 1 2 3\n", 1, "expected 61 values"),
        (_row(10, 1.0) + "\n" + _row(11, 1.0).replace("1.010", "abc") + "\n", 2, "'abc'"),
        (_row(10, 1.0).replace("1.010", "nan") + "\n", 1, "non-finite"),
        ("\n\n", 1, "empty file"),
        (_row(10, 1.0).replace("10 ", "10.5 ", 1) + "\n", 1, "frame id '10.5'"),
    ],
)
def test_bad_recordings_name_the_file_and_line(tmp_path, content, line, message) -> None:
    path = tmp_path / "joints_s01_e01.txt"
    path.write_text(content)
    with pytest.raises(SkeletonFormatError, match=message) as caught:
        utkinect.read_recording(path)
    assert caught.value.line == line and str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("walk: 1 2\n", 1, "a 'sSS_eEE' header"),
        ("s01_e01\nrun: 1 2\n", 2, "unknown action 'run'"),
        ("s01_e01\nwalk: 5 2\n", 2, "start 5 > end 2"),
        ("s01_e01\nwalk: 1 x\n", 2, "'x' is not an integer"),
        ("s01_e01\nwalk: NaN 4\n", 2, "only one bound"),
        ("s01_e01\nwalk: 1 2\nwalk: 3 4\n", 3, "listed twice"),
        ("s01_e01\nwalk 1 2\n", 2, "'key: start end'"),
    ],
)
def test_bad_label_files_name_the_line(tmp_path, content, line, message) -> None:
    path = tmp_path / "actionLabel.txt"
    path.write_text(content)
    with pytest.raises(SkeletonFormatError, match=message) as caught:
        utkinect.read_labels(path)
    assert caught.value.line == line


def test_unusable_segments_are_skipped_and_counted(
    skeleton_utkinect_root, tmp_path, caplog
) -> None:
    """A missing recording, an unreadable one and a range with no frame are each skipped with
    their reason; the rest is ingested."""
    root = tmp_path / "joints"
    shutil.copytree(skeleton_utkinect_root / "joints", root)
    (root / "joints_s02_e01.txt").unlink()
    (root / "joints_s03_e01.txt").write_text("not a skeleton\n")
    labels = (root / "actionLabel_modified.txt").read_text()
    header = labels.index("s04_e01")
    walk = labels.index("walk:", header)
    end_of_line = labels.index("\n", walk)
    labels = labels[:walk] + "walk: 1 2" + labels[end_of_line:]
    (root / "actionLabel_modified.txt").write_text(labels)

    result = ingest_utkinect_dir(tmp_path)
    counts = result.skipped_counts()
    assert counts == {MISSING_FILE: 10, BAD_FILE: 10, NO_VALID_FRAME: 1, UNLABELLED: 1}
    assert len(result.samples) == 199 - 21
    reasons = dict(zip(result.skipped["sample_id"], result.skipped["reason"], strict=True))
    assert "joints_s03_e01.txt:1: expected 61 values" in reasons["s03_e01_a01"]
    assert "no frame of joints_s04_e01.txt lies in 1..2" in reasons["s04_e01_a01"]
    bad_file_warnings = [r for r in caplog.records if "joints_s03_e01.txt" in r.getMessage()]
    assert len(bad_file_warnings) == 1  # one warning per file, not one per segment


def test_missing_folder_label_file_or_choice_is_an_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="UTKinect-Action3D directory"):
        ingest_utkinect_dir(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="actionLabel_modified.txt"):
        ingest_utkinect_dir(tmp_path)
    with pytest.raises(ValueError, match="'labels' must be one of"):
        ingest_utkinect_dir(tmp_path, labels="corrected")


def test_utkinect_environment_through_a_kedro_session(
    skeleton_utkinect_root, tmp_path, monkeypatch
) -> None:
    """``kedro run --env utkinect`` reads the folder named by UTKINECT_DIR: ingestion, label
    embedding and the environment's ten 7 seen / 3 unseen splits."""
    import pandas as pd
    from conftest import TINY_OFFLINE_ENV, make_tiny_project
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = make_tiny_project(tmp_path)
    monkeypatch.chdir(project)
    for name, value in TINY_OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("UTKINECT_DIR", str(skeleton_utkinect_root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="utkinect") as session:
        session.run(pipeline_names=["ingestion", "label_embedding", "split_selection"])

    data = project / "data" / "utkinect"  # the environment's data root
    samples = pd.read_parquet(data / "02_intermediate/samples.parquet")
    assert len(samples) == 199 and set(samples["source"]) == {"utkinect"}
    actions = pd.read_parquet(data / "02_intermediate/actions.parquet")
    assert actions["action_name"].tolist() == utkinect.action_names()
    splits = pd.read_parquet(data / "05_model_input/splits.parquet")
    roles = splits.groupby(["split", "role"]).size().unstack()
    # the environment's ten seeded 7 / 3 splits, each with 2 pseudo-unseen seen classes
    assert sorted(roles.index) == sorted(f"random_{k}" for k in range(1, 11))
    assert roles["unseen"].tolist() == [3] * 10 and roles["seen"].tolist() == [7] * 10
    assert splits.groupby("split")["pseudo_unseen"].sum().tolist() == [2] * 10
