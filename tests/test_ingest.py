"""Directory ingestion of NTU .skeleton folders into the samples / sequences tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pose_zsl.skeleton import ingest, ntu_tables
from pose_zsl.skeleton.ntu import SkeletonFile, load_sample, write_skeleton
from pose_zsl.skeleton.store import SAMPLE_COLUMNS, SequenceStore

NOISY = [f"S001C001P001R001A{a:03d}" for a in range(24, 30)]


@pytest.fixture(scope="module")
def ntu_flat(skeleton_ntu_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 39 top-level real files, linked into a folder of their own: the shared folder also
    holds crlf_variant/, a second copy of one sample, which the ingestion refuses."""
    folder = tmp_path_factory.mktemp("ntu_flat")
    for path in skeleton_ntu_samples.glob("*.skeleton"):
        (folder / path.name).symlink_to(path)
    return folder


@pytest.fixture(scope="module")
def ntu_result(ntu_flat: Path) -> ingest.IngestResult:
    return ingest.ingest_ntu_dir(ntu_flat, workers=2)


def test_real_folder(ntu_result: ingest.IngestResult, skeleton_ntu_samples: Path) -> None:
    samples = ntu_result.samples
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert len(samples) == 39 and ntu_result.skipped.empty
    assert samples["sample_id"].is_monotonic_increasing
    row = samples.set_index("sample_id").loc["S001C001P001R001A050"]
    assert row["action_id"] == 49 and row["action_name"] == "punching/slapping other person"
    assert (row["setup"], row["camera"], row["performer"], row["replication"]) == (1, 1, 1, 1)
    assert (row["xsub"], row["xview"]) == ("train", "test") and pd.isna(row["xset"])
    assert row["num_bodies"] == 2 and row["layout"] == "ntu-rgb+d" and row["source"] == "ntu"
    flagged = samples.loc[samples["quality_flags"] == "noise_body_dropped", "sample_id"]
    assert flagged.tolist() == NOISY
    assert (samples.loc[samples["sample_id"].isin(NOISY), "num_bodies"] == 1).all()

    store = SequenceStore(ntu_result.sequences)
    assert store.ids == samples["sample_id"].tolist()
    for i, sample_id in enumerate(store.ids):
        expected = load_sample(skeleton_ntu_samples / f"{sample_id}.skeleton")
        np.testing.assert_array_equal(store[i], expected)
        assert samples["num_frames"].iloc[i] == expected.shape[0]


def test_in_process_equals_pool(ntu_result: ingest.IngestResult, ntu_flat: Path) -> None:
    alone = ingest.ingest_ntu_dir(ntu_flat, workers=1)
    pd.testing.assert_frame_equal(alone.samples, ntu_result.samples)
    assert alone.sequences.equals(ntu_result.sequences)


def test_options(ntu_flat: Path) -> None:
    result = ingest.ingest_ntu_dir(
        ntu_flat, "ntu120", max_bodies=1, denoise=False, workers=1, limit=3
    )
    samples = result.samples
    assert samples["sample_id"].tolist() == [
        "S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003",
    ]  # fmt: skip
    assert samples["xset"].tolist() == ["test"] * 3  # setup 1 is odd
    assert SequenceStore(result.sequences).shape(0) == (103, 1, 25, 3)


def test_synthetic_source_and_protocols(skeleton_small: SkeletonFile, tmp_path: Path) -> None:
    names = ["S002C002P045R002A007", "S003C003P038R001A060", "S001C001P003R001A001"]
    for name in names:
        write_skeleton(tmp_path / f"{name}.skeleton", skeleton_small)
    (tmp_path / "notes.txt").write_text("ignored: not a .skeleton file")
    result = ingest.ingest_ntu_dir(tmp_path, "ntu120", source="synthetic", workers=1)
    samples = result.samples.set_index("sample_id")
    assert samples.index.tolist() == sorted(names)
    assert set(samples["source"]) == {"synthetic"}
    assert samples.loc["S002C002P045R002A007", ["xsub", "xview", "xset"]].tolist() == [
        "train", "train", "train"
    ]  # fmt: skip
    assert samples.loc["S001C001P003R001A001", ["xsub", "xview", "xset"]].tolist() == [
        "test", "test", "test"
    ]  # fmt: skip
    assert samples.loc["S003C003P038R001A060", "action_name"] == "walking apart from each other"
    # skeleton_small: one frame has no body; both ids are short (so the length rule is skipped)
    # and random, i.e. not person-shaped, so the spread rule drops one of them
    assert samples["num_frames"].tolist() == [3, 3, 3]
    assert set(samples["quality_flags"]) == {
        "empty_frames_dropped;length_filter_skipped;noise_body_dropped"
    }
    assert ingest.ingest_ntu_dir(tmp_path, workers=1).samples["xset"].isna().all()


def test_missing_skeleton_list(skeleton_ntu_samples: Path, tmp_path: Path) -> None:
    listed = "S001C002P005R002A008"
    assert listed in ntu_tables.missing_skeleton_ids("ntu60")
    real = skeleton_ntu_samples / "S001C001P001R001A008.skeleton"
    shutil.copy(real, tmp_path / f"{listed}.skeleton")
    result = ingest.ingest_ntu_dir(tmp_path, workers=1)
    assert result.samples.empty and result.sequences.num_rows == 0
    assert result.skipped.to_dict("records") == [{
        "path": str(tmp_path / f"{listed}.skeleton"), "sample_id": listed,
        "category": "missing_skeleton_list", "reason": "missing_skeleton_list",
    }]  # fmt: skip
    kept = ingest.ingest_ntu_dir(tmp_path, workers=1, skip_missing_list=False)
    assert kept.samples["sample_id"].tolist() == [listed]


def test_empty_folder(tmp_path: Path) -> None:
    result = ingest.ingest_ntu_dir(tmp_path)
    assert result.samples.empty and result.skipped.empty and result.sequences.num_rows == 0
    assert list(result.samples.columns) == list(SAMPLE_COLUMNS)


def test_bad_worker_count(tmp_path: Path, skeleton_small: SkeletonFile) -> None:
    write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", skeleton_small)
    with pytest.raises(ValueError, match="workers"):
        ingest.ingest_ntu_dir(tmp_path, workers=0)
