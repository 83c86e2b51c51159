"""Train the zero-shot heads of :mod:`pose_zsl.models.heads` on seen-class features.

:func:`train_head` is the one entry point for the three kinds: ``devise`` and ``infonce`` train
in epochs over shuffled mini-batches, ``relation_net`` in episodes of sampled seen-class
features compared with every candidate class embedding (the paper's schedule).

Zero-shot integrity: training takes the features and labels of *seen* classes only and raises if a
label is outside ``seen_class_ids``. With ``negatives_include_unseen`` (the paper's "seen and
unseen" negatives, default) the *label embeddings* of unseen classes take part in the loss as wrong
classes; no unseen-class sample ever does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from pose_zsl.models.heads import (
    HUB_REFERENCE_ROWS,
    DeViSEConfig,
    HeadConfig,
    InfoNCEConfig,
    RelationNetConfig,
    RelationNetwork,
    ZeroShotHead,
    as_matrix,
    build_head,
    default_config,
    head_input_features,
    hinge_rank_loss,
    infonce_loss,
    l2_normalise,
    relation_mse_loss,
    validate_config,
)
from pose_zsl.training.device import resolve_device

logger = logging.getLogger(__name__)

#: ``progress_callback(step, total_steps, loss)``; step counts epochs or episodes (1-based).
ProgressCallback = Callable[[int, int, float], None]

_EPISODE_INDEX_CHUNK = 1024  # episodes whose sample indices are drawn in one generator call


def hub_reference(features: np.ndarray, seed: int) -> np.ndarray:
    """The training features a head keeps for its hubness correction: all of them, or a seeded
    sample of :data:`~pose_zsl.models.heads.HUB_REFERENCE_ROWS` in their original order."""
    if len(features) <= HUB_REFERENCE_ROWS:
        return np.asarray(features, dtype=np.float32)
    rows = np.random.default_rng(seed).choice(len(features), HUB_REFERENCE_ROWS, replace=False)
    return np.asarray(features[np.sort(rows)], dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _as_ids(name: str, values: Sequence[int] | np.ndarray, length: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    if length is not None and array.size != length:
        raise ValueError(f"{name} has {array.size} entries, expected {length}")
    return array.astype(np.int64, copy=False)


def _check_class_table(
    class_embeddings: np.ndarray, class_ids: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    embeddings = as_matrix("class_embeddings", class_embeddings)
    ids = _as_ids("class_ids", class_ids, length=embeddings.shape[0])
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"class_ids repeat id(s) {unique[counts > 1].tolist()}")
    return embeddings, ids


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def train_head(
    kind: str,
    features: np.ndarray,
    labels: np.ndarray,
    class_embeddings: np.ndarray,
    class_ids: Sequence[int] | np.ndarray,
    *,
    seen_class_ids: Sequence[int] | np.ndarray,
    config: HeadConfig | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress_callback: ProgressCallback | None = None,
) -> tuple[ZeroShotHead, pd.DataFrame]:
    """Train a zero-shot head on seen-class features.

    Args:
        kind: ``"devise"``, ``"relation_net"`` or ``"infonce"``.
        features: ``(N, D)`` visual features of seen-class training samples.
        labels: ``(N,)`` action ids of those samples; every one must be in ``seen_class_ids``.
        class_embeddings: ``(K, E)`` label embeddings; row ``i`` belongs to ``class_ids[i]``.
        class_ids: ``(K,)`` action ids of the embedding rows (seen and unseen classes).
        seen_class_ids: the classes the head may be trained on.
        config: settings; ``None`` = the paper's (:func:`default_config`).
        seed: seeds initialisation and sampling; CPU training is deterministic for a seed.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
        progress_callback: called as ``(step, total_steps, loss)`` at each progress record.

    Returns:
        The trained head (in eval mode, on the CPU) and its history: one row per progress record
        with columns ``kind, step, step_unit ("epoch"|"episode"), loss, lr``.

    Raises:
        ValueError: bad shapes, empty or non-finite inputs, seen classes without an embedding, or
            a training label outside ``seen_class_ids`` (the zero-shot leakage guard).
    """
    config = default_config(kind) if config is None else config
    validate_config(kind, config)
    features = as_matrix("features", features)
    labels = _as_ids("labels", labels, length=features.shape[0])
    embeddings, ids = _check_class_table(class_embeddings, class_ids)
    seen = np.unique(_as_ids("seen_class_ids", seen_class_ids))

    leaked = np.setdiff1d(np.unique(labels), seen)
    if leaked.size:
        raise ValueError(
            f"zero-shot leakage: training labels include class id(s) {leaked.tolist()} that are "
            f"not in seen_class_ids; unseen-class samples must never reach head training"
        )
    no_embedding = np.setdiff1d(seen, ids)
    if no_embedding.size:
        raise ValueError(
            f"seen class id(s) {no_embedding.tolist()} have no row in class_embeddings/class_ids; "
            "the feature and embedding class sets disagree"
        )

    if config.negatives_include_unseen:
        candidate_rows = np.arange(ids.size)
    else:
        candidate_rows = np.flatnonzero(np.isin(ids, seen))
    if candidate_rows.size < 2:
        raise ValueError(
            f"training needs at least 2 candidate classes, got {ids[candidate_rows].tolist()}"
        )
    candidate_ids = ids[candidate_rows]
    by_id = np.argsort(candidate_ids)
    target_index = by_id[np.searchsorted(candidate_ids[by_id], labels)]

    torch_device = resolve_device(str(device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_head(
            kind,
            features.shape[1],
            embeddings.shape[1],
            config,
            min(len(features), HUB_REFERENCE_ROWS),
        )
    if isinstance(model, RelationNetwork) and config.prior_output_bias:
        # Start at the base rate 1/K instead of 0.5: the MSE pull of K-1 negatives towards 0
        # otherwise drives the relation layer's ReLUs dead in the first episodes.
        with torch.no_grad():
            model.relation_fc2.bias.fill_(-math.log(candidate_rows.size - 1))
    model.to(torch_device)
    model.train()
    generator = torch.Generator().manual_seed(seed)

    if getattr(config, "center", False):
        # The mean of this head's own (seen-class training) features, in float64 for the sum.
        mean = l2_normalise("features", features).mean(axis=0, dtype=np.float64)
        model.feature_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
    if config.hub_k:
        model.reference_features.copy_(torch.from_numpy(hub_reference(features, seed)))
    feats = torch.from_numpy(head_input_features(model, features)).to(torch_device)
    candidates = torch.from_numpy(l2_normalise("class_embeddings", embeddings)[candidate_rows]).to(
        torch_device
    )
    targets = torch.from_numpy(target_index.astype(np.int64)).to(torch_device)

    logger.info(
        "training %s head: %d samples of %d seen classes, %d candidate classes "
        "(unseen label embeddings as negatives: %s), device %s",
        kind,
        feats.shape[0],
        np.unique(labels).size,
        candidates.shape[0],
        config.negatives_include_unseen,
        torch_device,
    )
    if isinstance(config, RelationNetConfig):
        assert isinstance(model, RelationNetwork)
        records = _train_relation_net(
            model,
            feats,
            targets,
            candidates,
            config=config,
            generator=generator,
            progress_callback=progress_callback,
        )
    else:
        records = _train_epochs(
            kind,
            model,
            feats,
            targets,
            candidates,
            config=config,
            generator=generator,
            progress_callback=progress_callback,
        )
    model.eval()
    model.cpu()
    model.config = config
    model.seen_class_ids = seen
    return model, pd.DataFrame.from_records(
        records, columns=["kind", "step", "step_unit", "loss", "lr"]
    )


def _train_epochs(
    kind: str,
    model: ZeroShotHead,
    features: Tensor,
    targets: Tensor,
    candidates: Tensor,
    *,
    config: DeViSEConfig | InfoNCEConfig,
    generator: torch.Generator,
    progress_callback: ProgressCallback | None,
) -> list[dict[str, Any]]:
    if isinstance(config, DeViSEConfig):
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )

        def loss_of(scores: Tensor, target: Tensor) -> Tensor:
            return hinge_rank_loss(scores, target, config.margin)
    else:
        optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )

        def loss_of(scores: Tensor, target: Tensor) -> Tensor:
            return infonce_loss(scores, target, config.temperature)

    num_samples = features.shape[0]
    records: list[dict[str, Any]] = []
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(num_samples, generator=generator).to(features.device)
        total = torch.zeros((), device=features.device)
        for start in range(0, num_samples, config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = loss_of(model(features[batch], candidates), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * batch.numel()
        if epoch % config.log_every == 0 or epoch == config.epochs:
            mean_loss = float(total) / num_samples
            _record(
                records,
                kind=kind,
                step=epoch,
                total=config.epochs,
                unit="epoch",
                loss=mean_loss,
                lr=config.lr,
                progress_callback=progress_callback,
            )
    return records


def _train_relation_net(
    model: RelationNetwork,
    features: Tensor,
    targets: Tensor,
    candidates: Tensor,
    *,
    config: RelationNetConfig,
    generator: torch.Generator,
    progress_callback: ProgressCallback | None,
) -> list[dict[str, Any]]:
    optimizer, scheduler = relation_net_optimizer(model, config)
    num_samples = features.shape[0]
    records: list[dict[str, Any]] = []
    window_loss = torch.zeros((), device=features.device)
    window = 0
    episode = 0
    while episode < config.episodes:
        chunk = min(_EPISODE_INDEX_CHUNK, config.episodes - episode)
        # Indices for a chunk of episodes at once: one host->device copy instead of one per episode.
        chunk_indices = torch.randint(
            num_samples, (chunk, config.batch_size), generator=generator
        ).to(features.device)
        for batch in chunk_indices:
            relations = model(features[batch], candidates)
            loss = relation_mse_loss(relations, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            episode += 1
            window_loss += loss.detach()
            window += 1
            if episode % config.log_every == 0 or episode == config.episodes:
                lr = optimizer.param_groups[0]["lr"]
                _record(
                    records,
                    kind="relation_net",
                    step=episode,
                    total=config.episodes,
                    unit="episode",
                    loss=float(window_loss) / window,
                    lr=lr,
                    progress_callback=progress_callback,
                )
                window_loss.zero_()
                window = 0
    return records


def relation_net_optimizer(
    model: RelationNetwork, config: RelationNetConfig
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.StepLR]:
    """Adam with the configured step decay (stepped once per episode); fused kernels."""
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
    )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.lr_step, gamma=config.lr_gamma
    )
    return optimizer, scheduler


def _record(
    records: list[dict[str, Any]],
    *,
    kind: str,
    step: int,
    total: int,
    unit: str,
    loss: float,
    lr: float,
    progress_callback: ProgressCallback | None,
) -> None:
    if not math.isfinite(loss):
        raise FloatingPointError(f"{kind} head training diverged: loss {loss} at {unit} {step}")
    records.append({"kind": kind, "step": step, "step_unit": unit, "loss": loss, "lr": lr})
    logger.info("%s head: %s %d/%d loss %.6f lr %.3g", kind, unit, step, total, loss, lr)
    if progress_callback is not None:
        progress_callback(step, total, loss)
