"""NTU RGB+D ``.skeleton`` files: reader, writer, sample names and model-ready samples.

File layout (text, LF or CRLF)::

    <frame count>
    per frame:  <body count>
      per body: <body id> <9 body-info values>
                <joint count = 25>
                25 x <x y z depthX depthY colorX colorY
                      orientW orientX orientY orientZ trackingState>

:func:`read_skeleton` reads the whole file at once and parses it in one pass with a compiled
numba kernel (:mod:`pose_zsl.skeleton._ntu_kernel`). When the kernel meets anything outside the
canonical layout, a line-by-line parser re-reads the file: it accepts what is merely unusual
(extra spaces, exotic number spellings) and names the exact bad line of what is wrong.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pose_zsl.skeleton.errors import SkeletonFormatError, parse_floats

NUM_JOINTS = 25
JOINT_FIELDS = (
    "x", "y", "z", "depthX", "depthY", "colorX", "colorY",
    "orientationW", "orientationX", "orientationY", "orientationZ", "trackingState",
)  # fmt: skip
BODY_INFO_FIELDS = (
    "clippedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
    "handRightState", "isRestricted", "leanX", "leanY", "trackingState",
)  # fmt: skip
_INFO_TOKENS = 1 + len(BODY_INFO_FIELDS)  # body id + info fields
_JOINT_TOKENS = len(JOINT_FIELDS)
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(eq=False)
class SkeletonFile:
    """Every field of one ``.skeleton`` file; body records are in file order."""

    num_frames: int
    bodies_per_frame: np.ndarray  # (F,) int64
    body_ids: np.ndarray  # (B,) int64, exact 17-digit tracking ids
    body_info: np.ndarray  # (B, 9) float64, BODY_INFO_FIELDS
    body_frame: np.ndarray  # (B,) int64, frame index of each body record
    joints: np.ndarray  # (B, 25, 12) float32, JOINT_FIELDS

    __hash__ = None  # mutable arrays: equal by value, not hashable

    @property
    def num_body_records(self) -> int:
        return int(self.body_ids.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SkeletonFile):
            return NotImplemented
        return (
            self.num_frames == other.num_frames
            and np.array_equal(self.bodies_per_frame, other.bodies_per_frame)
            and np.array_equal(self.body_ids, other.body_ids)
            and np.array_equal(self.body_info, other.body_info)
            and np.array_equal(self.body_frame, other.body_frame)
            and np.array_equal(self.joints, other.joints)
        )


def read_skeleton(path: str | PathLike[str]) -> SkeletonFile:
    """Read every field of an NTU RGB+D ``.skeleton`` file.

    Raises:
        SkeletonFormatError: the file is empty, truncated, declares 0 frames, has a joint count
            other than 25, a wrong number of values on a line, a non-numeric or non-finite value,
            a non-integer body id, non-UTF-8 bytes, or content after the last frame. The message
            names the file and the 1-based line.
        FileNotFoundError: ``path`` does not exist.
        ImportError: numba (a dependency of this package) is not installed.
    """
    path = Path(path)
    data = path.read_bytes()
    parsed = _parse_fast(data)
    if parsed is not None:
        return parsed
    return _parse_slow(_decode(data, path), path)


def _decode(data: bytes, path: Path) -> str:
    """``data`` as text; bytes that are not UTF-8 are an error naming their line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SkeletonFormatError(
            path,
            line,
            f"byte 0x{data[error.start]:02x} at column {column} is not valid UTF-8 text",
        ) from None


# The smallest well-formed file (one frame, no body): parsing it compiles the kernel.
_WARM_UP_FILE = b"1\n0\n"


@functools.cache
def _compiled_parser() -> Callable[[bytes], tuple | None]:
    """The numba kernel's ``scan``, compiled (or loaded from numba's on-disk cache) on the first
    call of a process, so that forked workers inherit it ready to run."""
    from pose_zsl.skeleton._ntu_kernel import scan

    scan(_WARM_UP_FILE)
    return scan


def _parse_fast(data: bytes) -> SkeletonFile | None:
    """Parse a well-formed file in one compiled pass; ``None`` when the file is not in the
    canonical layout (the line-by-line parser then decides what is wrong)."""
    parsed = _compiled_parser()(data)
    if parsed is None:
        return None
    num_frames, bodies_per_frame, body_ids, body_info, joints = parsed
    return SkeletonFile(
        num_frames=int(num_frames),
        bodies_per_frame=bodies_per_frame,
        body_ids=body_ids,
        body_info=body_info,
        body_frame=np.repeat(np.arange(num_frames, dtype=np.int64), bodies_per_frame),
        joints=joints,
    )


class _Lines:
    """The lines of a file, read front to back; every read knows its 1-based line number."""

    def __init__(self, text: str, path: Path) -> None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [line.removesuffix("\r") for line in lines]
        while lines and not lines[-1].strip():  # trailing blank lines are harmless
            lines.pop()
        if not lines:
            raise SkeletonFormatError(path, 1, "empty file: expected the frame count")
        self.path = path
        self._lines = lines
        self._cursor = 0

    def next(self, what: str) -> tuple[int, list[str]]:
        """(line number, fields) of the next line, which should hold ``what``."""
        if self._cursor >= len(self._lines):
            raise SkeletonFormatError(
                self.path,
                self._cursor + 1,
                f"file ends after line {self._cursor}, but {what} is missing",
            )
        self._cursor += 1
        return self._cursor, self._lines[self._cursor - 1].split()

    def integer(self, what: str) -> tuple[int, int]:
        """(line number, value) of the next line, which should be the one integer ``what``."""
        lineno, fields = self.next(what)
        if len(fields) != 1:
            raise SkeletonFormatError(
                self.path, lineno, f"expected {what} (one integer), got {len(fields)} values"
            )
        try:
            return lineno, int(fields[0])
        except ValueError:
            raise SkeletonFormatError(
                self.path, lineno, f"expected {what} (one integer), got {fields[0]!r}"
            ) from None

    def expect_end(self, num_frames: int) -> None:
        if self._cursor < len(self._lines):
            raise SkeletonFormatError(
                self.path,
                self._cursor + 1,
                f"unexpected content after the last of {num_frames} declared frames",
            )


class _BodyRecord(NamedTuple):
    body_id: int
    info: list[float]  # BODY_INFO_FIELDS
    joints: list[float]  # 25 x JOINT_FIELDS, flat


def _parse_slow(text: str, path: Path) -> SkeletonFile:
    """Line-by-line parse that names the first bad line; used when the fast path gives up."""
    lines = _Lines(text, path)
    lineno, num_frames = lines.integer("the frame count")
    if num_frames <= 0:
        raise SkeletonFormatError(path, lineno, f"file declares {num_frames} frames")
    bodies_per_frame = np.zeros(num_frames, np.int64)
    records: list[_BodyRecord] = []
    for frame in range(num_frames):
        where = f"frame {frame + 1} of {num_frames}"
        lineno, count = lines.integer(f"the body count of {where}")
        if count < 0:
            raise SkeletonFormatError(path, lineno, f"negative body count {count} in {where}")
        bodies_per_frame[frame] = count
        records.extend(_read_body(lines, f"body {body + 1} of {where}") for body in range(count))
    lines.expect_end(num_frames)
    return SkeletonFile(
        num_frames=num_frames,
        bodies_per_frame=bodies_per_frame,
        body_ids=np.asarray([record.body_id for record in records], dtype=np.int64),
        body_info=np.asarray([record.info for record in records], dtype=np.float64).reshape(
            -1, _INFO_TOKENS - 1
        ),
        body_frame=np.repeat(np.arange(num_frames, dtype=np.int64), bodies_per_frame),
        joints=np.asarray([record.joints for record in records], dtype=np.float32).reshape(
            -1, NUM_JOINTS, _JOINT_TOKENS
        ),
    )


def _read_body(lines: _Lines, where: str) -> _BodyRecord:
    """One body record: its info line, the joint count (must be 25) and the joint lines."""
    lineno, fields = lines.next(f"the info line of {where}")
    body_id, info = _body_info(lines.path, lineno, fields)
    lineno, num_joints = lines.integer(f"the joint count of {where}")
    if num_joints != NUM_JOINTS:
        raise SkeletonFormatError(
            lines.path, lineno, f"expected {NUM_JOINTS} joints, got {num_joints}"
        )
    joints: list[float] = []
    for joint in range(NUM_JOINTS):
        lineno, fields = lines.next(f"joint {joint + 1} of {where}")
        joints.extend(parse_floats(lines.path, lineno, fields, _JOINT_TOKENS, "joint"))
    return _BodyRecord(body_id, info, joints)


def _body_info(path: Path, lineno: int, fields: list[str]) -> tuple[int, list[float]]:
    """Body id (an exact non-negative int64) and the 9 info values of a body's first line."""
    if len(fields) != _INFO_TOKENS:
        raise SkeletonFormatError(
            path,
            lineno,
            f"expected {_INFO_TOKENS} body-info values (body id + "
            f"{_INFO_TOKENS - 1} fields), got {len(fields)}",
        )
    try:
        body_id = int(fields[0])
    except ValueError:
        raise SkeletonFormatError(
            path, lineno, f"body id must be an integer, got {fields[0]!r}"
        ) from None
    if not 0 <= body_id <= _INT64_MAX:
        raise SkeletonFormatError(path, lineno, f"body id {body_id} is out of range")
    return body_id, parse_floats(path, lineno, fields[1:], _INFO_TOKENS - 1, "body-info")


def _format_float64(value: float) -> str:
    """Shortest text that reads back as exactly ``value``; integral values without a point."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value).replace("e", "E")


def _float32_lines(values: np.ndarray) -> list[str]:
    """One line of space-separated numbers per row of float32 ``values``, each number in its
    shortest text that reads back as exactly that float32.

    Spelled as the NTU files are (integral values without a point, ``-2.016883E-05``), so the
    real files are reproduced byte for byte. Arrow's C++ float-to-string cast does the bulk; only
    the rare values that need an exponent go through numpy.
    """
    plain = np.where(values == 0, np.float32(0), values)  # "0", never "-0"
    columns = []
    for column in plain.T:
        text = pa.array(column).cast(pa.string())  # shortest round-trip float32 digits
        magnitude = np.abs(column)
        scientific = (magnitude > 0) & ((magnitude < 1e-4) | (magnitude >= 1e16))
        if scientific.any():  # Arrow writes 0.00009276937 where the Kinect SDK wrote 9.276937E-05
            python_text = text.to_numpy(zero_copy_only=False).astype(object)
            python_text[scientific] = [
                value.upper() for value in column[scientific].astype(str).tolist()
            ]
            text = pa.array(python_text, pa.string())
        columns.append(pc.replace_substring(text, "e", "E"))  # Arrow writes 1.5e+10 past 1e9
    return pc.binary_join_element_wise(*columns, " ").to_pylist()


def write_skeleton(path: str | PathLike[str], skeleton: SkeletonFile, newline: str = "\n") -> None:
    """Write ``skeleton`` in the NTU ``.skeleton`` text format (inverse of :func:`read_skeleton`).

    Numbers are spelled as in the NTU files (7 significant digits, ``E-05`` exponents, integral
    values without a point) wherever that is exact, with more digits where it is not, so reading
    the file back gives exactly the same arrays: the real NTU files are reproduced byte for byte.

    Raises:
        ValueError: the arrays are inconsistent with each other or hold NaN/inf.
    """
    if newline not in ("\n", "\r\n"):
        raise ValueError(f"newline must be '\\n' or '\\r\\n', got {newline!r}")
    bodies_per_frame = np.asarray(skeleton.bodies_per_frame, dtype=np.int64)
    body_ids = np.asarray(skeleton.body_ids, dtype=np.int64)
    body_info = np.asarray(skeleton.body_info, dtype=np.float64)
    body_frame = np.asarray(skeleton.body_frame, dtype=np.int64)
    joints = np.asarray(skeleton.joints, dtype=np.float32)
    num_bodies = body_ids.shape[0]
    if skeleton.num_frames <= 0 or bodies_per_frame.shape != (skeleton.num_frames,):
        raise ValueError(
            f"num_frames={skeleton.num_frames} but bodies_per_frame has shape "
            f"{bodies_per_frame.shape}"
        )
    if (bodies_per_frame < 0).any() or int(bodies_per_frame.sum()) != num_bodies:
        raise ValueError(
            f"bodies_per_frame sums to {int(bodies_per_frame.sum())} but there are "
            f"{num_bodies} body records"
        )
    expected_frames = np.repeat(np.arange(skeleton.num_frames), bodies_per_frame)
    if not np.array_equal(body_frame, expected_frames):
        raise ValueError("body_frame does not list body records frame by frame")
    if body_info.shape != (num_bodies, len(BODY_INFO_FIELDS)):
        raise ValueError(f"body_info must be ({num_bodies}, 9), got {body_info.shape}")
    if joints.shape != (num_bodies, NUM_JOINTS, _JOINT_TOKENS):
        raise ValueError(f"joints must be ({num_bodies}, 25, 12), got {joints.shape}")
    if (body_ids < 0).any():
        raise ValueError("body ids must be non-negative integers")
    if not (np.isfinite(body_info).all() and np.isfinite(joints).all()):
        raise ValueError("body_info and joints must be finite")

    info_lines = [" ".join(map(_format_float64, row)) for row in body_info.tolist()]
    joint_lines = _float32_lines(joints.reshape(-1, _JOINT_TOKENS)) if num_bodies else []
    out: list[str] = [str(skeleton.num_frames)]
    body = 0
    for count in bodies_per_frame.tolist():
        out.append(str(count))
        for _ in range(count):
            out.append(f"{body_ids[body]} {info_lines[body]}")
            out.append(str(NUM_JOINTS))
            out.extend(joint_lines[body * NUM_JOINTS : (body + 1) * NUM_JOINTS])
            body += 1
    out.append("")
    Path(path).write_bytes(newline.join(out).encode("ascii"))


class SampleName(NamedTuple):
    """Fields of an NTU sample name ``SsssCcccPpppRrrrAaaa`` (1-based, as in the name)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    def __str__(self) -> str:
        return (
            f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
            f"R{self.replication:03d}A{self.action:03d}"
        )


_SAMPLE_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


def parse_sample_name(name: str | PathLike[str]) -> SampleName:
    """Parse ``S001C002P003R002A013`` (a bare name, a file name or a path).

    Raises:
        SkeletonFormatError: the name does not follow ``SsssCcccPpppRrrrAaaa[.skeleton]``.
    """
    stem = Path(name).name
    if stem.endswith(".skeleton"):
        stem = stem[: -len(".skeleton")]
    match = _SAMPLE_NAME.fullmatch(stem)
    if match is None:
        raise SkeletonFormatError(
            name, None, f"file name {stem!r} does not follow the NTU pattern SsssCcccPpppRrrrAaaa"
        )
    fields = SampleName(*(int(group) for group in match.groups()))
    if min(fields) < 1:
        raise SkeletonFormatError(name, None, f"file name {stem!r} has a 0 field (1-based)")
    return fields


def load_sample(path: str | PathLike[str], max_bodies: int = 2, denoise: bool = True) -> np.ndarray:
    """x y z of the selected bodies: float32 ``(T, max_bodies, 25, 3)``, actor first.

    With ``denoise`` the NTU noise-body rules pick the bodies (see
    :mod:`pose_zsl.skeleton.denoise`); without it the first ``max_bodies`` tracked bodies in
    order of appearance are kept. A missing body is zeros.

    Raises:
        SkeletonFormatError: bad file content or no usable body.
    """
    return load_sample_with_flags(path, max_bodies=max_bodies, denoise=denoise)[0]


def load_sample_with_flags(
    path: str | PathLike[str], max_bodies: int = 2, denoise: bool = True
) -> tuple[np.ndarray, list[str]]:
    """:func:`load_sample` plus the quality flags raised while selecting bodies."""
    from pose_zsl.skeleton.denoise import select_bodies

    if max_bodies < 1:
        raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
    skeleton = read_skeleton(path)
    return select_bodies(skeleton, max_bodies=max_bodies, denoise=denoise, path=path)
