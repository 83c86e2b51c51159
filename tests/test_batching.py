"""Windowing, screening and loaders over the unpadded ``sequences`` table."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest
import torch

from pose_zsl.skeleton.store import SEQUENCE_SCHEMA, SequenceStore, sequences_table
from pose_zsl.training import batching
from pose_zsl.training.batching import (
    SkeletonDataset,
    WindowCollate,
    check_sequence_layout,
    fit_bodies,
    fit_window,
    make_loader,
    screen_sequences,
)


def ramp(frames: int, bodies: int = 1, joints: int = 25) -> np.ndarray:
    """(T, M, V, 3) sequence whose x coordinate is the frame number + 1 (never zero)."""
    sequence = np.zeros((frames, bodies, joints, 3), np.float32)
    sequence[..., 0] = np.arange(1, frames + 1, dtype=np.float32)[:, None, None]
    sequence[..., 1] = np.arange(joints, dtype=np.float32)[None, None, :]
    sequence[..., 2] = np.arange(bodies, dtype=np.float32)[None, :, None] + 0.5
    return sequence


def raw_sequences_table(ids: list[str], arrays: list[np.ndarray]) -> pa.Table:
    """Like ``sequences_table`` but without its NaN check, to model a table written elsewhere."""
    flat = np.concatenate([a.ravel() for a in arrays]).astype(np.float32)
    offsets = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([a.size for a in arrays], out=offsets[1:])
    data = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat))
    shapes = pa.array([list(a.shape) for a in arrays], pa.list_(pa.int32(), 4))
    return pa.Table.from_arrays([pa.array(ids), data, shapes], schema=SEQUENCE_SCHEMA)


def test_resize_interpolates_linearly_and_keeps_the_ends() -> None:
    out = fit_window(ramp(11), window=21, mode="resize")
    assert out.shape == (21, 1, 25, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0, 0], np.linspace(1.0, 11.0, 21), rtol=0, atol=1e-6)
    shrunk = fit_window(ramp(40), window=5, mode="resize")
    np.testing.assert_allclose(shrunk[:, 0, 0, 0], [1.0, 10.75, 20.5, 30.25, 40.0], atol=1e-5)
    single = fit_window(ramp(1), window=4, mode="resize")
    assert (single[:, 0, 0, 0] == 1.0).all()


def test_resize_and_loop_drop_empty_frames_at_the_ends_but_pad_keeps_them() -> None:
    sequence = np.zeros((10, 1, 25, 3), np.float32)
    sequence[3:7] = ramp(4)
    resized = fit_window(sequence, window=4, mode="resize")
    np.testing.assert_array_equal(resized[:, 0, 0, 0], [1, 2, 3, 4])
    looped = fit_window(sequence, window=6, mode="loop")
    np.testing.assert_array_equal(looped[:, 0, 0, 0], [1, 2, 3, 4, 1, 2])
    padded = fit_window(sequence, window=12, mode="pad")
    np.testing.assert_array_equal(padded[:10], sequence)
    assert not padded[10:].any()


def test_pad_zero_fills_short_and_crops_long_sequences() -> None:
    short = fit_window(ramp(5), window=8, mode="pad")
    np.testing.assert_array_equal(short[:5, 0, 0, 0], [1, 2, 3, 4, 5])
    assert not short[5:].any()
    centred = fit_window(ramp(20), window=8, mode="pad")
    np.testing.assert_array_equal(centred[:, 0, 0, 0], np.arange(7, 15))
    starts = {
        int(fit_window(ramp(20), 8, "pad", np.random.default_rng(s))[0, 0, 0, 0]) for s in range(40)
    }
    assert len(starts) > 3 and min(starts) >= 1 and max(starts) <= 13


def test_loop_repeats_short_sequences() -> None:
    out = fit_window(ramp(3), window=7, mode="loop")
    np.testing.assert_array_equal(out[:, 0, 0, 0], [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(fit_window(ramp(9), 3, "loop")[:, 0, 0, 0], [4, 5, 6])


def test_window_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="window mode 'stretch'"):
        fit_window(ramp(3), 4, "stretch")
    with pytest.raises(ValueError, match="window must be >= 1"):
        fit_window(ramp(3), 0)
    with pytest.raises(ValueError, match="window mode"):
        WindowCollate(8, 2, mode="stretch")


def test_bodies_are_padded_with_zeros_or_truncated() -> None:
    two = ramp(4, bodies=2)
    padded = fit_bodies(ramp(4, bodies=1), 3)
    assert padded.shape == (4, 3, 25, 3) and not padded[:, 1:].any()
    np.testing.assert_array_equal(fit_bodies(ramp(4, bodies=3), 2), ramp(4, bodies=3)[:, :2])
    assert fit_bodies(two, 2) is two


def test_collate_builds_n_c_t_v_m_batches_with_the_right_layout() -> None:
    arrays = [ramp(7, bodies=1), ramp(30, bodies=3), ramp(12, bodies=2)]
    store = SequenceStore(sequences_table(["a", "b", "c"], arrays))
    dataset = SkeletonDataset(store, [2, 0, 1], labels=[5, 6, 7])
    batch = WindowCollate(window=16, max_bodies=2, mode="pad")([dataset[i] for i in range(3)])
    assert batch.x.shape == (3, 3, 16, 25, 2) and batch.x.dtype == torch.float32
    assert batch.x.is_contiguous()
    assert batch.y.tolist() == [5, 6, 7] and batch.index.tolist() == [0, 1, 2]
    expected = fit_window(fit_bodies(arrays[2], 2), 16, "pad")  # (T, M, V, C)
    np.testing.assert_array_equal(batch.x[0].numpy(), expected.transpose(3, 0, 2, 1))
    assert not batch.x[1, :, :, :, 1].any()  # the single-body clip's second body is zero


def test_screening_counts_and_logs_unusable_sequences(caplog: pytest.LogCaptureFixture) -> None:
    nan = ramp(5)
    nan[2, 0, 3, 1] = np.nan
    arrays = [ramp(5), nan, np.zeros((6, 2, 25, 3), np.float32), np.zeros((0, 1, 25, 3)), ramp(2)]
    store = SequenceStore(raw_sequences_table(["ok", "nan", "empty", "none", "ok2"], arrays))
    with caplog.at_level(logging.WARNING, logger="pose_zsl.training.batching"):
        result = screen_sequences(store, range(5))
    assert result.kept.tolist() == [0, 4]
    assert dict(zip(result.skipped["sample_id"], result.skipped["reason"], strict=True)) == {
        "nan": "non-finite coordinates",
        "empty": "no valid frames",
        "none": "no frames",
    }
    assert "skipped 3 of 5 sequences" in caplog.text


def test_layout_mismatch_is_a_clear_error() -> None:
    store = SequenceStore(sequences_table(["kinect"], [ramp(4, joints=20)]))
    with pytest.raises(ValueError, match=r"'kinect' has 20 joints .* 'ntu-rgb\+d' expects 25"):
        check_sequence_layout(store, [0], 25, 3, "ntu-rgb+d")


def _epoch_batches(num_workers: int, epoch: int, augment: bool = False) -> list:
    rng = np.random.default_rng(1)
    arrays = [ramp(int(t), bodies=2) * rng.uniform(0.5, 2) for t in rng.integers(10, 60, 10)]
    store = SequenceStore(sequences_table([f"s{i}" for i in range(10)], arrays))
    dataset = SkeletonDataset(store, np.arange(10), np.arange(10) % 3, seed=7)
    loader, sampler = make_loader(
        dataset,
        WindowCollate(16, 2, mode="pad", train=True, augment=augment),
        batch_size=4,
        shuffle=True,
        seed=7,
        num_workers=num_workers,
    )
    sampler.set_epoch(epoch)
    return list(loader)


def test_loader_is_deterministic_per_seed_and_epoch_whatever_the_workers() -> None:
    first, again, other_epoch = _epoch_batches(0, 0), _epoch_batches(0, 0), _epoch_batches(0, 1)
    with_worker = _epoch_batches(1, 0)
    assert [len(b.y) for b in first] == [4, 4, 2]
    for a, b, c in zip(first, again, with_worker, strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.x, c.x) and torch.equal(a.index, c.index)
    order = torch.cat([b.index for b in first])
    assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(order, torch.cat([b.index for b in other_epoch]))


def test_augmentation_is_off_by_default_and_keeps_padding_zero() -> None:
    plain, augmented = _epoch_batches(0, 0), _epoch_batches(0, 0, augment=True)
    for a, b in zip(plain, augmented, strict=True):
        assert torch.equal(a.index, b.index)
        assert not torch.equal(a.x, b.x)
        # ramp joints are never zero, so a zero joint is padding. The temporal crop may shorten
        # a clip (more padding), never lengthen it; the linear spatial transform keeps padding
        # zero and never zeroes a joint of the clip.
        kept_plain, kept_aug = (a.x != 0).any(dim=1), (b.x != 0).any(dim=1)  # (N, T, V, M)
        assert not (kept_aug & ~kept_plain).any()
        assert (kept_aug.all(dim=2) | ~kept_aug.any(dim=2)).all()  # whole frames only
        frames_plain, frames_aug = kept_plain[:, :, 0].sum(dim=1), kept_aug[:, :, 0].sum(dim=1)
        assert (frames_aug >= batching.AUGMENT_MIN_CROP * frames_plain - 1).all()
    eval_collate = WindowCollate(16, 2, mode="pad", train=False, augment=True)
    store = SequenceStore(sequences_table(["a"], [ramp(20)]))
    item = SkeletonDataset(store, [0], [0])[0]
    np.testing.assert_array_equal(
        eval_collate([item]).x[0, :, :, :, 0].numpy(),
        fit_window(ramp(20), 16, "pad")[:, 0].transpose(2, 0, 1),
    )


def test_loader_rejects_bad_arguments() -> None:
    store = SequenceStore(sequences_table(["a"], [ramp(3)]))
    dataset = SkeletonDataset(store, [0], [0])
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(dataset, WindowCollate(4, 1), batch_size=0, shuffle=False)
    with pytest.raises(ValueError, match="1 positions but 2 labels"):
        SkeletonDataset(store, [0], [0, 1])
