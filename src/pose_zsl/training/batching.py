"""Batches of fixed-length skeleton windows built from the unpadded ``sequences`` table.

Sequences are stored unpadded as ``(T, M, V, C)``. The network wants ``(N, C, T, V, M)`` with a
fixed ``T``, so every batch is cut to ``window`` frames when it is assembled:

* ``"resize"`` (default): linear interpolation along time, so a whole action of any length fits
  the window. Leading and trailing empty frames (no body at all) are dropped first so that they do
  not take part in the interpolation.
* ``"pad"``: the original ST-GCN feeder: the sequence is written at the start of a zero window;
  a longer one is cropped, at a random offset in training and centred in evaluation.
* ``"loop"``: the (trimmed) sequence is repeated until the window is full; cropped like ``"pad"``
  when longer.

Bodies are padded with zeros or truncated to ``max_bodies``. Each item then goes through, in
this order: the per-recording normalisation (``normalise``, see
:mod:`pose_zsl.skeleton.normalise`; training and evaluation alike), in training with
``augment`` a random temporal crop, the windowing above, and in training with ``augment`` a
random linear spatial transform (:func:`augment_window`). All randomness (shuffle order, crop
offsets, augmentation) is derived from ``(seed, epoch, item)``, so batches do not depend on the
number of loader workers, and a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pose_zsl.skeleton.normalise import check_normalisation, normalise_sequence
from pose_zsl.skeleton.store import SequenceStore

logger = logging.getLogger(__name__)

WINDOW_MODES = ("resize", "pad", "loop")

#: Strengths of the optional training augmentation (``augment=True``), each drawn uniformly per
#: item: rotation about the vertical (y) axis up to +-AUGMENT_MAX_YAW_DEG degrees (the viewpoint,
#: the largest nuisance of small single-camera datasets), about the two horizontal axes up to
#: +-AUGMENT_MAX_TILT_DEG (camera pitch and roll, posture), a common scale of
#: 1 +- AUGMENT_MAX_SCALE (body size), shear terms up to +-AUGMENT_MAX_SHEAR (body proportions),
#: and a temporal crop keeping AUGMENT_MIN_CROP to all of the clip's valid frames (where the
#: action starts and ends, and its speed once resampled to the window). Small enough to keep
#: every action recognisable; the spatial transform is linear, so missing (zero) joints and
#: padding stay zero.
AUGMENT_MAX_YAW_DEG = 30.0
AUGMENT_MAX_TILT_DEG = 10.0
AUGMENT_MAX_SCALE = 0.1
AUGMENT_MAX_SHEAR = 0.1
AUGMENT_MIN_CROP = 0.8


class Batch(NamedTuple):
    """One collated batch: ``x`` (N, C, T, V, M) float32, ``y`` (N,) int64 labels, ``index``
    (N,) int64 positions of the items in their dataset (to map rows back to sample ids)."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


@dataclass(frozen=True)
class ScreenResult:
    """Store positions that can be fed to the network, and those skipped with their reason."""

    kept: np.ndarray  # int64 store positions, in input order
    skipped: pd.DataFrame  # columns: sample_id, reason


def check_sequence_layout(
    store: SequenceStore,
    positions: Sequence[int] | np.ndarray,
    num_joints: int,
    in_channels: int,
    layout: str,
) -> None:
    """Raise ValueError when a sequence's joints or channels do not fit the model's layout.

    A wrong layout is a configuration error for the whole table, never a per-sample skip.
    """
    for position in positions:
        _, _, joints, channels = store.shape(int(position))
        if joints != num_joints or channels != in_channels:
            raise ValueError(
                f"sequence {store.ids[int(position)]!r} has {joints} joints and {channels} "
                f"channels, but the model layout {layout!r} expects {num_joints} joints and "
                f"{in_channels} channels: choose the layout that matches the data"
            )


def select_sequences(
    store: SequenceStore,
    sample_ids: Iterable[str],
    num_joints: int | None,
    in_channels: int | None,
    layout: str,
    what: str = "samples",
) -> tuple[np.ndarray, ScreenResult]:
    """The store positions of ``sample_ids`` (in order) and the screened ones among them.

    Every sample must have a sequence, and every sequence must fit the layout (``num_joints``
    joints and ``in_channels`` channels, those of the first sequence when None; no check when
    ``num_joints`` is None); :func:`screen_sequences` then drops the unusable ones, counted.

    Raises:
        ValueError: a sample without a sequence (``what`` says which samples), or a sequence
            that does not fit the layout (:func:`check_sequence_layout`).
    """
    ids = list(sample_ids)
    missing = [sid for sid in ids if sid not in store]
    if missing:
        raise ValueError(
            f"{len(missing)} {what} have no sequence in the sequences table, e.g. {missing[:5]}"
        )
    positions = np.array([store.index_of(sid) for sid in ids], dtype=np.int64)
    if len(positions) and num_joints is not None:
        channels = in_channels if in_channels is not None else store.shape(int(positions[0]))[3]
        check_sequence_layout(store, positions, num_joints, channels, layout)
    return positions, screen_sequences(store, positions)


def screen_sequences(store: SequenceStore, positions: Sequence[int] | np.ndarray) -> ScreenResult:
    """Drop sequences that cannot give a meaningful window, counting each with its reason.

    Reasons: ``"no frames"`` (T == 0 or no body slot), ``"non-finite coordinates"`` (NaN/inf),
    ``"no valid frames"`` (every coordinate is zero, i.e. no body was ever tracked).
    A warning is logged with the count; the caller decides what to do with ``skipped``.
    """
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    for raw_position in positions:
        position = int(raw_position)
        sequence = store[position]
        if sequence.size == 0:
            reason = "no frames"
        elif not np.isfinite(sequence).all():
            reason = "non-finite coordinates"
        elif not sequence.any():
            reason = "no valid frames"
        else:
            kept.append(position)
            continue
        skipped.append((store.ids[position], reason))
    skipped_frame = pd.DataFrame(skipped, columns=["sample_id", "reason"])
    if skipped:
        counts = skipped_frame["reason"].value_counts().to_dict()
        examples = ", ".join(f"{sid} ({why})" for sid, why in skipped[:5])
        logger.warning(
            "skipped %d of %d sequences that cannot be windowed %s, e.g. %s",
            len(skipped),
            len(kept) + len(skipped),
            counts,
            examples,
        )
    return ScreenResult(np.asarray(kept, dtype=np.int64), skipped_frame)


def _trim_empty_frames(sequence: np.ndarray) -> np.ndarray:
    """Drop leading and trailing frames in which no body has any non-zero coordinate."""
    valid = sequence.reshape(sequence.shape[0], -1).any(axis=1)
    frames = np.flatnonzero(valid)
    if frames.size == 0:
        raise ValueError("sequence has no valid frames (screen it with screen_sequences first)")
    return sequence[frames[0] : frames[-1] + 1]


def _crop_start(length: int, window: int, rng: np.random.Generator | None) -> int:
    """Random offset in training (``rng`` given), centred otherwise."""
    if rng is None:
        return (length - window) // 2
    return int(rng.integers(0, length - window + 1))


def fit_window(
    sequence: np.ndarray,
    window: int,
    mode: str = "resize",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Return ``sequence`` (T, M, V, C) as a new float32 array of exactly ``window`` frames.

    ``rng`` selects random crops (training); ``None`` selects centred crops (evaluation).
    """
    if mode not in WINDOW_MODES:
        raise ValueError(f"window mode {mode!r} is not one of {WINDOW_MODES}")
    if window < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    if mode == "pad":
        length = sequence.shape[0]
        out = np.zeros((window, *sequence.shape[1:]), dtype=np.float32)
        if length <= window:
            out[:length] = sequence
        else:
            start = _crop_start(length, window, rng)
            out[:] = sequence[start : start + window]
        return out
    sequence = _trim_empty_frames(sequence)
    length = sequence.shape[0]
    if mode == "resize":
        if length == 1:
            return np.repeat(sequence.astype(np.float32), window, axis=0)
        where = np.linspace(0.0, length - 1, window)
        lower = np.floor(where).astype(np.int64)
        upper = np.minimum(lower + 1, length - 1)
        frac = (where - lower).astype(np.float32)[:, None, None, None]
        return (sequence[lower] * (1.0 - frac) + sequence[upper] * frac).astype(np.float32)
    # loop
    if length >= window:
        start = _crop_start(length, window, rng)
        return np.array(sequence[start : start + window], dtype=np.float32)
    return sequence[np.arange(window) % length].astype(np.float32)


def fit_bodies(sequence: np.ndarray, max_bodies: int) -> np.ndarray:
    """Pad with all-zero bodies, or keep the first ``max_bodies`` body slots."""
    bodies = sequence.shape[1]
    if bodies == max_bodies:
        return sequence
    if bodies > max_bodies:
        return sequence[:, :max_bodies]
    pad = np.zeros((sequence.shape[0], max_bodies - bodies, *sequence.shape[2:]), np.float32)
    return np.concatenate([sequence, pad], axis=1)


def _axis_rotation(axis: int, max_deg: float, rng: np.random.Generator) -> np.ndarray:
    """A random rotation by up to +-``max_deg`` degrees about coordinate axis ``axis``."""
    angle = math.radians(rng.uniform(-max_deg, max_deg))
    cos, sin = math.cos(angle), math.sin(angle)
    first, second = [a for a in range(3) if a != axis]
    rotation = np.eye(3)
    rotation[first, first] = rotation[second, second] = cos
    rotation[first, second], rotation[second, first] = -sin, sin
    return rotation


def random_spatial_transform(rng: np.random.Generator) -> np.ndarray:
    """A random 3x3 ``scale * shear @ rotation`` (strengths: the ``AUGMENT_*`` constants).

    The rotation is about y (vertical, up to AUGMENT_MAX_YAW_DEG) after x and z (up to
    AUGMENT_MAX_TILT_DEG); the shear is the identity plus off-diagonal terms.
    """
    rotation = (
        _axis_rotation(1, AUGMENT_MAX_YAW_DEG, rng)
        @ _axis_rotation(0, AUGMENT_MAX_TILT_DEG, rng)
        @ _axis_rotation(2, AUGMENT_MAX_TILT_DEG, rng)
    )
    shear = np.eye(3)
    off_diagonal = ~np.eye(3, dtype=bool)
    shear[off_diagonal] = rng.uniform(-AUGMENT_MAX_SHEAR, AUGMENT_MAX_SHEAR, size=6)
    scale = rng.uniform(1.0 - AUGMENT_MAX_SCALE, 1.0 + AUGMENT_MAX_SCALE)
    return scale * shear @ rotation


def augment_window(window_array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply :func:`random_spatial_transform` to every joint of a (T, M, V, 3) window.

    Linear with no translation, so zero (missing or padded) joints stay exactly zero.
    """
    transform = random_spatial_transform(rng).astype(np.float32)
    return window_array @ transform.T


def temporal_crop(sequence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random contiguous AUGMENT_MIN_CROP..100 % of the valid frames of ``sequence``.

    Leading and trailing empty frames are dropped first, so the crop is a share of the action,
    not of the blank frames around it; windowing then resamples (``"resize"``), pads or loops
    the crop as usual.
    """
    sequence = _trim_empty_frames(sequence)
    length = sequence.shape[0]
    keep = max(1, round(rng.uniform(AUGMENT_MIN_CROP, 1.0) * length))
    start = int(rng.integers(0, length - keep + 1))
    return sequence[start : start + keep]


def item_seed(seed: int, epoch: int, item: int) -> int:
    """Independent random stream per (seed, epoch, item), whatever process draws it."""
    return int(np.random.SeedSequence([seed, epoch, item]).generate_state(1, np.uint64)[0])


class SkeletonDataset(Dataset):
    """Map-style dataset over store positions, returning unpadded per-sample arrays.

    An item key is an ``int`` or an ``(int, epoch)`` pair (as :class:`EpochSampler` yields);
    an item is ``(sequence (T, M, V, C) read-only view, label, key index, item seed)``.
    """

    def __init__(
        self,
        store: SequenceStore,
        positions: Sequence[int] | np.ndarray,
        labels: Sequence[int] | np.ndarray,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.positions = np.asarray(positions, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.positions.shape != self.labels.shape:
            raise ValueError(
                f"{len(self.positions)} positions but {len(self.labels)} labels for the dataset"
            )
        self.seed = seed

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[np.ndarray, int, int, int]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        sequence = self.store[int(self.positions[index])]
        return sequence, int(self.labels[index]), int(index), item_seed(self.seed, epoch, index)


#: How a sharded epoch handles a length that is not a multiple of the world size: ``"pad"``
#: repeats items from the start of the epoch's order (every item is seen, a few twice), ``"drop"``
#: leaves out the last items of the order (a few items are not seen that epoch), both so that
#: every rank gets the same number of items (and so runs the same number of steps, which DDP
#: needs); ``"uneven"`` gives each rank its own items only, one fewer on some ranks (for
#: evaluation and extraction, where ranks do not step together).
SHARD_REMAINDERS = ("pad", "drop", "uneven")


class EpochSampler(Sampler):
    """Yields ``(index, epoch)`` keys, shuffled per epoch from ``(seed, epoch)`` when asked.

    Call :meth:`set_epoch` before each epoch; the order and the per-item randomness then depend
    only on the seed and the epoch number (like ``DistributedSampler``).

    With ``world_size > 1`` the sampler yields rank ``rank``'s shard of that order: positions
    ``rank, rank + world_size, ...`` of the (padded or truncated, see :data:`SHARD_REMAINDERS`)
    epoch order. Shards of different ranks are disjoint (apart from padding) and together
    cover the epoch; consecutive ``b`` keys of every rank together form the same ``b *
    world_size`` items that one process would batch from the same order, so a global batch is
    the same set of samples whatever the number of processes.
    """

    def __init__(
        self,
        length: int,
        shuffle: bool,
        seed: int = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
        remainder: str = "pad",
    ) -> None:
        if length < 0:
            raise ValueError(f"sampler length must be >= 0, got {length}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"sampler rank {rank} is not in [0, world_size={world_size})")
        if remainder not in SHARD_REMAINDERS:
            raise ValueError(f"sampler remainder {remainder!r} is not one of {SHARD_REMAINDERS}")
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.remainder = remainder
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_length(self) -> int:
        """Items over all ranks this epoch, after padding or dropping."""
        if self.remainder == "pad":
            return math.ceil(self.length / self.world_size) * self.world_size
        if self.remainder == "drop":
            return self.length // self.world_size * self.world_size
        return self.length

    def __len__(self) -> int:
        return len(range(self.rank, self._epoch_length(), self.world_size))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        else:
            order = np.arange(self.length)
        total = self._epoch_length()
        # np.resize repeats the order cyclically: the padding is the start of this epoch's order
        order = np.resize(order, total) if total > self.length else order[:total]
        return ((int(i), self.epoch) for i in order[self.rank :: self.world_size])


class WindowCollate:
    """Collate :class:`SkeletonDataset` items into a :class:`Batch` of fixed windows.

    ``train=True`` uses random crops (and augmentation when enabled) drawn from each item's seed;
    ``train=False`` is deterministic (centred crops, no augmentation). ``normalise`` (one of
    :data:`pose_zsl.skeleton.normalise.NORMALISATIONS`) is applied to every item after
    :func:`fit_bodies` and before windowing and augmentation, in training and evaluation alike;
    anything but ``"none"`` needs the data's ``layout``.
    """

    def __init__(
        self,
        window: int,
        max_bodies: int,
        mode: str = "resize",
        train: bool = False,
        augment: bool = False,
        normalise: str = "none",
        layout: str | None = None,
    ) -> None:
        if mode not in WINDOW_MODES:
            raise ValueError(f"window mode {mode!r} is not one of {WINDOW_MODES}")
        if window < 1 or max_bodies < 1:
            raise ValueError(f"window ({window}) and max_bodies ({max_bodies}) must be >= 1")
        check_normalisation(normalise, layout)  # fail at construction, not in a worker
        self.window = window
        self.max_bodies = max_bodies
        self.mode = mode
        self.train = train
        self.augment = augment
        self.normalise = normalise
        self.layout = layout

    def __call__(self, items: Sequence[tuple[np.ndarray, int, int, int]]) -> Batch:
        first = items[0][0]
        joints, channels = first.shape[2], first.shape[3]
        out = np.empty((len(items), self.window, self.max_bodies, joints, channels), np.float32)
        for row, (sequence, _, _, seed) in enumerate(items):
            rng = np.random.default_rng(seed) if self.train else None
            augment = rng is not None and self.augment
            bodies = fit_bodies(sequence, self.max_bodies)
            if self.normalise != "none":
                bodies = normalise_sequence(bodies, self.layout, self.normalise)
            if augment:
                bodies = temporal_crop(bodies, rng)
            windowed = fit_window(bodies, self.window, self.mode, rng)
            if augment:
                windowed = augment_window(windowed, rng)
            out[row] = windowed
        # (N, T, M, V, C) -> (N, C, T, V, M), contiguous for the network
        x = torch.from_numpy(out).permute(0, 4, 1, 3, 2).contiguous()
        y = torch.tensor([item[1] for item in items], dtype=torch.int64)
        index = torch.tensor([item[2] for item in items], dtype=torch.int64)
        return Batch(x, y, index)


def make_loader(
    dataset: SkeletonDataset,
    collate: WindowCollate,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
    remainder: str = "pad",
) -> tuple[DataLoader, EpochSampler]:
    """A DataLoader over ``dataset`` plus its sampler (call ``sampler.set_epoch`` each epoch).

    Workers are kept alive between epochs; batches are identical for any ``num_workers``.
    ``rank``/``world_size``/``remainder`` shard the data for one process of a distributed run
    (see :class:`EpochSampler`); ``batch_size`` is then this process's share of the batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    sampler = EpochSampler(
        len(dataset),
        shuffle=shuffle,
        seed=seed,
        rank=rank,
        world_size=world_size,
        remainder=remainder,
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )
    return loader, sampler
