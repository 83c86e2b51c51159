"""Procedural NTU RGB+D 60 look-alike: real ``.skeleton`` files for the 60 NTU-60 actions.

Why it exists: the default run must work on a fresh clone without the (licensed) NTU data, and
must still be a meaningful zero-shot problem. So motions are not random: every action is composed
from a small set of named, shared *primitives* tied to the meaning of its name (see
:data:`ACTIONS`): "drink water" and "eat meal/snack" both bring the right hand to the mouth,
"wear jacket" and "take off jacket" are one motion played forwards and backwards, "kicking
something" and "kicking other person" share the kick. An unseen class therefore looks like the
seen classes whose names mean similar things, which is exactly what zero-shot transfer needs.

Motion model (all vectorised over frames, one sample at a time):

* a performer has fixed bone lengths (deterministic per performer id, :func:`performer_anatomy`);
* primitives write joint-angle channels (torso bend, neck, hips, knees, ...), root motion
  (walking, steps, turns, jumps) and wrist goals in body-attached frames (mouth, head top, floor,
  the other person's chest, ...);
* forward kinematics places trunk and legs, the feet touch the ground, and a two-bone inverse
  kinematics solve places each arm, so every bone keeps its length in every frame;
* three Kinect-like camera views (C001 in front, C002 / C003 at +-45 degrees, about 3 m away),
  per-sample speed, amplitude, start offset, idle segments and joint noise, then a pinhole
  projection fills the depth / colour pixel fields and bone directions give joint orientations.

Files are written through :func:`pose_zsl.skeleton.ntu.write_skeleton`, so the default pipeline
reads them with the same reader as real data.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from pose_zsl.skeleton.ntu import SampleName, SkeletonFile, write_skeleton

logger = logging.getLogger(__name__)

NUM_JOINTS = 25
NUM_ACTIONS = 60
MIN_FRAMES = 40
MAX_FRAMES = 150
DEFAULT_SAMPLES_PER_ACTION = 12
#: Bumped whenever the generated motions change, so cached folders can be regenerated.
GENERATOR_VERSION = 1
CAMERA_YAW_DEG = {1: 0.0, 2: 45.0, 3: -45.0}
"""Horizontal angle of each camera around the actor (0 = in front of the actor)."""

# NTU joint order, 0-based (file order).
(
    SPINE_BASE, SPINE_MID, NECK, HEAD,
    SHOULDER_L, ELBOW_L, WRIST_L, HAND_L,
    SHOULDER_R, ELBOW_R, WRIST_R, HAND_R,
    HIP_L, KNEE_L, ANKLE_L, FOOT_L,
    HIP_R, KNEE_R, ANKLE_R, FOOT_R,
    SPINE_SHOULDER, HAND_TIP_L, THUMB_L, HAND_TIP_R, THUMB_R,
) = range(NUM_JOINTS)  # fmt: skip

#: Kinect v2 skeleton tree (parent of each joint, -1 for the root). Every parent-child pair is a
#: rigid bone of the generated skeleton.
PARENTS: tuple[int, ...] = (
    -1, SPINE_BASE, SPINE_SHOULDER, NECK,
    SPINE_SHOULDER, SHOULDER_L, ELBOW_L, WRIST_L,
    SPINE_SHOULDER, SHOULDER_R, ELBOW_R, WRIST_R,
    SPINE_BASE, HIP_L, KNEE_L, ANKLE_L,
    SPINE_BASE, HIP_R, KNEE_R, ANKLE_R,
    SPINE_MID, HAND_L, WRIST_L, HAND_R, WRIST_R,
)  # fmt: skip

#: Joints with no child bone: Kinect reports an all-zero orientation for them.
LEAF_JOINTS: tuple[int, ...] = (HEAD, FOOT_L, FOOT_R, HAND_TIP_L, THUMB_L, HAND_TIP_R, THUMB_R)

SIDES = ("left", "right")
_SIDE_SIGN = {"left": 1.0, "right": -1.0}  # body frame: x = the person's left, y up, z forward

# Kinect v2 intrinsics fitted on the real NTU files in shared/data/ntu_samples.
_DEPTH_F, _DEPTH_CX, _DEPTH_CY = 366.0, 256.3, 208.5
_COLOR_F, _COLOR_CX, _COLOR_CY, _COLOR_BASELINE = 1057.0, 957.0, 567.3, 0.066
_BODY_ID_BASE = 72057594037900000  # real NTU tracking ids look like 72057594037931101
_GROUND_CLEARANCE = 0.04  # the Kinect foot joint sits a few cm above the floor


# ----------------------------------------------------------------------------------------------
# Action table
# ----------------------------------------------------------------------------------------------


class Step(NamedTuple):
    """One primitive of an action: ``(primitive name, side, parameters)``.

    ``side`` is ``"left"``, ``"right"``, ``"both"`` or ``"none"``. ``params["at"]`` is the
    (start, end) window in action phase 0..1; ``params["who"] == "partner"`` applies the step to
    the second person of a two-person action.
    """

    primitive: str
    side: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ActionSpec:
    """How one NTU action is composed. ``reverse_of`` plays another action's steps backwards."""

    steps: tuple[Step, ...] = ()
    frames: int = 70
    reverse_of: int | None = None
    two_person: bool = False
    gap: float = 1.1  # initial distance between the two people (metres)


def _s(primitive: str, side: str = "none", **params: Any) -> Step:
    return Step(primitive, side, params)


def _partner(primitive: str, side: str = "none", **params: Any) -> Step:
    return Step(primitive, side, {**params, "who": "partner"})


#: Action id (1-based, as in ``A001``) -> its composition. Semantically close actions share
#: primitives and anchors, so they also look close.
ACTIONS: dict[int, ActionSpec] = {
    1: ActionSpec((  # drink water
        _s("hand_to", "right", anchor="mouth", at=(0.15, 0.85)),
        _s("head", pitch=-15, at=(0.35, 0.75)),  # tilt the head back to drink
    )),
    2: ActionSpec((  # eat meal/snack: two bites
        _s("hand_to", "right", anchor="mouth", at=(0.05, 0.45)),
        _s("hand_to", "right", anchor="mouth", at=(0.55, 0.95)),
        _s("head", pitch=6, cycles=4, at=(0.1, 0.9)),  # chewing
    )),
    3: ActionSpec((  # brushing teeth
        _s("hand_to", "right", anchor="mouth", at=(0.05, 0.95), osc=("lateral", 0.04, 7)),
    ), frames=90),
    4: ActionSpec((  # brushing hair
        _s("hand_to", "right", anchor="head_side", at=(0.05, 0.95), osc=("forward", 0.08, 4)),
        _s("head", roll=8, at=(0.1, 0.9)),
    ), frames=90),
    5: ActionSpec((  # drop
        _s("hand_to", "right", anchor="front_low", at=(0.0, 0.5)),
        _s("head", pitch=20, at=(0.3, 0.9)),  # watch it fall
    ), frames=60),
    6: ActionSpec((  # pickup
        _s("reach_down", "right", at=(0.1, 0.9)),
    ), frames=80),
    7: ActionSpec((  # throw
        _s("arm_swing", "right", style="overhand", at=(0.15, 0.8)),
        _s("step", distance=0.12, at=(0.35, 0.6)),
    ), frames=60),
    8: ActionSpec((  # sitting down
        _s("sit", at=(0.15, 0.75)),
    ), frames=80),
    9: ActionSpec(reverse_of=8, frames=80),  # standing up (from sitting position)
    10: ActionSpec((  # clapping
        _s("clap", "both", cycles=5, at=(0.05, 0.95)),
    )),
    11: ActionSpec((  # reading
        _s("hand_to", "both", anchor="book", at=(0.0, 1.0)),
        _s("hand_to", "right", anchor="page_turn", at=(0.45, 0.7)),
        _s("head", pitch=25, at=(0.0, 1.0)),
    ), frames=90),
    12: ActionSpec((  # writing
        _s("hand_to", "left", anchor="desk", at=(0.0, 1.0)),
        _s("hand_to", "right", anchor="desk_pen", at=(0.0, 1.0), osc=("lateral", 0.04, 5)),
        _s("head", pitch=30, at=(0.0, 1.0)),
        _s("bend", pitch=10, at=(0.0, 1.0)),
    ), frames=90),
    13: ActionSpec((  # tear up paper
        _s("hand_to", "both", anchor="hands_meet", at=(0.05, 0.95), osc=("lateral", 0.09, 3)),
        _s("head", pitch=15, at=(0.05, 0.95)),
    )),
    14: ActionSpec((  # wear jacket: left sleeve, right sleeve, pull the fronts closed
        _s("hand_to", "right", anchor="opposite_shoulder", at=(0.0, 0.3)),
        _s("hand_to", "left", anchor="sleeve_back", at=(0.1, 0.45)),
        _s("hand_to", "right", anchor="sleeve_back", at=(0.35, 0.7)),
        _s("hand_to", "both", anchor="lapels", at=(0.65, 0.95)),
        _s("bend", twist=15, at=(0.1, 0.45)),
        _s("bend", twist=-15, at=(0.35, 0.7)),
    ), frames=100),
    15: ActionSpec(reverse_of=14, frames=100),  # take off jacket
    16: ActionSpec((  # wear a shoe: pick the shoe from the floor, pull it onto the raised foot
        _s("reach_down", "both", at=(0.0, 0.35)),
        _s("reach_foot", "both", foot="right", at=(0.3, 0.95), osc=("up", 0.04, 3)),
    ), frames=100),
    17: ActionSpec(reverse_of=16, frames=100),  # take off a shoe
    18: ActionSpec((  # wear on glasses: unfold in front of the chest, put on, hands down
        _s("hand_to", "both", anchor="front_chest", at=(0.0, 0.4)),
        _s("hand_to", "both", anchor="eyes", at=(0.3, 0.8)),
    ), frames=60),
    19: ActionSpec(reverse_of=18, frames=60),  # take off glasses
    20: ActionSpec((  # put on a hat/cap: grab it low in front, both hands onto the head
        _s("hand_to", "right", anchor="front_low", at=(0.0, 0.4)),
        _s("hand_to", "both", anchor="head_top", at=(0.3, 0.85)),
    ), frames=60),
    21: ActionSpec(reverse_of=20, frames=60),  # take off a hat/cap
    22: ActionSpec((  # cheer up
        _s("hand_to", "both", anchor="overhead", at=(0.1, 0.9), osc=("up", 0.08, 3)),
        _s("jump", height=0.06, cycles=2, at=(0.25, 0.75)),
    )),
    23: ActionSpec((  # hand waving
        _s("arm_swing", "right", style="wave", cycles=4, at=(0.05, 0.95)),
    )),
    24: ActionSpec((  # kicking something
        _s("kick", "right", at=(0.2, 0.8)),
    ), frames=60),
    25: ActionSpec((  # reach into pocket
        _s("hand_to", "right", anchor="pocket", at=(0.15, 0.85), osc=("up", 0.03, 2)),
        _s("head", pitch=15, at=(0.15, 0.85)),
    ), frames=60),
    26: ActionSpec((  # hopping (one foot jumping)
        _s("hop", "right", cycles=4, at=(0.05, 0.95)),
    ), frames=80),
    27: ActionSpec((  # jump up
        _s("jump", height=0.28, cycles=1, at=(0.15, 0.85)),
    ), frames=55),
    28: ActionSpec((  # make a phone call/answer phone
        _s("hand_to", "right", anchor="ear", at=(0.15, 0.9)),
        _s("head", roll=10, at=(0.2, 0.85)),
    ), frames=80),
    29: ActionSpec((  # playing with phone/tablet
        _s("hand_to", "both", anchor="phone", at=(0.0, 1.0), osc=("up", 0.015, 6)),
        _s("head", pitch=30, at=(0.0, 1.0)),
    ), frames=90),
    30: ActionSpec((  # typing on a keyboard
        _s("hand_to", "both", anchor="keyboard", at=(0.0, 1.0), osc=("up", 0.02, 9)),
        _s("head", pitch=20, at=(0.0, 1.0)),
        _s("bend", pitch=10, at=(0.0, 1.0)),
    ), frames=90),
    31: ActionSpec((  # pointing to something with finger
        _s("arm_swing", "right", style="extend", at=(0.15, 0.85)),
    ), frames=60),
    32: ActionSpec((  # taking a selfie
        _s("hand_to", "right", anchor="selfie", at=(0.1, 0.9)),
        _s("head", pitch=-10, roll=-10, at=(0.2, 0.85)),
    ), frames=80),
    33: ActionSpec((  # check time (from watch)
        _s("hand_to", "left", anchor="watch", at=(0.15, 0.85)),
        _s("head", pitch=30, at=(0.2, 0.8)),
    ), frames=60),
    34: ActionSpec((  # rub two hands together
        _s("hand_to", "both", anchor="hands_meet", at=(0.05, 0.95), osc=("forward", 0.05, 6),
           opposed=True),
    )),
    35: ActionSpec((  # nod head/bow
        _s("bend", pitch=40, at=(0.2, 0.8)),
        _s("head", pitch=20, at=(0.2, 0.8)),
    ), frames=60),
    36: ActionSpec((  # shake head
        _s("head", yaw=35, cycles=3, at=(0.1, 0.9)),
    ), frames=60),
    37: ActionSpec((  # wipe face
        _s("hand_to", "both", anchor="face", at=(0.1, 0.9), osc=("up", 0.07, 3)),
        _s("head", pitch=10, at=(0.1, 0.9)),
    )),
    38: ActionSpec((  # salute
        _s("hand_to", "right", anchor="salute", at=(0.15, 0.85)),
    ), frames=60),
    39: ActionSpec((  # put the palms together
        _s("hand_to", "both", anchor="palms", at=(0.15, 0.85)),
        _s("bend", pitch=10, at=(0.3, 0.7)),
    ), frames=60),
    40: ActionSpec((  # cross hands in front (say stop)
        _s("hand_to", "both", anchor="cross", at=(0.15, 0.85)),
    ), frames=60),
    41: ActionSpec((  # sneeze/cough
        _s("hand_to", "right", anchor="mouth", at=(0.15, 0.8)),
        _s("bend", pitch=25, at=(0.35, 0.6)),
        _s("head", pitch=20, at=(0.35, 0.6)),
    ), frames=60),
    42: ActionSpec((  # staggering
        _s("stagger", distance=0.7, at=(0.05, 0.95)),
    ), frames=100),
    43: ActionSpec((  # falling
        _s("fall", at=(0.15, 0.8)),
    ), frames=80),
    44: ActionSpec((  # touch head (headache)
        _s("hand_to", "right", anchor="forehead", at=(0.15, 0.85)),
        _s("head", pitch=10, at=(0.15, 0.85)),
    ), frames=60),
    45: ActionSpec((  # touch chest (stomachache/heart pain)
        _s("hand_to", "right", anchor="chest", at=(0.15, 0.85)),
        _s("bend", pitch=15, at=(0.2, 0.85)),
    ), frames=60),
    46: ActionSpec((  # touch back (backache)
        _s("hand_to", "right", anchor="back", at=(0.15, 0.85)),
        _s("bend", pitch=-8, at=(0.2, 0.85)),
    ), frames=60),
    47: ActionSpec((  # touch neck (neckache)
        _s("hand_to", "right", anchor="neck", at=(0.15, 0.85)),
        _s("head", roll=-12, at=(0.2, 0.85)),
    ), frames=60),
    48: ActionSpec((  # nausea or vomiting condition
        _s("hand_to", "right", anchor="mouth", at=(0.1, 0.9)),
        _s("hand_to", "left", anchor="belly", at=(0.1, 0.9)),
        _s("bend", pitch=45, at=(0.25, 0.85)),
        _s("squat", depth=20, at=(0.25, 0.85)),
    ), frames=90),
    49: ActionSpec((  # use a fan (with hand or paper)/feeling warm
        _s("hand_to", "right", anchor="fan", at=(0.05, 0.95), osc=("lateral", 0.08, 6)),
    ), frames=80),
    # --- two-person actions: body 1 acts, body 2 (the partner) reacts -----------------------
    50: ActionSpec((  # punching/slapping other person
        _s("step", distance=0.15, at=(0.2, 0.45)),
        _s("arm_swing", "right", style="thrust", target="partner_head", at=(0.25, 0.75)),
        _partner("bend", pitch=-15, at=(0.45, 0.8)),
        _partner("step", distance=-0.15, at=(0.45, 0.7)),
    ), frames=60, two_person=True, gap=1.0),
    51: ActionSpec((  # kicking other person
        _s("kick", "right", at=(0.2, 0.8)),
        _partner("bend", pitch=20, at=(0.45, 0.85)),
        _partner("step", distance=-0.2, at=(0.45, 0.7)),
    ), frames=60, two_person=True, gap=1.1),
    52: ActionSpec((  # pushing other person
        _s("step", distance=0.2, at=(0.15, 0.5)),
        _s("hand_to", "both", anchor="partner_chest", at=(0.2, 0.7)),
        _partner("step", distance=-0.4, at=(0.4, 0.75)),
        _partner("bend", pitch=-15, at=(0.4, 0.8)),
    ), frames=60, two_person=True, gap=1.0),
    53: ActionSpec((  # pat on back of other person
        _s("step", distance=0.3, at=(0.05, 0.35)),
        _s("hand_to", "right", anchor="partner_back", at=(0.25, 0.9), osc=("up", 0.05, 3)),
        _partner("head", pitch=10, at=(0.3, 0.9)),
    ), frames=80, two_person=True, gap=1.0),
    54: ActionSpec((  # point finger at the other person
        _s("arm_swing", "right", style="extend", target="partner_head", at=(0.15, 0.85)),
        _partner("head", yaw=10, at=(0.3, 0.85)),
    ), frames=60, two_person=True, gap=1.4),
    55: ActionSpec((  # hugging other person
        _s("step", distance=0.3, at=(0.05, 0.4)),
        _s("hand_to", "both", anchor="partner_back", at=(0.25, 0.85), elbow_out=1.0),
        _partner("step", distance=0.3, at=(0.05, 0.4)),
        _partner("hand_to", "both", anchor="partner_back", at=(0.25, 0.85), elbow_out=1.0),
    ), frames=80, two_person=True, gap=1.3),
    56: ActionSpec((  # giving something to other person
        _s("hand_to", "right", anchor="between", at=(0.1, 0.65)),
        _partner("hand_to", "right", anchor="between", at=(0.35, 0.9)),
    ), frames=70, two_person=True, gap=1.1),
    57: ActionSpec((  # touch other person's pocket
        _s("step", distance=0.2, at=(0.1, 0.4)),
        _s("hand_to", "right", anchor="partner_pocket", at=(0.25, 0.8), osc=("up", 0.03, 2)),
        _partner("bend", twist=10, at=(0.4, 0.9)),
    ), frames=70, two_person=True, gap=1.0),
    58: ActionSpec((  # handshaking
        _s("hand_to", "right", anchor="between", at=(0.15, 0.85), osc=("up", 0.04, 3)),
        _partner("hand_to", "right", anchor="between", at=(0.15, 0.85), osc=("up", 0.04, 3)),
    ), frames=70, two_person=True, gap=1.0),
    59: ActionSpec((  # walking towards each other
        _s("walk", distance=1.0, at=(0.05, 0.95)),
        _partner("walk", distance=1.0, at=(0.05, 0.95)),
    ), frames=100, two_person=True, gap=3.2),
    60: ActionSpec((  # walking apart from each other: turn round, walk away
        _s("turn", angle=180, at=(0.05, 0.3)),
        _s("walk", distance=1.0, at=(0.25, 0.95)),
        _partner("turn", angle=-180, at=(0.05, 0.3)),
        _partner("walk", distance=1.0, at=(0.25, 0.95)),
    ), frames=100, two_person=True, gap=1.0),
}  # fmt: skip

#: Wrist goals: anchor name -> (frame, (lateral, up, forward) offset in metres). ``lateral`` is
#: positive toward the acting hand's own side; frames are the performer's ``head``, ``chest``
#: (spine shoulder), ``pelvis`` (gravity-aligned, at the spine base), ``ground`` (below the
#: spine base), ``ankle_left`` / ``ankle_right``, the partner's ``partner_*`` frames, and
#: ``between`` (midway between the two chests).
ANCHORS: dict[str, tuple[str, tuple[float, float, float]]] = {
    "mouth": ("head", (0.05, -0.20, 0.12)),
    "eyes": ("head", (0.08, -0.08, 0.13)),
    "face": ("head", (0.06, -0.12, 0.13)),
    "forehead": ("head", (0.05, 0.00, 0.14)),
    "salute": ("head", (0.12, 0.02, 0.08)),
    "head_top": ("head", (0.09, 0.10, 0.00)),
    "head_side": ("head", (0.14, 0.02, -0.02)),
    "ear": ("head", (0.13, -0.12, 0.02)),
    "neck": ("head", (0.06, -0.18, -0.10)),
    "chest": ("chest", (-0.04, -0.14, 0.13)),
    "belly": ("chest", (-0.04, -0.35, 0.14)),
    "back": ("pelvis", (0.05, 0.20, -0.16)),
    "pocket": ("pelvis", (0.17, -0.07, 0.05)),
    "front_chest": ("chest", (0.09, -0.15, 0.30)),
    "book": ("chest", (0.12, -0.22, 0.30)),
    "page_turn": ("chest", (-0.02, -0.18, 0.32)),
    "phone": ("chest", (0.06, -0.24, 0.28)),
    "watch": ("chest", (-0.02, -0.15, 0.28)),
    "desk": ("chest", (0.14, -0.38, 0.30)),
    "desk_pen": ("chest", (0.02, -0.36, 0.35)),
    "keyboard": ("chest", (0.14, -0.36, 0.34)),
    "hands_meet": ("chest", (0.04, -0.20, 0.32)),
    "palms": ("chest", (0.02, -0.12, 0.22)),
    "cross": ("chest", (-0.10, -0.05, 0.30)),
    "clap": ("chest", (0.03, -0.15, 0.34)),
    "lapels": ("chest", (0.05, -0.08, 0.12)),
    "opposite_shoulder": ("chest", (-0.18, 0.00, 0.10)),
    "sleeve_back": ("chest", (0.30, -0.40, -0.30)),
    "front_low": ("pelvis", (0.12, 0.05, 0.35)),
    "overhead": ("chest", (0.22, 0.55, 0.10)),
    "wave": ("chest", (0.32, 0.30, 0.18)),
    "windup": ("chest", (0.30, 0.25, -0.30)),
    "release": ("chest", (0.05, 0.15, 0.65)),
    "chamber": ("chest", (0.12, -0.18, 0.05)),
    "point": ("chest", (0.10, 0.05, 0.70)),
    "thrust": ("chest", (0.02, 0.05, 0.70)),
    "selfie": ("chest", (0.30, 0.30, 0.50)),
    "fan": ("head", (0.10, -0.12, 0.30)),
    "floor": ("ground", (0.15, 0.08, 0.35)),
    "thigh": ("pelvis", (0.10, -0.05, 0.25)),
    "partner_head": ("partner_head", (0.0, -0.05, 0.05)),
    "partner_chest": ("partner_chest", (0.10, -0.12, 0.10)),
    "partner_back": ("partner_chest", (0.14, -0.12, -0.12)),
    "partner_pocket": ("partner_pelvis", (0.17, -0.07, 0.05)),
    "between": ("between", (0.0, -0.35, 0.0)),
}


# ----------------------------------------------------------------------------------------------
# Performer anatomy
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anatomy:
    """Segment lengths of one performer (metres), on the scale of Kinect v2 skeletons."""

    spine_low: float = 0.27
    spine_up: float = 0.21
    neck: float = 0.07
    head: float = 0.13
    shoulder_lateral: float = 0.15
    upper_arm: float = 0.26
    forearm: float = 0.24
    hand: float = 0.07
    hand_tip: float = 0.06
    thumb: float = 0.08
    hip_lateral: float = 0.075
    thigh: float = 0.38
    shank: float = 0.37
    foot: float = 0.11


_SALT_ANATOMY = 0x5EED_A1A7


def performer_anatomy(performer: int, partner: bool = False) -> Anatomy:
    """Deterministic bone lengths of ``performer`` (the same in every file and every seed).

    ``partner`` gives the second person of a two-person action a different body.
    """
    rng = np.random.default_rng([_SALT_ANATOMY, performer, int(partner)])
    scale = rng.uniform(0.9, 1.1)
    base = Anatomy()
    values = {
        name: getattr(base, name) * scale * rng.uniform(0.94, 1.06)
        for name in base.__dataclass_fields__
    }
    return Anatomy(**values)


# ----------------------------------------------------------------------------------------------
# Time envelopes and rotations
# ----------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _local(s: np.ndarray, at: tuple[float, float]) -> np.ndarray:
    """Phase inside the window ``at``: 0 before, 1 after."""
    start, end = at
    return np.clip((s - start) / max(end - start, 1e-6), 0.0, 1.0)


def _window(s: np.ndarray, at: tuple[float, float], ramp: float | None = None) -> np.ndarray:
    """0 -> 1 -> 0 envelope: rises at the window start, holds, falls at its end."""
    start, end = at
    ramp = min(0.15, (end - start) / 3.0) if ramp is None else ramp
    return _smoothstep((s - start) / ramp) * _smoothstep((end - s) / ramp)


def _rise(s: np.ndarray, at: tuple[float, float]) -> np.ndarray:
    """0 -> 1 transition across the window that stays at 1."""
    return _smoothstep(_local(s, at))


def _rot_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(*angle.shape, 3, 3)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(*angle.shape, 3, 3)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(*angle.shape, 3, 3)


def _apply(rotation: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Rotate (T, 3) (or a constant (3,)) vectors by (T, 3, 3) matrices."""
    if vectors.ndim == 1:
        return np.einsum("tij,j->ti", rotation, vectors)
    return np.einsum("tij,tj->ti", rotation, vectors)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


# ----------------------------------------------------------------------------------------------
# One person's motion channels
# ----------------------------------------------------------------------------------------------


@dataclass
class _ArmGoal:
    frame: str
    offset: np.ndarray  # (T, 3) in the frame, lateral sign already applied
    weight: np.ndarray  # (T,)
    side: str


@dataclass
class _Person:
    """Motion channels of one person over T frames (angles in radians)."""

    anatomy: Anatomy
    start: np.ndarray  # (x, z) of the root on the floor
    heading0: float
    num_frames: int
    channels: dict[str, np.ndarray] = field(default_factory=dict)
    arm_goals: list[_ArmGoal] = field(default_factory=list)

    _NAMES = (
        "advance", "heading", "lift", "sway", "anchor_feet",
        "torso_pitch", "torso_roll", "torso_twist", "neck_pitch", "neck_yaw", "neck_roll",
        "hip_flex_left", "hip_abd_left", "knee_left", "ankle_left",
        "hip_flex_right", "hip_abd_right", "knee_right", "ankle_right",
        "elbow_out_left", "elbow_out_right", "wrist_left", "wrist_right",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in self._NAMES:
            self.channels[name] = np.zeros(self.num_frames)
        self.channels["heading"] += self.heading0
        for side in SIDES:
            self.channels[f"swing_{side}"] = np.zeros((self.num_frames, 3))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.channels[name]


@dataclass
class _Context:
    s: np.ndarray  # action phase per frame, 0..1 (already reversed for reversed actions)
    amp: float
    rng: np.random.Generator


def _sides(side: str) -> tuple[str, ...]:
    if side == "both":
        return SIDES
    if side in SIDES:
        return (side,)
    raise ValueError(f"primitive needs side 'left', 'right' or 'both', got {side!r}")


def _deg(value: float) -> float:
    return float(np.deg2rad(value))


def _anchor_goal(
    person: _Person,
    side: str,
    anchor: str,
    weight: np.ndarray,
    ctx: _Context,
    *,
    osc: tuple[str, float, float] | None = None,
    opposed: bool = False,
    jitter: float = 0.02,
) -> None:
    frame, (lateral, up, forward) = ANCHORS[anchor]
    sign = _SIDE_SIGN[side]
    if frame.startswith("partner_"):
        sign = -sign  # the partner faces us: our right is their left
    base = np.array([lateral * sign, up, forward]) + ctx.rng.normal(0.0, jitter, 3)
    offset = np.broadcast_to(base, (person.num_frames, 3)).copy()
    if osc is not None:
        axis, amplitude, cycles = osc
        axis_vector = {
            "lateral": np.array([sign, 0.0, 0.0]),
            "up": np.array([0.0, 1.0, 0.0]),
            "forward": np.array([0.0, 0.0, 1.0]),
        }[axis]
        if opposed and side == "right":
            axis_vector = -axis_vector
        wave = np.sin(2.0 * np.pi * cycles * _weight_clock(weight))
        offset += (amplitude * ctx.amp * wave)[:, None] * axis_vector
    person.arm_goals.append(_ArmGoal(frame, offset, weight, side))


def _weight_clock(weight: np.ndarray) -> np.ndarray:
    """Normalised time spent inside an envelope so far (0..1), the clock of oscillations."""
    cumulative = np.cumsum(weight > 0.5)
    return cumulative / max(int(cumulative[-1]), 1)


# ---- primitives: each writes into one person's channels ----------------------------------


def _p_hand_to(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    for one in _sides(side):
        _anchor_goal(
            person, one, p["anchor"], weight, ctx, osc=p.get("osc"), opposed=p.get("opposed", False)
        )
        if "elbow_out" in p:
            person[f"elbow_out_{one}"][:] += p["elbow_out"] * weight


def _p_arm_swing(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    at = p["at"]
    start, end = at
    span = end - start
    style = p["style"]
    for one in _sides(side):
        if style == "overhand":  # throw: wind up behind the shoulder, release forward fast
            windup = (start, start + 0.55 * span)
            _anchor_goal(person, one, "windup", _window(ctx.s, windup), ctx)
            release = (start + 0.45 * span, end)
            _anchor_goal(person, one, "release", _window(ctx.s, release, ramp=0.1), ctx)
            person["torso_twist"][:] += (
                _deg(25 * ctx.amp)
                * _SIDE_SIGN[one]
                * (_window(ctx.s, windup) - _window(ctx.s, release))
            )
        elif style == "thrust":  # punch: chamber at the chest, strike toward the target
            _anchor_goal(person, one, "chamber", _window(ctx.s, (start, start + 0.5 * span)), ctx)
            strike = (start + 0.35 * span, start + 0.8 * span)
            target = p.get("target", "thrust")
            _anchor_goal(person, one, target, _window(ctx.s, strike, ramp=0.08), ctx)
            person["torso_twist"][:] -= (
                _deg(15 * ctx.amp) * _SIDE_SIGN[one] * _window(ctx.s, strike)
            )
        elif style == "extend":  # point: straight arm toward the target
            target = p.get("target", "point")
            _anchor_goal(person, one, target, _window(ctx.s, at), ctx)
        elif style == "wave":  # raised hand swinging side to side
            osc = ("lateral", 0.14, p.get("cycles", 4))
            _anchor_goal(person, one, "wave", _window(ctx.s, at), ctx, osc=osc)
        else:
            raise ValueError(f"unknown arm_swing style {style!r}")


def _p_clap(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    clock = _weight_clock(weight)
    opening = 0.5 - 0.5 * np.cos(2.0 * np.pi * p.get("cycles", 5) * clock)  # 0 = hands meet
    for one in _sides(side):
        _anchor_goal(person, one, "clap", weight, ctx, jitter=0.01)
        person.arm_goals[-1].offset[:, 0] += _SIDE_SIGN[one] * 0.14 * ctx.amp * opening


def _p_reach_down(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    person["torso_pitch"][:] += _deg(55 * ctx.amp) * weight
    person["neck_pitch"][:] += _deg(15) * weight
    _squat(person, _deg(45 * ctx.amp) * weight)
    for one in _sides(side):
        _anchor_goal(person, one, "floor", weight, ctx)


def _p_reach_foot(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    foot = p["foot"]
    person[f"hip_flex_{foot}"][:] += _deg(65 * ctx.amp) * weight
    person[f"knee_{foot}"][:] += _deg(90) * weight
    person["torso_pitch"][:] += _deg(40 * ctx.amp) * weight
    person["neck_pitch"][:] += _deg(15) * weight
    for one in _sides(side):
        _anchor_goal(person, one, "floor", weight, ctx, osc=p.get("osc"))
        goal = person.arm_goals[-1]
        goal.frame = f"ankle_{foot}"
        goal.offset[:, 0] = goal.offset[:, 0] * 0.4  # hands either side of the shoe
        goal.offset[:, 1] -= 0.02
        goal.offset[:, 2] -= 0.30


def _squat(person: _Person, depth: np.ndarray) -> None:
    for side in SIDES:
        person[f"hip_flex_{side}"][:] += depth
        person[f"knee_{side}"][:] += 2.0 * depth
        person[f"ankle_{side}"][:] += depth
    person["anchor_feet"][:] = np.maximum(person["anchor_feet"], np.clip(depth * 10, 0, 1))


def _p_squat(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    _squat(person, _deg(p["depth"] * ctx.amp) * _window(ctx.s, p["at"]))


def _p_sit(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    seated = _rise(ctx.s, p["at"])
    for one in SIDES:
        person[f"hip_flex_{one}"][:] += _deg(85) * seated
        person[f"knee_{one}"][:] += _deg(85) * seated
        person[f"hip_abd_{one}"][:] += _deg(6) * seated
    person["anchor_feet"][:] = 1.0
    person["torso_pitch"][:] += _deg(30 * ctx.amp) * np.sin(np.pi * seated)  # lean to sit
    for one in SIDES:  # hands push on the thighs while moving, rest on them when seated
        _anchor_goal(person, one, "thigh", seated, ctx)


def _p_kick(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    for one in _sides(side):
        u = _local(ctx.s, p["at"])
        lift = np.sin(np.pi * u) ** 1.5
        extend = np.exp(-(((u - 0.55) / 0.12) ** 2))
        person[f"hip_flex_{one}"][:] += _deg(75 * ctx.amp) * lift
        person[f"knee_{one}"][:] += _deg(80) * np.sin(np.pi * u) * (1.0 - 0.85 * extend)
        person["torso_pitch"][:] -= _deg(12) * lift
        for arm in SIDES:  # arms open for balance
            person[f"swing_{arm}"][:] += (lift * 0.12)[:, None] * [_SIDE_SIGN[arm], 0.1, 0.0]


def _p_hop(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    bounce = np.abs(np.sin(np.pi * p["cycles"] * _weight_clock(weight))) * weight
    for one in _sides(side):
        person[f"knee_{one}"][:] += _deg(75) * weight
        person[f"hip_flex_{one}"][:] += _deg(20) * weight
        other = "left" if one == "right" else "right"
        person[f"knee_{other}"][:] += _deg(25) * (weight - bounce)
        person[f"ankle_{other}"][:] += _deg(10) * (weight - bounce)
    person["lift"][:] += 0.12 * ctx.amp * bounce
    for arm in SIDES:
        person[f"swing_{arm}"][:] += (weight * 0.1)[:, None] * [_SIDE_SIGN[arm], 0.15, 0.1]


def _p_jump(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    u = _local(ctx.s, p["at"])
    cycles = p["cycles"]
    phase = (u * cycles) % 1.0
    active = (u > 0) & (u < 1)
    # each cycle: crouch, flight, landing crouch
    crouch = np.exp(-(((phase - 0.2) / 0.1) ** 2)) + np.exp(-(((phase - 0.8) / 0.1) ** 2))
    flight = np.clip(np.sin(np.pi * (phase - 0.3) / 0.4), 0.0, None) * (phase > 0.3) * (phase < 0.7)
    crouch, flight = crouch * active, flight * active
    _squat(person, _deg(35) * crouch)
    person["torso_pitch"][:] += _deg(15) * crouch
    person["lift"][:] += p["height"] * ctx.amp * flight
    for arm in SIDES:
        person[f"swing_{arm}"][:] += (flight * 0.35 - crouch * 0.1)[:, None] * [0.05, 1.0, 0.6]


def _p_walk(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    at = p["at"]
    progress = _local(ctx.s, at)
    weight = _window(ctx.s, at, ramp=0.05)
    steps = max(2.0, round(p["distance"] / 0.35))
    gait = np.sin(np.pi * steps * progress)  # one stride = two steps
    person["advance"][:] += p["distance"] * ctx.amp * progress
    for one, sign in (("left", 1.0), ("right", -1.0)):
        swing = sign * gait * weight
        person[f"hip_flex_{one}"][:] += _deg(25) * swing
        person[f"knee_{one}"][:] += _deg(40) * np.clip(swing, 0.0, None)
        person[f"swing_{one}"][:, 2] -= 0.15 * swing  # arms swing against the legs
    person["torso_twist"][:] += _deg(6) * gait * weight


def _p_stagger(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    _p_walk(person, side, p, ctx)
    weight = _window(ctx.s, p["at"])
    progress = _local(ctx.s, p["at"])
    freqs = ctx.rng.uniform(1.0, 2.5, 2)
    phases = ctx.rng.uniform(0, 2 * np.pi, 2)
    wobble = np.sin(2 * np.pi * freqs[0] * progress + phases[0]) + 0.5 * np.sin(
        2 * np.pi * freqs[1] * progress + phases[1]
    )
    person["sway"][:] += 0.15 * ctx.amp * wobble * weight
    person["torso_roll"][:] += _deg(12 * ctx.amp) * wobble * weight
    person["heading"][:] += _deg(12) * wobble * weight
    for arm in SIDES:
        person[f"swing_{arm}"][:] += (weight * 0.18)[:, None] * [_SIDE_SIGN[arm], 0.2, 0.0]
        person[f"elbow_out_{arm}"][:] += weight


def _p_fall(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    start, end = p["at"]
    knees = _rise(ctx.s, (start, start + 0.5 * (end - start)))
    down = _rise(ctx.s, (start + 0.35 * (end - start), end))
    for one in SIDES:
        person[f"knee_{one}"][:] += _deg(95) * knees
        person[f"hip_flex_{one}"][:] += _deg(15) * knees - _deg(10) * down
    person["torso_pitch"][:] += _deg(70 * ctx.amp) * down
    person["torso_roll"][:] += _deg(10) * down
    for one in SIDES:
        _anchor_goal(person, one, "floor", down, ctx)
        person.arm_goals[-1].offset[:, 2] += 0.35


def _p_step(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    at = p["at"]
    person["advance"][:] += p["distance"] * ctx.amp * _rise(ctx.s, at)
    bump = np.sin(np.pi * _local(ctx.s, at))
    leg = "right" if p["distance"] >= 0 else "left"
    person[f"hip_flex_{leg}"][:] += _deg(20) * np.sign(p["distance"]) * bump
    person[f"knee_{leg}"][:] += _deg(25) * bump


def _p_turn(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    person["heading"][:] += _deg(p["angle"]) * _rise(ctx.s, p["at"])
    bump = np.sin(np.pi * _local(ctx.s, p["at"]))
    person["hip_flex_left"][:] += _deg(15) * bump
    person["knee_left"][:] += _deg(20) * bump


def _p_bend(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    for key in ("pitch", "roll", "twist"):
        if key in p:
            person[f"torso_{key}"][:] += _deg(p[key] * ctx.amp) * weight


def _p_head(person: _Person, side: str, p: dict[str, Any], ctx: _Context) -> None:
    weight = _window(ctx.s, p["at"])
    shape = weight
    if "cycles" in p:
        shape = np.sin(2 * np.pi * p["cycles"] * _weight_clock(weight)) * weight
    for key in ("pitch", "yaw", "roll"):
        if key in p:
            person[f"neck_{key}"][:] += _deg(p[key] * ctx.amp) * shape


Primitive = Callable[[_Person, str, dict[str, Any], _Context], None]

PRIMITIVES: dict[str, Primitive] = {
    "hand_to": _p_hand_to,
    "arm_swing": _p_arm_swing,
    "clap": _p_clap,
    "reach_down": _p_reach_down,
    "reach_foot": _p_reach_foot,
    "squat": _p_squat,
    "sit": _p_sit,
    "kick": _p_kick,
    "hop": _p_hop,
    "jump": _p_jump,
    "walk": _p_walk,
    "stagger": _p_stagger,
    "fall": _p_fall,
    "step": _p_step,
    "turn": _p_turn,
    "bend": _p_bend,
    "head": _p_head,
}


# ----------------------------------------------------------------------------------------------
# Kinematics
# ----------------------------------------------------------------------------------------------


@dataclass
class _Pose:
    """World positions (T, 25, 3) plus the frames needed for anchors and orientations."""

    joints: np.ndarray
    frames: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (origin (T,3), rotation (T,3,3))
    bone_refs: dict[int, np.ndarray] = field(default_factory=dict)  # joint -> (T,3) reference


def _trunk(person: _Person) -> _Pose:
    """Spine, head and legs by forward kinematics; the root rests on the floor."""
    a, c, t = person.anatomy, person.channels, person.num_frames
    joints = np.zeros((t, NUM_JOINTS, 3))
    heading = _rot_y(c["heading"])
    half_bend = (
        _rot_y(c["torso_twist"] / 2) @ _rot_z(c["torso_roll"] / 2) @ _rot_x(c["torso_pitch"] / 2)
    )
    lower = heading @ half_bend
    chest = lower @ half_bend
    head_rot = chest @ _rot_y(c["neck_yaw"]) @ _rot_z(c["neck_roll"]) @ _rot_x(c["neck_pitch"])

    joints[:, SPINE_MID] = _apply(lower, np.array([0.0, a.spine_low, 0.0]))
    joints[:, SPINE_SHOULDER] = joints[:, SPINE_MID] + _apply(chest, np.array([0, a.spine_up, 0]))
    joints[:, NECK] = joints[:, SPINE_SHOULDER] + _apply(chest, np.array([0.0, a.neck, 0.0]))
    joints[:, HEAD] = joints[:, NECK] + _apply(head_rot, np.array([0.0, a.head, 0.01]))
    legs = {}
    for side, hip, knee, ankle, foot in (
        ("left", HIP_L, KNEE_L, ANKLE_L, FOOT_L),
        ("right", HIP_R, KNEE_R, ANKLE_R, FOOT_R),
    ):
        sign = _SIDE_SIGN[side]
        thigh = (
            heading
            @ _rot_z(sign * (c[f"hip_abd_{side}"] + _deg(3)))
            @ _rot_x(-c[f"hip_flex_{side}"])
        )
        shank = thigh @ _rot_x(c[f"knee_{side}"] + _deg(3))
        foot_rot = shank @ _rot_x(-c[f"ankle_{side}"])
        joints[:, hip] = _apply(heading, np.array([sign * a.hip_lateral, -0.02, 0.0]))
        joints[:, knee] = joints[:, hip] + _apply(thigh, np.array([0.0, -a.thigh, 0.0]))
        joints[:, ankle] = joints[:, knee] + _apply(shank, np.array([0.0, -a.shank, 0.0]))
        joints[:, foot] = joints[:, ankle] + _apply(foot_rot, np.array([0.0, -0.45, 0.9]) * a.foot)
        legs[side] = (thigh, shank, foot_rot)

    # Feet stay where they are while sitting or squatting: shift the root back instead.
    ankle_mid = (joints[:, ANKLE_L] + joints[:, ANKLE_R]) / 2
    shift = -c["anchor_feet"][:, None] * ankle_mid * np.array([1.0, 0.0, 1.0])
    # Root path on the floor: advance along the heading, sway to the side, start position.
    forward = np.stack([np.sin(c["heading"]), np.cos(c["heading"])], axis=-1)
    lateral = np.stack([np.cos(c["heading"]), -np.sin(c["heading"])], axis=-1)
    step = np.diff(c["advance"], prepend=c["advance"][0])[:, None] * forward
    path = person.start + np.cumsum(step, axis=0) + c["sway"][:, None] * lateral
    # The lowest trunk/leg joint touches the floor, then jumps lift everything.
    trunk_joints = [j for j in range(NUM_JOINTS) if j not in _ARM_JOINTS]
    height = _GROUND_CLEARANCE - joints[:, trunk_joints, 1].min(axis=1) + c["lift"]
    root = np.stack([path[:, 0], height, path[:, 1]], axis=-1) + shift
    joints[:, [j for j in range(NUM_JOINTS) if j not in _ARM_JOINTS]] += root[:, None, :]

    ground = root * np.array([1.0, 0.0, 1.0])
    frames = {
        "chest": (joints[:, SPINE_SHOULDER], chest),
        "head": (joints[:, HEAD], head_rot),
        "pelvis": (joints[:, SPINE_BASE], heading),
        "ground": (ground, heading),
        "ankle_left": (joints[:, ANKLE_L], heading),
        "ankle_right": (joints[:, ANKLE_R], heading),
    }
    up = np.broadcast_to([0.0, 1.0, 0.0], (t, 3))
    refs = {
        SPINE_BASE: lower[:, :, 2], SPINE_MID: chest[:, :, 2], SPINE_SHOULDER: chest[:, :, 2],
        NECK: head_rot[:, :, 2],
        HIP_L: legs["left"][0][:, :, 2], KNEE_L: legs["left"][1][:, :, 2], ANKLE_L: up,
        HIP_R: legs["right"][0][:, :, 2], KNEE_R: legs["right"][1][:, :, 2], ANKLE_R: up,
    }  # fmt: skip
    return _Pose(joints, frames, refs)


_ARM_JOINTS = frozenset(
    {SHOULDER_L, ELBOW_L, WRIST_L, HAND_L, HAND_TIP_L, THUMB_L}
    | {SHOULDER_R, ELBOW_R, WRIST_R, HAND_R, HAND_TIP_R, THUMB_R}
)
_ARM_INDEX = {
    "left": (SHOULDER_L, ELBOW_L, WRIST_L, HAND_L, HAND_TIP_L, THUMB_L),
    "right": (SHOULDER_R, ELBOW_R, WRIST_R, HAND_R, HAND_TIP_R, THUMB_R),
}


def _resolve_frame(name: str, own: _Pose, partner: _Pose | None) -> tuple[np.ndarray, np.ndarray]:
    if name == "between":
        if partner is None:
            raise ValueError("anchor 'between' needs a two-person action")
        origin = (own.frames["chest"][0] + partner.frames["chest"][0]) / 2
        return origin, own.frames["pelvis"][1]
    if name.startswith("partner_"):
        if partner is None:
            raise ValueError(f"anchor frame {name!r} needs a two-person action")
        return partner.frames[name.removeprefix("partner_")]
    return own.frames[name]


def _arms(person: _Person, pose: _Pose, partner: _Pose | None) -> None:
    """Wrist goals blended in order over the hanging rest pose, then two-bone IK per arm."""
    a, c = person.anatomy, person.channels
    chest_origin, chest = pose.frames["chest"]
    _, pelvis = pose.frames["pelvis"]
    reach = a.upper_arm + a.forearm
    for side in SIDES:
        sign = _SIDE_SIGN[side]
        shoulder_j, elbow_j, wrist_j, hand_j, tip_j, thumb_j = _ARM_INDEX[side]
        shoulder = chest_origin + _apply(chest, np.array([sign * a.shoulder_lateral, -0.03, -0.01]))
        rest = np.array([sign * 0.05, -0.97 * reach, 0.03]) + c[f"swing_{side}"]
        target = shoulder + _apply(pelvis, rest)
        for goal in person.arm_goals:
            if goal.side != side:
                continue
            origin, rotation = _resolve_frame(goal.frame, pose, partner)
            goal_position = origin + _apply(rotation, goal.offset)
            target += goal.weight[:, None] * (goal_position - target)

        pole = _apply(chest, np.array([sign * 0.5, -1.0, -0.35]))
        pole += _apply(chest, np.array([sign * 1.5, 0.5, 0.0])) * c[f"elbow_out_{side}"][:, None]
        elbow, wrist = _two_bone_ik(shoulder, target, a.upper_arm, a.forearm, pole)
        forearm = _unit(wrist - elbow)
        normal = _unit(pole - np.sum(pole * forearm, axis=-1, keepdims=True) * forearm)
        bend = _deg(10) + c[f"wrist_{side}"]
        hand_dir = np.cos(bend)[:, None] * forearm + np.sin(bend)[:, None] * normal
        palm = -np.sin(bend)[:, None] * forearm + np.cos(bend)[:, None] * normal
        thumb_side = sign * np.cross(forearm, normal)
        joints = pose.joints
        joints[:, shoulder_j] = shoulder
        joints[:, elbow_j] = elbow
        joints[:, wrist_j] = wrist
        joints[:, hand_j] = wrist + a.hand * hand_dir
        curl = _deg(20)
        joints[:, tip_j] = joints[:, hand_j] + a.hand_tip * (
            np.cos(curl) * hand_dir + np.sin(curl) * palm
        )
        joints[:, thumb_j] = wrist + a.thumb * _unit(0.75 * forearm + 0.66 * thumb_side)
        pose.bone_refs.update({shoulder_j: normal, elbow_j: normal, wrist_j: palm, hand_j: palm})


def _two_bone_ik(
    root: np.ndarray, target: np.ndarray, upper: float, lower: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and wrist reaching ``target`` (as far as the arm allows), elbow toward ``pole``."""
    to_target = target - root
    distance = np.linalg.norm(to_target, axis=-1)
    direction = to_target / np.maximum(distance, 1e-9)[:, None]
    reach = np.clip(distance, abs(upper - lower) + 1e-3, (upper + lower) * 0.999)
    cos_shoulder = (upper**2 + reach**2 - lower**2) / (2 * upper * reach)
    sin_shoulder = np.sqrt(np.clip(1.0 - cos_shoulder**2, 0.0, 1.0))
    bend_dir = pole - np.sum(pole * direction, axis=-1, keepdims=True) * direction
    bend_dir = _unit(bend_dir)
    elbow = root + upper * (cos_shoulder[:, None] * direction + sin_shoulder[:, None] * bend_dir)
    wrist = root + reach[:, None] * direction
    return elbow, wrist


_BONE_CHILD = {
    SPINE_BASE: SPINE_MID, SPINE_MID: SPINE_SHOULDER, SPINE_SHOULDER: NECK, NECK: HEAD,
    SHOULDER_L: ELBOW_L, ELBOW_L: WRIST_L, WRIST_L: HAND_L, HAND_L: HAND_TIP_L,
    SHOULDER_R: ELBOW_R, ELBOW_R: WRIST_R, WRIST_R: HAND_R, HAND_R: HAND_TIP_R,
    HIP_L: KNEE_L, KNEE_L: ANKLE_L, ANKLE_L: FOOT_L,
    HIP_R: KNEE_R, KNEE_R: ANKLE_R, ANKLE_R: FOOT_R,
}  # fmt: skip


_BONE_JOINTS = np.array(list(_BONE_CHILD))
_BONE_CHILDREN = np.array(list(_BONE_CHILD.values()))


def _orientations(joints: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Kinect-style joint orientations (w, x, y, z): y along the bone to the child joint.

    ``joints`` is (..., 25, 3) and ``refs`` (..., 25, 3) holds, per joint, a direction that
    fixes the roll about the bone (the segment's forward or the arm's bending plane). Leaf
    joints get all zeros, as Kinect reports them.
    """
    y_axis = _unit(joints[..., _BONE_CHILDREN, :] - joints[..., _BONE_JOINTS, :])
    ref = refs[..., _BONE_JOINTS, :]
    z_axis = ref - np.sum(ref * y_axis, axis=-1, keepdims=True) * y_axis
    degenerate = np.linalg.norm(z_axis, axis=-1) < 1e-3
    if degenerate.any():  # reference along the bone: any perpendicular will do
        fallback = np.cross(y_axis, np.roll(y_axis, 1, axis=-1) + [0.0, 0.0, 1.0])
        z_axis[degenerate] = fallback[degenerate]
    z_axis = _unit(z_axis)
    x_axis = np.cross(y_axis, z_axis)
    quats = np.zeros((*joints.shape[:-1], 4))
    quats[..., _BONE_JOINTS, :] = _matrix_to_quaternion(np.stack([x_axis, y_axis, z_axis], -1))
    return quats


def _matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (w, x, y, z), w >= 0."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2],
                      m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22,
                      m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                      1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
            np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                      m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )  # fmt: skip
    # Pick the numerically largest diagonal term (Shepperd's method).
    best = np.argmax(np.stack([m00 + m11 + m22, m00, m11, m22], axis=-1), axis=-1)
    quat = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    quat = _unit(quat)
    return np.where(quat[..., :1] < 0, -quat, quat)


# ----------------------------------------------------------------------------------------------
# One sample
# ----------------------------------------------------------------------------------------------


@dataclass
class SyntheticSample:
    """One generated sample in camera space, everything needed for a ``.skeleton`` file."""

    xyz: np.ndarray  # (T, M, 25, 3) float64, camera space, metres
    orientations: np.ndarray  # (T, M, 25, 4) (w, x, y, z)
    lean: np.ndarray  # (T, M, 2) leanX, leanY in [-1, 1]
    body_ids: np.ndarray  # (M,) int64

    def to_skeleton_file(self) -> SkeletonFile:
        """Every field of the NTU text format, pixel coordinates from a Kinect-like projection."""
        t, m = self.xyz.shape[:2]
        xyz = self.xyz.reshape(t * m, NUM_JOINTS, 3)
        x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
        depth_x = _DEPTH_CX + _DEPTH_F * x / z
        depth_y = _DEPTH_CY - _DEPTH_F * y / z
        color_x = _COLOR_CX + _COLOR_F * (x + _COLOR_BASELINE) / z
        color_y = _COLOR_CY - _COLOR_F * y / z
        tracking = np.full_like(x, 2.0)
        joints = np.concatenate(
            [
                xyz,
                np.stack([depth_x, depth_y, color_x, color_y], axis=-1),
                self.orientations.reshape(t * m, NUM_JOINTS, 4),
                tracking[..., None],
            ],
            axis=-1,
        )
        info = np.zeros((t * m, 9))
        info[:, 1:5] = 1.0  # hand confidences / states as in the real files
        info[:, 6:8] = self.lean.reshape(t * m, 2)
        info[:, 8] = 2.0  # tracked
        return SkeletonFile(
            num_frames=t,
            bodies_per_frame=np.full(t, m, dtype=np.int64),
            body_ids=np.tile(self.body_ids.astype(np.int64), t),
            body_info=info,
            body_frame=np.repeat(np.arange(t, dtype=np.int64), m),
            joints=joints.astype(np.float32),
        )


def _validate_ids(action: int, performer: int, camera: int, replication: int) -> None:
    if not 1 <= action <= NUM_ACTIONS:
        raise ValueError(f"action must be in 1..{NUM_ACTIONS} (1-based), got {action}")
    if not 1 <= performer <= 999:
        raise ValueError(f"performer must be in 1..999, got {performer}")
    if camera not in CAMERA_YAW_DEG:
        raise ValueError(f"camera must be one of {sorted(CAMERA_YAW_DEG)}, got {camera}")
    if not 1 <= replication <= 999:
        raise ValueError(f"replication must be in 1..999, got {replication}")


def _steps_of(action: int) -> tuple[tuple[Step, ...], bool]:
    spec = ACTIONS[action]
    if spec.reverse_of is not None:
        return ACTIONS[spec.reverse_of].steps, True
    return spec.steps, False


def _timeline(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Action phase per frame: idle before/after, speed and time-warp variation."""
    speed = rng.uniform(0.75, 1.3)
    active = int(round(frames / speed))
    before = int(rng.integers(0, 13))
    after = int(rng.integers(0, 11))
    if rng.random() < 0.25:  # occasionally a longer idle stretch at one end
        extra = int(rng.integers(8, 21))
        if rng.random() < 0.5:
            before += extra
        else:
            after += extra
    total = active + before + after
    if total > MAX_FRAMES:
        active = min(active, MAX_FRAMES - 10)
        before = min(before, (MAX_FRAMES - active) // 2)
        after = min(after, MAX_FRAMES - active - before)
    elif total < MIN_FRAMES:
        after += MIN_FRAMES - total
    t = np.arange(active + before + after)
    phase = np.clip((t - before) / max(active - 1, 1), 0.0, 1.0)
    warp = rng.uniform(0.85, 1.15)
    return phase**warp


def _simulate(
    action: int, performer: int, camera: int, rng: np.random.Generator, noise: bool = True
) -> SyntheticSample:
    spec = ACTIONS[action]
    steps, reversed_time = _steps_of(action)
    phase = _timeline(rng, spec.frames)
    if reversed_time:
        phase = 1.0 - phase
    num_frames = phase.shape[0]
    amp = rng.uniform(0.8, 1.2)

    people = [
        _Person(performer_anatomy(performer), np.zeros(2), 0.0, num_frames),
    ]
    if spec.two_person:
        gap = spec.gap * rng.uniform(0.9, 1.1)
        people.append(
            _Person(
                performer_anatomy(performer, partner=True), np.array([0.0, gap]), np.pi, num_frames
            )
        )
    for person in people:
        _idle(person, rng)
    for step in steps:
        who = 1 if step.params.get("who") == "partner" else 0
        if step.primitive not in PRIMITIVES:
            raise ValueError(f"action {action}: unknown primitive {step.primitive!r}")
        params = {k: v for k, v in step.params.items() if k != "who"}
        PRIMITIVES[step.primitive](people[who], step.side, params, _Context(phase, amp, rng))

    poses = [_trunk(person) for person in people]
    for index, person in enumerate(people):
        partner = poses[1 - index] if len(poses) == 2 else None
        _arms(person, poses[index], partner)

    world = np.stack([pose.joints for pose in poses], axis=1)  # (T, M, 25, 3)
    refs = np.zeros_like(world)
    for index, pose in enumerate(poses):
        for joint, ref in pose.bone_refs.items():
            refs[:, index, joint] = ref
    floor = np.array([1.0, 0.0, 1.0])
    center = world[0, :, SPINE_BASE].mean(axis=0) * floor
    extent = np.linalg.norm((world[:, :, SPINE_BASE] - center) * floor, axis=-1).max()
    rotation, position = _camera(rng, camera, spec.two_person, center, extent)
    xyz = (world - position) @ rotation  # rows: coordinates along the camera axes
    quats = _orientations(xyz, refs @ rotation)
    if noise:
        xyz = xyz + rng.normal(0.0, rng.uniform(0.002, 0.01), xyz.shape)
    lean = np.stack(
        [np.stack([np.sin(p["torso_roll"]), np.sin(p["torso_pitch"])], axis=-1) for p in people],
        axis=1,
    )
    body_ids = _BODY_ID_BASE + rng.choice(100000, size=len(people), replace=False)
    return SyntheticSample(xyz, quats, np.clip(lean, -1, 1).round(7), body_ids.astype(np.int64))


def _idle(person: _Person, rng: np.random.Generator) -> None:
    """Breathing sway and a personal resting stance, so idle frames are not frozen."""
    t = np.arange(person.num_frames)
    period = rng.uniform(40, 90)
    person["torso_pitch"][:] += _deg(rng.uniform(-3, 5)) + _deg(1.5) * np.sin(
        2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)
    )
    person["neck_pitch"][:] += _deg(rng.uniform(-5, 8))
    for side in SIDES:
        person[f"hip_abd_{side}"][:] += _deg(rng.uniform(0, 6))
        person[f"swing_{side}"][:] += rng.normal(0.0, 0.02, 3)


def _camera(
    rng: np.random.Generator, camera: int, two_person: bool, center: np.ndarray, extent: float
) -> tuple[np.ndarray, np.ndarray]:
    """Kinect pose in the scene: columns of ``rotation`` are the camera axes, plus its position.

    Kinect camera space: x to the sensor's left, y up, z away from the sensor. Two people are
    seen side-on (they face each other across the view), like in NTU. The camera backs off by
    ``extent`` (how far anyone strays from ``center``) so walking people stay in the picture.
    """
    yaw = np.deg2rad(CAMERA_YAW_DEG[camera] + rng.normal(0.0, 3.0) + (90.0 if two_person else 0.0))
    distance = rng.uniform(2.8, 3.6) + extent
    height = rng.uniform(0.7, 1.0)
    tilt = np.deg2rad(rng.uniform(0.0, 5.0))
    offset = rng.uniform(-0.3, 0.3)
    look = -np.array([np.sin(yaw), 0.0, np.cos(yaw)])  # from the camera toward the scene
    side = np.cross([0.0, 1.0, 0.0], look)
    position = center - distance * look + offset * side + np.array([0.0, height, 0.0])
    z_axis = np.cos(tilt) * look - np.sin(tilt) * np.array([0.0, 1.0, 0.0])
    y_axis = np.cross(z_axis, side)
    x_axis = np.cross(y_axis, z_axis)
    return np.stack([x_axis, y_axis, z_axis], axis=1), position


def generate_sample(
    action: int,
    performer: int,
    camera: int,
    replication: int,
    rng_seed: int | Sequence[int] | np.random.SeedSequence,
    *,
    noise: bool = True,
) -> np.ndarray:
    """Camera-space joints ``(T, M, 25, 3)`` float64 of one synthetic sample.

    ``action`` is 1-based (``A001`` = 1); ``M`` is 2 for the two-person actions 50..60 and 1
    otherwise, actor first. ``performer`` fixes the body (bone lengths), ``camera`` the view;
    all other variation (speed, amplitude, timing, camera placement, noise) comes from
    ``rng_seed`` (:func:`generate_dataset` uses :func:`sample_seed`, which includes
    ``replication``). The same arguments give the same array. ``noise=False`` leaves out the
    Gaussian joint jitter (exactly rigid bones).

    Raises:
        ValueError: an id is out of range.
    """
    _validate_ids(action, performer, camera, replication)
    return _simulate(action, performer, camera, np.random.default_rng(rng_seed), noise).xyz


def generate_skeleton_file(
    action: int,
    performer: int,
    camera: int,
    replication: int,
    rng_seed: int | Sequence[int] | np.random.SeedSequence,
) -> SkeletonFile:
    """One sample as a complete :class:`SkeletonFile` (every field of the NTU format)."""
    _validate_ids(action, performer, camera, replication)
    rng = np.random.default_rng(rng_seed)
    return _simulate(action, performer, camera, rng).to_skeleton_file()


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


def plan_samples(
    samples_per_action: int,
    num_performers: int,
    cameras: Sequence[int],
    actions: Sequence[int],
) -> list[SampleName]:
    """Which (camera, performer, replication) each action gets.

    Cameras cycle fastest and performers rotate with the action, so every action is seen by
    every camera and (with enough samples) every performer: both the cross-subject and the
    cross-view protocols then have training and test samples of each action.
    """
    plan = []
    for action in actions:
        used: dict[tuple[int, int], int] = {}
        for k in range(samples_per_action):
            camera = cameras[k % len(cameras)]
            performer = 1 + (k + 3 * (action - 1)) % num_performers
            replication = used.get((camera, performer), 0) + 1
            used[(camera, performer)] = replication
            plan.append(SampleName(1, camera, performer, replication, action))
    return plan


def sample_seed(seed: int, name: SampleName) -> list[int]:
    """The ``rng_seed`` of one file of :func:`generate_dataset`: the dataset seed and its name."""
    return [seed, name.action, name.performer, name.camera, name.replication]


def _write_chunk(out_dir: Path, seed: int, names: Sequence[SampleName]) -> list[Path]:
    paths = []
    for name in names:
        skeleton = generate_skeleton_file(
            name.action, name.performer, name.camera, name.replication, sample_seed(seed, name)
        )
        path = out_dir / f"{name}.skeleton"
        write_skeleton(path, skeleton, newline="\n")
        paths.append(path)
    return paths


def generate_dataset(
    out_dir: str | PathLike[str],
    samples_per_action: int = DEFAULT_SAMPLES_PER_ACTION,
    *,
    seed: int = 0,
    num_performers: int = 10,
    cameras: tuple[int, ...] = (1, 2, 3),
    actions: Sequence[int] | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Write ``S001C{cam}P{performer}R{rep}A{action}.skeleton`` files into ``out_dir``.

    ``actions`` are 1-based NTU-60 ids (default all 60). Each file depends only on ``seed`` and
    its own name, so a subset of actions, or any number of ``workers`` (processes; ``None`` =
    CPU count, ``1`` = in this process), gives byte-identical files. Returns the written paths
    in plan order (action by action).

    Raises:
        ValueError: a parameter is out of range (named in the message).
    """
    actions = list(range(1, NUM_ACTIONS + 1)) if actions is None else [int(a) for a in actions]
    if samples_per_action < 1:
        raise ValueError(f"samples_per_action must be >= 1, got {samples_per_action}")
    if not 1 <= num_performers <= 999:
        raise ValueError(f"num_performers must be in 1..999, got {num_performers}")
    valid_cameras = set(CAMERA_YAW_DEG)
    if not cameras or not set(cameras) <= valid_cameras or len(set(cameras)) != len(cameras):
        raise ValueError(f"cameras must be distinct values from {sorted(valid_cameras)}, "
                         f"got {cameras!r}")  # fmt: skip
    bad = [a for a in actions if not 1 <= a <= NUM_ACTIONS]
    if bad or not actions or len(set(actions)) != len(actions):
        raise ValueError(
            f"actions must be distinct 1-based ids in 1..{NUM_ACTIONS}, got {actions!r}"
        )
    per_pair = -(-samples_per_action // (num_performers * len(cameras)))
    if per_pair > 999:
        raise ValueError(
            f"samples_per_action={samples_per_action} needs {per_pair} replications per "
            f"performer and camera; NTU names allow 999"
        )
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_samples(samples_per_action, num_performers, tuple(cameras), actions)
    logger.info(
        "Generating %d synthetic NTU samples (%d actions x %d, seed %d) into %s",
        len(plan), len(actions), samples_per_action, seed, out,
    )  # fmt: skip
    started = time.perf_counter()
    chunk_size = max(1, min(32, len(plan) // (4 * workers)))
    chunks = [plan[i : i + chunk_size] for i in range(0, len(plan), chunk_size)]
    paths: list[Path] = []
    with tqdm(total=len(plan), desc="synthetic NTU", unit="file", mininterval=1.0) as progress:
        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                paths += _write_chunk(out, seed, chunk)
                progress.update(len(chunk))
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
                futures = [pool.submit(_write_chunk, out, seed, chunk) for chunk in chunks]
                for future, chunk in zip(futures, chunks, strict=True):
                    paths += future.result()
                    progress.update(len(chunk))
    logger.info("Wrote %d samples in %.1f s", len(paths), time.perf_counter() - started)
    return paths
