"""ST-GCN preprocessed arrays: ``{train,val}_data.npy`` + ``{train,val}_label.pkl``.

``*_data.npy`` is float32 ``(N, C=3, T=300, V=25, M=2)``, zero-padded in time; ``*_label.pkl``
pickles ``(sample_names, labels)`` (often written by Python 2). The data file is memory-mapped,
so a split of any size is never loaded into RAM at once; each sample comes back unpadded as
``(T_valid, M, V, C)``, trailing all-zero frames removed.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import numpy as np

from pose_zsl.skeleton.errors import SkeletonFormatError

PARTS = ("train", "val")

# What a label pickle may contain: containers and numpy scalars/arrays, never arbitrary code.
_SAFE_GLOBALS = {
    ("builtins", "list"), ("builtins", "tuple"), ("builtins", "dict"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "str"), ("builtins", "bytes"),
    ("__builtin__", "list"), ("__builtin__", "tuple"), ("__builtin__", "set"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
}  # fmt: skip


class _LabelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"label file refers to {module}.{name}")
        if module == "__builtin__":
            module = "builtins"
        return super().find_class(module, name)


def read_labels(path: str | PathLike[str]) -> tuple[list[str], np.ndarray]:
    """``(sample_names, labels)`` from an ST-GCN label pickle; labels as int64.

    Python 2 pickles (byte-string names) and numpy integer labels are accepted.

    Raises:
        FileNotFoundError: the file does not exist.
        SkeletonFormatError: not a pickle of two equally long sequences of names and integers.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = _LabelUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as error:  # any unpickling failure is a format problem of this file
        raise SkeletonFormatError(path, None, f"not a readable label pickle: {error}") from None
    if not isinstance(content, list | tuple) or len(content) != 2:
        raise SkeletonFormatError(path, None, "expected a pickled pair (sample_names, labels)")
    names_raw, labels_raw = content
    names = [name.decode("latin1") if isinstance(name, bytes) else str(name) for name in names_raw]
    labels = np.asarray(labels_raw)
    if labels.ndim != 1 or labels.shape[0] != len(names):
        raise SkeletonFormatError(
            path, None, f"{len(names)} sample names but labels of shape {labels.shape}"
        )
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer)
        and not np.array_equal(labels, np.round(labels.astype(np.float64)))
    ):
        raise SkeletonFormatError(path, None, f"labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise SkeletonFormatError(path, None, f"negative label {int(labels.min())}")
    return names, labels


class STGCNArrays:
    """One split (``train`` or ``val``) of ST-GCN arrays, memory-mapped."""

    def __init__(self, root: str | PathLike[str], part: str = "train") -> None:
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"ST-GCN array directory {root} does not exist")
        self.part = part
        self.data_path = root / f"{part}_data.npy"
        self.label_path = root / f"{part}_label.pkl"
        for path in (self.data_path, self.label_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist")
        try:
            self.data = np.load(self.data_path, mmap_mode="r")
        except ValueError as error:
            raise SkeletonFormatError(self.data_path, None, f"not a .npy array: {error}") from None
        if self.data.ndim != 5:
            raise SkeletonFormatError(
                self.data_path, None, f"expected (N, C, T, V, M), got shape {self.data.shape}"
            )
        self.names, self.labels = read_labels(self.label_path)
        if len(self.names) != self.data.shape[0]:
            raise SkeletonFormatError(
                self.label_path,
                None,
                f"{len(self.names)} labels for {self.data.shape[0]} samples in {self.data_path}",
            )

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: int) -> np.ndarray:
        """Sample ``index`` as float32 ``(T_valid, M, V, C)``; T_valid may be 0."""
        sample = np.asarray(self.data[index], dtype=np.float32)  # (C, T, V, M); reads one row
        frames = sample.transpose(1, 3, 2, 0)  # (T, M, V, C)
        filled = np.flatnonzero(frames.reshape(frames.shape[0], -1).any(axis=1))
        length = int(filled[-1]) + 1 if filled.size else 0
        return np.ascontiguousarray(frames[:length])

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def load_sample(self, index: int) -> np.ndarray:
        """Like indexing, but a sample without any non-zero frame is an error.

        Raises:
            SkeletonFormatError: all frames of the sample are zeros.
        """
        sample = self[index]
        if sample.shape[0] == 0:
            raise SkeletonFormatError(
                self.data_path, None, f"sample {index} ({self.names[index]}) has no non-zero frame"
            )
        if not np.isfinite(sample).all():
            raise SkeletonFormatError(
                self.data_path, None, f"sample {index} ({self.names[index]}) has NaN/inf values"
            )
        return sample
