"""Choosing the calibrated-stacking constant without touching unseen classes.

Calibrated stacking (Chao et al. 2016) subtracts a constant ``gamma`` from every seen-class score
so that GZSL predictions are not swamped by the seen classes. ``gamma`` must be chosen without
unseen-class data: a second head is trained on the seen classes minus a *pseudo-unseen* subset,
scored on validation samples of all seen classes, and ``gamma`` is the value maximising the
harmonic mean H with the pseudo-unseen classes playing the unseen role. The chosen value is then
applied to the real head's test scores (:func:`pose_zsl.zsl.metrics.gzsl_metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pose_zsl.zsl.metrics import as_class_ids, check_inputs, check_split, gzsl_metrics

logger = logging.getLogger(__name__)

#: Quantiles of the per-sample seen-vs-unseen margin tried when no grid is given.
DEFAULT_GRID_QUANTILES = 101


@dataclass(frozen=True)
class CalibrationChoice:
    """The chosen ``gamma``, its validation S / U / H (%), and the whole sweep."""

    gamma: float
    seen_acc: float
    unseen_acc: float
    harmonic_mean: float
    sweep: pd.DataFrame  # columns: gamma, seen_acc, unseen_acc, harmonic_mean


def margin_grid(
    scores: np.ndarray,
    class_ids: np.ndarray,
    seen_class_ids: np.ndarray,
    quantiles: int = DEFAULT_GRID_QUANTILES,
) -> np.ndarray:
    """Candidate ``gamma`` values where top-1 predictions change, plus 0.

    A sample's top-1 flips from its best seen class to its best unseen class exactly when
    ``gamma`` exceeds ``max(seen scores) - max(unseen scores)``; candidates sit just above
    quantiles of that margin.
    """
    is_seen = np.isin(class_ids, seen_class_ids)
    margins = scores[:, is_seen].max(axis=1) - scores[:, ~is_seen].max(axis=1)
    margins = margins[np.isfinite(margins)]
    if margins.size == 0:
        return np.array([0.0])
    points = np.quantile(margins, np.linspace(0.0, 1.0, quantiles))
    return np.unique(np.concatenate([[0.0], np.nextafter(points, np.inf)]))


def choose_calibration(
    scores_val: np.ndarray,
    labels_val: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    train_seen_ids: Iterable[int] | np.ndarray,
    pseudo_unseen_ids: Iterable[int] | np.ndarray,
    *,
    true_unseen_ids: Iterable[int] | np.ndarray,
    grid: Sequence[float] | np.ndarray | None = None,
) -> CalibrationChoice:
    """Pick ``gamma`` maximising H on a pseudo-unseen validation split inside the seen classes.

    Args:
        scores_val: ``(N, K)`` scores of validation samples from a head trained on
            ``train_seen_ids`` only.
        labels_val: their action ids (seen classes only: train-seen and pseudo-unseen).
        class_ids: the ``K`` score columns; exactly ``train_seen_ids`` plus ``pseudo_unseen_ids``.
        train_seen_ids: classes the validation head was trained on (play "seen").
        pseudo_unseen_ids: seen classes held out of that training (play "unseen").
        true_unseen_ids: the real unseen classes; they must appear nowhere in the inputs.
        grid: candidate ``gamma`` values; default :func:`margin_grid`.

    Returns:
        The ``gamma`` with the highest H (ties: the one closest to 0) and the sweep.

    Raises:
        ValueError: any true unseen class among the labels, columns or roles (zero-shot
            leakage), overlapping or incomplete roles, a pseudo-unseen class without validation
            samples, an empty or non-finite grid, or the errors of
            :func:`pose_zsl.zsl.metrics.check_inputs`.
    """
    true_unseen = np.unique(as_class_ids("true_unseen_ids", true_unseen_ids))
    matrix, labels, ids, _ = check_inputs(scores_val, labels_val, class_ids)
    train_seen = np.unique(as_class_ids("train_seen_ids", train_seen_ids))
    pseudo_unseen = np.unique(as_class_ids("pseudo_unseen_ids", pseudo_unseen_ids))
    for role, values in (
        ("validation labels", labels),
        ("candidate classes (class_ids)", ids),
        ("train_seen_ids", train_seen),
        ("pseudo_unseen_ids", pseudo_unseen),
    ):
        leaked = np.intersect1d(values, true_unseen)
        if leaked.size:
            raise ValueError(
                f"zero-shot leakage: {role} include true unseen class id(s) {leaked.tolist()}; "
                "calibration must be chosen on seen classes only"
            )
    check_split(ids, train_seen, pseudo_unseen)

    candidates = (
        margin_grid(matrix, ids, train_seen)
        if grid is None
        else np.asarray(grid, dtype=np.float64).ravel()
    )
    if candidates.size == 0 or not np.isfinite(candidates).all():
        raise ValueError("calibration grid must be a non-empty list of finite values")
    records = []
    for gamma in np.unique(candidates):
        values = gzsl_metrics(
            matrix, labels, ids, train_seen, pseudo_unseen, calibration=float(gamma), ks=(1,)
        )
        records.append(
            {
                "gamma": float(gamma),
                "seen_acc": values["seen_acc"],
                "unseen_acc": values["unseen_acc"],
                "harmonic_mean": values["harmonic_mean"],
            }
        )
    sweep = pd.DataFrame.from_records(records)
    best_h = sweep["harmonic_mean"].max()
    best = sweep[sweep["harmonic_mean"] == best_h]
    chosen = best.loc[best["gamma"].abs().idxmin()]
    logger.info(
        "calibrated stacking: gamma %.6g gives validation S %.2f U %.2f H %.2f (%d candidates)",
        chosen["gamma"], chosen["seen_acc"], chosen["unseen_acc"], chosen["harmonic_mean"],
        len(sweep),
    )
    return CalibrationChoice(
        gamma=float(chosen["gamma"]),
        seen_acc=float(chosen["seen_acc"]),
        unseen_acc=float(chosen["unseen_acc"]),
        harmonic_mean=float(chosen["harmonic_mean"]),
        sweep=sweep,
    )
