"""Layout adapters (:mod:`pose_zsl.skeleton.adapt`) on the real NTU RGB+D sample files.

The correspondence is checked against its own statement here (the README / module docstring
table, written out below independently of the module) and against the anatomy of real Kinect v2
recordings: a v1 bone must join two joints that move together, shoulders must sit above hips
and so on, which a swapped or shifted joint index breaks.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pose_zsl.skeleton import adapt
from pose_zsl.skeleton.adapt import (
    NTU_TO_KINECT_V1,
    LayoutAdaptationError,
    adapt_array,
    adapt_sequences,
    can_adapt,
    layout_of_joint_count,
)
from pose_zsl.skeleton.layouts import LAYOUT_NAMES, get_layout
from pose_zsl.skeleton.normalise import normalise_sequence
from pose_zsl.skeleton.ntu import load_sample
from pose_zsl.skeleton.store import SequenceStore, samples_frame, sequences_table

NTU, V1 = "ntu-rgb+d", "kinect-v1"
V1_LAYOUT, NTU_LAYOUT = get_layout(V1), get_layout(NTU)
V1_INDEX = {name: i for i, name in enumerate(V1_LAYOUT.joint_names)}

#: Kinect v1 joint -> 1-based NTU joint, as documented (the task's table, typed in by hand).
EXPECTED_NTU_JOINT = {
    "left_shoulder": 5, "right_shoulder": 9, "shoulder_center": 21, "spine": 2,
    "left_hip": 13, "right_hip": 17, "hip_center": 1, "left_elbow": 6, "right_elbow": 10,
    "left_wrist": 7, "right_wrist": 11, "left_hand": 8, "right_hand": 12, "left_knee": 14,
    "right_knee": 18, "left_ankle": 15, "right_ankle": 19, "left_foot": 16, "right_foot": 20,
    "head": 4,
}  # fmt: skip
DROPPED_NTU_JOINTS = {3, 22, 23, 24, 25}  # neck, hand tips, thumbs

#: Largest robust spread (1.4826 x MAD, metres) of a v1 bone's length within a recording,
#: taken as the median over the sample recordings. Kinect v2 tracked joints jitter by about a
#: centimetre from frame to frame, so the distance between two joints of one rigid bone spreads
#: by about sqrt(2) cm; 2 cm leaves that margin. The median over recordings (not every
#: recording) because Kinect v2 loses limbs for whole stretches of some clips (up to 13 cm of
#: spread for a hand in one sample). Measured on these files: every v1 bone's median is at most
#: 1.5 cm; a wrong pairing across a moving limb (left hand - right hand) is near 8 cm.
MAX_BONE_SPREAD_M = 0.02
#: Share of a recording's tracked frames that must show the expected anatomy. Kinect v2
#: mis-tracks a few frames when the subject bends or crosses their legs (A016 "wear a shoe":
#: 5% of frames with a hip above a shoulder); a wrong joint fails in most frames.
MIN_ANATOMY_SHARE = 0.9


@pytest.fixture(scope="module")
def ntu_recordings(skeleton_ntu_samples: Path) -> dict[str, np.ndarray]:
    """Every real NTU sample file as read for training (denoised, up to 2 bodies)."""
    files = sorted(skeleton_ntu_samples.glob("*.skeleton"))
    assert len(files) >= 30, f"expected the NTU sample files in {skeleton_ntu_samples}"
    return {path.stem: load_sample(path) for path in files}


def tracked_bodies(array: np.ndarray) -> list[np.ndarray]:
    """The frames (F, V, C) of each body slot where the body is tracked, as float64."""
    bodies = []
    for body in np.moveaxis(array, 1, 0):
        frames = body[body.any(axis=(1, 2))]
        if len(frames) >= 10:  # too few frames say nothing about frame-to-frame consistency
            bodies.append(frames.astype(np.float64))
    return bodies


def bone_lengths(body: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(body[:, a] - body[:, b], axis=-1)


def robust_spread(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation: the std of Gaussian noise, blind to outlier frames."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


# ---------------------------------------------------------------------------------------------
# the correspondence


def test_correspondence_is_the_documented_table():
    assert list(NTU_TO_KINECT_V1) == list(V1_LAYOUT.joint_names)
    ntu_index = {name: i + 1 for i, name in enumerate(NTU_LAYOUT.joint_names)}
    got = {v1: ntu_index[ntu] for v1, ntu in NTU_TO_KINECT_V1.items()}
    assert got == EXPECTED_NTU_JOINT
    assert set(range(1, 26)) - set(got.values()) == DROPPED_NTU_JOINTS
    # the module docstring's table (what the README quotes) says the same, row by row
    rows = re.findall(r"^\s+(\d+)\s+(\w+)\s+(\d+)\s+(\w+)\s*$", adapt.__doc__, re.MULTILINE)
    assert [(int(a), v1, int(b), ntu) for a, v1, b, ntu in rows] == [
        (i + 1, v1, EXPECTED_NTU_JOINT[v1], NTU_LAYOUT.joint_names[EXPECTED_NTU_JOINT[v1] - 1])
        for i, v1 in enumerate(V1_LAYOUT.joint_names)
    ]


def test_adapted_recordings_hold_the_documented_ntu_joints(ntu_recordings):
    order = [EXPECTED_NTU_JOINT[name] - 1 for name in V1_LAYOUT.joint_names]
    for name, recording in ntu_recordings.items():
        adapted = adapt_array(recording, NTU, V1)
        assert adapted.shape == (*recording.shape[:2], 20, 3), name
        assert adapted.dtype == np.float32 and adapted.flags.c_contiguous
        np.testing.assert_array_equal(adapted, recording[:, :, order], err_msg=name)


def test_single_body_arrays_are_adapted_like_one_slot(ntu_recordings):
    recording = next(iter(ntu_recordings.values()))
    single = adapt_array(recording[:, 0], NTU, V1)
    assert single.shape == (recording.shape[0], 20, 3)
    np.testing.assert_array_equal(single, adapt_array(recording, NTU, V1)[:, 0])


def test_v1_bones_keep_the_ntu_length_and_stay_rigid(ntu_recordings):
    spreads: dict[tuple[int, int], list[float]] = {bone: [] for bone in V1_LAYOUT.bones}
    for name, recording in ntu_recordings.items():
        adapted = adapt_array(recording, NTU, V1)
        for original, body in zip(tracked_bodies(recording), tracked_bodies(adapted), strict=True):
            for a, b in V1_LAYOUT.bones:
                lengths = bone_lengths(body, a, b)
                ntu_a = EXPECTED_NTU_JOINT[V1_LAYOUT.joint_names[a]] - 1
                ntu_b = EXPECTED_NTU_JOINT[V1_LAYOUT.joint_names[b]] - 1
                # the same two joints' coordinates, copied: the lengths are identical
                np.testing.assert_array_equal(
                    lengths, bone_lengths(original, ntu_a, ntu_b), err_msg=name
                )
                spreads[(a, b)].append(robust_spread(lengths))
    for (a, b), values in spreads.items():
        bone = f"{V1_LAYOUT.joint_names[a]}-{V1_LAYOUT.joint_names[b]}"
        assert np.median(values) < MAX_BONE_SPREAD_M, (bone, np.median(values))
    # the bound tells bones from non-bones: two hands are no bone and fail it
    hands = [
        robust_spread(bone_lengths(body, V1_INDEX["left_hand"], V1_INDEX["right_hand"]))
        for recording in ntu_recordings.values()
        for body in tracked_bodies(adapt_array(recording, NTU, V1))
    ]
    assert np.median(hands) > 2 * MAX_BONE_SPREAD_M


def test_hips_shoulders_and_head_are_where_they_belong(ntu_recordings):
    for name, recording in ntu_recordings.items():
        for body in tracked_bodies(adapt_array(recording, NTU, V1)):
            joint = {n: body[:, i] for n, i in V1_INDEX.items()}
            left, right, centre = joint["left_hip"], joint["right_hip"], joint["hip_center"]
            across = right - left
            # hip_center between the hips: its position along the hip line is inside (0, 1)
            along = np.einsum("fc,fc->f", centre - left, across) / np.einsum(
                "fc,fc->f", across, across
            )
            up = joint["shoulder_center"] - centre
            up /= np.linalg.norm(up, axis=1, keepdims=True)

            def height(a: np.ndarray, b: np.ndarray, up: np.ndarray = up) -> np.ndarray:
                return np.einsum("fc,fc->f", a - b, up)  # how far a is above b along the spine

            checks = {
                "hip centre between the hips": (along > 0) & (along < 1),
                "left shoulder above left hip": height(joint["left_shoulder"], left) > 0,
                "right shoulder above right hip": height(joint["right_shoulder"], right) > 0,
                "head above shoulder centre": height(joint["head"], joint["shoulder_center"]) > 0,
                "spine between hip and shoulder centres": (height(joint["spine"], centre) > 0)
                & (height(joint["shoulder_center"], joint["spine"]) > 0),
            }
            for what, ok in checks.items():
                assert ok.mean() >= MIN_ANATOMY_SHARE, (name, what, ok.mean())


def _ntu_hops() -> np.ndarray:
    """Bone steps between every two NTU joints (breadth-first search over the NTU bones)."""
    neighbours: dict[int, set[int]] = {j: set() for j in range(NTU_LAYOUT.num_joints)}
    for a, b in NTU_LAYOUT.bones:
        neighbours[a].add(b)
        neighbours[b].add(a)
    hops = np.full((NTU_LAYOUT.num_joints,) * 2, -1)
    for start in neighbours:
        hops[start, start] = 0
        queue = deque([start])
        while queue:
            joint = queue.popleft()
            for other in neighbours[joint]:
                if hops[start, other] < 0:
                    hops[start, other] = hops[start, joint] + 1
                    queue.append(other)
    return hops


def test_v1_bones_join_ntu_joints_at_most_one_joint_apart():
    hops = _ntu_hops()
    spans = {}
    for a, b in V1_LAYOUT.bones:
        names = (V1_LAYOUT.joint_names[a], V1_LAYOUT.joint_names[b])
        spans[names] = hops[EXPECTED_NTU_JOINT[names[0]] - 1, EXPECTED_NTU_JOINT[names[1]] - 1]
    assert all(1 <= steps <= 2 for steps in spans.values()), spans
    # only the shoulder-centre-to-head bone skips a joint: NTU's neck
    assert [names for names, steps in spans.items() if steps == 2] == [("shoulder_center", "head")]
    neck = NTU_LAYOUT.joint_names.index("neck")
    assert hops[20, neck] == hops[neck, 3] == 1  # spine_shoulder - neck - head


def test_view_normalisation_runs_on_adapted_recordings(ntu_recordings):
    for name, recording in list(ntu_recordings.items())[:8]:
        adapted = adapt_array(recording, NTU, V1)
        normalised = normalise_sequence(adapted, V1, "view")
        assert normalised.shape == adapted.shape
        assert np.isfinite(normalised).all(), name
        # untracked stays untracked; the rest moved into the body frame (not left as recorded)
        assert not normalised[~adapted.any(axis=-1)].any()
        assert not np.allclose(normalised, adapted)
        # the spine is the unit of length: the median hip-to-shoulder-centre length is 1
        body = normalised[:, 0][adapted[:, 0].any(axis=(1, 2))]
        spine = bone_lengths(body, V1_INDEX["hip_center"], V1_INDEX["shoulder_center"])
        # float32 coordinates and one median: equal to a few ulps, not exactly
        assert np.median(spine[spine > 0]) == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------------------------
# refusals and the identity


def test_kinect_v1_to_ntu_is_refused_naming_both_layouts():
    data = np.ones((5, 1, 20, 3), np.float32)
    with pytest.raises(LayoutAdaptationError) as raised:
        adapt_array(data, V1, NTU)
    message = str(raised.value)
    assert "\n" not in message
    assert "'kinect-v1'" in message and "'ntu-rgb+d'" in message
    assert "neck, hand tips and thumbs" in message
    assert "use a model trained on kinect-v1 recordings" in message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        ("openpose-18", V1, "2D coordinates and the other 3D"),
        (NTU, "coco-17", "3D coordinates and the other 2D"),
        ("coco-17", "openpose-18", "no joint correspondence"),
    ],
)
def test_pairs_without_an_adapter_are_refused(source, target, reason):
    joints = get_layout(source).num_joints
    with pytest.raises(LayoutAdaptationError, match=reason) as raised:
        adapt_array(np.ones((3, joints, 2), np.float32), source, target)
    assert repr(source) in str(raised.value) and repr(target) in str(raised.value)
    assert not can_adapt(source, target)


@pytest.mark.parametrize(("source", "target"), [("ntu", V1), (NTU, "kinect"), ("", NTU)])
def test_unknown_layout_names_are_refused(source, target):
    bad = source if source not in LAYOUT_NAMES else target
    with pytest.raises(LayoutAdaptationError, match=f"unknown skeleton layout {bad!r}"):
        adapt_array(np.ones((3, 1, 25, 3), np.float32), source, target)
    with pytest.raises(LayoutAdaptationError, match="known layouts: ntu-rgb"):
        can_adapt(source, target)


def test_a_shape_that_does_not_fit_the_source_is_refused():
    with pytest.raises(LayoutAdaptationError, match=r"\(T, M, 25, C\).*got shape \(3, 1, 20, 3\)"):
        adapt_array(np.ones((3, 1, 20, 3), np.float32), NTU, V1)
    with pytest.raises(LayoutAdaptationError, match=r"got shape \(25, 3\)"):
        adapt_array(np.ones((25, 3), np.float32), NTU, V1)


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_same_layout_returns_the_array_unchanged(layout):
    spec = get_layout(layout)
    data = np.random.default_rng(0).normal(size=(4, 2, spec.num_joints, spec.coordinate_dims))
    before = data.copy()
    assert adapt_array(data, layout, layout) is data
    np.testing.assert_array_equal(data, before)
    assert can_adapt(layout, layout)


def test_can_adapt_and_joint_counts():
    assert can_adapt(NTU, V1) and not can_adapt(V1, NTU)
    assert adapt.adapter_pairs() == ((NTU, V1),)
    assert layout_of_joint_count(25) == NTU and layout_of_joint_count(20) == V1
    assert layout_of_joint_count(18) == "openpose-18" and layout_of_joint_count(21) is None


def test_an_ambiguous_joint_count_names_no_layout(monkeypatch):
    monkeypatch.setattr(adapt, "LAYOUT_NAMES", (*LAYOUT_NAMES, NTU))  # two 25-joint layouts
    assert layout_of_joint_count(25) is None
    assert layout_of_joint_count(20) == V1


# ---------------------------------------------------------------------------------------------
# ingestion tables


def _tables(ntu_recordings: dict[str, np.ndarray]):
    """Three real NTU recordings around one kinect-v1 recording, as ingestion tables."""
    names = list(ntu_recordings)[:3]
    v1 = np.random.default_rng(1).normal(size=(7, 1, 20, 3)).astype(np.float32)
    ids = [names[0], "kinect_one", names[1], names[2]]
    arrays = [ntu_recordings[names[0]], v1, ntu_recordings[names[1]], ntu_recordings[names[2]]]
    layouts = [NTU, V1, NTU, NTU]
    samples = samples_frame(
        [
            {"sample_id": i, "source": "test", "layout": lay}
            for i, lay in zip(ids, layouts, strict=True)
        ]
    )
    return samples, sequences_table(ids, arrays), ids, arrays


def test_adapt_sequences_keeps_order_and_unpadded_shapes(ntu_recordings):
    samples, sequences, ids, arrays = _tables(ntu_recordings)
    new_samples, new_sequences = adapt_sequences(samples, sequences, V1)
    assert new_samples["layout"].tolist() == [V1] * 4
    assert new_samples["sample_id"].tolist() == ids
    pd.testing.assert_frame_equal(
        new_samples.drop(columns="layout"), samples.drop(columns="layout")
    )
    assert samples["layout"].tolist() == [NTU, V1, NTU, NTU]  # the input is not modified
    assert new_sequences.schema == sequences.schema
    store = SequenceStore(new_sequences)
    assert store.ids == ids
    for i, (sample_id, array) in enumerate(zip(ids, arrays, strict=True)):
        assert store.shape(i) == (array.shape[0], array.shape[1], 20, 3), sample_id
        expected = array if sample_id == "kinect_one" else adapt_array(array, NTU, V1)
        np.testing.assert_array_equal(store[i], expected, err_msg=sample_id)
    # the recordings differ in length: nothing was padded to the longest
    assert len({store.shape(i)[0] for i in range(len(store))}) > 1


def test_adapt_sequences_to_the_own_layout_changes_nothing(ntu_recordings):
    samples, sequences, ids, _ = _tables(ntu_recordings)
    ntu_only = samples[samples["layout"] == NTU].reset_index(drop=True)
    keep = [i for i, sample_id in enumerate(ids) if sample_id != "kinect_one"]
    table = sequences.take(keep)
    new_samples, new_table = adapt_sequences(ntu_only, table, NTU)
    pd.testing.assert_frame_equal(new_samples, ntu_only)
    assert new_table.equals(table)


def test_adapt_sequences_refusals_name_the_sample(ntu_recordings):
    samples, sequences, _, _ = _tables(ntu_recordings)
    with pytest.raises(LayoutAdaptationError, match=r"sample 'kinect_one': cannot adapt"):
        adapt_sequences(samples, sequences, NTU)
    wrong = samples.assign(layout=[NTU, NTU, NTU, NTU])
    with pytest.raises(LayoutAdaptationError, match=r"sample 'kinect_one': stored shape"):
        adapt_sequences(wrong, sequences, V1)
    with pytest.raises(ValueError, match=r"no row in the samples table, e.g. 'kinect_one'"):
        adapt_sequences(samples[samples["sample_id"] != "kinect_one"], sequences, V1)
    with pytest.raises(LayoutAdaptationError, match="unknown skeleton layout 'kinect'"):
        adapt_sequences(samples, sequences, "kinect")
