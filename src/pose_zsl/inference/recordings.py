"""Skeleton recordings to predict: reading them from files and folders like training data.

NTU ``.skeleton`` files get the ingestion's body denoising, MSR Action3D files and ST-GCN
``.npy`` arrays are read as the ingestion reads them; a file that cannot be read is listed with
its reason, never guessed around. Whether a recording fits a model is
:mod:`pose_zsl.inference.screening`'s question.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pose_zsl.skeleton.errors import SkeletonFormatError

logger = logging.getLogger(__name__)

#: Bodies kept when reading NTU files: the ingestion default, so body selection matches training
#: (the model's own ``max_bodies`` is applied afterwards by the windowing, as in training).
READ_MAX_BODIES = 2
SKIPPED_COLUMNS = ("recording", "reason")
#: Recordings read through a layout adapter: the recording and the layout it was recorded in.
ADAPTED_COLUMNS = ("recording", "layout")


@dataclass(frozen=True)
class Recording:
    """One skeleton sequence to predict: ``data`` is float32 (T, M, V, C)."""

    name: str
    data: np.ndarray


def skipped_frame(rows: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """A table of skipped recordings (:data:`SKIPPED_COLUMNS`) from (recording, reason) pairs."""
    frame = pd.DataFrame(list(rows), columns=list(SKIPPED_COLUMNS))
    return frame.astype({"recording": "string", "reason": "string"})


def adapted_frame(rows: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """A table of adapted recordings (:data:`ADAPTED_COLUMNS`) from (recording, layout) pairs."""
    frame = pd.DataFrame(list(rows), columns=list(ADAPTED_COLUMNS))
    return frame.astype({"recording": "string", "layout": "string"})


#: What a folder given to :func:`read_recordings` is searched for: every format a file given on
#: its own is read as (single recordings (T, M, V, C) and ST-GCN arrays alike are ``.npy``).
FOLDER_PATTERNS = ("*.skeleton", "*_skeleton3D.txt", "*.npy")


def _expand(path: Path) -> list[Path]:
    """A folder becomes the recordings directly inside it (:data:`FOLDER_PATTERNS`), sorted."""
    if not path.is_dir():
        return [path]
    found = {file for pattern in FOLDER_PATTERNS for file in path.glob(pattern) if file.is_file()}
    return sorted(found)


def _nothing_in(folder: Path) -> str:
    """Why a folder yielded no recording: the patterns looked for, and where else to look."""
    patterns = ", ".join(FOLDER_PATTERNS)
    reason = f"folder holds no recording: looked for {patterns} directly inside it"
    if any(child.is_dir() for child in folder.iterdir()):
        reason += " (sub-folders are not searched: give them as arguments)"
    return reason


def _stgcn_array_recordings(path: Path, array: np.ndarray) -> list[Recording]:
    """ST-GCN arrays ``(N, C, T, V, M)``: every sample, unpadded like the ingestion does it."""
    label_path = path.with_name(path.name.removesuffix("_data.npy") + "_label.pkl")
    names: list[str] | None = None
    if path.name.endswith("_data.npy") and label_path.is_file():
        from pose_zsl.skeleton.stgcn_arrays import read_labels

        names = read_labels(label_path)[0]
        if len(names) != array.shape[0]:
            raise SkeletonFormatError(
                label_path, None, f"{len(names)} labels for {array.shape[0]} samples in {path}"
            )
    recordings = []
    for index in range(array.shape[0]):
        frames = np.asarray(array[index], dtype=np.float32).transpose(1, 3, 2, 0)
        filled = np.flatnonzero(frames.reshape(frames.shape[0], -1).any(axis=1))
        length = int(filled[-1]) + 1 if filled.size else 0
        tag = names[index] if names is not None else str(index)
        recordings.append(Recording(f"{path}[{tag}]", np.ascontiguousarray(frames[:length])))
    return recordings


def _read_one(path: Path, max_bodies: int, denoise: bool) -> list[Recording]:
    from pose_zsl.skeleton import msr, ntu

    name = path.name
    if name.endswith(".skeleton"):
        return [Recording(str(path), ntu.load_sample(path, max_bodies=max_bodies, denoise=denoise))]
    if name.endswith(".txt"):
        return [Recording(str(path), msr.load_sample(path))]
    if name.endswith(".npy"):
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            raise SkeletonFormatError(path, None, f"not a numeric .npy array: {error}") from None
        if array.ndim == 5:
            return _stgcn_array_recordings(path, array)
        if array.ndim in (3, 4):
            return [Recording(str(path), np.array(array, dtype=np.float32))]
        raise SkeletonFormatError(
            path,
            None,
            f"array of shape {array.shape}: expected one recording (T, M, V, C) or "
            "ST-GCN arrays (N, C, T, V, M)",
        )
    raise SkeletonFormatError(
        path,
        None,
        "unsupported recording format: expected an NTU .skeleton file, an MSR Action3D "
        "*_skeleton3D.txt file, a .npy array or a folder of those",
    )


def read_recordings(
    paths: Iterable[str | Path], *, max_bodies: int = READ_MAX_BODIES, denoise: bool = True
) -> tuple[list[Recording], pd.DataFrame]:
    """Read recordings in any supported format; folders are expanded.

    NTU files get the ingestion's body selection (``denoise``, ``max_bodies``), so a recording
    is preprocessed exactly like the training data. Returns the recordings and a table of the
    paths that could not be read (columns ``recording``, ``reason``); reading never stops at a
    bad file.
    """
    recordings: list[Recording] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        given = Path(raw)
        if not given.exists():
            skipped.append((str(raw), "no such file or folder"))
            continue
        files = _expand(given)
        if not files:
            skipped.append((str(raw), _nothing_in(given)))
        for path in files:
            try:
                recordings.extend(_read_one(path, max_bodies, denoise))
            except SkeletonFormatError as error:
                skipped.append((str(path), error.reason if error.line is None else str(error)))
            except OSError as error:
                skipped.append((str(path), f"cannot read: {error.strerror or error}"))
            except (ValueError, EOFError) as error:  # a .npy file numpy cannot use
                skipped.append((str(path), f"not a usable array: {error or type(error).__name__}"))
    for name, reason in skipped:
        logger.warning("skipped recording %s: %s", name, reason)
    return recordings, skipped_frame(skipped)


def as_recordings(
    recordings: Sequence[Recording | np.ndarray], names: Sequence[str] | None
) -> list[Recording]:
    """:class:`Recording` objects as they are; arrays wrapped, named by ``names`` (default
    ``recording_<i>``)."""
    if names is not None and len(names) != len(recordings):
        raise ValueError(f"{len(names)} names for {len(recordings)} recordings")
    wrapped = []
    for i, item in enumerate(recordings):
        if isinstance(item, Recording):
            wrapped.append(item)
        else:
            name = names[i] if names is not None else f"recording_{i}"
            wrapped.append(Recording(str(name), np.asarray(item)))
    return wrapped
