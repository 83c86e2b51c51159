"""NTU RGB+D body selection and denoising.

Follows the preprocessing shipped with 2s-AGCN / CTR-GCN (``get_raw_skes_data.py`` +
``get_raw_denoised_data.py``, originally from Microsoft's SGN / VA-NN code):

1. frames without any body are dropped;
2. bodies are tracked by their body id; a sample with a single id needs no denoising;
3. *length*: a body seen in <= 11 frames is noise;
4. *spread*: a frame of a body is noisy when its x extent exceeds 0.8 x its y extent (people
   are taller than wide); a body with >= 69.754 % noisy frames is noise, otherwise its motion is
   re-measured on its valid frames (the smaller value wins);
5. bodies are ranked by *motion* (sum over x, y, z of the variance of all its joint positions),
   the largest is the actor; the others fill the actor slot when they do not overlap it in time,
   else the next free slot, else they are dropped;
6. frames where every slot is empty are dropped.

Optionally (off by default, as in the reference) step 5 also drops non-actor bodies whose motion
is outside [0.089925, 2].

Deliberate difference from the reference: a body's records are placed at the frames where they
actually occur. The reference assumes each body is seen in consecutive frames and shifts the
records of a body with a gap; on gap-free bodies (the norm) both give the same array.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

import numpy as np

from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.ntu import SkeletonFile

NOISE_LEN_THRESHOLD = 11
NOISE_SPREAD_THRESHOLD_FRAME = 0.8
NOISE_SPREAD_THRESHOLD_BODY = 0.69754
NOISE_MOTION_LOW = 0.089925
NOISE_MOTION_HIGH = 2.0

#: Quality flags :func:`select_bodies` may raise (joined with ";" in ``samples.quality_flags``).
FLAG_NOISE_BODY_DROPPED = "noise_body_dropped"  # removed by the length/spread/motion rules
FLAG_EXTRA_BODY_DROPPED = "extra_body_dropped"  # a real-looking body that did not fit a slot
FLAG_EMPTY_FRAMES_DROPPED = "empty_frames_dropped"  # frames without any (kept) body
FLAG_LENGTH_FILTER_SKIPPED = "length_filter_skipped"  # every body was short; none dropped


@dataclass
class _Body:
    body_id: int
    records: np.ndarray  # indices into the SkeletonFile body records
    frames: np.ndarray  # frame index (after dropping empty frames) of each record
    motion: float

    @property
    def start(self) -> int:
        return int(self.frames.min())

    @property
    def end(self) -> int:
        return int(self.frames.max())


def _motion(points: np.ndarray) -> float:
    return float(np.sum(np.var(points.reshape(-1, 3), axis=0, dtype=np.float64)))


def select_bodies(
    skeleton: SkeletonFile,
    max_bodies: int = 2,
    denoise: bool = True,
    path: str | PathLike[str] | None = None,
    filter_by_motion: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """x y z of up to ``max_bodies`` bodies: float32 ``(T, max_bodies, 25, 3)`` and quality flags.

    With ``denoise=False`` the st-gcn ``read_xyz`` convention applies instead: the m-th body
    listed in a frame goes to slot m and every frame is kept (T == num_frames).

    Raises:
        SkeletonFormatError: no frame holds a body (``path`` names the file).
    """
    if max_bodies < 1:
        raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
    if skeleton.body_ids.shape[0] == 0:
        raise SkeletonFormatError(
            path if path is not None else "<skeleton>", None, "no frame holds a body"
        )
    flags: list[str] = []
    if not denoise:
        return _slots_in_listed_order(skeleton, max_bodies, flags), flags
    xyz = skeleton.joints[..., :3]
    bodies, num_frames = _tracked_bodies(skeleton, xyz, flags)
    if len(bodies) > 1:
        bodies = _rank_bodies(bodies, xyz, filter_by_motion, flags)
    return _place_bodies(bodies, xyz, num_frames, max_bodies, flags), flags


def _slots_in_listed_order(skeleton: SkeletonFile, max_bodies: int, flags: list[str]) -> np.ndarray:
    """st-gcn's ``read_xyz``: the m-th body listed in a frame goes to slot m, every frame kept."""
    xyz = skeleton.joints[..., :3]
    out = np.zeros((skeleton.num_frames, max_bodies, *xyz.shape[1:]), np.float32)
    first_record = np.concatenate(([0], np.cumsum(skeleton.bodies_per_frame)[:-1]))
    slot = np.arange(xyz.shape[0]) - first_record[skeleton.body_frame]
    keep = slot < max_bodies
    if not keep.all():
        flags.append(FLAG_EXTRA_BODY_DROPPED)
    out[skeleton.body_frame[keep], slot[keep]] = xyz[keep]
    return out


def _tracked_bodies(
    skeleton: SkeletonFile, xyz: np.ndarray, flags: list[str]
) -> tuple[list[_Body], int]:
    """The bodies by id, in order of first appearance, with their records placed on the frames
    that hold a body (frames without one are dropped); and the number of those frames."""
    has_body = skeleton.bodies_per_frame > 0
    num_frames = int(has_body.sum())
    if num_frames < skeleton.num_frames:
        flags.append(FLAG_EMPTY_FRAMES_DROPPED)
    frame_of_record = (np.cumsum(has_body) - 1)[skeleton.body_frame]
    ids, first_seen, inverse = np.unique(skeleton.body_ids, return_index=True, return_inverse=True)
    bodies = []
    for k in np.argsort(first_seen, kind="stable"):  # order of first appearance
        records = np.flatnonzero(inverse == k)
        bodies.append(_Body(int(ids[k]), records, frame_of_record[records], _motion(xyz[records])))
    return bodies, num_frames


def _rank_bodies(
    bodies: list[_Body], xyz: np.ndarray, filter_by_motion: bool, flags: list[str]
) -> list[_Body]:
    """The bodies that survive the noise rules, by motion, largest (the actor) first."""
    bodies, dropped = _denoise(bodies, xyz, flags)
    bodies.sort(key=lambda body: body.motion, reverse=True)  # stable: ties by appearance
    if filter_by_motion:
        kept = [bodies[0]] + [
            body for body in bodies[1:] if NOISE_MOTION_LOW <= body.motion <= NOISE_MOTION_HIGH
        ]
        dropped = dropped or len(kept) < len(bodies)
        bodies = kept
    if dropped:
        flags.append(FLAG_NOISE_BODY_DROPPED)
    return bodies


def _place_bodies(
    bodies: list[_Body], xyz: np.ndarray, num_frames: int, max_bodies: int, flags: list[str]
) -> np.ndarray:
    """Each body, in the given order, into the first slot it does not overlap in time; bodies
    without a free slot are dropped, and so are the frames left with every slot empty."""
    out = np.zeros((num_frames, max_bodies, *xyz.shape[1:]), np.float32)
    intervals: list[tuple[int, int] | None] = [None] * max_bodies
    extra = False
    for body in bodies:
        slot = _free_slot(intervals, body.start, body.end)
        if slot is None:
            extra = True
            continue
        out[body.frames, slot] = xyz[body.records]
        old = intervals[slot]
        intervals[slot] = (
            (body.start, body.end)
            if old is None
            else (min(old[0], body.start), max(old[1], body.end))
        )
    if extra:
        flags.append(FLAG_EXTRA_BODY_DROPPED)
    filled = out.reshape(num_frames, -1).any(axis=1)
    if not filled.all():
        out = out[filled]
        if FLAG_EMPTY_FRAMES_DROPPED not in flags:
            flags.append(FLAG_EMPTY_FRAMES_DROPPED)
    return out


def _free_slot(intervals: list[tuple[int, int] | None], start: int, end: int) -> int | None:
    """First slot whose frames do not overlap [start, end] (the reference's "<= 0" test)."""
    for slot, interval in enumerate(intervals):
        if interval is None or min(interval[1], end) - max(interval[0], start) <= 0:
            return slot
    return None


def _denoise(bodies: list[_Body], xyz: np.ndarray, flags: list[str]) -> tuple[list[_Body], bool]:
    """Length then spread rules; returns the surviving bodies and whether any was dropped."""
    long_enough = [body for body in bodies if body.records.shape[0] > NOISE_LEN_THRESHOLD]
    if not long_enough:
        flags.append(FLAG_LENGTH_FILTER_SKIPPED)
        long_enough = bodies
    dropped = len(long_enough) < len(bodies)
    if len(long_enough) == 1:
        return long_enough, dropped

    survivors = list(long_enough)
    for body in long_enough:
        if len(survivors) == 1:
            break
        points = xyz[body.records]
        x_spread = np.ptp(points[:, :, 0], axis=1)
        y_spread = np.ptp(points[:, :, 1], axis=1)
        valid = x_spread <= NOISE_SPREAD_THRESHOLD_FRAME * y_spread
        num_noisy = int((~valid).sum())
        if num_noisy == 0:
            continue
        if num_noisy / valid.shape[0] >= NOISE_SPREAD_THRESHOLD_BODY:
            survivors.remove(body)
            dropped = True
        else:
            body.motion = min(body.motion, _motion(points[valid]))
    return survivors, dropped
