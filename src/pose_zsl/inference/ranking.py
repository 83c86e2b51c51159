"""Ranking candidate names for recordings: ST-GCN features, head scores, calibration, top-k.

Scores are the head's (higher = better); candidates that are training (seen) classes get the
calibrated-stacking constant subtracted (generalised zero-shot, Chao et al.), and the top-k are
kept, each with its share of the recording (:func:`candidate_shares`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from pose_zsl.inference.candidates import Candidates
from pose_zsl.inference.recordings import Recording, adapted_frame, skipped_frame

if TYPE_CHECKING:
    from pose_zsl.inference.variant import TrainedVariant

PREDICTION_COLUMNS = (
    "recording", "rank", "label", "score", "share", "raw_score", "seen", "matched_class"
)  # fmt: skip


@dataclass
class Ranking:
    """Top-k predictions (columns :data:`PREDICTION_COLUMNS`, one row per recording and rank),
    the recordings that could not be predicted (columns :data:`SKIPPED_COLUMNS`) and those
    that were read through a layout adapter (columns :data:`ADAPTED_COLUMNS`)."""

    predictions: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: skipped_frame([]))
    adapted: pd.DataFrame = field(default_factory=lambda: adapted_frame([]))

    def combined(self) -> pd.DataFrame:
        """Predictions plus one row per skipped recording (rank 0, no label, ``error`` set)."""
        predictions = self.predictions.assign(
            error=pd.Series(pd.NA, index=self.predictions.index, dtype="string")
        )
        if self.skipped.empty:
            return predictions.reset_index(drop=True)
        failures = pd.DataFrame(
            {
                "recording": self.skipped["recording"].astype("string"),
                "rank": np.zeros(len(self.skipped), dtype=np.int64),
                "label": pd.Series(pd.NA, index=self.skipped.index, dtype="string"),
                "score": np.nan,
                "share": np.nan,
                "raw_score": np.nan,
                "seen": False,
                "matched_class": pd.Series(pd.NA, index=self.skipped.index, dtype="string"),
                "error": self.skipped["reason"].astype("string"),
            }
        )
        return pd.concat([predictions, failures], ignore_index=True)


def candidate_shares(scores: np.ndarray) -> np.ndarray:
    """Each candidate's share of its recording (rows sum to 1): the softmax of a row's scores
    measured in standard deviations of that row.

    Heads score on different scales (Relation Net log-odds, DeViSE dot products, InfoNCE
    cosines, each less its hubness penalty when the head has one); the share reads the same
    for all and keeps the scores' order. It is a weight among the candidates given, not the
    probability that the recording shows one of them: it changes with the candidate list.
    """
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = scores.std(axis=1, keepdims=True)
    weights = np.exp(centred / np.where(spread > 0, spread, 1.0))
    return weights / weights.sum(axis=1, keepdims=True)


def empty_predictions() -> pd.DataFrame:
    """A prediction table without rows (columns and dtypes of :meth:`ZeroShotPredictor.rank`)."""
    return pd.DataFrame(
        {
            "recording": pd.Series(dtype="string"),
            "rank": pd.Series(dtype="int64"),
            "label": pd.Series(dtype="string"),
            "score": pd.Series(dtype="float64"),
            "share": pd.Series(dtype="float64"),
            "raw_score": pd.Series(dtype="float64"),
            "seen": pd.Series(dtype="bool"),
            "matched_class": pd.Series(dtype="string"),
        }
    )


def extract_features(
    variant: TrainedVariant, usable: Sequence[Recording], batch_size: int
) -> np.ndarray:
    """``(N, D)`` ST-GCN features of screened recordings (see
    :mod:`pose_zsl.inference.screening`), windowed with the variant's evaluation windowing."""
    from pose_zsl.training.batching import WindowCollate
    from pose_zsl.training.features import features_and_logits

    collate = WindowCollate(
        variant.window,
        variant.max_bodies,
        variant.window_mode,
        train=False,
        normalise=str(variant.stgcn_meta.get("normalise", "none")),
        layout=variant.layout,
    )
    blocks: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(usable), batch_size):
            chunk = usable[start : start + batch_size]
            batch = collate([(r.data, 0, i, 0) for i, r in enumerate(chunk)])
            features, _ = features_and_logits(variant.stgcn, batch.x.to(variant.device))
            blocks.append(features.float().cpu().numpy())
    dim = variant.head.feature_dim
    return np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)


def score_candidates(
    variant: TrainedVariant, features: np.ndarray, candidates: Candidates, gamma: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(raw, calibrated)`` float64 (N, K) scores: the head's, and those minus ``gamma`` for
    the candidates that are training classes (unchanged when ``gamma`` is None)."""
    from pose_zsl.models.heads import score
    from pose_zsl.zsl.metrics import calibrated_stacking

    raw = score(variant.head, features, candidates.vectors, device=variant.device)
    raw = raw.astype(np.float64)
    seen_columns = np.flatnonzero(candidates.seen)
    calibrated = raw.copy()
    if seen_columns.size and gamma is not None:
        columns_ids = np.arange(len(candidates.labels))
        calibrated = calibrated_stacking(raw, columns_ids, seen_columns, gamma)
    return raw, calibrated


def top_k_table(
    names: Sequence[str],
    candidates: Candidates,
    raw: np.ndarray,
    calibrated: np.ndarray,
    top_k: int,
) -> pd.DataFrame:
    """The prediction table (:data:`PREDICTION_COLUMNS`): for each recording of ``names``, its
    ``top_k`` candidates (capped at their number) by calibrated score, best first."""
    k = min(int(top_k), len(candidates.labels))
    order = np.argsort(-calibrated, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(names)), k)
    columns = order.ravel()
    return pd.DataFrame(
        {
            "recording": pd.Series(np.repeat(np.asarray(names, dtype=object), k), dtype="string"),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), len(names)),
            "label": pd.Series([candidates.labels[c] for c in columns], dtype="string"),
            "score": calibrated[rows, columns],
            "share": candidate_shares(calibrated)[rows, columns],
            "raw_score": raw[rows, columns],
            "seen": candidates.seen[columns],
            "matched_class": pd.Series(
                [candidates.matched_class[c] for c in columns], dtype="string"
            ),
        }
    )
