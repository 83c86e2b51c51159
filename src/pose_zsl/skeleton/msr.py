"""MSR Action3D skeletons (``aAA_sSS_eEE_skeleton3D.txt``, real-world coordinates).

Each file is plain text with 4 whitespace-separated values per row (``x y z confidence``); every
20 rows are one frame, joints in the order of the release (layout ``kinect-v1``). Frames whose
20 joints are all at the origin mean "no skeleton detected" and are dropped.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pose_zsl.skeleton.errors import SkeletonFormatError, parse_floats

NUM_JOINTS = 20
LAYOUT = "kinect-v1"
_COLUMNS = 4  # x y z confidence

#: 1-based action id -> name, as in the release's ``actions.csv`` (Li et al. 2010).
_ACTION_NAMES = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch",
    "high throw", "draw x", "draw tick", "draw circle", "hand clap", "two hand wave",
    "side boxing", "bend", "forward kick", "side kick", "jogging", "tennis swing",
    "tennis serve", "golf swing", "pick up and throw",
)  # fmt: skip
#: Cross-subject protocol of Li et al. 2010: odd subjects train, even subjects test.
XSUB_TRAIN_SUBJECTS: frozenset[int] = frozenset([1, 3, 5, 7, 9])
#: The three 8-action subsets of Li et al. 2010 (1-based action ids).
ACTION_SETS: dict[str, frozenset[int]] = {
    "AS1": frozenset([2, 3, 5, 6, 10, 13, 18, 20]),
    "AS2": frozenset([1, 4, 7, 8, 9, 11, 12, 14]),
    "AS3": frozenset([6, 14, 15, 16, 17, 18, 19, 20]),
}

_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})(?:_skeleton3D\.txt)?")


class MSRName(NamedTuple):
    """1-based fields of ``aAA_sSS_eEE``."""

    action: int
    subject: int
    repetition: int

    @property
    def sample_id(self) -> str:
        return f"a{self.action:02d}_s{self.subject:02d}_e{self.repetition:02d}"


def action_names() -> list[str]:
    """The 20 action names in 0-based class order."""
    return list(_ACTION_NAMES)


def xsub_is_train(subject: int) -> bool:
    return subject in XSUB_TRAIN_SUBJECTS


def parse_msr_name(name: str | PathLike[str]) -> MSRName:
    """Parse ``a01_s02_e03[_skeleton3D.txt]`` (a name, file name or path).

    Raises:
        SkeletonFormatError: the name does not follow the pattern or has an out-of-range field.
    """
    base = Path(name).name
    match = _NAME.fullmatch(base)
    if match is None:
        raise SkeletonFormatError(
            name, None, f"file name {base!r} does not follow aAA_sSS_eEE_skeleton3D.txt"
        )
    parsed = MSRName(*(int(group) for group in match.groups()))
    if not 1 <= parsed.action <= len(_ACTION_NAMES):
        raise SkeletonFormatError(
            name, None, f"action {parsed.action} in {base!r} is outside 1..{len(_ACTION_NAMES)}"
        )
    if parsed.subject < 1 or parsed.repetition < 1:
        raise SkeletonFormatError(name, None, f"file name {base!r} has a 0 field (1-based)")
    return parsed


def read_msr(path: str | PathLike[str]) -> np.ndarray:
    """All rows of a file as float64 ``(T, 20, 4)`` (x y z confidence), nothing dropped.

    Raises:
        SkeletonFormatError: empty file, non-UTF-8 bytes, a row without exactly 4 values, a
            non-numeric or non-finite value, or a row count that is not a multiple of 20.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SkeletonFormatError(
            path, line, f"byte 0x{data[error.start]:02x} is not valid UTF-8 text"
        ) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SkeletonFormatError(path, 1, "empty file: expected rows of 'x y z confidence'")
    tokens = text.split()
    values = None
    if len(tokens) == _COLUMNS * len(lines):
        try:
            values = np.array(tokens, dtype=np.float64).reshape(-1, _COLUMNS)
        except ValueError:
            values = None
    if values is None or not np.isfinite(values).all() or not _rows_have_four(lines):
        _raise_first_bad_line(path, lines)
    if len(lines) % NUM_JOINTS:
        raise SkeletonFormatError(
            path,
            len(lines),
            f"{len(lines)} rows is not a whole number of {NUM_JOINTS}-joint frames "
            f"(last frame has {len(lines) % NUM_JOINTS} rows)",
        )
    return values.reshape(-1, NUM_JOINTS, _COLUMNS)


def _rows_have_four(lines: list[str]) -> bool:
    return all(len(line.split()) == _COLUMNS for line in lines)


def _raise_first_bad_line(path: Path, lines: list[str]) -> None:
    for lineno, line in enumerate(lines, start=1):
        parse_floats(path, lineno, line.split(), _COLUMNS, hint="x y z confidence")
    raise AssertionError("unreachable: a bad line was expected")  # pragma: no cover


def load_sample_with_info(path: str | PathLike[str]) -> tuple[np.ndarray, int]:
    """:func:`load_sample` plus the number of all-zero frames that were dropped."""
    frames = read_msr(path)[..., :3]
    valid = frames.reshape(frames.shape[0], -1).any(axis=1)
    if not valid.any():
        raise SkeletonFormatError(
            path, None, f"no valid frame: all {frames.shape[0]} frames are all-zero"
        )
    kept = frames[valid].astype(np.float32)[:, None]
    return kept, int((~valid).sum())


def load_sample(path: str | PathLike[str]) -> np.ndarray:
    """x y z as float32 ``(T, 1, 20, 3)``, all-zero frames dropped.

    Raises:
        SkeletonFormatError: bad content (see :func:`read_msr`) or no valid frame.
    """
    return load_sample_with_info(path)[0]
