"""NTU body selection and denoising, on the real noisy samples and on constructed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pose_zsl.skeleton.denoise import (
    FLAG_EMPTY_FRAMES_DROPPED,
    FLAG_EXTRA_BODY_DROPPED,
    FLAG_LENGTH_FILTER_SKIPPED,
    FLAG_NOISE_BODY_DROPPED,
    select_bodies,
)
from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.ntu import SkeletonFile, load_sample_with_flags, read_skeleton

NOISE_BODY = 72057594037931781  # SOURCES.md: the persistent non-human skeleton in A024-A029


def _spread_ratio(body: np.ndarray) -> float:
    """Median over frames of x extent / y extent of a (T, 25, 3) body."""
    return float(np.median(np.ptp(body[..., 0], axis=1) / np.ptp(body[..., 1], axis=1)))


@pytest.mark.parametrize("action", [24, 25, 26, 27, 28, 29])
def test_noise_body_is_dropped_on_real_single_actor_samples(
    skeleton_ntu_samples: Path, action: int
) -> None:
    path = skeleton_ntu_samples / f"S001C001P001R001A{action:03d}.skeleton"
    skeleton = read_skeleton(path)
    assert (skeleton.bodies_per_frame == 2).all()
    assert NOISE_BODY in skeleton.body_ids
    if action in (28, 29):
        assert skeleton.body_ids[0] == NOISE_BODY  # listed first: order alone would pick it

    array, flags = load_sample_with_flags(path)

    assert array.shape == (skeleton.num_frames, 2, 25, 3)
    assert FLAG_NOISE_BODY_DROPPED in flags
    assert not array[:, 1].any(), "the second slot must stay empty for a single actor"
    person = skeleton.body_ids != NOISE_BODY
    np.testing.assert_array_equal(array[:, 0], skeleton.joints[person][:, :, :3])
    assert _spread_ratio(array[:, 0]) < 0.5  # a person: about 0.3
    assert _spread_ratio(skeleton.joints[~person][:, :, :3]) > 1.0  # the noise body: 1.1-1.8


@pytest.mark.parametrize("action", range(50, 61))
def test_two_person_samples_keep_both_actors(skeleton_ntu_samples: Path, action: int) -> None:
    path = skeleton_ntu_samples / f"S001C001P001R001A{action:03d}.skeleton"
    array, flags = load_sample_with_flags(path)
    assert flags == []
    assert array[:, 0].reshape(len(array), -1).any(axis=1).all()
    assert array[:, 1].any()
    # actor first: the slot-0 body moves at least as much as the slot-1 body (2s-AGCN motion)
    motion = [float(np.sum(np.var(array[:, m].reshape(-1, 3), axis=0))) for m in range(2)]
    assert motion[0] >= motion[1]
    assert {_spread_ratio(array[:, m]) < 0.8 for m in range(2)} == {True}


def _file(tracks: list[tuple[int, range, np.ndarray]], num_frames: int) -> SkeletonFile:
    """A SkeletonFile from (body id, frames, (len(frames), 25, 3) xyz) tracks."""
    per_frame: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(num_frames)]
    for body_id, frames, xyz in tracks:
        for i, frame in enumerate(frames):
            per_frame[frame].append((body_id, xyz[i]))
    ids, frame_of, joints = [], [], []
    for frame, bodies in enumerate(per_frame):
        for body_id, xyz in bodies:
            ids.append(body_id)
            frame_of.append(frame)
            record = np.zeros((25, 12), np.float32)
            record[:, :3] = xyz
            joints.append(record)
    return SkeletonFile(
        num_frames=num_frames,
        bodies_per_frame=np.array([len(b) for b in per_frame]),
        body_ids=np.array(ids, dtype=np.int64),
        body_info=np.zeros((len(ids), 9)),
        body_frame=np.array(frame_of),
        joints=np.array(joints, dtype=np.float32).reshape(-1, 25, 12),
    )


def _person(num_frames: int, amplitude: float, seed: int, x0: float = 0.0) -> np.ndarray:
    """A tall, narrow body (x extent 0.4, y extent 1.6) moving with the given amplitude."""
    rng = np.random.default_rng(seed)
    base = np.stack(
        [np.linspace(-0.2, 0.2, 25) + x0, np.linspace(-0.8, 0.8, 25), np.full(25, 3.0)], axis=1
    )
    wave = amplitude * np.sin(np.linspace(0, 6, num_frames))[:, None, None]
    return (base + wave * rng.uniform(0.5, 1.0, size=(1, 25, 3))).astype(np.float32)


def _wide_noise(num_frames: int) -> np.ndarray:
    base = np.stack([np.linspace(-1, 1, 25), np.linspace(-0.3, 0.3, 25), np.full(25, 3.0)], 1)
    return np.repeat(base[None], num_frames, axis=0).astype(np.float32)


def test_short_body_is_noise() -> None:
    person, blip = _person(40, 0.1, 0), _person(11, 0.5, 1)
    skeleton = _file([(1, range(40), person), (2, range(5, 16), blip)], 40)
    array, flags = select_bodies(skeleton)
    assert flags == [FLAG_NOISE_BODY_DROPPED]
    np.testing.assert_array_equal(array[:, 0], person)
    assert not array[:, 1].any()
    # 12 frames is long enough to count as a body
    skeleton = _file([(1, range(40), person), (2, range(5, 17), _person(12, 0.5, 1))], 40)
    array, flags = select_bodies(skeleton)
    assert flags == [] and array[:, 1].any()


def test_wide_body_is_noise_even_when_listed_first_and_moving_most() -> None:
    noise = _wide_noise(30)
    noise[:, :, 2] += np.linspace(0, 3, 30)[:, None]  # large motion
    person = _person(30, 0.05, 0)
    array, flags = select_bodies(_file([(9, range(30), noise), (1, range(30), person)], 30))
    assert flags == [FLAG_NOISE_BODY_DROPPED]
    np.testing.assert_array_equal(array[:, 0], person)
    assert not array[:, 1].any()


def test_actor_is_the_body_with_most_motion() -> None:
    calm, lively = _person(30, 0.02, 0, x0=-1), _person(30, 0.3, 1, x0=1)
    array, flags = select_bodies(_file([(1, range(30), calm), (2, range(30), lively)], 30))
    assert flags == []
    np.testing.assert_array_equal(array[:, 0], lively)
    np.testing.assert_array_equal(array[:, 1], calm)
    array, _ = select_bodies(_file([(1, range(30), calm), (2, range(30), lively)], 30), 1)
    np.testing.assert_array_equal(array[:, 0], lively)


def test_third_body_overlapping_both_slots_is_dropped() -> None:
    bodies = [(k, range(30), _person(30, 0.1 * k, k, x0=k)) for k in (1, 2, 3)]
    array, flags = select_bodies(_file(bodies, 30))
    assert flags == [FLAG_EXTRA_BODY_DROPPED]
    np.testing.assert_array_equal(array[:, 0], bodies[2][2])
    np.testing.assert_array_equal(array[:, 1], bodies[1][2])
    array, _ = select_bodies(_file(bodies, 30), max_bodies=3)
    np.testing.assert_array_equal(array[:, 2], bodies[0][2])


def test_successive_ids_of_one_person_share_the_actor_slot() -> None:
    first, second = _person(20, 0.3, 0), _person(20, 0.2, 1)
    array, flags = select_bodies(_file([(1, range(20), first), (2, range(20, 40), second)], 40))
    assert flags == []
    np.testing.assert_array_equal(array[:20, 0], first)
    np.testing.assert_array_equal(array[20:, 0], second)
    assert not array[:, 1].any()


def test_frames_without_any_body_are_dropped() -> None:
    person = _person(20, 0.2, 0)
    skeleton = _file([(1, [*range(5), *range(8, 23)], person)], 25)
    array, flags = select_bodies(skeleton)
    assert flags == [FLAG_EMPTY_FRAMES_DROPPED]
    assert array.shape == (20, 2, 25, 3)
    np.testing.assert_array_equal(array[:, 0], person)
    raw, _ = select_bodies(skeleton, denoise=False)
    assert raw.shape == (25, 2, 25, 3) and not raw[5:8].any()


def test_all_short_bodies_are_kept_rather_than_emptying_the_sample() -> None:
    a, b = _person(8, 0.3, 0, x0=-1), _person(8, 0.1, 1, x0=1)
    array, flags = select_bodies(_file([(1, range(8), a), (2, range(8), b)], 8))
    assert FLAG_LENGTH_FILTER_SKIPPED in flags
    np.testing.assert_array_equal(array[:, 0], a)
    np.testing.assert_array_equal(array[:, 1], b)


def test_motion_thresholds_are_optional() -> None:
    # motion is the variance of all joint positions, so only a small, still body falls below
    # the 0.089925 threshold
    actor = _person(30, 0.3, 0, x0=-1)
    statue = ((_person(30, 0.0, 1) - [0, 0, 3]) * 0.2 + [1, 0, 3]).astype(np.float32)
    skeleton = _file([(1, range(30), actor), (2, range(30), statue)], 30)
    array, flags = select_bodies(skeleton)
    assert flags == [] and array[:, 1].any()
    array, flags = select_bodies(skeleton, filter_by_motion=True)
    assert flags == [FLAG_NOISE_BODY_DROPPED] and not array[:, 1].any()


def test_sample_without_bodies_is_an_error() -> None:
    empty = SkeletonFile(
        num_frames=3,
        bodies_per_frame=np.zeros(3, np.int64),
        body_ids=np.zeros(0, np.int64),
        body_info=np.zeros((0, 9)),
        body_frame=np.zeros(0, np.int64),
        joints=np.zeros((0, 25, 12), np.float32),
    )
    with pytest.raises(SkeletonFormatError, match="x.skeleton: no frame holds a body"):
        select_bodies(empty, path="x.skeleton")
    with pytest.raises(ValueError, match="max_bodies"):
        select_bodies(empty, max_bodies=0)
