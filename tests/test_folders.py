"""Reading recordings from folders: ``pose-zsl predict FOLDER`` yields every recording format
a file given on its own is read as, ingestion scans sub-folders (NTU RGB+D 120's two archives
side by side), a sample found twice is refused, and a folder of another format is named."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared
from test_cli import LABELS, predict_args, run_cli
from test_inference import MSR_DIR

from pose_zsl.cli import EXIT_OK
from pose_zsl.datasets import RawSource
from pose_zsl.environments import config_loader
from pose_zsl.inference import read_recordings
from pose_zsl.pipelines.ingestion.nodes import ingest_recordings
from pose_zsl.skeleton import ingest, ntu
from pose_zsl.skeleton.ntu import load_sample
from pose_zsl.skeleton.store import SequenceStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: The ingestion parameters ``kedro run`` resolves, with one worker process.
NODE_PARAMS = config_loader(None)["parameters"]["ingestion"] | {"workers": 1}
#: How NTU RGB+D 120's two skeleton archives unpack when each gets its own folder.
ARCHIVES = ("nturgbd_skeletons_s001_to_s017", "nturgbd_skeletons_s018_to_s032")


def _single_recordings(models, folder: Path, count: int) -> list[Path]:
    """``count`` recordings of the model's training data, one (T, M, 25, 3) .npy file each."""
    folder.mkdir()
    store = SequenceStore(models.sequences)
    paths = []
    for index in range(count):
        path = folder / f"clip_{index:02d}.npy"
        np.save(path, store[index])
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# pose-zsl predict FOLDER


def test_predict_a_folder_of_single_recording_npy_files(ntu_models, tmp_path, capsys):
    folder = tmp_path / "recordings"
    files = _single_recordings(ntu_models, folder, 3)
    output, one_by_one = tmp_path / "folder.csv", tmp_path / "files.csv"
    status = run_cli(*predict_args(ntu_models, [folder], "--top-k", "2", "--output", str(output)))
    assert status == EXIT_OK, capsys.readouterr().err
    written = pd.read_csv(output)
    assert written["recording"].value_counts().to_dict() == {str(path): 2 for path in files}
    args = predict_args(ntu_models, files, "--top-k", "2", "--output", str(one_by_one))
    assert run_cli(*args) == EXIT_OK
    pd.testing.assert_frame_equal(written, pd.read_csv(one_by_one))
    assert set(written["label"]) <= set(LABELS.split(", "))


def test_a_folder_yields_every_format_read_one_by_one(ntu_models, tmp_path):
    folder = tmp_path / "mixed"
    singles = _single_recordings(ntu_models, folder, 2)
    store = SequenceStore(ntu_models.sequences)
    # two samples as ST-GCN arrays (N, C, T, V, M) with their label file beside them
    frames = max(store[i].shape[0] for i in (2, 3))
    stacked = np.zeros((2, 3, frames, 25, 2), np.float32)
    for slot, index in enumerate((2, 3)):
        array = store[index]  # (T, M, V, C)
        stacked[slot, :, : array.shape[0], :, : array.shape[1]] = array.transpose(3, 0, 2, 1)
    np.save(folder / "val_data.npy", stacked)
    names = [f"{store.ids[i]}.skeleton" for i in (2, 3)]
    with (folder / "val_label.pkl").open("wb") as handle:
        pickle.dump((names, [0, 1]), handle)
    skeleton = sorted(ntu_models.raw_dir.glob("*.skeleton"))[0]
    shutil.copy(skeleton, folder / skeleton.name)
    (folder / "README.txt").write_text("not a recording")

    recordings, unreadable = read_recordings([folder])

    assert unreadable.empty, unreadable  # val_label.pkl and README.txt are not recordings
    data = folder / "val_data.npy"
    tagged = [f"{data}[{name}]" for name in names]
    assert [r.name for r in recordings] == [
        str(folder / skeleton.name),
        *map(str, singles),
        *tagged,
    ]
    for recording, path in zip(recordings[1:3], singles, strict=True):
        np.testing.assert_array_equal(recording.data, np.load(path))
    for recording, index in zip(recordings[3:], (2, 3), strict=True):
        expected = store[index]
        np.testing.assert_array_equal(recording.data[:, : expected.shape[1]], expected)


def test_an_unusable_folder_names_the_patterns_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("no recording here")
    (tmp_path / "labels_label.pkl").write_bytes(pickle.dumps(([], [])))
    (tmp_path / "deeper").mkdir()
    recordings, unreadable = read_recordings([tmp_path])
    assert not recordings
    (reason,) = unreadable["reason"]
    assert "looked for *.skeleton, *_skeleton3D.txt, *.npy" in reason
    assert "sub-folders are not searched" in reason


# ---------------------------------------------------------------------------------------------
# ingestion: sub-folders, duplicates


def _ntu120_side_by_side(source: Path, root: Path) -> dict[str, list[Path]]:
    """The real NTU files split over the two archive folders, two levels deep, plus one file
    directly in ``root`` and the macOS resource forks a zip made on a Mac carries."""
    files = sorted(source.glob("*.skeleton"))
    parts = {ARCHIVES[0]: files[:20], ARCHIVES[1]: files[20:-1], ".": files[-1:]}
    for folder, paths in parts.items():
        target = root / folder / "nturgb+d_skeletons" if folder != "." else root
        target.mkdir(parents=True, exist_ok=True)
        for path in paths:
            (target / path.name).symlink_to(path)
    forks = root / "__MACOSX" / ARCHIVES[0] / "nturgb+d_skeletons"
    forks.mkdir(parents=True)
    (forks / f"._{files[0].name}").write_bytes(b"\x00\x05\x16\x07")
    (root / ".cache").mkdir()
    (root / ".cache" / files[0].name).symlink_to(files[0])  # hidden: not a second copy
    return parts


def test_nested_ntu_folders_ingest_every_recording_once(skeleton_ntu_samples, tmp_path):
    parts = _ntu120_side_by_side(skeleton_ntu_samples, tmp_path)
    result = ingest.ingest_ntu_dir(tmp_path, "ntu120", workers=1)
    expected = sorted(path.stem for paths in parts.values() for path in paths)
    assert len(expected) == 39
    assert sorted(result.samples["sample_id"]) == expected  # each once
    assert result.skipped.empty, result.skipped
    assert result.found == {".": 1, ARCHIVES[0]: 20, ARCHIVES[1]: 18}
    # sorted by relative path: the file at the top first, then archive by archive
    order = [p.stem for p in parts["."] + parts[ARCHIVES[0]] + parts[ARCHIVES[1]]]
    assert result.samples["sample_id"].tolist() == order
    store = SequenceStore(result.sequences)
    for i, sample_id in enumerate(store.ids):
        np.testing.assert_array_equal(
            store[i], load_sample(skeleton_ntu_samples / f"{sample_id}.skeleton")
        )


def test_a_flat_folder_keeps_its_order(ntu_models):
    paths, found = ingest.find_recording_files(ntu_models.raw_dir, ".skeleton")
    assert paths == sorted(ntu_models.raw_dir.glob("*.skeleton")) and len(paths) > 1
    assert found == {".": len(paths)}


def test_a_duplicate_sample_is_refused_naming_both_paths(skeleton_ntu_samples, monkeypatch):
    # the shared folder holds a second copy of A001 in crlf_variant/
    def no_parsing(*args, **kwargs):
        raise AssertionError("a file was parsed before the duplicate was found")

    monkeypatch.setattr(ntu, "load_sample_with_flags", no_parsing)
    monkeypatch.setattr(ntu, "parse_sample_name", no_parsing)
    with pytest.raises(ingest.DuplicateSampleError) as caught:
        ingest.ingest_ntu_dir(skeleton_ntu_samples, workers=1)
    name = "S001C001P001R001A001.skeleton"
    message = str(caught.value)
    assert str(skeleton_ntu_samples / name) in message
    assert str(skeleton_ntu_samples / "crlf_variant" / name) in message


def test_a_duplicate_msr_recording_is_refused(tmp_path):
    require_shared(MSR_DIR, "the MSR Action3D recordings")
    source = MSR_DIR / "a01_s01_e01_skeleton3D.txt"
    for folder in ("copy_a", "copy_b"):
        (tmp_path / folder).mkdir()
        shutil.copy(source, tmp_path / folder / source.name)
    with pytest.raises(ingest.DuplicateSampleError, match="copy_a.*copy_b"):
        ingest.ingest_msr_dir(tmp_path, workers=1)


# ---------------------------------------------------------------------------------------------
# an environment pointed at another format


def _raw(path: Path, format: str, dataset: str) -> RawSource:
    return RawSource(path=str(path), format=format, dataset=dataset, source=format)


def test_wrong_format_names_the_expected_pattern_and_what_was_seen(skeleton_ntu_samples, tmp_path):
    ntu_folder = tmp_path / "ntu"
    ntu_folder.mkdir()
    for path in sorted(skeleton_ntu_samples.glob("*.skeleton"))[:5]:
        (ntu_folder / path.name).symlink_to(path)
    with pytest.raises(ValueError) as caught:
        ingest_recordings(_raw(ntu_folder, "msr_action3d", "msr_action3d"), NODE_PARAMS)
    message = str(caught.value)
    assert f"no usable recording in {ntu_folder}" in message
    assert "expected MSR Action3D *_skeleton3D.txt files" in message
    assert "5 .skeleton files: an NTU RGB+D folder? use --env ntu60" in message

    with pytest.raises(FileNotFoundError, match=r"5 \.skeleton files: an NTU RGB\+D folder"):
        ingest_recordings(_raw(ntu_folder, "utkinect", "utkinect"), NODE_PARAMS)

    require_shared(MSR_DIR, "the MSR Action3D recordings")
    with pytest.raises(ValueError) as caught:
        ingest_recordings(_raw(MSR_DIR, "ntu", "ntu60"), NODE_PARAMS)
    message = str(caught.value)
    assert "expected NTU RGB+D *.skeleton files" in message
    count = len(list(MSR_DIR.glob("*_skeleton3D.txt")))
    assert (
        f"{count} _skeleton3D.txt files: an MSR Action3D folder? use --env msr_action3d" in message
    )

    other = tmp_path / "other"
    other.mkdir()
    (other / "a.csv").write_text("x")
    with pytest.raises(ValueError, match=r"expected NTU RGB\+D .*found instead 1 \.csv"):
        ingest_recordings(_raw(other, "ntu", "ntu60"), NODE_PARAMS)
