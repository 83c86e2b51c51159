"""Frozen ST-GCN feature extraction for every sample (seen and unseen, train and test).

The feature is the paper's "256-D visual feature just before the final average pooling and
softmax", pooled over time, joints and bodies exactly as the reference model does before its
classifier; the seen-class logits come from the same forward pass (the "vanilla ST-GCN" baseline).
Windowing is the evaluation windowing of training: deterministic, centred crops, no augmentation.

Under a ``torchrun`` launch every rank extracts its own shard of the samples and the shards are
gathered, so every rank returns the same complete table (callers save it on rank 0 only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pose_zsl.skeleton.store import SequenceStore
from pose_zsl.training.batching import (
    SkeletonDataset,
    WindowCollate,
    make_loader,
    select_sequences,
)
from pose_zsl.training.device import autocast, configure_backend, resolve_device, resolve_precision
from pose_zsl.training.distributed import (
    DEFAULT_TIMEOUT_S,
    DistContext,
    DistributedError,
    rank_logger,
    setup_distributed,
)
from pose_zsl.training.stgcn_trainer import check_class_ids

logger = logging.getLogger(__name__)

FEATURE_COLUMNS = ("sample_id", "action_id", "protocol_split", "is_seen", "feature", "seen_logits")


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features (N, D) and logits (N, num_classes), from one forward pass when the model
    offers it (``STGCN.forward_with_features``), else from ``extract_features`` and ``forward``."""
    if hasattr(model, "forward_with_features"):
        logits, features = model.forward_with_features(x)
        return features, logits
    return model.extract_features(x), model(x)


def _windowing(
    meta: dict[str, Any] | None,
    window: int | None,
    max_bodies: int | None,
    window_mode: str | None,
) -> tuple[int, int, str, str]:
    """The training windowing, from the artefact meta or explicit arguments (which must agree),
    plus the normalisation, from the meta ("none" without one, or for an older artefact)."""
    given = {"window": window, "max_bodies": max_bodies, "window_mode": window_mode}
    if meta is not None:
        for key, value in given.items():
            if value is not None and value != meta[key]:
                raise ValueError(
                    f"{key}={value!r} differs from the model's training value {meta[key]!r}"
                )
            given[key] = meta[key]
    absent = [key for key, value in given.items() if value is None]
    if absent:
        raise ValueError(f"extract_features needs {absent} (or the model artefact's meta)")
    normalise = str((meta or {}).get("normalise", "none"))
    return int(given["window"]), int(given["max_bodies"]), str(given["window_mode"]), normalise


def _model_layout(model: nn.Module) -> tuple[str | None, int | None, int | None]:
    """(layout name, joints, input channels) the model was built for, where it says so."""
    layout = getattr(model, "layout", None)
    name = getattr(layout, "name", layout)
    joints = getattr(layout, "num_joints", None)
    if joints is None and isinstance(getattr(model, "A", None), torch.Tensor):
        joints = int(model.A.shape[-1])
    channels = getattr(model, "in_channels", None)
    return (str(name) if name is not None else None), joints, channels


def _gather_shards(
    ctx: DistContext,
    items: list[np.ndarray],
    features: list[np.ndarray],
    logits: list[np.ndarray],
    num_seen: int,
    failure: Exception | None,
) -> tuple[np.ndarray, np.ndarray]:
    """All ranks' (features, logits) in dataset order; a failure on any rank fails every rank."""
    local = (
        np.concatenate(items) if items else np.zeros(0, np.int64),
        np.concatenate(features) if features else None,
        np.concatenate(logits) if logits else None,
    )
    shards = ctx.all_gather_object(None if failure is not None else local)
    if failure is not None:
        raise failure
    failed = [rank for rank, shard in enumerate(shards) if shard is None]
    if failed:
        raise DistributedError(f"rank {ctx.rank}: feature extraction failed on ranks {failed}")
    filled = [shard for shard in shards if shard[1] is not None]
    if not filled:
        return np.zeros((0, 0), np.float32), np.zeros((0, num_seen), np.float32)
    order = np.argsort(np.concatenate([shard[0] for shard in filled]), kind="stable")
    feature_array = np.concatenate([shard[1] for shard in filled])[order]
    logit_array = np.concatenate([shard[2] for shard in filled])[order]
    return feature_array, logit_array


def extract_features(
    model: nn.Module,
    samples: pd.DataFrame,
    sequences: pa.Table,
    class_ids_seen: Sequence[int],
    *,
    unseen_ids: Sequence[int] | None = None,
    window: int | None = None,
    max_bodies: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    meta: dict[str, Any] | None = None,
    protocol: str = "xsub",
    window_mode: str | None = None,
    precision: str = "fp32",
    num_workers: int = 0,
    progress: logging.Logger | logging.LoggerAdapter = logger,
    distributed_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Run the frozen ``model`` over all samples and return the feature table.

    Columns: sample_id, action_id, protocol_split (``samples[protocol]``: "train"/"test"/None),
    is_seen (action in ``class_ids_seen``), feature (float32 (D,)), seen_logits (float32
    (num_seen,), column j is seen class ``sorted(class_ids_seen)[j]``). Rows follow the samples
    table's order. Sequences that cannot be windowed (no valid frames, NaN) are left out with a
    counted warning; their ids and reasons are in ``frame.attrs["skipped"]``.

    ``window``, ``max_bodies`` and ``window_mode`` must be the ones the model was trained with:
    pass the model artefact's ``meta`` and they are taken from it (an explicit value must then
    agree), and the artefact's class list is checked against ``class_ids_seen``. ``precision``
    defaults to fp32: the features are stored and reused, so they are computed at full precision.

    Under a distributed launch (see :mod:`pose_zsl.training.distributed`) every rank must call
    this with the same arguments: each computes every ``world_size``-th sample on its own device
    (``batch_size`` per rank) and all ranks return the same, complete table.

    Raises:
        ValueError: the sequences do not fit the model's layout, the logits do not match the
            seen classes, ``unseen_ids`` overlaps the seen ids or leaves classes unaccounted
            for, or a sample has no sequence.
    """
    seen = sorted(int(c) for c in class_ids_seen)
    window, max_bodies, window_mode, normalise = _windowing(meta, window, max_bodies, window_mode)
    actions = _checked_actions(samples, seen, unseen_ids, protocol, meta)
    store = SequenceStore(sequences)
    layout, joints, channels = _model_layout(model)
    positions, screened = select_sequences(
        store, samples["sample_id"], joints, channels, layout or "of the model"
    )
    kept_rows = np.flatnonzero(np.isin(positions, screened.kept))

    ctx = setup_distributed(resolve_device(device), distributed_timeout_s)
    progress = rank_logger(progress, ctx)
    collate = WindowCollate(
        window,
        max_bodies,
        window_mode,
        train=False,
        normalise=normalise,
        layout=(meta or {}).get("layout") or layout,
    )
    dataset = SkeletonDataset(store, positions[kept_rows], actions[kept_rows])
    loader, _ = make_loader(
        dataset,
        collate,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=ctx.device.type == "cuda",
        rank=ctx.rank,
        world_size=ctx.world_size,
        remainder="uneven",
    )
    shard, failure = _run_frozen(model, loader, ctx, precision, len(seen))
    feature_array, logit_array = _gather_shards(ctx, *shard, len(seen), failure)
    frame = _feature_table(samples.iloc[kept_rows], actions[kept_rows], protocol, seen,
                           feature_array, logit_array)  # fmt: skip
    frame.attrs["skipped"] = screened.skipped.to_dict("records")
    progress.info(
        "extracted %d-D ST-GCN features for %d samples (%d seen-class, %d unseen-class), "
        "%d skipped",
        feature_array.shape[1] if feature_array.ndim == 2 else 0,
        len(frame),
        int(frame["is_seen"].sum()),
        int((~frame["is_seen"]).sum()),
        len(screened.skipped),
    )
    return frame


def _checked_actions(
    samples: pd.DataFrame,
    seen: list[int],
    unseen_ids: Sequence[int] | None,
    protocol: str,
    meta: dict[str, Any] | None,
) -> np.ndarray:
    """The samples' action ids (-1 where missing), once the class lists and the protocol
    column are checked against the samples and the model artefact."""
    if not seen:
        raise ValueError("class_ids_seen is empty")
    if meta is not None:
        check_class_ids(meta["class_ids"], seen, "the ST-GCN model artefact")
    if protocol not in samples.columns:
        raise ValueError(f"samples table lacks the protocol column {protocol!r}")
    actions = samples["action_id"].to_numpy(dtype=np.int64, na_value=-1)
    if unseen_ids is not None:
        unseen = {int(c) for c in unseen_ids}
        overlap = sorted(unseen & set(seen))
        if overlap:
            raise ValueError(f"classes {overlap} are listed as both seen and unseen")
        unknown = sorted(set(actions.tolist()) - unseen - set(seen))
        if unknown:
            raise ValueError(
                f"samples of actions {unknown} are neither seen nor unseen in this split"
            )
    return actions


def _run_frozen(
    model: nn.Module, loader: DataLoader, ctx: DistContext, precision: str, num_seen: int
) -> tuple[tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]], Exception | None]:
    """This rank's (item indices, features, logits) per batch, in eval mode; under a
    distributed launch an error is returned, not raised, so the other ranks hear of it."""
    dtype = resolve_precision(precision, ctx.device)
    configure_backend(ctx.device)
    was_training = model.training
    model.eval()
    items: list[np.ndarray] = []
    features: list[np.ndarray] = []
    logits: list[np.ndarray] = []
    failure: Exception | None = None
    try:
        with torch.no_grad(), autocast(ctx.device, dtype):
            for batch in tqdm(
                loader, desc="ST-GCN features", leave=False, disable=None if ctx.is_main else True
            ):
                batch_features, batch_logits = features_and_logits(
                    model, batch.x.to(ctx.device, non_blocking=True)
                )
                if batch_logits.shape[1] != num_seen:
                    raise ValueError(
                        f"the model outputs {batch_logits.shape[1]} classes but "
                        f"{num_seen} seen class ids were given: the model was trained on "
                        "another class list"
                    )
                items.append(batch.index.numpy())
                features.append(batch_features.float().cpu().numpy())
                logits.append(batch_logits.float().cpu().numpy())
    except (ValueError, RuntimeError) as error:
        if not ctx.active:
            raise
        failure = error
    finally:
        model.train(was_training)
    return (items, features, logits), failure


def _feature_table(
    kept: pd.DataFrame,
    actions: np.ndarray,
    protocol: str,
    seen: list[int],
    feature_array: np.ndarray,
    logit_array: np.ndarray,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": kept["sample_id"].astype(str).to_numpy(),
            "action_id": actions,
            "protocol_split": np.array(
                [split if isinstance(split, str) else None for split in kept[protocol]], object
            ),
            "is_seen": np.isin(actions, seen),
            "feature": list(feature_array.astype(np.float32, copy=False)),
            "seen_logits": list(logit_array.astype(np.float32, copy=False)),
        }
    ).reset_index(drop=True)
