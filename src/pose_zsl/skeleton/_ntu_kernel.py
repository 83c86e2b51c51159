"""Compiled single-pass parser of well-formed NTU ``.skeleton`` bytes (numba).

Imported by :mod:`pose_zsl.skeleton.ntu` on the first file it reads. It accepts the canonical
layout only (single spaces between values, LF or CRLF line ends, plain decimal numbers) and
reports failure for anything else, leaving the exact error message to the line-by-line parser.

Numbers are converted exactly as ``float()`` does: the decimal mantissa is accumulated as an
integer (< 2**53) and scaled by one multiplication or division by an exact power of ten, which
IEEE arithmetic rounds correctly; values outside that range are left to the slow path.

The buffer handed to the kernel ends with ``b"\\n\\0"``, so no loop needs a bounds check: the
zero byte stops every digit loop and fails every structural test.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = 10.0 ** np.arange(23)
_MAX_EXACT_DIGITS = 15  # 10**15 < 2**53: every such mantissa is an exact float
_MAX_DIGITS = 18  # int64 never overflows
_DOT = ord(".") - 48
_UPPER_E = ord("E") - 48
_LOWER_E = ord("e") - 48
_MIN_JOINT_LINE = 24  # 12 one-character values, 11 spaces and a newline
NUM_JOINT_LINES = 25

_VALUES_PER_BODY = 9 + 1 + 25 * 12  # info fields, the joint count, the joint values


@njit(cache=True)
def _scan(buf, max_bodies, pow10):  # noqa: PLR0911, PLR0912, PLR0915 - one flat loop is fastest
    """Parse the whole file; returns (ok, num_frames, num_bodies, per-frame counts, ids, info,
    joints), the arrays sized for ``max_bodies`` body records.

    Written as one function on purpose: numba helper calls, even inlined ones, made it 2.5x
    slower. Each body is its id and then 310 numbers: 9 info fields, the joint count (must be
    the integer 25) and 25 x 12 joint values, with line ends after the 9th, the 10th and every
    12th joint value, single spaces elsewhere.
    """
    bodies_per_frame = np.zeros(0, np.int64)
    ids = np.empty(max_bodies, np.int64)
    info = np.empty(max_bodies * 9, np.float64)
    joints = np.empty(max_bodies * 300, np.float32)
    end = buf.shape[0] - 1  # the appended zero byte
    pos = 0
    num_frames = -1
    frame = 0
    body = 0
    remaining = 0  # bodies still to read in the current frame
    while True:
        if remaining == 0:
            if frame == num_frames:
                break
            # a count line: the frame count first, then each frame's body count
            value = 0
            start = pos
            d = np.int64(buf[pos]) - 48
            while 0 <= d <= 9:
                value = value * 10 + d
                pos += 1
                d = np.int64(buf[pos]) - 48
            if pos == start or pos - start > _MAX_EXACT_DIGITS:
                return 0, 0, 0, bodies_per_frame, ids, info, joints
            if buf[pos] == 13:
                pos += 1
            if buf[pos] != 10:
                return 0, 0, 0, bodies_per_frame, ids, info, joints
            pos += 1
            if num_frames < 0:
                if value == 0:
                    return 0, 0, 0, bodies_per_frame, ids, info, joints
                num_frames = value
                bodies_per_frame = np.zeros(num_frames, np.int64)
            else:
                bodies_per_frame[frame] = value
                frame += 1
                remaining = value
            continue
        if body >= max_bodies:
            return 0, 0, 0, bodies_per_frame, ids, info, joints
        # body id: an unsigned integer, exact
        body_id = 0
        start = pos
        d = np.int64(buf[pos]) - 48
        while 0 <= d <= 9:
            body_id = body_id * 10 + d
            pos += 1
            d = np.int64(buf[pos]) - 48
        if pos == start or pos - start > 18 or buf[pos] != 32:
            return 0, 0, 0, bodies_per_frame, ids, info, joints
        pos += 1
        ids[body] = body_id
        column = 0  # position of the value on its line
        for k in range(_VALUES_PER_BODY):
            negative = buf[pos] == 45
            if negative:
                pos += 1
            mantissa = 0
            start = pos
            d = np.int64(buf[pos]) - 48
            while 0 <= d <= 9:
                mantissa = mantissa * 10 + d
                pos += 1
                d = np.int64(buf[pos]) - 48
            digits = pos - start
            fraction = 0
            dotted = d == _DOT
            if dotted:
                pos += 1
                start = pos
                d = np.int64(buf[pos]) - 48
                while 0 <= d <= 9:
                    mantissa = mantissa * 10 + d
                    pos += 1
                    d = np.int64(buf[pos]) - 48
                fraction = pos - start
                digits += fraction
            # at most 15 digits: the mantissa is an exact float (< 2**53)
            if digits == 0 or digits > _MAX_EXACT_DIGITS:
                return 0, 0, 0, bodies_per_frame, ids, info, joints
            if d == _UPPER_E or d == _LOWER_E:  # noqa: PLR1714 - plain compares compile best
                pos += 1
                sign = buf[pos]
                if sign == 45 or sign == 43:  # noqa: PLR1714
                    pos += 1
                exponent = 0
                start = pos
                d = np.int64(buf[pos]) - 48
                while 0 <= d <= 9 and pos - start < 4:
                    exponent = exponent * 10 + d
                    pos += 1
                    d = np.int64(buf[pos]) - 48
                if pos == start or 0 <= d <= 9 or k == 9:
                    return 0, 0, 0, bodies_per_frame, ids, info, joints
                scale = (-exponent if sign == 45 else exponent) - fraction
                if scale > 22 or scale < -22:
                    return 0, 0, 0, bodies_per_frame, ids, info, joints
                value = mantissa * pow10[scale] if scale >= 0 else mantissa / pow10[-scale]
            else:
                value = mantissa / pow10[fraction]
            if negative:
                value = -value
            if k < 9:
                info[body * 9 + k] = value
                line_end = k == 8
            elif k == 9:
                if mantissa != 25 or negative or dotted:
                    return 0, 0, 0, bodies_per_frame, ids, info, joints
                line_end = True
                column = -1
            else:
                joints[body * 300 + k - 10] = np.float32(value)  # as float() then float32
                line_end = column == 11
            column = 0 if line_end else column + 1
            if line_end:
                if buf[pos] == 13:
                    pos += 1
                if buf[pos] != 10:
                    return 0, 0, 0, bodies_per_frame, ids, info, joints
            elif buf[pos] != 32:
                return 0, 0, 0, bodies_per_frame, ids, info, joints
            pos += 1
        body += 1
        remaining -= 1
    while pos < end and (buf[pos] == 10 or buf[pos] == 13 or buf[pos] == 32):
        pos += 1
    if pos != end:
        return 0, 0, 0, bodies_per_frame, ids, info, joints
    return 1, num_frames, body, bodies_per_frame, ids, info, joints


def scan(data: bytes):
    """(num_frames, bodies_per_frame, ids, info (B, 9) float64, joints (B, 25, 12) float32), or
    None when ``data`` is not in the canonical layout."""
    buf = np.frombuffer(data + b"\n\0", np.uint8)
    max_bodies = len(data) // (NUM_JOINT_LINES * _MIN_JOINT_LINE) + 1
    ok, num_frames, num_bodies, bodies_per_frame, ids, info, joints = _scan(buf, max_bodies, _POW10)
    if not ok:
        return None
    return (
        num_frames,
        bodies_per_frame,
        ids[:num_bodies].copy(),
        info[: num_bodies * 9].reshape(num_bodies, 9).copy(),
        joints[: num_bodies * 300].reshape(num_bodies, 25, 12).copy(),
    )
