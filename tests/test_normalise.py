"""Per-recording view normalisation and the seeded training augmentation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_walk_skeletons

from pose_zsl.skeleton import msr, ntu
from pose_zsl.skeleton.layouts import get_layout
from pose_zsl.skeleton.normalise import normalise_sequence
from pose_zsl.skeleton.store import SequenceStore, sequences_table
from pose_zsl.training import batching
from pose_zsl.training.batching import (
    SkeletonDataset,
    WindowCollate,
    fit_bodies,
    fit_window,
    random_spatial_transform,
    temporal_crop,
)
from pose_zsl.training.features import extract_features
from pose_zsl.training.stgcn_trainer import (
    CheckpointError,
    TrainConfig,
    load_stgcn_artifact,
    save_stgcn_artifact,
    train_stgcn,
)

# Normalised coordinates are O(1) (spine length 1, a body spans about 5). Moving a float32
# recording rounds every coordinate to ~6e-8 of its magnitude (up to ~10 after the shift
# below), which the division by the spine length (~0.45 m times the test scale) amplifies to a
# few 1e-6; the estimated axes carry errors of the same order. The largest error seen on
# these clips is 1.6e-6; 2e-5 leaves a margin of more than 10.
INVARIANCE_ATOL = 2e-5

MSR_FILE = "a01_s01_e01_skeleton3D.txt"
NTU_TWO_BODIES = "S001C001P001R001A050.skeleton"  # punching: two people in every frame


def joint(layout: str, name: str) -> int:
    return get_layout(layout).joint_names.index(name)


@pytest.fixture(scope="module")
def msr_clip(skeleton_msr_root: Path) -> np.ndarray:
    return msr.load_sample(skeleton_msr_root / "real_world_coordinates" / MSR_FILE)


@pytest.fixture(scope="module")
def ntu_clip(skeleton_ntu_samples: Path) -> np.ndarray:
    clip = ntu.load_sample(skeleton_ntu_samples / NTU_TWO_BODIES)
    assert clip[:, 1].any(), "the two-body sample must have a second body"
    return clip


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation (QR of a Gaussian matrix, signs fixed, det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def move(sequence: np.ndarray, rotation: np.ndarray, scale: float, shift) -> np.ndarray:
    """Rotate, scale and shift the tracked joints only (missing joints stay zero)."""
    out = np.zeros_like(sequence)
    tracked = sequence.any(axis=-1)
    moved = (sequence[tracked].astype(np.float64) @ rotation.T) * scale + np.asarray(shift)
    out[tracked] = moved.astype(np.float32)
    assert out[tracked].any(axis=-1).all()  # no tracked joint happened to land on zero
    return out


@pytest.mark.parametrize(
    ("clip_name", "layout"), [("msr_clip", "kinect-v1"), ("ntu_clip", "ntu-rgb+d")]
)
def test_view_is_invariant_to_rotation_translation_and_scale(clip_name, layout, request) -> None:
    clip = request.getfixturevalue(clip_name)
    reference = normalise_sequence(clip, layout, "view")
    assert reference.dtype == np.float32 and reference.shape == clip.shape
    assert np.abs(reference - clip).max() > 0.5  # it really moved the data
    rng = np.random.default_rng(11)
    for _ in range(3):
        moved = move(clip, random_rotation(rng), rng.uniform(0.2, 5.0), rng.uniform(-5, 5, 3))
        np.testing.assert_allclose(
            normalise_sequence(moved, layout, "view"), reference, rtol=0, atol=INVARIANCE_ATOL
        )


def test_view_frame_is_centred_upright_and_unit_spine(msr_clip) -> None:
    layout = "kinect-v1"
    out = normalise_sequence(msr_clip, layout, "view")[:, 0]
    np.testing.assert_array_equal(out[0, joint(layout, "hip_center")], 0.0)
    spine = out[:, joint(layout, "shoulder_center")] - out[:, joint(layout, "hip_center")]
    lengths = np.linalg.norm(spine, axis=1)
    assert np.median(lengths) == pytest.approx(1.0, abs=1e-6)  # float32 storage of O(1) values
    mean_up = spine.mean(axis=0) / np.linalg.norm(spine.mean(axis=0))
    assert mean_up @ [0.0, 1.0, 0.0] > 0.99  # the spine of a standing actor points along +y
    hips = out[:, joint(layout, "right_hip")] - out[:, joint(layout, "left_hip")]
    mean_side = hips.mean(axis=0) / np.linalg.norm(hips.mean(axis=0))
    assert mean_side[0] > 0.95  # the subject's right is +x
    units = hips / np.linalg.norm(hips, axis=1, keepdims=True)
    assert abs(units.mean(axis=0)[2]) < 1e-6  # hips and spine span x-y (no outlying frames)
    # the motion through space is kept: later frames are not re-centred
    assert np.abs(out[1:, joint(layout, "hip_center")]).max() > 1e-3


def test_missing_joints_and_bodies_stay_zero(msr_clip) -> None:
    layout = "kinect-v1"
    clip = fit_bodies(msr_clip, 2).copy()  # second body slot: all zero
    centre = joint(layout, "hip_center")
    clip[:3, 0, centre] = 0.0  # centre untracked at first: the origin comes from frame 3
    clip[5:9, 0, joint(layout, "left_hip")] = 0.0
    clip[10, 0] = 0.0  # a frame without any body
    out = normalise_sequence(clip, layout, "view")
    missing = ~clip.any(axis=-1)
    assert (out[missing] == 0).all()
    expected_zero = missing.copy()
    expected_zero[3, 0, centre] = True  # the origin joint itself
    np.testing.assert_array_equal(~out.any(axis=-1), expected_zero)
    assert np.isfinite(out).all()


def test_degenerate_inputs_fall_back_or_raise_as_documented(msr_clip) -> None:
    layout = "kinect-v1"
    zeros = np.zeros((5, 2, 20, 3), np.float32)
    np.testing.assert_array_equal(normalise_sequence(zeros, layout, "view"), zeros)
    empty = np.zeros((0, 1, 20, 3), np.float32)
    assert normalise_sequence(empty, layout, "view").shape == empty.shape
    bad = msr_clip.copy()
    bad[2, 0, 4, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite coordinates"):
        normalise_sequence(bad, layout, "view")

    single = normalise_sequence(msr_clip[:1], layout, "view")
    assert np.isfinite(single).all()
    spine = single[0, 0, joint(layout, "shoulder_center")]
    np.testing.assert_allclose(spine, [0.0, 1.0, 0.0], atol=1e-6)  # float32 O(1) rounding

    # coincident hips are unusable: the shoulder line takes over, as if the hips were missing
    left, right = joint(layout, "left_hip"), joint(layout, "right_hip")
    coincident = msr_clip.copy()
    coincident[:, :, left] = coincident[:, :, right]
    no_hips = coincident.copy()
    no_hips[:, :, [left, right]] = 0.0
    out = normalise_sequence(coincident, layout, "view")
    assert np.isfinite(out).all()
    tracked = no_hips.any(axis=-1)
    np.testing.assert_allclose(
        out[tracked], normalise_sequence(no_hips, layout, "view")[tracked], atol=1e-6
    )
    shoulders = (
        out[:, 0, joint(layout, "right_shoulder")] - out[:, 0, joint(layout, "left_shoulder")]
    )
    mean_side = (shoulders / np.linalg.norm(shoulders, axis=1, keepdims=True)).mean(axis=0)
    # the mean shoulder direction (no outlying frames here) now spans the x-y plane with the
    # spine: +x is its part perpendicular to the spine
    assert mean_side[0] > 0.9 and abs(mean_side[2]) < 1e-6  # float32 O(1) rounding

    # no usable lateral line at all: no rotation, only the translation and the scale
    flat = coincident.copy()
    flat[:, :, joint(layout, "left_shoulder")] = flat[:, :, joint(layout, "right_shoulder")]
    origin = flat[0, 0, joint(layout, "hip_center")].astype(np.float64)
    spine = flat[:, 0, joint(layout, "shoulder_center")] - flat[:, 0, joint(layout, "hip_center")]
    expected = (flat.astype(np.float64) - origin) / np.median(np.linalg.norm(spine, axis=1))
    np.testing.assert_allclose(normalise_sequence(flat, layout, "view"), expected, atol=1e-5)

    # no spine: translation only
    spineless = msr_clip.copy()
    spineless[:, :, joint(layout, "shoulder_center")] = 0.0
    origin = spineless[0, 0, joint(layout, "hip_center")]
    tracked = spineless.any(axis=-1)
    np.testing.assert_allclose(
        normalise_sequence(spineless, layout, "view")[tracked],
        spineless[tracked] - origin,
        atol=1e-6,  # float32 subtraction of two ~3 m values
    )


def test_bad_modes_layouts_and_shapes_are_clear_errors(msr_clip) -> None:
    with pytest.raises(ValueError, match=r"normalise='bogus' is not one of \('none', 'view'\)"):
        normalise_sequence(msr_clip, "kinect-v1", "bogus")
    with pytest.raises(ValueError, match=r"not defined for layout 'openpose-18' \(2D"):
        normalise_sequence(np.ones((3, 1, 18, 2), np.float32), "openpose-18", "view")
    with pytest.raises(ValueError, match=r"\(T, M, 25, 3\) array, got shape \(\d+, 1, 20, 3\)"):
        normalise_sequence(msr_clip, "ntu-rgb+d", "view")
    assert normalise_sequence(msr_clip, "openpose-18", "none") is msr_clip  # "none" is a no-op
    with pytest.raises(ValueError, match="needs the skeleton layout"):
        WindowCollate(8, 1, normalise="view")
    with pytest.raises(ValueError, match="'coco-17'"):
        WindowCollate(8, 1, normalise="view", layout="coco-17")
    with pytest.raises(ValueError, match=r"invalid TrainConfig: normalise='bogus' \(one of"):
        TrainConfig(normalise="bogus")


def _items(clips: list[np.ndarray], seed: int = 3) -> list:
    store = SequenceStore(sequences_table([f"c{i}" for i in range(len(clips))], clips))
    dataset = SkeletonDataset(store, np.arange(len(clips)), np.zeros(len(clips)), seed=seed)
    return [dataset[(i, 1)] for i in range(len(clips))]


@pytest.mark.parametrize("mode", ["resize", "pad", "loop"])
def test_collate_normalises_before_windowing_in_eval_and_training(msr_clip, ntu_clip, mode) -> None:
    items = _items([ntu_clip, ntu_clip[:, :1]])
    for train in (False, True):  # training without augmentation draws crops only (pad, loop)
        collate = WindowCollate(24, 2, mode, train=train, normalise="view", layout="ntu-rgb+d")
        batch = collate(items)
        for row, (sequence, _, _, seed) in enumerate(items):
            rng = np.random.default_rng(seed) if train else None
            normalised = normalise_sequence(fit_bodies(sequence, 2), "ntu-rgb+d", "view")
            expected = fit_window(normalised, 24, mode, rng)
            np.testing.assert_array_equal(batch.x[row].numpy(), expected.transpose(3, 0, 2, 1))
    plain = WindowCollate(24, 2, mode)(items)
    assert not torch.equal(plain.x, batch.x)


def test_augmentation_is_seeded_and_keeps_missing_joints_zero(ntu_clip) -> None:
    clip = ntu_clip.copy()
    clip[:, 0, joint("ntu-rgb+d", "left_hand_tip")] = 0.0  # an untracked joint throughout
    clips = [clip, clip[:40, :1]]

    def batch(seed: int, augment: bool = True) -> torch.Tensor:
        collate = WindowCollate(
            32, 2, "resize", train=True, augment=augment, normalise="view", layout="ntu-rgb+d"
        )
        return collate(_items(clips, seed)).x

    first, again, other = batch(3), batch(3), batch(4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, batch(3, augment=False))
    for x in (first, other):
        assert not x[:, :, :, joint("ntu-rgb+d", "left_hand_tip"), 0].any()
        assert not x[1, :, :, :, 1].any()  # the one-body clip's empty body slot
        assert torch.isfinite(x).all()


def test_spatial_transform_strengths(monkeypatch) -> None:
    transforms = [random_spatial_transform(np.random.default_rng(s)) for s in range(300)]
    np.testing.assert_array_equal(transforms[7], random_spatial_transform(np.random.default_rng(7)))
    assert all(np.linalg.det(t) > 0 for t in transforms)  # never a mirror image
    monkeypatch.setattr(batching, "AUGMENT_MAX_SHEAR", 0.0)
    monkeypatch.setattr(batching, "AUGMENT_MAX_SCALE", 0.0)
    rotations = [random_spatial_transform(np.random.default_rng(s)) for s in range(300)]
    for rotation in rotations:
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    # the vertical tilts by at most the two small tilts; the yaw reaches well beyond them
    tilt = math.radians(batching.AUGMENT_MAX_TILT_DEG)
    assert min(r[1, 1] for r in rotations) >= math.cos(tilt) ** 2 - 1e-12
    yaws = [math.degrees(math.atan2(r[0, 2], r[2, 2])) for r in rotations]
    assert max(abs(y) for y in yaws) > 0.8 * batching.AUGMENT_MAX_YAW_DEG


def test_temporal_crop_is_a_contiguous_share_of_the_valid_frames() -> None:
    clip = np.zeros((50, 1, 25, 3), np.float32)
    clip[5:45, 0, :, 0] = np.arange(1, 41, dtype=np.float32)[:, None]  # frame number, never 0
    lengths = set()
    for seed in range(40):
        crop = temporal_crop(clip, np.random.default_rng(seed))
        frames = crop[:, 0, 0, 0]
        assert 32 <= len(frames) <= 40  # 80-100 % of the 40 valid frames
        np.testing.assert_array_equal(np.diff(frames), 1.0)  # contiguous, no blank frames
        lengths.add(len(frames))
    assert len(lengths) > 3


def test_normalise_participates_in_training_meta_extraction_and_resume(tmp_path) -> None:
    seen = [0, 2]
    samples, ids, arrays = random_walk_skeletons(3, 3, frame_range=(8, 16), layout="ntu-rgb+d")
    sequences = sequences_table(ids, arrays)
    settings = {
        "epochs": 1,
        "batch_size": 4,
        "window": 8,
        "width": 0.125,
        "device": "cpu",
        "precision": "fp32",
        "val_fraction": 0.0,
    }
    model, result = train_stgcn(
        samples,
        sequences,
        seen,
        TrainConfig(normalise="view", **settings),
        checkpoint_dir=tmp_path,
    )
    with pytest.raises(CheckpointError, match="normalise: checkpoint 'view' != now 'none'"):
        train_stgcn(samples, sequences, seen, TrainConfig(**settings), checkpoint_dir=tmp_path)
    path = tmp_path / "stgcn.pt"
    save_stgcn_artifact(path, model, result.artifact_meta())
    loaded, meta = load_stgcn_artifact(path, expected_class_ids=seen)
    assert meta["normalise"] == "view" and meta["layout"] == "ntu-rgb+d"

    def features(normalise: str) -> np.ndarray:
        store = SequenceStore(sequences)
        items = [
            SkeletonDataset(store, np.arange(len(ids)), np.zeros(len(ids)))[i]
            for i in range(len(ids))
        ]
        x = WindowCollate(8, 2, normalise=normalise, layout="ntu-rgb+d")(items).x
        with torch.no_grad():
            return loaded.extract_features(x).numpy()

    frame = extract_features(loaded, samples, sequences, seen, meta=meta, device="cpu")
    extracted = np.stack(frame["feature"])
    np.testing.assert_allclose(extracted, features("view"), atol=1e-5)  # batch-size float noise
    older = {key: value for key, value in meta.items() if key != "normalise"}  # older artefact
    frame = extract_features(loaded, samples, sequences, seen, meta=older, device="cpu")
    np.testing.assert_allclose(np.stack(frame["feature"]), features("none"), atol=1e-5)
    assert np.abs(extracted - features("none")).max() > 1e-3


def test_inference_reads_normalise_from_the_model_meta(ntu_models, ntu_files) -> None:
    from pose_zsl.inference import ZeroShotPredictor

    predictor = ZeroShotPredictor.from_project(
        ntu_models.project, "nearest", "relation_net", "random"
    )
    recordings, _ = predictor.read(ntu_files[:2])
    assert predictor.stgcn_meta["normalise"] == "none"  # the model set's default training
    plain, _, _ = predictor.features(recordings)
    predictor.stgcn_meta = {**predictor.stgcn_meta, "normalise": "view"}  # as if trained so
    viewed, _, _ = predictor.features(recordings)
    collate = WindowCollate(
        predictor.window,
        predictor.max_bodies,
        predictor.window_mode,
        normalise="view",
        layout="ntu-rgb+d",
    )
    x = collate([(r.data, 0, i, 0) for i, r in enumerate(recordings)]).x
    with torch.no_grad():
        expected = predictor.stgcn.extract_features(x).numpy()
    np.testing.assert_allclose(viewed, expected, atol=1e-5)  # same ops, batch-size float noise
    assert np.abs(viewed - plain).max() > 1e-3
    predictor.stgcn_meta = {k: v for k, v in predictor.stgcn_meta.items() if k != "normalise"}
    older, _, _ = predictor.features(recordings)  # an artefact from before normalisation
    np.testing.assert_array_equal(older, plain)


def test_bad_real_recordings_are_skipped_with_reasons_and_single_frames_normalise(
    skeleton_msr_root: Path, tmp_path: Path
):
    """All-zero and NaN recordings never reach normalisation: ingestion skips and counts them,
    each with its reason; a one-frame recording is kept and normalises to finite values."""
    from pose_zsl.skeleton.ingest import ingest_msr_dir

    lines = (skeleton_msr_root / "real_world_coordinates" / MSR_FILE).read_text().splitlines()
    frame = lines[:20]
    (tmp_path / MSR_FILE).write_text("\n".join(lines) + "\n")
    zeros = ["0.000000 0.000000 0.000000 0.000000"] * 40
    (tmp_path / "a02_s01_e01_skeleton3D.txt").write_text("\n".join(zeros) + "\n")
    with_nan = [*frame[:5], "nan 0.3 2.6 1.0", *frame[6:], *frame]
    (tmp_path / "a03_s01_e01_skeleton3D.txt").write_text("\n".join(with_nan) + "\n")
    (tmp_path / "a04_s01_e01_skeleton3D.txt").write_text("\n".join(frame) + "\n")

    result = ingest_msr_dir(tmp_path, workers=1)

    assert sorted(result.samples["sample_id"]) == ["a01_s01_e01", "a04_s01_e01"]
    skipped = result.skipped.set_index("sample_id")
    assert sorted(skipped.index) == ["a02_s01_e01", "a03_s01_e01"]
    assert "valid frame" in skipped.loc["a02_s01_e01", "reason"]
    assert "a03_s01_e01" in skipped.loc["a03_s01_e01", "path"]
    assert sum(result.skipped_counts().values()) == 2
    store = SequenceStore(result.sequences)
    single = store[list(store.ids).index("a04_s01_e01")]
    assert single.shape[0] == 1
    normalised = normalise_sequence(single, msr.LAYOUT, "view")
    assert np.isfinite(normalised).all() and normalised.any()
