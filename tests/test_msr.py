"""MSR Action3D reader and ingestion on the real release."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pose_zsl.skeleton import ingest, msr
from pose_zsl.skeleton.store import SequenceStore

# From /work/shared/data/real/MSRAction3D/SOURCES.md ("Subjects and counts").
SEQUENCES_PER_SUBJECT = {1: 60, 2: 59, 3: 56, 4: 38, 5: 57, 6: 58, 7: 59, 8: 60, 9: 60, 10: 60}
SEQUENCES_PER_ACTION = {
    **dict.fromkeys(range(1, 4), 27), **dict.fromkeys(range(4, 7), 26), 7: 28,
    **dict.fromkeys(range(8, 15), 30), 15: 20, **dict.fromkeys(range(16, 21), 30),
}  # fmt: skip
ALL_ZERO_SEQUENCE = "a13_s09_e02"  # 38 frames, all zeros
MOSTLY_ZERO_SEQUENCE = "a13_s09_e03"  # 936 frames, 740 all-zero


def _files(root: Path) -> list[Path]:
    return sorted((root / "real_world_coordinates").glob("*_skeleton3D.txt"))


def test_counts_per_action_and_subject(skeleton_msr_root: Path) -> None:
    names = [msr.parse_msr_name(path) for path in _files(skeleton_msr_root)]
    assert len(names) == 567
    assert Counter(name.subject for name in names) == SEQUENCES_PER_SUBJECT
    assert Counter(name.action for name in names) == SEQUENCES_PER_ACTION


def test_action_names_match_release(skeleton_msr_root: Path) -> None:
    rows = (skeleton_msr_root / "actions.csv").read_text().strip().splitlines()[1:]
    release = [row.split(",", 1)[1] for row in rows]
    assert msr.action_names() == release
    assert len(release) == 20


def test_all_zero_frames_are_dropped(skeleton_msr_root: Path) -> None:
    path = skeleton_msr_root / "real_world_coordinates" / f"{MOSTLY_ZERO_SEQUENCE}_skeleton3D.txt"
    raw = msr.read_msr(path)
    assert raw.shape == (936, 20, 4)
    sample = msr.load_sample(path)
    assert sample.shape == (936 - 740, 1, 20, 3) and sample.dtype == np.float32
    assert sample.reshape(len(sample), -1).any(axis=1).all()
    kept = raw[raw[..., :3].reshape(936, -1).any(axis=1)][..., :3]
    np.testing.assert_array_equal(sample[:, 0], kept.astype(np.float32))


def test_clean_sequence_values(skeleton_msr_root: Path) -> None:
    path = skeleton_msr_root / "real_world_coordinates" / "a01_s01_e01_skeleton3D.txt"
    rows = np.loadtxt(path)
    sample = msr.load_sample(path)
    assert sample.shape == (len(rows) // 20, 1, 20, 3)
    np.testing.assert_array_equal(sample.reshape(-1, 3), rows[:, :3].astype(np.float32))
    # y points up: the head (joint 20) is above the feet (18, 19)
    assert (sample[:, 0, 19, 1] > sample[:, 0, 17:19, 1].max(axis=1)).all()


def test_ingest_release(skeleton_msr_root: Path) -> None:
    result = ingest.ingest_msr_dir(skeleton_msr_root, workers=2)
    samples = result.samples
    assert len(samples) == 566
    assert result.skipped_counts() == {ingest.NO_VALID_FRAME: 1}
    assert result.skipped["sample_id"].tolist() == [ALL_ZERO_SEQUENCE]
    assert set(samples["layout"]) == {"kinect-v1"}
    assert set(samples["source"]) == {"msr_action3d"}
    subjects = samples["performer"].astype(int)
    assert (samples["xsub"] == np.where(subjects % 2 == 1, "train", "test")).all()
    expected = Counter(SEQUENCES_PER_SUBJECT)
    expected[9] -= 1
    assert Counter(subjects.tolist()) == expected
    assert (samples["action_name"] == [msr.action_names()[a] for a in samples["action_id"]]).all()
    store = SequenceStore(result.sequences)
    assert store.ids == samples["sample_id"].tolist()
    row = samples.index[samples["sample_id"] == MOSTLY_ZERO_SEQUENCE][0]
    assert samples.loc[row, "num_frames"] == 196
    assert samples.loc[row, "quality_flags"] == "zero_frames_dropped"
    assert store.shape(row) == (196, 1, 20, 3)
    assert int(samples["num_frames"].sum()) == sum(s[0] for s in map(store.shape, range(566)))
    assert (samples["quality_flags"] != "").sum() == 19  # 20 files with zero frames, 1 skipped


def test_ingest_accepts_the_coordinates_folder(skeleton_msr_root: Path) -> None:
    result = ingest.ingest_msr_dir(skeleton_msr_root / "real_world_coordinates", limit=5, workers=1)
    assert result.samples["sample_id"].tolist() == [
        "a01_s01_e01", "a01_s01_e02", "a01_s01_e03", "a01_s02_e01", "a01_s02_e02",
    ]  # fmt: skip


@pytest.mark.parametrize("subject", range(1, 11))
def test_cross_subject_rule(subject: int) -> None:
    assert msr.xsub_is_train(subject) == (subject % 2 == 1)
