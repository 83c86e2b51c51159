"""One storage schema for every skeleton source.

Two tables describe a dataset:

* ``samples`` (pandas DataFrame, one row per sample): the columns in :data:`SAMPLE_COLUMNS`.
* ``sequences`` (``pyarrow.Table``): ``sample_id`` plus the coordinates *unpadded*, as a flat
  float32 list and its shape ``(T, M, V, C)``. :class:`SequenceStore` gives zero-copy numpy
  views of single sequences, so a whole dataset never has to be padded to a fixed length in RAM.

At NTU RGB+D 120 size the unpadded sequences are about 6 GB, so they are never held in memory
as a whole: ingestion writes them a record batch at a time (:class:`SequenceSpool`), the
catalog stores them as an uncompressed Arrow IPC file that is read memory-mapped (parquet would
be decoded into memory on every load), and :class:`SequenceStore` keeps one view per batch.
"""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)

#: Column -> pandas dtype of the ``samples`` table. Nullable integers where a source may not know
#: the value (MSR Action3D has no camera or setup). Protocol columns hold "train" / "test" / None.
SAMPLE_COLUMNS: dict[str, str] = {
    "sample_id": "string",
    "source": "string",  # synthetic | ntu | stgcn_arrays | msr_action3d | utkinect
    "layout": "string",  # ntu-rgb+d | kinect-v1 | ...
    "action_id": "Int64",  # 0-based class index
    "action_name": "string",
    "performer": "Int64",
    "camera": "Int64",
    "setup": "Int64",
    "replication": "Int64",
    "xsub": "string",
    "xview": "string",
    "xset": "string",
    "xdata": "string",  # pooled cross-dataset environments: target dataset test, others train
    "num_frames": "Int64",
    "num_bodies": "Int64",
    "quality_flags": "string",  # ";"-joined flags, "" when clean (e.g. "noise_body_dropped")
}

SEQUENCE_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("data", pa.large_list(pa.float32())),
        ("shape", pa.list_(pa.int32(), 4)),
    ]
)


def samples_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Build a ``samples`` table from dict records; missing columns become null.

    Raises:
        ValueError: a record carries a column outside :data:`SAMPLE_COLUMNS`.
    """
    frame = pd.DataFrame.from_records(list(records))
    unknown = set(frame.columns) - set(SAMPLE_COLUMNS)
    if unknown:
        raise ValueError(f"samples records have unknown columns: {sorted(unknown)}")
    for column, dtype in SAMPLE_COLUMNS.items():
        if column not in frame:
            frame[column] = pd.Series([None] * len(frame), dtype=dtype)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame[list(SAMPLE_COLUMNS)].reset_index(drop=True)


def sequences_table(sample_ids: Sequence[str], arrays: Sequence[np.ndarray]) -> pa.Table:
    """Pack unpadded ``(T, M, V, C)`` float32 arrays into a ``sequences`` table.

    Raises:
        ValueError: lengths differ, an array is not 4-D, or holds NaN/inf.
    """
    if len(sample_ids) != len(arrays):
        raise ValueError(f"{len(sample_ids)} sample ids but {len(arrays)} arrays")
    shapes = []
    for sample_id, array in zip(sample_ids, arrays, strict=True):
        if array.ndim != 4:
            raise ValueError(f"sequence {sample_id!r}: expected (T, M, V, C), got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"sequence {sample_id!r}: contains NaN or inf coordinates")
        shapes.append(list(array.shape))
    flat = (
        np.concatenate([np.ascontiguousarray(a, dtype=np.float32).ravel() for a in arrays])
        if arrays
        else np.zeros(0, dtype=np.float32)
    )
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([a.size for a in arrays], out=offsets[1:])
    data = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat))
    return pa.Table.from_arrays(
        [pa.array(list(sample_ids), pa.string()), data, pa.array(shapes, pa.list_(pa.int32(), 4))],
        schema=SEQUENCE_SCHEMA,
    )


class SequenceStore:
    """Random access to the sequences of a ``sequences`` table as zero-copy numpy views.

    A table read from a file holds one chunk per record batch (row group); each chunk keeps its
    own values buffer, so a sequence is a view into the chunk that holds it and nothing is
    combined or copied: over a memory-mapped file, opening the store costs a few bytes per
    sequence, not the size of the data.
    """

    def __init__(self, table: pa.Table) -> None:
        missing = {"sample_id", "data", "shape"} - set(table.column_names)
        if missing:
            raise ValueError(f"sequences table lacks columns {sorted(missing)}")
        self._values: list[np.ndarray] = []
        self._chunk = np.empty(table.num_rows, dtype=np.int32)
        self._starts = np.empty(table.num_rows, dtype=np.int64)
        self._stops = np.empty(table.num_rows, dtype=np.int64)
        row = 0
        large = pa.large_list(pa.float32())
        for stored in table.column("data").chunks:
            # a table written by another tool may have 32-bit offsets
            chunk = stored.cast(large) if pa.types.is_list(stored.type) else stored
            # .offsets of a sliced chunk are the slice's, and index .values (not sliced)
            offsets = chunk.offsets.to_numpy()
            rows = slice(row, row + len(chunk))
            self._chunk[rows] = len(self._values)
            self._starts[rows], self._stops[rows] = offsets[:-1], offsets[1:]
            self._values.append(chunk.values.to_numpy(zero_copy_only=True))
            row += len(chunk)
        shapes = table.column("shape")
        self._shapes = (
            np.concatenate(
                [np.zeros(0, dtype=np.int64)]
                + [chunk.flatten().to_numpy(zero_copy_only=False) for chunk in shapes.chunks]
            )
            .astype(np.int64)
            .reshape(-1, 4)
        )
        self.ids: list[str] = table.column("sample_id").to_pylist()
        self._index = {sample_id: i for i, sample_id in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            raise ValueError("sequences table has duplicate sample ids")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> np.ndarray:
        values = self._values[self._chunk[i]]
        return values[self._starts[i] : self._stops[i]].reshape(self._shapes[i])

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._index

    def shape(self, i: int) -> tuple[int, int, int, int]:
        """``(T, M, V, C)`` of sequence ``i`` without touching its data."""
        return tuple(int(s) for s in self._shapes[i])

    def index_of(self, sample_id: str) -> int:
        try:
            return self._index[sample_id]
        except KeyError:
            raise KeyError(f"sample {sample_id!r} is not in the sequences table") from None

    def get(self, sample_id: str) -> np.ndarray:
        return self[self.index_of(sample_id)]


#: File name stem of :class:`SequenceSpool` files (``.sequences-spool.<pid>.<random>.tmp``).
SPOOL_STEM = "sequences-spool"

#: id of each table a spool returned -> (weak reference to it, its spool file), while it lives.
_spooled: dict[int, tuple[weakref.ref, Path]] = {}


class SequenceSpool:
    """A ``sequences`` table written one record batch at a time to a temporary Arrow IPC file,
    then read back memory-mapped: the writer never holds more than one batch, and the finished
    table costs no memory of its own (the kernel pages it in from the file).

    The file (``.sequences-spool.<pid>.<random>.tmp`` in ``folder``: hidden, and never named like
    an output) is deleted when the last view of the table is freed. Saving the table as an Arrow
    IPC file on the same disk (:class:`pose_zsl.datasets.ArrowTableDataset`) gives the spool file
    its final name instead of writing the data twice (:func:`spool_file`). A spool left by a
    killed process is deleted by the next spool in the same folder. ``folder`` should be on a
    disk with room for the data (not a RAM-backed ``/tmp``); by default the system's temporary
    folder.
    """

    def __init__(self, folder: str | PathLike[str] | None = None) -> None:
        self.path = temporary_file(
            Path(tempfile.gettempdir() if folder is None else folder), SPOOL_STEM
        )
        self._file = self.path.open("r+b")
        self._writer = pa.ipc.new_file(pa.PythonFile(self._file, mode="w"), SEQUENCE_SCHEMA)
        self._finished = False
        self.num_rows = 0
        self.num_batches = 0

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        """Append the rows of ``table`` (one record batch per chunk).

        Raises:
            ValueError: ``table`` does not have the ``sequences`` schema.
        """
        if not table.schema.equals(SEQUENCE_SCHEMA):
            raise ValueError(f"expected the sequences schema {SEQUENCE_SCHEMA}, got {table.schema}")
        self._writer.write(table)
        self.num_rows += table.num_rows
        self.num_batches += len(table.to_batches()) if isinstance(table, pa.Table) else 1

    def finish(self) -> pa.Table:
        """Every row written so far, as one memory-mapped table (a chunk per batch)."""
        self._writer.close()
        self._file.flush()
        mapped = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._file.close()
        self._finished = True
        # the file goes with the mapping, i.e. with the last array that views the data
        weakref.finalize(mapped, self.path.unlink, missing_ok=True)
        table = pa.ipc.open_file(pa.py_buffer(mapped)).read_all()
        key = id(table)
        _spooled[key] = (weakref.ref(table, lambda _, key=key: _spooled.pop(key, None)), self.path)
        return table

    def close(self) -> None:
        """Drop the spool without reading it (after an error); no-op once finished."""
        if not self._finished and not self._file.closed:
            self._file.close()
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> SequenceSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def spool_file(table: pa.Table) -> Path | None:
    """The complete Arrow IPC file behind ``table`` when it is exactly a table that
    :meth:`SequenceSpool.finish` returned (not a slice or concatenation of one) and the file is
    still there, else None."""
    entry = _spooled.get(id(table))
    if entry is None or entry[0]() is not table or not entry[1].exists():
        return None
    return entry[1]


def temporary_file(folder: Path, stem: str) -> Path:
    """A new empty file ``.<stem>.<pid>.<random>.tmp`` in ``folder``, after deleting the ones
    of processes that no longer run (left by a kill): hidden, never mistaken for an output."""
    remove_stale_temporaries(folder, stem)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    return Path(name)


def remove_stale_temporaries(folder: Path, stem: str) -> None:
    """Delete the :func:`temporary_file` files of ``stem`` whose process is gone."""
    if os.name != "posix":  # no cheap liveness check (os.kill would end the process)
        return
    for candidate in Path(folder).glob(f".{stem}.*.tmp"):
        pid = candidate.name[len(stem) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            log.info("removing %s, left by an interrupted run", candidate)
            candidate.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
