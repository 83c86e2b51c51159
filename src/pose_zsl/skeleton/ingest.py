"""Directory ingestion into the shared ``samples`` / ``sequences`` tables.

Every source (NTU ``.skeleton`` folders, the synthetic generator's output, ST-GCN arrays, MSR
Action3D, UTKinect-Action3D) ends up in the one schema of :mod:`pose_zsl.skeleton.store`.
Files are parsed by a process pool in chunks (UTKinect's 20 recordings in this process); a file
that cannot be used is skipped, counted and logged with its reason, never crashing the run and
never producing a silently wrong tensor.

Sequences stay unpadded. A worker packs its chunk of files into one Arrow record batch and
sends back only that batch and a few numbers per file; the parent takes the chunks in file
order (at most a few per worker in flight) and appends each batch to the output: memory (by
default) or, with ``spool``, a :class:`~pose_zsl.skeleton.store.SequenceSpool` file that the
result then memory-maps, so ingesting NTU RGB+D 120 (about 6 GB of sequences) holds no more
than a few chunks in memory.
"""

from __future__ import annotations

import functools
import gc
import itertools
import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from pose_zsl.skeleton import msr, ntu, ntu_tables, utkinect
from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.stgcn_arrays import PARTS, STGCNArrays
from pose_zsl.skeleton.store import (
    SEQUENCE_SCHEMA,
    SequenceSpool,
    samples_frame,
    sequences_table,
)

log = logging.getLogger(__name__)

NTU_LAYOUT = "ntu-rgb+d"
SKIPPED_COLUMNS = ("path", "sample_id", "category", "reason")

# Skip categories (``skipped.category``); ``skipped.reason`` holds the specific message.
MISSING_SKELETON = "missing_skeleton_list"
BAD_FILE = "bad_file"
UNKNOWN_NAME = "unknown_name"
OUTSIDE_DATASET = "outside_dataset"
NO_VALID_FRAME = "no_valid_frame"
DUPLICATE = "duplicate_sample_id"
#: Bad files named one by one in the log; the skipped table lists every one.
MAX_LOGGED_SKIPS = 50


@dataclass
class IngestResult:
    """``samples`` (pandas), ``sequences`` (Arrow) and ``skipped`` (path, sample_id, category,
    reason) of one ingestion run; rows of ``samples`` and ``sequences`` are in the same order."""

    samples: pd.DataFrame
    sequences: pa.Table
    skipped: pd.DataFrame
    #: recording files found per top-level sub-folder of the root ("." = the root itself)
    found: dict[str, int] = field(default_factory=dict)

    def skipped_counts(self) -> dict[str, int]:
        return dict(Counter(self.skipped["category"]))


# ---------------------------------------------------------------------------------------------
# Worker functions: top level so that the process pool can pickle them.

#: Files per chunk at most: a chunk is one task of the pool and one record batch of the table.
CHUNK_FILES = 64
#: Chunks per worker submitted ahead of the one being consumed: enough to keep every worker
#: busy, few enough that finished chunks never pile up in memory when writing falls behind.
CHUNKS_AHEAD = 3


@dataclass
class _Chunk:
    """What a worker sends back for one chunk: its sequences already packed as a table (so the
    parent only appends it to the output), and per file its frames, bodies and flags, or the
    reason it could not be read."""

    loaded: list[tuple[str, int, int, str]]  # (path, num_frames, num_bodies, flags)
    failed: list[tuple[str, str]]  # (path, error message)
    sequences: pa.Table | None  # rows in the order of ``loaded``


def _load_ntu(path: str, max_bodies: int, denoise: bool) -> tuple[np.ndarray, str]:
    """The array of one NTU file and its ";"-joined quality flags."""
    array, flags = ntu.load_sample_with_flags(path, max_bodies=max_bodies, denoise=denoise)
    return array, ";".join(flags)


def _load_msr(path: str) -> tuple[np.ndarray, str]:
    array, dropped = msr.load_sample_with_info(path)
    return array, "zero_frames_dropped" if dropped else ""


def _load_chunk(
    items: Sequence[tuple[str, str]], load: Callable[[str], tuple[np.ndarray, str]]
) -> _Chunk:
    """Read the ``(path, sample_id)`` items of one chunk with ``load``; a file it cannot read
    is reported, never raised."""
    loaded, failed, ids, arrays = [], [], [], []
    for path, sample_id in items:
        try:
            array, text = load(path)
        except (SkeletonFormatError, OSError) as error:
            failed.append((path, str(error)))
            continue
        loaded.append((path, array.shape[0], _num_bodies(array), text))
        ids.append(sample_id)
        arrays.append(array)
    return _Chunk(loaded, failed, sequences_table(ids, arrays) if ids else None)


def _chunks(items: Sequence, size: int) -> list[list]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _run_chunks(
    load: Callable[[str], tuple[np.ndarray, str]],
    items: Sequence[tuple[str, str]],
    workers: int | None,
    description: str,
) -> Iterator[_Chunk]:
    """Yield :func:`_load_chunk` of each chunk of ``(path, sample_id)`` items, in input order.

    At most :data:`CHUNKS_AHEAD` chunks per worker are in flight, so memory stays bounded
    however many files there are and however slowly the caller consumes the chunks.
    """
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    chunk_size = max(1, min(CHUNK_FILES, len(items) // (4 * workers) or 1))
    chunks = _chunks(items, chunk_size)
    progress = tqdm(total=len(items), desc=description, unit="file", mininterval=1.0)
    try:
        if workers == 1 or len(chunks) <= 1:
            for chunk in chunks:
                result = _load_chunk(chunk, load)
                progress.update(len(chunk))
                yield result
            return
        # Forked workers share the parent's heap until they write to it, and a garbage
        # collection in a worker writes to every object it visits: with a large parent (a
        # Kedro session: some 200 MB) each worker would copy all of it. Frozen objects are
        # never visited.
        frozen = gc.get_freeze_count() == 0  # (a caller's own freeze is left alone)
        if frozen:
            gc.freeze()
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            todo = iter(chunks)
            pending: deque[tuple[Future[_Chunk], int]] = deque()
            try:
                for chunk in itertools.islice(todo, CHUNKS_AHEAD * workers):
                    pending.append((pool.submit(_load_chunk, chunk, load), len(chunk)))
                if frozen:  # the first submit forked the workers; the parent collects again
                    gc.unfreeze()
                    frozen = False
                while pending:
                    future, size = pending.popleft()
                    result = future.result()
                    chunk = next(todo, None)
                    if chunk is not None:
                        pending.append((pool.submit(_load_chunk, chunk, load), len(chunk)))
                    progress.update(size)
                    yield result
            finally:  # also when the caller stops early: drop the queued chunks
                if frozen:
                    gc.unfreeze()
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        progress.close()


class _MemorySink:
    """The in-memory counterpart of :class:`pose_zsl.skeleton.store.SequenceSpool`."""

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []

    def write(self, table: pa.Table) -> None:
        self._tables.append(table)

    def finish(self) -> pa.Table:
        return pa.concat_tables(self._tables) if self._tables else SEQUENCE_SCHEMA.empty_table()

    def close(self) -> None:
        self._tables.clear()


def _sink(spool: str | PathLike[str] | bool | None) -> SequenceSpool | _MemorySink:
    """Where the sequences go: a :class:`SequenceSpool` (in folder ``spool``; ``True``: the
    system's temporary folder) or, with ``None`` / ``False``, memory."""
    if spool is None or spool is False:
        return _MemorySink()
    return SequenceSpool(None if spool is True else spool)


def _num_bodies(array: np.ndarray) -> int:
    """Body slots that hold any data."""
    return int(array.reshape(array.shape[0], array.shape[1], -1).any(axis=(0, 2)).sum())


def _skipped_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(SKIPPED_COLUMNS))
    return frame.astype("string")


def _finish(
    records: list[dict],
    sink: SequenceSpool | _MemorySink,
    skipped: list[dict],
    what: str,
    found: dict[str, int] | None = None,
) -> IngestResult:
    sequences = sink.finish()
    if sequences.num_rows != len(records):  # a sample row without its sequence, or vice versa
        raise RuntimeError(f"{len(records)} samples but {sequences.num_rows} sequences")
    result = IngestResult(samples_frame(records), sequences, _skipped_frame(skipped), found or {})
    counts = result.skipped_counts()
    log.info(
        "ingested %d %s samples (%d frames); skipped %d%s",
        len(records),
        what,
        int(result.samples["num_frames"].sum()) if records else 0,
        len(skipped),
        f" {counts}" if counts else "",
    )
    # once per file: a bad UTKinect recording skips every segment it holds
    reasons = list(dict.fromkeys(row["reason"] for row in skipped if row["category"] == BAD_FILE))
    for reason in reasons[:MAX_LOGGED_SKIPS]:
        log.warning("skipped %s", reason)
    if len(reasons) > MAX_LOGGED_SKIPS:
        log.warning(
            "... and %d more bad files (all listed in the skipped table)",
            len(reasons) - MAX_LOGGED_SKIPS,
        )
    return result


def _require_dir(root: str | PathLike[str], what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{what} directory {root} does not exist")
    return root


# ---------------------------------------------------------------------------------------------
# Finding the recording files of a folder tree


class DuplicateSampleError(ValueError):
    """The same recording file name (hence sample id) is in two folders under one root."""

    def __init__(self, name: str, first: Path, second: Path) -> None:
        self.name, self.first, self.second = name, first, second
        super().__init__(
            f"duplicate sample {name!r}: found as {first} and as {second}; keep one copy (or "
            "point the ingestion at one of the folders)"
        )


def _skipped_dir(name: str) -> bool:
    """Hidden folders and the resource-fork copies macOS adds to zip archives (``._*`` files
    with the real names) hold no recording."""
    return name.startswith(".") or name == "__MACOSX"


def _walk_files(root: Path) -> Iterable[Path]:
    """Every file under ``root`` at any depth; symlinked folders are followed, once each."""
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or a folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not _skipped_dir(d)]
        for name in files:
            yield Path(folder, name)


def find_recording_files(root: Path, suffix: str) -> tuple[list[Path], dict[str, int]]:
    """The files under ``root`` (any depth) whose name ends with ``suffix``, sorted by their
    path relative to ``root`` (a flat folder: by name), and how many were found per top-level
    sub-folder (``"."``: directly inside ``root``).

    The file name is the sample id, so a name found twice is refused before anything is read:
    the same recording in two folders (two overlapping copies of an archive) would otherwise be
    ingested twice, possibly into both sides of a train/test split.

    Raises:
        DuplicateSampleError: two files with the same name (both paths named).
    """
    by_name: dict[str, Path] = {}
    for path in _walk_files(root):
        if not path.name.endswith(suffix):
            continue
        if path.name in by_name:
            first, second = sorted((by_name[path.name], path), key=lambda p: p.parts)
            raise DuplicateSampleError(path.name, first, second)
        by_name[path.name] = path
    paths = sorted(by_name.values(), key=lambda p: p.relative_to(root).parts)
    where = Counter(
        p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else "." for p in paths
    )
    if set(where) - {"."}:
        log.info(
            "found %d *%s files under %s: %s",
            len(paths),
            suffix,
            root,
            ", ".join(f"{count} in {folder}/" for folder, count in sorted(where.items())),
        )
    return paths, dict(sorted(where.items()))


#: The files each raw format reads, for messages: (name ending, description).
FORMAT_FILES = {
    "ntu": (".skeleton", "NTU RGB+D *.skeleton files"),
    "msr_action3d": ("_skeleton3D.txt", "MSR Action3D *_skeleton3D.txt files"),
    "utkinect": ("actionLabel.txt", "UTKinect-Action3D joints_sSS_eEE.txt with actionLabel.txt"),
    "stgcn_arrays": ("_data.npy", "ST-GCN {train,val}_data.npy with *_label.pkl"),
}

#: What a file name ending says about a folder, and the environment that reads such a folder.
_FORMAT_HINTS = (
    (".skeleton", "an NTU RGB+D folder? use --env ntu60 (--env ntu120 for NTU RGB+D 120)"),
    ("_skeleton3D.txt", "an MSR Action3D folder? use --env msr_action3d"),
    ("actionLabel.txt", "a UTKinect-Action3D folder? use --env utkinect"),
    ("_data.npy", "ST-GCN arrays? use --env stgcn_arrays"),
)


def wrong_format_message(root: str | PathLike[str], expected: str) -> str:
    """Which files the raw ``expected`` format reads, and what ``root`` holds instead (with the
    environment that reads it when it is another known format)."""
    root = Path(root)
    files = list(_walk_files(root)) if root.is_dir() else []
    wanted = FORMAT_FILES[expected][1] if expected in FORMAT_FILES else expected
    seen = []
    for ending, hint in _FORMAT_HINTS:
        count = sum(path.name.endswith(ending) for path in files)
        if count and ending != FORMAT_FILES.get(expected, ("",))[0]:
            seen.append(f"{count} {ending} file{'s' if count > 1 else ''}: {hint}")
    if not seen:
        kinds = Counter(path.suffix or path.name for path in files).most_common(5)
        seen = [", ".join(f"{count} {kind}" for kind, count in kinds) or "no file at all"]
    return f"expected {wanted} under {root} (any depth); found instead {'; '.join(seen)}"


# ---------------------------------------------------------------------------------------------
# NTU RGB+D (and the synthetic generator, which writes the same format)


def ntu_protocols(name: ntu.SampleName, dataset: str) -> dict[str, str | None]:
    """``xsub`` / ``xview`` / ``xset`` of a sample ("train" / "test"; xset None for NTU-60)."""

    def split(is_train: bool) -> str:
        return "train" if is_train else "test"

    return {
        "xsub": split(ntu_tables.xsub_is_train(name.performer, dataset)),
        "xview": split(ntu_tables.xview_is_train(name.camera)),
        "xset": split(ntu_tables.xset_is_train(name.setup)) if dataset == "ntu120" else None,
    }


def ntu_record(
    name: ntu.SampleName,
    *,
    dataset: str,
    source: str,
    num_frames: int,
    num_bodies: int,
    flags: str,
) -> dict:
    """A ``samples`` row for an NTU-named sample."""
    return {
        "sample_id": str(name),
        "source": source,
        "layout": NTU_LAYOUT,
        "action_id": name.action - 1,
        "action_name": ntu_tables.action_names(ntu_tables.num_classes(dataset))[name.action - 1],
        "performer": name.performer,
        "camera": name.camera,
        "setup": name.setup,
        "replication": name.replication,
        **ntu_protocols(name, dataset),
        "num_frames": num_frames,
        "num_bodies": num_bodies,
        "quality_flags": flags,
    }


def ingest_ntu_dir(
    root: str | PathLike[str],
    dataset: str = "ntu60",
    *,
    max_bodies: int = 2,
    denoise: bool = True,
    workers: int | None = None,
    limit: int | None = None,
    source: str = "ntu",
    skip_missing_list: bool = True,
    spool: str | PathLike[str] | bool | None = None,
) -> IngestResult:
    """Ingest every ``SsssCcccPpppRrrrAaaa.skeleton`` file under ``root``, at any depth (NTU
    RGB+D 120's two archives unpacked side by side, per-setup folders).

    Args:
        dataset: ``"ntu60"`` or ``"ntu120"``: class list, cross-subject performers, the
            missing-skeleton list and whether ``xset`` applies. Actions beyond the dataset's
            classes are skipped.
        max_bodies, denoise: see :func:`pose_zsl.skeleton.ntu.load_sample`.
        workers: processes; ``None`` = CPU count, ``1`` = in this process.
        limit: ingest at most this many files (after sorting by relative path), for quick runs.
        source: the ``samples.source`` value (``"synthetic"`` for generated files).
        skip_missing_list: skip samples on the official missing-skeleton list (only meaningful
            for real NTU data; generated files never carry those names by design).
        spool: stream the sequences, a chunk at a time, into a hidden temporary file in this
            folder (``True``: the system's temporary folder) and return them memory-mapped from
            it (:class:`pose_zsl.skeleton.store.SequenceSpool`); ``None``: keep them in memory.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        DuplicateSampleError: the same file name in two folders.
    """
    root = _require_dir(root, "NTU skeleton")
    paths, found = find_recording_files(root, ".skeleton")
    num_classes = ntu_tables.num_classes(dataset)
    missing = ntu_tables.missing_skeleton_ids(dataset) if skip_missing_list else frozenset()
    skipped: list[dict] = []
    candidates: list[tuple[str, ntu.SampleName]] = []
    for path in paths:
        try:
            name = ntu.parse_sample_name(path)
        except SkeletonFormatError as error:
            skipped.append(_skip(path, None, UNKNOWN_NAME, str(error)))
            continue
        sample_id = str(name)  # == the file stem, so unique (find_recording_files)
        if name.action > num_classes:
            skipped.append(
                _skip(
                    path,
                    sample_id,
                    OUTSIDE_DATASET,
                    f"action A{name.action:03d} is not in {dataset} ({num_classes} classes)",
                )
            )
            continue
        if sample_id in missing:
            skipped.append(_skip(path, sample_id, MISSING_SKELETON, MISSING_SKELETON))
            continue
        candidates.append((str(path), name))
    if limit is not None:
        candidates = candidates[: max(0, limit)]

    names = dict(candidates)
    records: list[dict] = []
    if candidates:
        ntu._compiled_parser()  # compile/load the numba kernel once; forked workers inherit it
    load = functools.partial(_load_ntu, max_bodies=max_bodies, denoise=denoise)
    items = [(path, str(name)) for path, name in candidates]
    with closing(_sink(spool)) as sink:
        for chunk in _run_chunks(load, items, workers, f"reading {root.name}"):
            for path, error in chunk.failed:
                skipped.append(_skip(path, str(names[path]), BAD_FILE, error))
            for path, num_frames, num_bodies, flags in chunk.loaded:
                records.append(
                    ntu_record(
                        names[path],
                        dataset=dataset,
                        source=source,
                        num_frames=num_frames,
                        num_bodies=num_bodies,
                        flags=flags,
                    )
                )
            if chunk.sequences is not None:
                sink.write(chunk.sequences)
        return _finish(records, sink, skipped, source, found)


def _skip(path: str | Path | None, sample_id: str | None, category: str, reason: str) -> dict:
    return {
        "path": None if path is None else str(path),
        "sample_id": sample_id,
        "category": category,
        "reason": reason,
    }


# ---------------------------------------------------------------------------------------------
# One-body Kinect v1 datasets (MSR Action3D, UTKinect-Action3D)


def kinect_v1_record(
    sample_id: str,
    source: str,
    *,
    action: int,
    action_names: Sequence[str],
    subject: int,
    replication: int,
    xsub_train: bool,
    num_frames: int,
    quality_flags: str = "",
) -> dict:
    """The ``samples`` row of a one-body recording in the ``kinect-v1`` layout (MSR Action3D
    joint order); ``action`` is the dataset's 1-based action id."""
    return {
        "sample_id": sample_id,
        "source": source,
        "layout": msr.LAYOUT,
        "action_id": action - 1,
        "action_name": action_names[action - 1],
        "performer": subject,
        "replication": replication,
        "xsub": "train" if xsub_train else "test",
        "num_frames": num_frames,
        "num_bodies": 1,
        "quality_flags": quality_flags,
    }


# ---------------------------------------------------------------------------------------------
# MSR Action3D


def ingest_msr_dir(
    root: str | PathLike[str],
    workers: int | None = None,
    limit: int | None = None,
    spool: str | PathLike[str] | bool | None = None,
) -> IngestResult:
    """Ingest the ``aAA_sSS_eEE_skeleton3D.txt`` files under ``root``, at any depth (the
    release folder holds them in ``real_world_coordinates/``). ``spool``: see
    :func:`ingest_ntu_dir`.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        DuplicateSampleError: the same file name in two folders.
    """
    root = _require_dir(root, "MSR Action3D")
    paths, found = find_recording_files(root, "_skeleton3D.txt")
    skipped: list[dict] = []
    candidates: list[tuple[str, msr.MSRName]] = []
    for path in paths:
        try:
            candidates.append((str(path), msr.parse_msr_name(path)))
        except SkeletonFormatError as error:
            skipped.append(_skip(path, None, UNKNOWN_NAME, str(error)))
    if limit is not None:
        candidates = candidates[: max(0, limit)]
    names = dict(candidates)
    action_names = msr.action_names()
    records: list[dict] = []
    items = [(path, name.sample_id) for path, name in candidates]
    with closing(_sink(spool)) as sink:
        for chunk in _run_chunks(_load_msr, items, workers, "reading MSR Action3D"):
            for path, error in chunk.failed:
                category = NO_VALID_FRAME if "no valid frame" in error else BAD_FILE
                skipped.append(_skip(path, names[path].sample_id, category, error))
            for path, num_frames, _, flags in chunk.loaded:
                name = names[path]
                records.append(
                    kinect_v1_record(
                        name.sample_id,
                        "msr_action3d",
                        action=name.action,
                        action_names=action_names,
                        subject=name.subject,
                        replication=name.repetition,
                        xsub_train=msr.xsub_is_train(name.subject),
                        num_frames=num_frames,
                        quality_flags=flags,
                    )
                )
            if chunk.sequences is not None:
                sink.write(chunk.sequences)
        return _finish(records, sink, skipped, "msr_action3d", found)


# ---------------------------------------------------------------------------------------------
# UTKinect-Action3D


UNLABELLED = "unlabelled_segment"
MISSING_FILE = "missing_file"


def ingest_utkinect_dir(root: str | PathLike[str], labels: str = "modified") -> IngestResult:
    """Cut the recordings of a UTKinect-Action3D folder (``joints_sSS_eEE.txt`` and the label
    files, or the release folder holding ``joints/``) into one sample per labelled segment.

    ``labels`` picks ``actionLabel_modified.txt`` (default; Vemulapalli et al.'s corrected
    ranges) or ``original`` (``actionLabel.txt``). Segments without a range (NaN in the
    release), segments of a missing or unreadable recording and segments with no frame in
    their range are skipped and counted.

    Raises:
        FileNotFoundError: ``root`` or the label file does not exist.
        ValueError: ``labels`` is neither ``modified`` nor ``original``.
        SkeletonFormatError: the label file is malformed (names its line).
    """
    root = _require_dir(root, "UTKinect-Action3D")
    if not (root / "actionLabel.txt").is_file() and (root / "joints").is_dir():
        root = root / "joints"
    if labels not in utkinect.LABEL_FILES:
        raise ValueError(
            f"parameter 'labels' must be one of {sorted(utkinect.LABEL_FILES)}, got {labels!r}"
        )
    label_path = root / utkinect.LABEL_FILES[labels]
    if not label_path.is_file():
        raise FileNotFoundError(f"UTKinect-Action3D label file {label_path} does not exist")
    segments = utkinect.read_labels(label_path)
    by_file: dict[str, list[utkinect.Segment]] = {}
    for segment in segments:
        by_file.setdefault(segment.joints_file, []).append(segment)
    action_names = utkinect.action_names()
    records: list[dict] = []
    sink = _MemorySink()  # 20 recordings: no need to spool
    skipped: list[dict] = []
    for file_name, file_segments in tqdm(
        by_file.items(), desc="reading UTKinect-Action3D", unit="file", mininterval=1.0
    ):
        path = root / file_name
        try:
            frame_ids, joints = utkinect.read_recording(path)
        except FileNotFoundError:
            for segment in file_segments:
                skipped.append(_skip(path, segment.sample_id, MISSING_FILE, f"{path} is missing"))
            continue
        except (SkeletonFormatError, OSError) as error:
            for segment in file_segments:
                skipped.append(_skip(path, segment.sample_id, BAD_FILE, str(error)))
            continue
        ids, arrays = [], []
        for segment in file_segments:
            try:
                array = utkinect.cut_segment(frame_ids, joints, segment)
            except ValueError as error:
                category = UNLABELLED if segment.start is None else NO_VALID_FRAME
                skipped.append(_skip(path, segment.sample_id, category, str(error)))
                continue
            records.append(
                kinect_v1_record(
                    segment.sample_id,
                    "utkinect",
                    action=segment.action,
                    action_names=action_names,
                    subject=segment.subject,
                    replication=segment.recording,
                    xsub_train=utkinect.xsub_is_train(segment.subject),
                    num_frames=array.shape[0],
                )
            )
            ids.append(segment.sample_id)
            arrays.append(array)
        if ids:
            sink.write(sequences_table(ids, arrays))
    return _finish(records, sink, skipped, "utkinect")


# ---------------------------------------------------------------------------------------------
# ST-GCN arrays


def ingest_stgcn_arrays(
    root: str | PathLike[str],
    dataset: str = "ntu60",
    *,
    parts: Sequence[str] = PARTS,
    benchmark: str | None = None,
    limit: int | None = None,
    chunk_size: int = 256,
    spool: str | PathLike[str] | bool | None = None,
) -> IngestResult:
    """Ingest ``{train,val}_data.npy`` + ``_label.pkl`` from ``root`` (memory-mapped).

    Samples are read one chunk at a time and stored unpadded (trailing all-zero frames
    removed). When the names follow the NTU pattern, camera/performer/setup and every protocol
    column come from the name. ``benchmark`` (``"xsub"``, ``"xview"`` or ``"xset"``; by default
    the folder name when it is one of those) is the protocol the arrays were split for: its
    column is set from the part (``train`` -> "train", ``val`` -> "test"). ``spool``: see
    :func:`ingest_ntu_dir`.

    Raises:
        FileNotFoundError: ``root`` or one of the part files is missing.
        SkeletonFormatError: a data or label file is malformed as a whole.
    """
    root = _require_dir(root, "ST-GCN array")
    if benchmark is None and root.name in ("xsub", "xview", "xset"):
        benchmark = root.name
    if benchmark not in (None, "xsub", "xview", "xset"):
        raise ValueError(f"benchmark must be xsub, xview, xset or None, got {benchmark!r}")
    num_classes = ntu_tables.num_classes(dataset)
    action_names = ntu_tables.action_names(num_classes)
    records: list[dict] = []
    skipped: list[dict] = []
    seen: set[str] = set()
    with closing(_sink(spool)) as sink:
        for part in parts:
            arrays_of_part = STGCNArrays(root, part)
            count = len(arrays_of_part) if limit is None else min(len(arrays_of_part), limit)
            split = "train" if part == "train" else "test"
            for start in tqdm(range(0, count, chunk_size), desc=f"reading {part}", unit="chunk"):
                ids, arrays = [], []
                for index in range(start, min(count, start + chunk_size)):
                    raw_name = arrays_of_part.names[index]
                    where = f"{arrays_of_part.data_path}[{index}]"
                    sample_id = raw_name.removesuffix(".skeleton")
                    label = int(arrays_of_part.labels[index])
                    if sample_id in seen:
                        skipped.append(_skip(where, sample_id, DUPLICATE, f"{where}: duplicate"))
                        continue
                    if label >= num_classes:
                        skipped.append(
                            _skip(
                                where,
                                sample_id,
                                OUTSIDE_DATASET,
                                f"{where}: label {label} outside {dataset}",
                            )
                        )
                        continue
                    try:
                        array = arrays_of_part.load_sample(index)
                    except SkeletonFormatError as error:
                        category = NO_VALID_FRAME if "no non-zero frame" in str(error) else BAD_FILE
                        skipped.append(_skip(where, sample_id, category, f"{error} [{where}]"))
                        continue
                    try:
                        record = _stgcn_record(sample_id, label, action_names, dataset, array)
                    except SkeletonFormatError as error:
                        skipped.append(_skip(where, sample_id, BAD_FILE, f"{error} [{where}]"))
                        continue
                    seen.add(sample_id)
                    if benchmark is not None:
                        record[benchmark] = split
                    records.append(record)
                    ids.append(sample_id)
                    arrays.append(array)
                if ids:
                    sink.write(sequences_table(ids, arrays))
        return _finish(records, sink, skipped, "stgcn_arrays")


def _stgcn_record(
    sample_id: str, label: int, action_names: list[str], dataset: str, array: np.ndarray
) -> dict:
    num_frames, num_bodies = array.shape[0], _num_bodies(array)
    try:
        name = ntu.parse_sample_name(sample_id)
    except SkeletonFormatError:
        return {
            "sample_id": sample_id,
            "source": "stgcn_arrays",
            "layout": NTU_LAYOUT,
            "action_id": label,
            "action_name": action_names[label],
            "num_frames": num_frames,
            "num_bodies": num_bodies,
            "quality_flags": "",
        }
    if name.action - 1 != label:
        raise SkeletonFormatError(
            sample_id, None, f"label {label} but the name says action A{name.action:03d}"
        )
    return ntu_record(
        name,
        dataset=dataset,
        source="stgcn_arrays",
        num_frames=num_frames,
        num_bodies=num_bodies,
        flags="",
    )
