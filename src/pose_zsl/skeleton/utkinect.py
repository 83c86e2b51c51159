"""UTKinect-Action3D skeletons (Xia et al. 2012): continuous recordings cut into action segments.

The release has one ``joints_sSS_eEE.txt`` per recording (subject SS, recording EE): whitespace
separated rows of ``frame_id`` and 20 joints x (x, y, z) in the Kinect SDK v1 joint order; each
recording holds all 10 actions in turn. ``actionLabel.txt`` gives per recording, per action, the
inclusive ``start end`` frame ids of the segment; ``actionLabel_modified.txt`` is the same file
with the ranges Vemulapalli et al. (2014) corrected, and is used by default.

Two quirks of the data are handled as the reference loader does: frame ids are not consecutive
(kept as they are: the segment is the rows in range) and repeat (the first row of a frame id
is kept). Joints are reordered into the MSR Action3D order (layout ``kinect-v1``), so models and
graphs are shared with MSR Action3D.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from pose_zsl.skeleton.errors import SkeletonFormatError, parse_floats

NUM_JOINTS = 20
LAYOUT = "kinect-v1"
_COLUMNS = 1 + 3 * NUM_JOINTS  # frame_id, then x y z per joint

#: 1-based action id -> (label key in actionLabel.txt, name), as in the release's actions.csv.
_ACTIONS = (
    ("walk", "walk"), ("sitDown", "sit down"), ("standUp", "stand up"), ("pickUp", "pick up"),
    ("carry", "carry"), ("throw", "throw"), ("push", "push"), ("pull", "pull"),
    ("waveHands", "wave hands"), ("clapHands", "clap hands"),
)  # fmt: skip
_ACTION_ID = {key.lower(): index + 1 for index, (key, _) in enumerate(_ACTIONS)}
#: MSR Action3D joint k (0-based) is UTKinect joint _TO_MSR_ORDER[k] (the remap of the
#: Vemulapalli et al. release; see shared/data/real/UTKinect/SOURCES.md).
_TO_MSR_ORDER = (
    np.array([5, 9, 3, 2, 13, 17, 1, 6, 10, 7, 11, 8, 12, 14, 18, 15, 19, 16, 20, 4]) - 1
)
#: A common convention (not part of the release): odd subjects train, even subjects test.
XSUB_TRAIN_SUBJECTS: frozenset[int] = frozenset([1, 3, 5, 7, 9])
LABEL_FILES = {"modified": "actionLabel_modified.txt", "original": "actionLabel.txt"}

_RECORDING = re.compile(r"s(\d{2})_e(\d{2})")
_LABEL_LINE = re.compile(r"(\w+):\s*(\S+)\s+(\S+)")


@dataclass(frozen=True)
class Segment:
    """One labelled action segment; ``start``/``end`` are inclusive frame ids (None: the
    release gives no range, e.g. ``s10_e02 carry: NaN NaN``)."""

    subject: int
    recording: int
    action: int  # 1-based
    start: int | None
    end: int | None

    @property
    def sample_id(self) -> str:
        return f"s{self.subject:02d}_e{self.recording:02d}_a{self.action:02d}"

    @property
    def joints_file(self) -> str:
        return f"joints_s{self.subject:02d}_e{self.recording:02d}.txt"


def action_names() -> list[str]:
    """The 10 action names in 0-based class order."""
    return [name for _, name in _ACTIONS]


def xsub_is_train(subject: int) -> bool:
    return subject in XSUB_TRAIN_SUBJECTS


def read_labels(path: str | PathLike[str]) -> list[Segment]:
    """Every segment of an ``actionLabel*.txt`` file, in file order.

    Raises:
        SkeletonFormatError: a line that is neither a ``sSS_eEE`` header nor ``key: start end``
            under one, an unknown action key, a non-integer bound, ``start > end``, or a
            recording that lists an action twice.
    """
    path = Path(path)
    segments: list[Segment] = []
    current: tuple[int, int] | None = None
    listed: set[int] = set()
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if header := _RECORDING.fullmatch(line):
            current = (int(header[1]), int(header[2]))
            listed = set()
            continue
        match = _LABEL_LINE.fullmatch(line)
        if match is None or current is None:
            expected = "'key: start end'" if current else "a 'sSS_eEE' header"
            raise SkeletonFormatError(path, lineno, f"expected {expected}, got {line!r}")
        key, first, last = match.groups()
        action = _ACTION_ID.get(key.lower())
        if action is None:
            raise SkeletonFormatError(
                path, lineno, f"unknown action {key!r}; known: {[k for k, _ in _ACTIONS]}"
            )
        if action in listed:
            raise SkeletonFormatError(path, lineno, f"action {key!r} listed twice")
        listed.add(action)
        start, end = _bound(path, lineno, first), _bound(path, lineno, last)
        if (start is None) != (end is None):
            raise SkeletonFormatError(path, lineno, f"only one bound of {key!r} is NaN")
        if start is not None and end is not None and start > end:
            raise SkeletonFormatError(path, lineno, f"{key!r}: start {start} > end {end}")
        segments.append(Segment(current[0], current[1], action, start, end))
    if not segments:
        raise SkeletonFormatError(path, None, "no labelled segment in the file")
    return segments


def _bound(path: Path, lineno: int, token: str) -> int | None:
    if token.lower() == "nan":
        return None
    try:
        return int(token)
    except ValueError:
        raise SkeletonFormatError(
            path, lineno, f"frame id {token!r} is not an integer (or NaN)"
        ) from None


def read_recording(path: str | PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Frame ids ``(N,)`` (int64) and joints ``(N, 20, 3)`` (float64, the file's joint order)
    of a ``joints_sSS_eEE.txt`` file; of rows sharing a frame id only the first is kept.

    Raises:
        SkeletonFormatError: empty file, a row without exactly 61 values, a non-numeric or
            non-finite value, or a non-integer frame id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise SkeletonFormatError(path, None, f"not UTF-8 text ({error.reason})") from None
    rows: list[list[float]] = []
    for lineno, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        values = parse_floats(path, lineno, fields, _COLUMNS, hint="frame id + 20 joints x 3")
        if not values[0].is_integer():
            raise SkeletonFormatError(path, lineno, f"frame id {fields[0]!r} is not an integer")
        rows.append(values)
    if not rows:
        raise SkeletonFormatError(path, 1, "empty file: expected rows of frame id + 60 values")
    table = np.asarray(rows)
    frame_ids = table[:, 0].astype(np.int64)
    _, first = np.unique(frame_ids, return_index=True)
    keep = np.sort(first)
    return frame_ids[keep], table[keep, 1:].reshape(-1, NUM_JOINTS, 3)


def cut_segment(frame_ids: np.ndarray, joints: np.ndarray, segment: Segment) -> np.ndarray:
    """The segment's frames as float32 ``(T, 1, 20, 3)`` in the MSR Action3D joint order.

    Raises:
        ValueError: the segment has no range or no frame of the recording falls inside it.
    """
    if segment.start is None or segment.end is None:
        raise ValueError(f"{segment.sample_id}: the label file gives no frame range (NaN)")
    inside = (frame_ids >= segment.start) & (frame_ids <= segment.end)
    if not inside.any():
        raise ValueError(
            f"{segment.sample_id}: no frame of {segment.joints_file} lies in "
            f"{segment.start}..{segment.end}"
        )
    frames = joints[inside][:, _TO_MSR_ORDER]
    return frames.astype(np.float32)[:, None]
