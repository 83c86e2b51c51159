"""Ingestion and storage at scale, on small sets: the streamed sequences (chunk order, content
equal to the in-memory path), a kill midway (no table at the target, the next run works), exact
corrupt-file accounting, and zero-copy sequence access over many record batches."""

from __future__ import annotations

import errno
import gc
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pose_zsl import datasets
from pose_zsl.datasets import ArrowTableDataset
from pose_zsl.skeleton import ingest, synthetic_scale
from pose_zsl.skeleton.ntu import SampleName, read_skeleton
from pose_zsl.skeleton.store import SequenceSpool, SequenceStore, sequences_table

SRC = Path(__file__).resolve().parents[1] / "src"


def random_sequences(count: int, seed: int = 0) -> tuple[list[str], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    ids = [f"S001C001P{i + 1:03d}R001A001" for i in range(count)]
    arrays = [
        rng.normal(size=(int(rng.integers(3, 30)), 2, 25, 3)).astype(np.float32)
        for _ in range(count)
    ]
    return ids, arrays


def chunked(ids: list[str], arrays: list[np.ndarray], size: int) -> pa.Table:
    """The sequences as a table of one chunk per ``size`` rows, as a spool or a file gives."""
    return pa.concat_tables(
        sequences_table(ids[i : i + size], arrays[i : i + size]) for i in range(0, len(ids), size)
    )


@pytest.fixture(scope="module")
def scale_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """36 NTU-120-named recordings (12 distinct, the rest hard links), 9 of them corrupt."""
    folder = tmp_path_factory.mktemp("scale_set")
    names = synthetic_scale.ntu120_names(36, seed=3)
    kinds = synthetic_scale.write_scale_set(folder, names, unique=12, corrupt=9, workers=1)
    return folder, kinds


# ---------------------------------------------------------------------------------------------
# Store and spool


def test_store_over_many_chunks_equals_the_single_chunk_store() -> None:
    ids, arrays = random_sequences(23)
    single = SequenceStore(sequences_table(ids, arrays))
    # the last chunk is a slice of a larger array: its offsets do not start at 0
    tail = sequences_table(ids[19:], arrays[19:]).slice(1)
    table = pa.concat_tables([chunked(ids[:20], arrays[:20], 5), tail])
    assert table.column("data").num_chunks == 5
    # as another tool may write it: 32-bit list offsets
    narrow = table.set_column(1, "data", table.column("data").cast(pa.list_(pa.float32())))
    for many in (SequenceStore(table), SequenceStore(narrow)):
        assert many.ids == single.ids == ids
        for i in range(len(ids)):
            np.testing.assert_array_equal(many[i], single[i])
            assert many.shape(i) == single.shape(i) == arrays[i].shape
    assert SequenceStore(table).get(ids[7]).base is not None  # a view, not a copy


def spool_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".sequences-spool."))


def test_spool_streams_batches_and_reads_back_memory_mapped(tmp_path: Path) -> None:
    ids, arrays = random_sequences(40, seed=1)
    before = pa.total_allocated_bytes()
    with SequenceSpool(tmp_path) as spool:
        for start in range(0, 40, 6):
            spool.write(sequences_table(ids[start : start + 6], arrays[start : start + 6]))
        table = spool.finish()
    # packing each batch allocates; the finished table holds none of it: its buffers are the
    # mapped file's pages (10 % of the data allows for the allocator's own bookkeeping)
    data_bytes = sum(a.nbytes for a in arrays)
    assert pa.total_allocated_bytes() - before < 0.1 * data_bytes
    assert table.column("data").num_chunks == 7 and spool.num_batches == 7
    assert table.equals(sequences_table(ids, arrays))
    assert spool_files(tmp_path) == [spool.path.name]  # hidden, and only while it is used
    store = SequenceStore(table)
    del table
    gc.collect()
    assert spool_files(tmp_path) == [spool.path.name]  # the store still views it
    np.testing.assert_array_equal(store[39], arrays[39])
    del store
    gc.collect()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="sequences schema"), SequenceSpool(tmp_path) as bad:
        bad.write(pa.table({"x": [1]}))
    assert list(tmp_path.iterdir()) == []  # a spool dropped after an error is deleted


def test_saving_a_spooled_table_links_the_spool_instead_of_copying(tmp_path: Path) -> None:
    ids, arrays = random_sequences(30, seed=5)
    parts = []
    for start in (0, 15):
        spool = SequenceSpool(tmp_path)
        spool.write(sequences_table(ids[start : start + 15], arrays[start : start + 15]))
        parts.append((spool.finish(), spool.path))
    (first, first_path), (second, _) = parts
    inode = first_path.stat().st_ino
    linked = tmp_path / "out" / "sequences.arrow"
    ArrowTableDataset(str(linked)).save(first)
    assert linked.stat().st_ino == inode and not first_path.exists()  # renamed, not rewritten
    assert linked.stat().st_mode & 0o777 == 0o666 & ~datasets._UMASK
    assert ArrowTableDataset(str(linked)).load().equals(first)
    # a concatenation of spooled tables is written anew (neither spool holds all of it)
    pooled = pa.concat_tables([first, second])
    copied = tmp_path / "out" / "pooled.arrow"
    ArrowTableDataset(str(copied)).save(pooled)
    assert ArrowTableDataset(str(copied)).load().equals(sequences_table(ids, arrays))
    # a spool on another disk than the table (here: a link refused) is copied as well
    failing = tmp_path / "out" / "again.arrow"

    def refuse(*_: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", refuse)
        ArrowTableDataset(str(failing)).save(second)
    assert ArrowTableDataset(str(failing)).load().equals(second)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "again.arrow",
        "pooled.arrow",
        "sequences.arrow",
    ]


def test_store_over_a_memory_mapped_file_copies_nothing(tmp_path: Path) -> None:
    ids, arrays = random_sequences(60, seed=2)
    path = tmp_path / "sequences.arrow"
    ArrowTableDataset(str(path)).save(chunked(ids, arrays, 8))
    before = pa.total_allocated_bytes()
    store = SequenceStore(ArrowTableDataset(str(path)).load())
    values = [store[i] for i in range(len(store))]
    # ids and shapes only: far below the 2 MB of coordinates (combine_chunks copied them all)
    assert pa.total_allocated_bytes() - before < 64_000
    for value, array in zip(values, arrays, strict=True):
        np.testing.assert_array_equal(value, array)
        assert not value.flags.writeable  # read-only: the file's pages


@pytest.mark.parametrize("name", ["sequences.arrow", "sequences.parquet"])
def test_dataset_writes_one_batch_or_row_group_per_chunk(tmp_path: Path, name: str) -> None:
    ids, arrays = random_sequences(17, seed=3)
    table = chunked(ids, arrays, 4)
    dataset = ArrowTableDataset(str(tmp_path / name))
    dataset.save(table)
    if name.endswith(".arrow"):
        parts = pa.ipc.open_file(tmp_path / name).num_record_batches
    else:
        parts = pq.ParquetFile(tmp_path / name).num_row_groups
    assert parts == 5
    assert dataset.load().equals(table)
    # written through a private temporary file, it ends with the usual permissions
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~datasets._UMASK
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert SequenceStore(dataset.load()).ids == ids


# ---------------------------------------------------------------------------------------------
# Streaming ingestion


def test_streamed_ingestion_equals_the_in_memory_one(
    scale_set: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = scale_set
    monkeypatch.setattr(ingest, "CHUNK_FILES", 4)  # many chunks even for a few files
    streamed = ingest.ingest_ntu_dir(folder, "ntu120", workers=2, spool=tmp_path)
    memory = ingest.ingest_ntu_dir(folder, "ntu120", workers=1)
    assert streamed.sequences.column("data").num_chunks >= 6
    assert streamed.sequences.equals(memory.sequences)
    pd.testing.assert_frame_equal(streamed.samples, memory.samples)
    pd.testing.assert_frame_equal(streamed.skipped, memory.skipped)
    # rows stay in file order, the samples and sequences tables alike
    ids = streamed.samples["sample_id"].tolist()
    assert ids == sorted(ids) == SequenceStore(streamed.sequences).ids
    del streamed
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_corrupt_files_are_skipped_and_counted_exactly(
    scale_set: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, kinds = scale_set
    corrupt = {name: kind for name, kind in kinds.items() if kind != synthetic_scale.OK}
    assert sorted(corrupt.values()) == sorted(synthetic_scale.CORRUPTIONS * 3)

    result = ingest.ingest_ntu_dir(folder, "ntu120", workers=2, spool=tmp_path)

    assert result.skipped_counts() == {ingest.BAD_FILE: 9}
    reasons = dict(zip(result.skipped["sample_id"], result.skipped["reason"], strict=True))
    assert set(reasons) == set(corrupt)
    for name, kind in corrupt.items():
        expected = {
            "empty": "empty file",
            "wrong_joint_count": "expected 25 joints, got 24",
            "truncated": "",  # depends on where the cut falls; the line is named below
        }[kind]
        assert expected in reasons[name], reasons[name]
        assert re.search(rf"{name}\.skeleton:\d+: ", reasons[name]), reasons[name]
    # the other files are untouched by their corrupt neighbours
    clean = tmp_path / "clean"
    synthetic_scale.link_subset(folder, clean, sorted(set(kinds) - set(corrupt)))
    alone = ingest.ingest_ntu_dir(clean, "ntu120", workers=1)
    assert alone.skipped.empty and alone.sequences.equals(result.sequences)
    pd.testing.assert_frame_equal(alone.samples, result.samples)


def test_layout_adaptation_streams_chunk_by_chunk_too(
    scale_set: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pose_zsl.skeleton.adapt import adapt_sequences

    folder, _ = scale_set
    monkeypatch.setattr(ingest, "CHUNK_FILES", 4)
    result = ingest.ingest_ntu_dir(folder, "ntu120", workers=1, spool=tmp_path)
    chunks = result.sequences.column("data").num_chunks
    memory_samples, memory = adapt_sequences(result.samples, result.sequences, "kinect-v1")
    spool_samples, spooled = adapt_sequences(
        result.samples, result.sequences, "kinect-v1", spool=tmp_path
    )
    assert spooled.equals(memory) and spooled.column("data").num_chunks == chunks
    pd.testing.assert_frame_equal(spool_samples, memory_samples)
    assert SequenceStore(spooled).shape(0)[2] == 20
    del result, spooled
    gc.collect()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# A kill midway


def _run_and_kill(script: str, cwd: Path) -> None:
    """Run ``script`` in a fresh interpreter that SIGKILLs itself where the script says."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]


def test_a_save_killed_midway_leaves_no_table_and_the_next_save_works(tmp_path: Path) -> None:
    ids, arrays = random_sequences(30, seed=4)
    target = tmp_path / "sequences.arrow"
    _run_and_kill(
        f"""
        import os, signal, numpy as np, pyarrow as pa
        from pose_zsl.datasets import ArrowTableDataset
        from pose_zsl.skeleton.store import sequences_table
        new_file = pa.ipc.new_file

        class Dying:  # writes two record batches, then the process is killed
            def __init__(self, writer): self.writer, self.count = writer, 0
            def __enter__(self): return self
            def __exit__(self, *exc): self.writer.close()
            def write_batch(self, batch):
                self.writer.write_batch(batch)
                self.count += 1
                if self.count == 2:
                    os.kill(os.getpid(), signal.SIGKILL)

        pa.ipc.new_file = lambda sink, schema: Dying(new_file(sink, schema))
        rng = np.random.default_rng(0)
        table = pa.concat_tables(
            sequences_table([f"s{{i}}"], [rng.normal(size=(5, 1, 25, 3)).astype("f4")])
            for i in range(6)
        )
        ArrowTableDataset({str(target)!r}).save(table)
        """,
        tmp_path,
    )
    assert not target.exists()
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".sequences.arrow.")  # hidden, never loaded

    table = chunked(ids, arrays, 7)
    ArrowTableDataset(str(target)).save(table)
    assert ArrowTableDataset(str(target)).load().equals(table)
    assert [p.name for p in tmp_path.iterdir()] == ["sequences.arrow"]  # the stale one is gone


def test_an_ingestion_killed_midway_leaves_no_file(
    scale_set: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, _ = scale_set
    spool = tmp_path / "spool"
    spool.mkdir()
    _run_and_kill(
        f"""
        import os, signal
        from pose_zsl.skeleton import ingest
        load = ingest._load_ntu
        seen = []

        def dying(path, **kwargs):  # the process is killed at the 20th file
            seen.append(path)
            if len(seen) == 20:
                os.kill(os.getpid(), signal.SIGKILL)
            return load(path, **kwargs)

        ingest._load_ntu = dying
        ingest.CHUNK_FILES = 4
        ingest.ingest_ntu_dir({str(folder)!r}, "ntu120", workers=1, spool={str(spool)!r})
        """,
        tmp_path,
    )
    # four chunks were spooled into a hidden file, which the next run in the folder removes
    (left,) = spool_files(spool)
    result = ingest.ingest_ntu_dir(folder, "ntu120", workers=1, spool=spool)
    assert result.sequences.num_rows == 27 and left not in spool_files(spool)
    del result
    gc.collect()
    assert list(spool.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The NTU-120-sized synthetic set


def test_ntu120_names_cover_the_dataset_grid() -> None:
    names = synthetic_scale.ntu120_names()
    assert len(names) == len(set(names)) == synthetic_scale.NTU120_SIZE == 114_480
    assert {n.setup for n in names} == set(range(1, 33))
    assert {n.performer for n in names} == set(range(1, 107))
    assert {n.camera for n in names} == {1, 2, 3} and {n.replication for n in names} == {1, 2}
    per_action = pd.Series([n.action for n in names]).value_counts()
    assert sorted(per_action.index) == list(range(1, 121)) and (per_action == 954).all()
    subset = synthetic_scale.ntu120_names(500, seed=1)
    assert len(subset) == 500 and set(subset) <= set(names)
    with pytest.raises(ValueError, match="n must be"):
        synthetic_scale.ntu120_names(0)


def test_generated_recordings_have_ntu_lengths_and_body_counts(tmp_path: Path) -> None:
    names = synthetic_scale.ntu120_names(12, seed=5)
    names += [SampleName(1, 1, 1, 1, action) for action in (50, 61, 106, 120)]
    synthetic_scale.write_scale_set(tmp_path, names, workers=1)
    for name in names:
        skeleton = read_skeleton(tmp_path / f"{name}.skeleton")
        bodies = 2 if name.action in synthetic_scale.MUTUAL_ACTIONS else 1
        assert set(skeleton.bodies_per_frame.tolist()) == {bodies}, name
        assert synthetic_scale.MIN_FRAMES <= skeleton.num_frames <= synthetic_scale.MAX_FRAMES
    rng = np.random.default_rng(0)
    lengths = np.array([synthetic_scale.draw_frames(rng) for _ in range(4000)])
    # log-normal, median 80, sigma 0.35: mean 85.0 frames, sd 31, so the mean of 4,000 draws
    # has a standard error of 0.5 frames; 82..88 is 6 of them either side
    assert 82 < lengths.mean() < 88 and lengths.min() >= 30 and lengths.max() <= 300
    assert synthetic_scale.motion_template(106) == 50 and synthetic_scale.motion_template(61) == 1
