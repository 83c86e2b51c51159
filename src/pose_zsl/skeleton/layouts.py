"""Skeleton layouts: joint order, names, bones and the centre joint, held in one place.

Every layout lists its bones as 0-based (child, parent)-style pairs; the graph code treats them
as undirected. ``center`` is the joint the "spatial" partition measures distances from.

* ``ntu-rgb+d``: Kinect v2, 25 joints (NTU RGB+D 60/120). Bones and centre are exactly those of the
  original ST-GCN (``net/utils/graph.py``), including its hand chains: the hand tip hangs off the
  thumb (22-23-8 and 24-25-12, 1-based), not off the hand. Centre: joint 21 (spine shoulder).
* ``kinect-v1``: Kinect v1 / MSR Action3D, 20 joints, in the order of the MSR Action3D files, with
  the 19 bones of the ``body_model.mat`` shipped with that release. Centre: shoulder centre (neck),
  the v1 counterpart of NTU's spine-shoulder centre.
* ``openpose-18``: OpenPose COCO-18 keypoints (2D), bones and centre (neck) as in ST-GCN's
  ``openpose`` layout.
* ``coco-17``: COCO-17 keypoints (2D), the tree used by mmskeleton/pyskl's ``coco`` layout,
  centre at the nose as there.

Reading a recording of one layout with a model of another (NTU RGB+D -> Kinect v1, joint by
joint): :mod:`pose_zsl.skeleton.adapt`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Layout", "LAYOUT_NAMES", "get_layout"]


@dataclass(frozen=True)
class Layout:
    """A skeleton layout.

    Attributes:
        name: registry name, e.g. ``"ntu-rgb+d"``.
        num_joints: number of joints V.
        joint_names: V names in data order.
        bones: undirected bones as 0-based joint index pairs.
        center: 0-based index of the centre joint of the spatial partition.
        coordinate_dims: 3 for 3D camera-space layouts, 2 for image keypoint layouts.
    """

    name: str
    num_joints: int
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    center: int
    coordinate_dims: int

    def __post_init__(self) -> None:
        if len(self.joint_names) != self.num_joints:
            raise ValueError(
                f"layout {self.name!r}: {len(self.joint_names)} joint names "
                f"for {self.num_joints} joints"
            )
        for a, b in self.bones:
            if not (0 <= a < self.num_joints and 0 <= b < self.num_joints) or a == b:
                raise ValueError(f"layout {self.name!r}: invalid bone ({a}, {b})")
        if len({frozenset(bone) for bone in self.bones}) != len(self.bones):
            raise ValueError(f"layout {self.name!r}: duplicate bones")
        if not 0 <= self.center < self.num_joints:
            raise ValueError(f"layout {self.name!r}: centre {self.center} out of range")


def _from_one_based(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((a - 1, b - 1) for a, b in pairs)


_NTU_JOINTS = (
    "spine_base", "spine_mid", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
    "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
)  # fmt: skip

# 1-based, copied from the original ST-GCN graph (see the stgcn fixture README).
_NTU_BONES_1BASED = [
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
]  # fmt: skip

_KINECT_V1_JOINTS = (
    "left_shoulder", "right_shoulder", "shoulder_center", "spine",
    "left_hip", "right_hip", "hip_center",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot", "head",
)  # fmt: skip

# 1-based, from MSR Action3D's body_model.mat (see shared/data/real/MSRAction3D/SOURCES.md).
_KINECT_V1_BONES_1BASED = [
    (7, 4), (4, 3), (3, 20), (3, 1), (3, 2), (1, 8), (2, 9), (8, 10), (9, 11), (10, 12),
    (11, 13), (7, 5), (7, 6), (5, 14), (6, 15), (14, 16), (15, 17), (16, 18), (17, 19),
]  # fmt: skip

_OPENPOSE_JOINTS = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip

# 0-based, as in ST-GCN's 'openpose' layout.
_OPENPOSE_BONES = (
    (4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2),
    (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14),
)  # fmt: skip

_COCO_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# 0-based, the COCO tree of mmskeleton/pyskl ('coco' layout).
_COCO_BONES = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
    (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2),
)  # fmt: skip

_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("ntu-rgb+d", 25, _NTU_JOINTS, _from_one_based(_NTU_BONES_1BASED), 20, 3),
        Layout("kinect-v1", 20, _KINECT_V1_JOINTS, _from_one_based(_KINECT_V1_BONES_1BASED), 2, 3),
        Layout("openpose-18", 18, _OPENPOSE_JOINTS, _OPENPOSE_BONES, 1, 2),
        Layout("coco-17", 17, _COCO_JOINTS, _COCO_BONES, 0, 2),
    )
}

LAYOUT_NAMES: tuple[str, ...] = tuple(_LAYOUTS)


def get_layout(name: str) -> Layout:
    """Return the layout registered under ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise ValueError(
            f"unknown skeleton layout {name!r}; known layouts: {', '.join(LAYOUT_NAMES)}"
        ) from None
