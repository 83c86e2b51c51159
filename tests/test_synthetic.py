"""The synthetic NTU-60 generator: real ``.skeleton`` files, determinism, rigid performers, and
motions whose similarity follows the meaning of the action names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError

from pose_zsl.datasets import SyntheticSkeletonDataset
from pose_zsl.pipelines.ingestion.nodes import synthetic_recordings
from pose_zsl.skeleton import synthetic
from pose_zsl.skeleton.ntu import load_sample, parse_sample_name, read_skeleton
from pose_zsl.skeleton.ntu_tables import XSUB_TRAIN_PERFORMERS_60, XVIEW_TRAIN_CAMERAS
from pose_zsl.skeleton.synthetic import (
    GENERATOR_VERSION,
    LEAF_JOINTS,
    PARENTS,
    generate_dataset,
    generate_sample,
    plan_samples,
    sample_seed,
)

SMALL_ACTIONS = (1, 8, 50, 59)
SMALL_SEED = 5
BONES = [(joint, parent) for joint, parent in enumerate(PARENTS) if parent >= 0]


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("synthetic") / "seed5"
    return generate_dataset(
        out, samples_per_action=3, seed=SMALL_SEED, actions=SMALL_ACTIONS, workers=1
    )


def _bytes(paths: list[Path]) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in paths}


# ---- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_with_any_worker_count(
    small_dataset: list[Path], tmp_path: Path
) -> None:
    again = generate_dataset(
        tmp_path, samples_per_action=3, seed=SMALL_SEED, actions=SMALL_ACTIONS, workers=2
    )
    assert len(small_dataset) == 3 * len(SMALL_ACTIONS)
    assert _bytes(again) == _bytes(small_dataset)


def test_a_file_depends_only_on_seed_and_name(small_dataset: list[Path], tmp_path: Path) -> None:
    subset = generate_dataset(tmp_path, samples_per_action=3, seed=SMALL_SEED, actions=[50])
    full = _bytes(small_dataset)
    assert {name: full[name] for name in _bytes(subset)} == _bytes(subset)


def test_another_seed_changes_every_file(small_dataset: list[Path], tmp_path: Path) -> None:
    other = _bytes(
        generate_dataset(tmp_path, samples_per_action=3, seed=SMALL_SEED + 1, actions=SMALL_ACTIONS)
    )
    reference = _bytes(small_dataset)
    assert other.keys() == reference.keys()
    assert all(other[name] != reference[name] for name in reference)


# ---- the files ------------------------------------------------------------------------------


def test_files_are_complete_ntu_skeleton_files(small_dataset: list[Path]) -> None:
    non_leaf = [j for j in range(25) if j not in LEAF_JOINTS]
    for path in small_dataset:
        name = parse_sample_name(path)
        skeleton = read_skeleton(path)
        bodies = 2 if name.action >= 50 else 1
        assert name.setup == 1
        assert 40 <= skeleton.num_frames <= 150, path.name
        assert (skeleton.bodies_per_frame == bodies).all(), path.name
        ids = np.unique(skeleton.body_ids)
        assert len(ids) == bodies  # one tracking id per person, kept over the frames
        assert ((ids >= 10**16) & (ids < 10**17)).all()  # 17-digit integers like Kinect's
        joints = skeleton.joints
        assert (joints[..., 11] == 2).all()  # tracked
        assert (skeleton.body_info[:, 8] == 2).all()
        assert (np.abs(skeleton.body_info[:, 6:8]) <= 1).all()  # leanX, leanY
        assert (joints[:, LEAF_JOINTS, 7:11] == 0).all()
        norms = np.linalg.norm(joints[:, non_leaf, 7:11], axis=-1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
        x, y, z = joints[..., 0], joints[..., 1], joints[..., 2]
        assert (z > 1.0).all()
        # pixel fields come from a pinhole projection and stay inside the Kinect images
        assert np.corrcoef((x / z).ravel(), joints[..., 3].ravel())[0, 1] > 0.9999
        assert np.corrcoef((y / z).ravel(), joints[..., 6].ravel())[0, 1] < -0.9999
        assert (joints[..., 3] >= 0).all() and (joints[..., 3] <= 512).all()
        assert (joints[..., 4] >= 0).all() and (joints[..., 4] <= 424).all()
        assert (joints[..., 5] >= 0).all() and (joints[..., 5] <= 1920).all()
        assert (joints[..., 6] >= 0).all() and (joints[..., 6] <= 1080).all()


def test_files_read_back_as_the_generated_sample(small_dataset: list[Path]) -> None:
    for path in small_dataset:
        name = parse_sample_name(path)
        expected = generate_sample(
            name.action, name.performer, name.camera, name.replication,
            sample_seed(SMALL_SEED, name),
        ).astype(np.float32)  # fmt: skip
        frames, bodies = expected.shape[:2]
        raw = read_skeleton(path).joints[..., :3].reshape(frames, bodies, 25, 3)
        np.testing.assert_array_equal(raw, expected)  # the text keeps every float32 digit

        loaded = load_sample(path)  # the model-facing reader with NTU denoising
        assert loaded.shape == (frames, 2, 25, 3)
        if bodies == 1:
            np.testing.assert_array_equal(loaded[:, 0], expected[:, 0])
            assert not loaded[:, 1].any()
        else:  # both people survive denoising, in either order
            pairs = (loaded[:, 0], loaded[:, 1])
            assert any(np.array_equal(pairs[0], expected[:, i]) for i in range(2))
            assert any(np.array_equal(pairs[1], expected[:, i]) for i in range(2))
            assert not np.array_equal(pairs[0], pairs[1])


def test_frame_and_body_counts_for_every_action() -> None:
    for action in range(1, 61):
        for camera, performer in ((1, 3), (2, 8), (3, 11)):
            sample = generate_sample(action, performer, camera, 1, [0, action, camera])
            assert 40 <= sample.shape[0] <= 150, action
            assert sample.shape[1:] == (2 if action >= 50 else 1, 25, 3), action
            assert np.isfinite(sample).all()


def _bone_lengths(sample: np.ndarray) -> np.ndarray:
    """(T, M, bones) lengths."""
    joints = np.array([j for j, _ in BONES])
    parents = np.array([p for _, p in BONES])
    return np.linalg.norm(sample[:, :, joints] - sample[:, :, parents], axis=-1)


def test_bones_are_rigid_and_belong_to_the_performer() -> None:
    per_action = []
    for action in range(1, 61):
        lengths = _bone_lengths(generate_sample(action, 4, 1 + action % 3, 1, action, noise=False))
        assert lengths.std(axis=0).max() < 1e-9, action  # every bone keeps its length
        per_action.append(lengths[0, 0])
    # the same performer has the same body in every action; another performer does not
    np.testing.assert_allclose(per_action, np.broadcast_to(per_action[0], (60, len(BONES))))
    other = _bone_lengths(generate_sample(1, 5, 1, 1, 0, noise=False))[0, 0]
    assert np.abs(other - per_action[0]).max() > 0.005

    noisy = _bone_lengths(generate_sample(23, 4, 2, 1, 0))
    assert 0 < noisy.std(axis=0).max() < 0.03  # only the sensor noise moves joints


def test_plan_covers_both_protocols_for_every_action() -> None:
    plan = plan_samples(synthetic.DEFAULT_SAMPLES_PER_ACTION, 10, (1, 2, 3), range(1, 61))
    assert len({str(name) for name in plan}) == len(plan) == 60 * 12
    for action in range(1, 61):
        names = [name for name in plan if name.action == action]
        xsub = {name.performer in XSUB_TRAIN_PERFORMERS_60 for name in names}
        xview = {name.camera in XVIEW_TRAIN_CAMERAS for name in names}
        assert xsub == {True, False}, action
        assert xview == {True, False}, action


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"samples_per_action": 0}, "samples_per_action"),
        ({"num_performers": 0}, "num_performers"),
        ({"cameras": (1, 4)}, "cameras"),
        ({"cameras": ()}, "cameras"),
        ({"actions": [61]}, "actions"),
        ({"actions": [0]}, "actions"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_dataset_parameters_are_named(kwargs: dict, parameter: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=parameter):
        generate_dataset(tmp_path, **kwargs)
    assert not list(tmp_path.glob("*.skeleton"))


@pytest.mark.parametrize(
    ("args", "parameter"),
    [((0, 1, 1, 1), "action"), ((61, 1, 1, 1), "action"), ((1, 0, 1, 1), "performer"),
     ((1, 1, 4, 1), "camera"), ((1, 1, 1, 0), "replication")],
)  # fmt: skip
def test_bad_sample_ids_are_named(args: tuple[int, int, int, int], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        generate_sample(*args, rng_seed=0)


# ---- the catalog dataset: loading reads, saving the settings writes ---------------------------

#: 60 files, one per action: the cheapest settings the generator accepts for all actions
TINY_SETTINGS = {"samples_per_action": 1, "seed": 2, "num_performers": 2}


def test_loading_never_writes(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    dataset = SyntheticSkeletonDataset(str(folder))
    with pytest.raises(DatasetError, match=r"kedro run --pipelines ingestion") as error:
        dataset.load()
    assert str(folder) in str(error.value)
    assert not folder.exists()
    folder.mkdir()
    (folder / "S001C001P001R001A001.skeleton").write_text("0\n")  # files but no manifest
    with pytest.raises(DatasetError, match=SyntheticSkeletonDataset.MANIFEST):
        dataset.load()
    assert [p.name for p in folder.iterdir()] == ["S001C001P001R001A001.skeleton"]


def _mtimes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


def test_saving_the_settings_writes_the_files_once(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    dataset = SyntheticSkeletonDataset(str(folder))
    dataset.save(dict(TINY_SETTINGS))
    source = dataset.load()
    assert (source.path, source.format, source.source) == (str(folder), "ntu", "synthetic")
    files = sorted(folder.glob("*.skeleton"))
    assert len(files) == 60
    expected = generate_dataset(tmp_path / "direct", **TINY_SETTINGS, workers=1)
    assert _bytes(files) == _bytes(expected)  # the generator's own files, byte for byte

    before = _mtimes(folder)
    SyntheticSkeletonDataset(str(folder)).save(dict(TINY_SETTINGS))
    assert _mtimes(folder) == before  # same settings, same generator version: nothing rewritten


def test_new_settings_replace_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    dataset = SyntheticSkeletonDataset(str(folder))
    dataset.save(dict(TINY_SETTINGS))
    stray = folder / "S001C001P009R009A001.skeleton"
    stray.write_text("0\n")
    old = _bytes(sorted(folder.glob("*.skeleton")))
    dataset.save({**TINY_SETTINGS, "seed": 3})
    new = _bytes(sorted(folder.glob("*.skeleton")))
    assert stray.name not in new  # stale files of the previous settings are removed
    assert sorted(new) == sorted(set(old) - {stray.name})
    assert all(new[name] != old[name] for name in new)
    manifest = json.loads((folder / SyntheticSkeletonDataset.MANIFEST).read_text())
    assert manifest == {**TINY_SETTINGS, "seed": 3, "generator_version": GENERATOR_VERSION}


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"samples_per_action": 1, "seed": 0}, "num_performers"),
        ({**TINY_SETTINGS, "performers": 2}, "performers"),
        ([1, 0, 2], "list"),
    ],
)
def test_bad_generator_settings_are_named(settings: object, named: str, tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    with pytest.raises(DatasetError, match=named):
        SyntheticSkeletonDataset(str(folder)).save(settings)  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=named):
        synthetic_recordings(settings)  # type: ignore[arg-type]
    assert not folder.exists()


# ---- semantics ------------------------------------------------------------------------------

TRAIN_PERFORMERS = (1, 2, 4, 5)  # NTU cross-subject training performers
TEST_PERFORMERS = (3, 6)


def _body_frame(sample: np.ndarray) -> np.ndarray:
    """Both bodies in the first person's frame at frame 0 (origin between the ankles, y along
    the spine, x along the hips): removes the camera view and position, keeps the motion."""
    body = sample[0, 0]
    origin = (body[synthetic.ANKLE_L] + body[synthetic.ANKLE_R]) / 2
    up = body[synthetic.SPINE_SHOULDER] - body[synthetic.SPINE_BASE]
    up /= np.linalg.norm(up)
    across = body[synthetic.HIP_R] - body[synthetic.HIP_L]
    across -= (across @ up) * up
    across /= np.linalg.norm(across)
    rotation = np.stack([across, up, np.cross(across, up)])
    out = np.zeros((sample.shape[0], 2, 25, 3))
    out[:, : sample.shape[1]] = (sample - origin) @ rotation.T
    return out


@pytest.fixture(scope="module")
def semantic_set() -> dict[tuple[int, int], np.ndarray]:
    """Every action by six performers, each seen by one of the three cameras."""
    return {
        (action, performer): _body_frame(
            generate_sample(action, performer, 1 + (action + performer) % 3, 1, [9, action])
        )
        for action in range(1, 61)
        for performer in TRAIN_PERFORMERS + TEST_PERFORMERS
    }


def _statistics(sample: np.ndarray) -> np.ndarray:
    flat = sample.reshape(sample.shape[0], -1)
    return np.concatenate([flat.mean(0), flat.std(0), flat.min(0), flat.max(0)])


def test_actions_are_recognisable_across_performers(semantic_set: dict) -> None:
    """Nearest class centroid on per-joint trajectory statistics, unseen performers."""

    def features(performers: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        keys = [(a, p) for a in range(1, 61) for p in performers]
        labels = np.array([a for a, _ in keys])
        return np.array([_statistics(semantic_set[k]) for k in keys]), labels

    train, train_labels = features(TRAIN_PERFORMERS)
    test, test_labels = features(TEST_PERFORMERS)
    mean, scale = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / scale, (test - mean) / scale
    centroids = np.array([train[train_labels == a].mean(0) for a in range(1, 61)])
    distances = ((test[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = float((distances.argmin(1) + 1 == test_labels).mean())
    assert accuracy > 0.35, f"accuracy {accuracy:.2f} (chance {1 / 60:.3f})"


def _mean_trajectory(semantic_set: dict, action: int, points: int = 20) -> np.ndarray:
    """The first person's joints resampled to ``points`` instants, averaged over performers."""
    trajectories = []
    for (a, _), sample in semantic_set.items():
        if a == action:
            index = np.round(np.linspace(0, sample.shape[0] - 1, points)).astype(int)
            trajectories.append(sample[index, 0])
    return np.mean(trajectories, axis=0)


def _distance(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.linalg.norm(first - second, axis=-1).mean())


@pytest.mark.parametrize(
    ("action", "related", "unrelated", "reversed_time"),
    [
        (1, 2, 24, False),  # drink water ~ eat meal (hand to mouth), not kicking
        (3, 1, 24, False),  # brushing teeth ~ drink water
        (24, 51, 1, False),  # kicking something ~ kicking other person, not drink water
        (14, 15, 24, True),  # wear jacket ~ take off jacket played backwards
        (20, 21, 24, True),  # put on a hat ~ take off a hat played backwards
        (8, 9, 10, True),  # sitting down ~ standing up played backwards, not clapping
    ],
)
def test_semantically_paired_actions_look_alike(
    semantic_set: dict, action: int, related: int, unrelated: int, reversed_time: bool
) -> None:
    mean = _mean_trajectory(semantic_set, action)
    close = _mean_trajectory(semantic_set, related)
    if reversed_time:
        close = close[::-1]
    far = _mean_trajectory(semantic_set, unrelated)
    assert _distance(mean, close) < _distance(mean, far)
    assert _distance(close, mean) < _distance(close, far)


def test_reverse_pairs_are_time_reversed(semantic_set: dict) -> None:
    sit, stand = _mean_trajectory(semantic_set, 8), _mean_trajectory(semantic_set, 9)
    assert _distance(sit, stand[::-1]) < 0.5 * _distance(sit, stand)
