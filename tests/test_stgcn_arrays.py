"""ST-GCN preprocessed arrays: memory-mapped reading, label pickles, ingestion."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from pose_zsl.skeleton import ingest
from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.stgcn_arrays import STGCNArrays, read_labels
from pose_zsl.skeleton.store import SequenceStore

NAMES = ["S001C001P001R001A001.skeleton", "S002C002P002R002A050.skeleton",
         "S003C003P003R001A010.skeleton"]  # fmt: skip
LENGTHS = [5, 9, 3]
LABELS = [0, 49, 9]


def _py2_pickle(names: list[str], labels: list[int]) -> bytes:
    """What Python 2's ``pickle.dump((names, labels), f)`` writes: byte-string names."""
    out = b"\x80\x02(]q\x00("
    for name in names:
        out += b"U" + bytes([len(name)]) + name.encode("ascii")
    out += b"e]q\x01("
    for label in labels:
        out += b"K" + bytes([label])
    return out + b"etq\x02."


def _make(root: Path, part: str = "train", *, py2: bool = True, frames: int = 12) -> np.ndarray:
    """Write tiny ``{part}_data.npy`` (N, 3, T, 25, 2) + labels; returns the data."""
    rng = np.random.default_rng(len(part))
    data = np.zeros((len(NAMES), 3, frames, 25, 2), np.float32)
    for i, length in enumerate(LENGTHS):
        data[i, :, :length, :, 0] = rng.normal(size=(3, length, 25))
        if i == 1:
            data[i, :, :length, :, 1] = rng.normal(size=(3, length, 25))
    data[0, :, 2] = 0  # an all-zero frame inside the sequence stays (only trailing ones go)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / f"{part}_data.npy", data)
    labels = _py2_pickle(NAMES, LABELS) if py2 else pickle.dumps(
        (NAMES, [np.int64(label) for label in LABELS])
    )  # fmt: skip
    (root / f"{part}_label.pkl").write_bytes(labels)
    return data


def test_py2_pickle_helper_is_a_real_pickle() -> None:
    assert pickle.loads(_py2_pickle(["ab"], [3]), encoding="bytes") == ([b"ab"], [3])


@pytest.mark.parametrize("py2", [True, False])
def test_read_labels(tmp_path: Path, py2: bool) -> None:
    _make(tmp_path, py2=py2)
    names, labels = read_labels(tmp_path / "train_label.pkl")
    assert names == NAMES
    assert labels.dtype == np.int64 and labels.tolist() == LABELS


def test_samples_are_unpadded_views_of_the_memmap(tmp_path: Path) -> None:
    data = _make(tmp_path)
    arrays = STGCNArrays(tmp_path, "train")
    assert isinstance(arrays.data, np.memmap)
    assert len(arrays) == 3
    for i, length in enumerate(LENGTHS):
        sample = arrays[i]
        assert sample.shape == (length, 2, 25, 3) and sample.dtype == np.float32
        np.testing.assert_array_equal(sample, data[i, :, :length].transpose(1, 3, 2, 0))
    assert not arrays[0][2].any()


def test_ingest_arrays(tmp_path: Path) -> None:
    root = tmp_path / "xview"
    _make(root, "train")
    _make(root, "val")
    (root / "val_label.pkl").write_bytes(
        _py2_pickle([name.replace("R00", "R09") for name in NAMES], LABELS)
    )
    result = ingest.ingest_stgcn_arrays(root)
    samples = result.samples
    assert len(samples) == 6 and result.skipped.empty
    assert samples["num_frames"].tolist() == LENGTHS * 2
    assert samples["num_bodies"].tolist() == [1, 2, 1] * 2
    assert samples["action_id"].tolist() == LABELS * 2
    assert samples["action_name"].iloc[1] == "punching/slapping other person"
    assert samples["xview"].tolist() == ["train"] * 3 + ["test"] * 3  # from the folder name
    assert samples["xsub"].tolist() == ["train", "train", "test"] * 2  # from the names
    assert samples["camera"].tolist() == [1, 2, 3] * 2
    store = SequenceStore(result.sequences)
    np.testing.assert_array_equal(store.get("S002C002P002R002A050"), STGCNArrays(root)[1])


def test_ingest_skips_empty_samples_and_wrong_labels(tmp_path: Path) -> None:
    data = _make(tmp_path)
    data[2] = 0
    np.save(tmp_path / "train_data.npy", data)
    (tmp_path / "train_label.pkl").write_bytes(_py2_pickle(NAMES, [0, 48, 9]))
    result = ingest.ingest_stgcn_arrays(tmp_path, parts=["train"])
    assert result.samples["sample_id"].tolist() == ["S001C001P001R001A001"]
    assert result.skipped["category"].tolist() == [ingest.BAD_FILE, ingest.NO_VALID_FRAME]
    assert "label 48 but the name says action A050" in result.skipped["reason"].iloc[0]
    assert "train_data.npy[2]" in result.skipped["reason"].iloc[1]
    with pytest.raises(SkeletonFormatError, match="no non-zero frame"):
        STGCNArrays(tmp_path).load_sample(2)


def test_label_count_mismatch(tmp_path: Path) -> None:
    _make(tmp_path)
    (tmp_path / "train_label.pkl").write_bytes(_py2_pickle(NAMES[:2], LABELS[:2]))
    with pytest.raises(SkeletonFormatError, match=r"train_label\.pkl: 2 labels for 3 samples"):
        STGCNArrays(tmp_path)


def test_bad_label_files(tmp_path: Path) -> None:
    path = tmp_path / "labels.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(SkeletonFormatError, match=r"labels\.pkl: not a readable label pickle"):
        read_labels(path)
    path.write_bytes(pickle.dumps((["a", "b"], [1])))
    with pytest.raises(SkeletonFormatError, match="2 sample names but labels of shape"):
        read_labels(path)
    path.write_bytes(pickle.dumps({"names": []}))
    with pytest.raises(SkeletonFormatError, match="pair"):
        read_labels(path)


def test_label_pickle_cannot_run_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "labels.pkl"
    path.write_bytes(pickle.dumps((["a"], [Evil()])))
    with pytest.raises(SkeletonFormatError, match="builtins.print"):
        read_labels(path)


def test_wrong_array_shape_and_missing_files(tmp_path: Path) -> None:
    _make(tmp_path)
    with pytest.raises(FileNotFoundError, match="val_data.npy"):
        STGCNArrays(tmp_path, "val")
    np.save(tmp_path / "train_data.npy", np.zeros((3, 3, 25, 2), np.float32))
    with pytest.raises(SkeletonFormatError, match=r"expected \(N, C, T, V, M\)"):
        STGCNArrays(tmp_path)
    with pytest.raises(ValueError, match="part"):
        STGCNArrays(tmp_path, "test")
