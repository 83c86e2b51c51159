"""Per-recording skeleton normalisation ("view"): one translation, rotation and scale per clip.

Recordings of the same action differ in where the subject stands, which way they face, how the
camera is tilted and how tall they are. With few real training clips a network cannot learn to
ignore all of that, so ``"view"`` moves every recording into a body-centred frame:

* **origin**: the layout's torso centre joint (see :data:`VIEW_JOINTS`) of the reference body in
  the first frame where that joint is tracked;
* **axes**: +y along the spine (torso centre -> shoulder centre), +x along the lateral line
  (left hip -> right hip, made perpendicular to the spine by Gram-Schmidt), z = x cross y, a
  proper rotation (det +1). For a subject facing a Kinect this is close to the identity (Kinect
  camera space has x to the sensor's left, i.e. the subject's right, y up, z away from the
  sensor), so the axes keep their camera meaning;
* **scale**: the median spine length becomes 1.

The transform is estimated once per recording from the *reference body* (the first body slot
with any tracked joint) and applied to every body and frame, so the motion of the bodies
through space (walking, falling, two people approaching) is kept, relative to the start.
Directions are averaged over all frames, after dropping frames more than 45 degrees off the
first average, so a few bad frames do not tilt the frame of reference; lengths use the median.

Missing data is zero in this project (an absent body, an untracked joint). Only tracked joints
(any non-zero coordinate) are transformed; zeros stay exactly zero. Note that the centre joint
of the first frame lands exactly on the origin and so reads as "untracked" afterwards, as in
the usual NTU preprocessing; normalising twice is therefore not guaranteed to be a no-op.

Degenerate input, documented behaviour (never NaN/inf in the output):

* all-zero sequence, or no frames: returned unchanged (as float32), there is nothing to move;
* non-finite coordinates: ``ValueError`` mentioning "non-finite coordinates", the reason
  :func:`pose_zsl.training.batching.screen_sequences` already screens such clips out for;
* no usable spine (spine joints never both tracked, or coincident): no rotation and no scaling,
  only the translation;
* no usable lateral line: the hip line is tried first, then the shoulder line; a line is
  unusable when never tracked, with coincident joints, or within 30 degrees of the spine. When
  neither is usable the rotation is skipped (translation and scale still apply);
* a single frame is an ordinary recording (its axes come from that frame).

2D layouts (``openpose-18``, ``coco-17``) are refused for ``"view"``: their "spine" lies in the
image plane and a depth axis does not exist, so a 3D view normalisation is meaningless there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pose_zsl.skeleton.layouts import get_layout

__all__ = [
    "NORMALISATIONS",
    "VIEW_JOINTS",
    "ViewJoints",
    "check_normalisation",
    "normalise_sequence",
]

#: ``"none"`` leaves coordinates as recorded; ``"view"``: see the module docstring.
NORMALISATIONS = ("none", "view")

#: Frames whose direction is more than this far from the first average are dropped before the
#: final average: a wrong skeleton frame is typically far off, natural sway is well within it.
_OUTLIER_ANGLE_DEG = 45.0
#: A lateral line closer than this to the spine direction cannot define the x axis reliably.
_MIN_LATERAL_ANGLE_DEG = 30.0


@dataclass(frozen=True)
class ViewJoints:
    """Joint names that define the body frame of a layout.

    Attributes:
        centre: torso joint placed at the origin (also the spine's lower end).
        spine_top: upper end of the spine (shoulder centre).
        laterals: ``(from, to)`` joint pairs whose direction defines +x, in order of
            preference; ``to`` is on the subject's right.
    """

    centre: str
    spine_top: str
    laterals: tuple[tuple[str, str], ...]


#: Per 3D layout. ``ntu-rgb+d`` (Kinect v2): ``spine_base`` is the hip centre, the most stable
#: torso joint (the pelvis moves least in almost every action); ``spine_shoulder`` is the
#: shoulder centre (steadier than ``neck``, which follows the head). ``kinect-v1`` (MSR
#: Action3D): ``hip_center`` and ``shoulder_center``, the same anatomical points.
VIEW_JOINTS: dict[str, ViewJoints] = {
    "ntu-rgb+d": ViewJoints(
        "spine_base",
        "spine_shoulder",
        (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
    ),
    "kinect-v1": ViewJoints(
        "hip_center",
        "shoulder_center",
        (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
    ),
}


@dataclass(frozen=True)
class _Indices:
    centre: int
    spine_top: int
    laterals: tuple[tuple[int, int], ...]


def check_normalisation(mode: str, layout: str | None) -> None:
    """Raise ValueError unless ``mode`` is known and, for ``"view"``, ``layout`` supports it."""
    if mode not in NORMALISATIONS:
        raise ValueError(f"normalise={mode!r} is not one of {NORMALISATIONS}")
    if mode != "none":
        _indices(layout)


def _indices(layout: str | None) -> _Indices:
    if layout is None:
        raise ValueError("normalise='view' needs the skeleton layout, got layout=None")
    spec = get_layout(layout)  # an unknown name is an error listing the known ones
    joints = VIEW_JOINTS.get(layout)
    if joints is None:
        raise ValueError(
            f"normalise='view' is not defined for layout {layout!r} "
            f"({spec.coordinate_dims}D keypoints without a 3D torso frame); it supports "
            f"{', '.join(VIEW_JOINTS)}; use normalise='none'"
        )
    index = spec.joint_names.index
    return _Indices(
        index(joints.centre),
        index(joints.spine_top),
        tuple((index(a), index(b)) for a, b in joints.laterals),
    )


def normalise_sequence(sequence: np.ndarray, layout: str, mode: str) -> np.ndarray:
    """Return ``sequence`` (T, M, V, 3) normalised per ``mode`` as a new float32 array.

    ``"none"`` returns the input as float32 (no copy when it already is). ``"view"``: see the
    module docstring for the frame, the handling of missing joints and of degenerate input.

    Raises:
        ValueError: unknown ``mode``; ``"view"`` with a 2D or unknown layout, a shape that does
            not match the layout, or non-finite coordinates.
    """
    check_normalisation(mode, layout)
    if mode == "none":
        return np.asarray(sequence, dtype=np.float32)
    indices = _indices(layout)
    array = np.asarray(sequence, dtype=np.float32)
    num_joints = get_layout(layout).num_joints
    if array.ndim != 4 or array.shape[2] != num_joints or array.shape[3] != 3:
        raise ValueError(
            f"normalise='view' for layout {layout!r} expects a (T, M, {num_joints}, 3) array, "
            f"got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("cannot normalise a sequence with non-finite coordinates (NaN/inf)")
    tracked = array.any(axis=-1)  # (T, M, V)
    if not tracked.any():
        return array.copy()
    reference = int(np.flatnonzero(tracked.any(axis=(0, 2)))[0])
    body = array[:, reference].astype(np.float64)
    body_tracked = tracked[:, reference]
    origin = _origin(body, body_tracked, indices.centre)
    spine = _segments(body, body_tracked, indices.centre, indices.spine_top)
    rotation = np.eye(3)
    scale = 1.0
    if len(spine):
        scale = float(np.median(np.linalg.norm(spine, axis=1)))
        rotation = _rotation(body, body_tracked, spine, indices.laterals)
    out = np.zeros_like(array)
    moved = (array[tracked].astype(np.float64) - origin) @ rotation.T / scale
    out[tracked] = moved.astype(np.float32)
    return out


def _origin(body: np.ndarray, tracked: np.ndarray, centre: int) -> np.ndarray:
    """The centre joint in its first tracked frame, else the first valid frame's centroid."""
    frames = np.flatnonzero(tracked[:, centre])
    if frames.size:
        return body[frames[0], centre]
    first = int(np.flatnonzero(tracked.any(axis=1))[0])
    return body[first, tracked[first]].mean(axis=0)


def _segments(body: np.ndarray, tracked: np.ndarray, start: int, end: int) -> np.ndarray:
    """``end - start`` vectors (K, 3) of the frames where both are tracked and distinct."""
    both = tracked[:, start] & tracked[:, end]
    vectors = body[both, end] - body[both, start]
    return vectors[np.linalg.norm(vectors, axis=1) > 0.0]


def _mean_direction(vectors: np.ndarray) -> np.ndarray | None:
    """Unit mean direction of ``vectors`` (K, 3) after dropping outlying frames, or None."""
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = units.mean(axis=0)
    length = float(np.linalg.norm(mean))
    if length < 1e-6:  # directions cancel out: no preferred axis
        return None
    inliers = units @ (mean / length) >= math.cos(math.radians(_OUTLIER_ANGLE_DEG))
    if inliers.any():
        # inliers all lie within 45 degrees of the first average: their mean cannot vanish
        mean = units[inliers].mean(axis=0)
    return mean / np.linalg.norm(mean)


def _rotation(
    body: np.ndarray,
    tracked: np.ndarray,
    spine: np.ndarray,
    laterals: tuple[tuple[int, int], ...],
) -> np.ndarray:
    """Rows x, y, z of the body frame (a proper rotation), or the identity when degenerate."""
    up = _mean_direction(spine)
    if up is None:
        return np.eye(3)
    min_sine = math.sin(math.radians(_MIN_LATERAL_ANGLE_DEG))
    for start, end in laterals:
        segments = _segments(body, tracked, start, end)
        side = _mean_direction(segments) if len(segments) else None
        if side is None:
            continue
        across = side - (side @ up) * up  # Gram-Schmidt: the part perpendicular to the spine
        length = float(np.linalg.norm(across))
        if length < min_sine:
            continue
        right = across / length
        return np.stack([right, up, np.cross(right, up)])
    return np.eye(3)
