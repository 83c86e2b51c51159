"""Zero-shot evaluation: top-k, ZSL, GZSL (S / U / H), calibrated stacking, per-class tables.

Conventions shared by every function here:

* ``scores`` is an ``(N, K)`` matrix, higher = more likely; column ``j`` belongs to
  ``class_ids[j]`` (the dataset's 0-based action ids). ``-inf`` marks a class the model cannot
  predict (e.g. the vanilla ST-GCN classifier has no output for unseen classes); NaN and ``+inf``
  are rejected.
* ``labels`` are the true action ids of the ``N`` samples.
* Accuracies are percentages (0-100), as the paper reports them.
* Ties count against the true class: a sample is a top-k hit only if fewer than ``k`` other
  classes score greater than *or equal to* it, so a constant scorer gets no credit. (Single
  predictions, as in the confusion matrix, take the first column among ties.)

Protocols (paper section 4.4, plus the later GZSL literature):

* ZSL: unseen-class test samples, candidates restricted to the unseen classes; top-1 and top-k
  for every ``k`` smaller than the number of unseen classes.
* GZSL: candidates are all classes. ``hit1`` / ``hit5``: flat hit@k on unseen-class samples (the
  paper's Table 2). ``seen_acc`` (S): top-1 on seen-class test samples; ``unseen_acc`` (U): top-1
  on unseen-class samples; ``harmonic_mean`` H = 2SU / (S + U), 0 when both are 0.
* Calibrated stacking (Chao et al. 2016): subtract a constant from every seen-class score before
  ranking; the constant is chosen on a pseudo-unseen split inside the seen classes
  (:func:`pose_zsl.zsl.calibration.choose_calibration`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

# A bare Figure on an Agg canvas: no pyplot, no global backend switch, nothing shown.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pose_zsl.zsl.stats import bootstrap_interval, weighted_accuracy, wilson_interval

Average = Literal["sample", "class"]
PROTOCOLS = ("zsl", "gzsl", "gzsl_calibrated")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def as_class_ids(
    name: str, values: Iterable[int] | np.ndarray, *, allow_empty: bool = False
) -> np.ndarray:
    """A 1-D int64 array of class ids; non-integers and (unless allowed) emptiness raise."""
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        if allow_empty:
            return array.astype(np.int64)
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
            return array.astype(np.int64)
        raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def check_inputs(
    scores: np.ndarray, labels: np.ndarray, class_ids: Iterable[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a score matrix against labels and class ids.

    Returns:
        ``(scores, labels, class_ids, label_columns)`` where ``label_columns[i]`` is the column of
        sample ``i``'s true class.

    Raises:
        ValueError: empty inputs, shape mismatches, NaN or ``+inf`` scores, repeated class ids, or
            labels without a score column (feature and embedding class sets disagree).
    """
    ids = as_class_ids("class_ids", class_ids)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"class_ids repeat id(s) {unique[counts > 1].tolist()}")
    matrix = np.asarray(scores)
    if matrix.ndim != 2:
        raise ValueError(f"scores must be a 2-D (samples, classes) array, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError("scores has no samples (empty input)")
    if matrix.shape[1] != ids.size:
        raise ValueError(
            f"scores has {matrix.shape[1]} columns but class_ids lists {ids.size} classes"
        )
    if not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"scores must be numeric, got dtype {matrix.dtype}")
    invalid = np.isnan(matrix) | (matrix == np.inf)
    if invalid.any():
        rows = np.flatnonzero(invalid.any(axis=1))
        raise ValueError(
            f"scores contain NaN or +inf in {rows.size} row(s), first rows {rows[:5].tolist()}"
        )
    truth = as_class_ids("labels", labels)
    if truth.size != matrix.shape[0]:
        raise ValueError(f"labels has {truth.size} entries but scores has {matrix.shape[0]} rows")
    missing = np.setdiff1d(truth, ids)
    if missing.size:
        raise ValueError(
            f"label class id(s) {missing.tolist()} have no score column (class_ids); the feature "
            "and embedding class sets disagree"
        )
    return matrix, truth, ids, _columns_of(ids, truth)


def _columns_of(class_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    order = np.argsort(class_ids)
    return order[np.searchsorted(class_ids[order], wanted)]


def check_split(
    class_ids: np.ndarray,
    seen_class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Seen and unseen ids as sorted arrays; they must be disjoint and cover ``class_ids``."""
    seen = np.unique(as_class_ids("seen_class_ids", seen_class_ids))
    unseen = np.unique(as_class_ids("unseen_class_ids", unseen_class_ids))
    both = np.intersect1d(seen, unseen)
    if both.size:
        raise ValueError(f"class id(s) {both.tolist()} are listed as both seen and unseen")
    split = np.union1d(seen, unseen)
    no_column = np.setdiff1d(split, class_ids)
    if no_column.size:
        raise ValueError(
            f"split class id(s) {no_column.tolist()} have no score column (class_ids); the split "
            "and embedding class sets disagree"
        )
    unassigned = np.setdiff1d(class_ids, split)
    if unassigned.size:
        raise ValueError(
            f"class id(s) {unassigned.tolist()} have score columns but are neither seen nor unseen"
        )
    return seen, unseen


def _require_samples(labels: np.ndarray, classes: np.ndarray, role: str) -> np.ndarray:
    """Mask of samples in ``classes``; every class of the role must have at least one."""
    absent = np.setdiff1d(classes, labels)
    if absent.size:
        raise ValueError(
            f"{role} class id(s) {absent.tolist()} have no test samples; the split cannot be "
            "evaluated (check the protocol split and the unseen-class choice)"
        )
    return np.isin(labels, classes)


# --------------------------------------------------------------------------------------------
# Core measures
# --------------------------------------------------------------------------------------------


def _hits(matrix: np.ndarray, label_columns: np.ndarray, k: int) -> np.ndarray:
    true_scores = matrix[np.arange(matrix.shape[0]), label_columns][:, None]
    # Other classes at or above the true score; the true column itself always counts once.
    at_or_above = (matrix >= true_scores).sum(axis=1) - 1
    return at_or_above < k


def topk_accuracy(
    scores: np.ndarray, labels: np.ndarray, class_ids: Iterable[int] | np.ndarray, k: int
) -> float:
    """Percentage of samples whose true class is among the ``k`` best-scored classes."""
    matrix, _, ids, columns = check_inputs(scores, labels, class_ids)
    if not 1 <= k <= ids.size:
        raise ValueError(f"k must be between 1 and the number of classes ({ids.size}), got {k}")
    return float(100.0 * _hits(matrix, columns, k).mean())


def restrict_scores(
    scores: np.ndarray, class_ids: Iterable[int] | np.ndarray, keep_ids: Iterable[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The columns of ``keep_ids`` (in ``class_ids`` order) and their ids."""
    ids = as_class_ids("class_ids", class_ids)
    keep = as_class_ids("keep_ids", keep_ids)
    missing = np.setdiff1d(keep, ids)
    if missing.size:
        raise ValueError(f"class id(s) {missing.tolist()} have no score column")
    mask = np.isin(ids, keep)
    return np.asarray(scores)[:, mask], ids[mask]


def harmonic_mean(seen_acc: float, unseen_acc: float) -> float:
    """H = 2SU / (S + U); 0 when both accuracies are 0."""
    total = seen_acc + unseen_acc
    return 0.0 if total == 0 else 2.0 * seen_acc * unseen_acc / total


def calibrated_stacking(
    scores: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    seen_class_ids: Iterable[int] | np.ndarray,
    gamma: float,
) -> np.ndarray:
    """A copy of ``scores`` with ``gamma`` subtracted from every seen-class column (Chao et al.)."""
    if not np.isfinite(gamma):
        raise ValueError(f"calibration gamma must be finite, got {gamma}")
    ids = as_class_ids("class_ids", class_ids)
    seen = as_class_ids("seen_class_ids", seen_class_ids)
    matrix = np.array(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != ids.size:
        raise ValueError(f"scores of shape {matrix.shape} do not match {ids.size} class_ids")
    matrix[:, np.isin(ids, seen)] -= gamma
    return matrix


def _accuracy(hits: np.ndarray, labels: np.ndarray, average: Average) -> float:
    if average == "sample":
        return float(100.0 * hits.mean())
    if average == "class":
        per_class = [hits[labels == c].mean() for c in np.unique(labels)]
        return float(100.0 * np.mean(per_class))
    raise ValueError(f"average must be 'sample' or 'class', got {average!r}")


def _zsl_problem(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The unseen-class samples' scores among the unseen classes: ``(scores, labels, ids,
    label_columns)``, as :func:`check_inputs` returns them."""
    matrix, truth, ids, _ = check_inputs(scores, labels, class_ids)
    unseen = np.unique(as_class_ids("unseen_class_ids", unseen_class_ids))
    if unseen.size < 2:
        raise ValueError(f"ZSL needs at least 2 unseen classes, got {unseen.tolist()}")
    sub_scores, sub_ids = restrict_scores(matrix, ids, unseen)
    rows = _require_samples(truth, unseen, "unseen")
    sub_truth = truth[rows]
    return sub_scores[rows], sub_truth, sub_ids, _columns_of(sub_ids, sub_truth)


def _reported_ks(ks: Sequence[int], num_classes: int) -> list[int]:
    return [k for k in sorted(set(ks) | {1}) if k == 1 or k < num_classes]


def zsl_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """ZSL: unseen-class samples ranked among the unseen classes only.

    ``scores`` may hold any samples and classes (e.g. the full GZSL matrix); samples of other
    classes and other columns are dropped here. Returns ``{"top1": ..., "top5": ...}`` with a
    ``top{k}`` entry for each ``k`` in ``ks`` smaller than the number of unseen classes (top-1
    always).

    Raises:
        ValueError: fewer than 2 unseen classes, an unseen class without test samples, or the
            errors of :func:`check_inputs`.
    """
    sub_scores, _, sub_ids, columns = _zsl_problem(scores, labels, class_ids, unseen_class_ids)
    return {
        f"top{k}": float(100.0 * _hits(sub_scores, columns, k).mean())
        for k in _reported_ks(ks, sub_ids.size)
    }


def _gzsl_outcomes(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    seen_class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
    calibration: float,
    ks: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """``(labels, seen rows, unseen rows, top-1 hits, {k: hits of unseen rows})``."""
    matrix, truth, ids, columns = check_inputs(scores, labels, class_ids)
    seen, unseen = check_split(ids, seen_class_ids, unseen_class_ids)
    if calibration != 0.0:
        matrix = calibrated_stacking(matrix, ids, seen, calibration)
    unseen_rows = _require_samples(truth, unseen, "unseen")
    seen_rows = np.isin(truth, seen)
    if not seen_rows.any():
        raise ValueError("no seen-class test samples: seen accuracy and H need them")
    hit_k = {
        k: _hits(matrix[unseen_rows], columns[unseen_rows], k) for k in _reported_ks(ks, ids.size)
    }
    return truth, seen_rows, unseen_rows, _hits(matrix, columns, 1), hit_k


def gzsl_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    seen_class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
    *,
    calibration: float = 0.0,
    ks: Sequence[int] = (1, 5),
    average: Average = "sample",
) -> dict[str, float]:
    """GZSL over all classes: ``hit{k}`` on unseen samples, ``seen_acc``, ``unseen_acc``, H.

    Args:
        calibration: constant subtracted from seen-class scores first (0 = plain GZSL).
        ks: hit@k values reported for unseen samples (each ``k`` < number of classes).
        average: ``"sample"`` (flat, as the paper) or ``"class"`` (mean of per-class accuracies,
            as Xian et al.) for S and U; hit@k is always flat.

    Raises:
        ValueError: seen/unseen sets overlapping or not covering ``class_ids``, no seen-class or
            no unseen-class test samples, or the errors of :func:`check_inputs`.
    """
    truth, seen_rows, unseen_rows, top1, hit_k = _gzsl_outcomes(
        scores, labels, class_ids, seen_class_ids, unseen_class_ids, calibration, ks
    )
    result = {f"hit{k}": float(100.0 * hits.mean()) for k, hits in hit_k.items()}
    seen_acc = _accuracy(top1[seen_rows], truth[seen_rows], average)
    unseen_acc = _accuracy(top1[unseen_rows], truth[unseen_rows], average)
    result.update(
        seen_acc=seen_acc, unseen_acc=unseen_acc, harmonic_mean=harmonic_mean(seen_acc, unseen_acc)
    )
    return result


# --------------------------------------------------------------------------------------------
# Rows with sample counts and intervals
# --------------------------------------------------------------------------------------------

#: Keys of every row :func:`metric_rows` returns.
ROW_KEYS = ("protocol", "metric", "value", "n", "ci_low", "ci_high")


def collapse_diagnostics(
    scores: np.ndarray, class_ids: Iterable[int] | np.ndarray
) -> dict[str, float]:
    """How concentrated a scorer's top-1 predictions are (first column among ties).

    Returns:
        ``top_class_share``: % of samples given the most-predicted class (100 = every sample
        gets one class); ``prediction_entropy``: Shannon entropy of the predicted-class
        distribution as % of its maximum log2 K (0 = one class only, 100 = every class equally
        often; a perfect scorer on class-balanced samples reaches 100).

    Raises:
        ValueError: fewer than 2 classes, or scores that do not match ``class_ids``.
    """
    ids = as_class_ids("class_ids", class_ids)
    if ids.size < 2:
        raise ValueError(f"prediction entropy needs at least 2 classes, got {ids.tolist()}")
    matrix = np.asarray(scores)
    if matrix.ndim != 2 or matrix.shape[1] != ids.size or matrix.shape[0] == 0:
        raise ValueError(f"scores of shape {matrix.shape} do not match {ids.size} class_ids")
    share = np.bincount(np.argmax(matrix, axis=1), minlength=ids.size) / matrix.shape[0]
    present = share[share > 0]
    entropy_bits = float(-(present * np.log2(present)).sum())
    return {
        "top_class_share": float(100.0 * share.max()),
        "prediction_entropy": max(0.0, 100.0 * entropy_bits / float(np.log2(ids.size))),
    }


def _row(
    protocol: str, metric: str, value: float, n: int, interval: tuple[float, float]
) -> dict[str, object]:
    low, high = interval
    return {
        "protocol": protocol,
        "metric": metric,
        "value": float(value),
        "n": int(n),
        "ci_low": float(low),
        "ci_high": float(high),
    }


def _proportion_row(protocol: str, metric: str, hits: np.ndarray) -> dict[str, object]:
    low, high = wilson_interval(hits.sum(), hits.size)
    return _row(protocol, metric, 100.0 * hits.mean(), hits.size, (100.0 * low, 100.0 * high))


def _class_mean_row(
    protocol: str, metric: str, hits: np.ndarray, labels: np.ndarray
) -> dict[str, object]:
    accuracy, effective_n = weighted_accuracy(hits, labels, per_stratum=True)
    low, high = wilson_interval(accuracy * effective_n, effective_n)
    value = _accuracy(hits, labels, "class")
    return _row(protocol, metric, value, hits.size, (100.0 * low, 100.0 * high))


def _harmonic(seen: np.ndarray, unseen: np.ndarray) -> np.ndarray:
    total = seen + unseen
    return np.divide(
        2.0 * seen * unseen, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0
    )


def _harmonic_row(
    protocol: str,
    metric: str,
    hits: np.ndarray,
    labels: np.ndarray,
    seen_rows: np.ndarray,
    unseen_rows: np.ndarray,
    average: Average,
) -> dict[str, object]:
    seen_acc = _accuracy(hits[seen_rows], labels[seen_rows], average)
    unseen_acc = _accuracy(hits[unseen_rows], labels[unseen_rows], average)
    value = harmonic_mean(seen_acc, unseen_acc)
    per_class = average == "class"
    interval = bootstrap_interval(
        lambda draws: 100.0 * _harmonic(draws[:, 0], draws[:, 1]),
        [
            weighted_accuracy(hits[seen_rows], labels[seen_rows], per_stratum=per_class),
            weighted_accuracy(hits[unseen_rows], labels[unseen_rows], per_stratum=per_class),
        ],
        value=value,
        bounds=(0.0, 100.0),
    )
    return _row(protocol, metric, value, int(seen_rows.sum() + unseen_rows.sum()), interval)


def metric_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    seen_class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
    *,
    calibration: float | None = None,
    ks: Sequence[int] = (1, 5),
    gzsl: bool = True,
) -> list[dict[str, object]]:
    """Long-format rows ``{"protocol", "metric", "value", "n", "ci_low", "ci_high"}`` of one run.

    Values and interval bounds are in %; ``n`` is the number of test samples behind the value.

    * ``zsl``: ``top1``, ``top5`` (:func:`zsl_metrics`), ``top1_class_mean`` (mean of per-class
      top-1), and the collapse diagnostics ``top_class_share`` and ``prediction_entropy``
      (:func:`collapse_diagnostics`) of the unseen samples among unseen classes.
    * ``gzsl``: ``hit1``, ``hit5``, ``seen_acc``, ``unseen_acc``, ``harmonic_mean``
      (:func:`gzsl_metrics`, per-sample) and ``seen_acc_class_mean``,
      ``unseen_acc_class_mean``, ``harmonic_mean_class_mean`` (per-class means, as Xian et al.);
      when ``calibration`` is given, the same under ``gzsl_calibrated``. ``gzsl=False`` leaves
      them out (a cross-dataset split has no seen-class test samples to measure S on).

    ``n``: unseen test samples for ZSL rows, hit@k and U; seen test samples for S; both for H.
    Intervals (95 %, :mod:`pose_zsl.zsl.stats`): Wilson for every accuracy, a mean of
    per-class accuracies taken as a proportion of its effective sample size; for H a seeded
    parametric bootstrap of S and U. The collapse diagnostics get none (NaN): they are
    descriptions of the predictions, and a bootstrap of them is biased (resampling alone lowers
    the entropy and raises the top share of a near-uniform scorer), so its interval can miss
    the value.
    """
    rows: list[dict[str, object]] = []
    sub_scores, sub_truth, sub_ids, columns = _zsl_problem(
        scores, labels, class_ids, unseen_class_ids
    )
    for k in _reported_ks(ks, sub_ids.size):
        rows.append(_proportion_row("zsl", f"top{k}", _hits(sub_scores, columns, k)))
    top1 = _hits(sub_scores, columns, 1)
    rows.append(_class_mean_row("zsl", "top1_class_mean", top1, sub_truth))
    no_interval = (float("nan"), float("nan"))
    for metric, value in collapse_diagnostics(sub_scores, sub_ids).items():
        rows.append(_row("zsl", metric, value, top1.size, no_interval))

    settings: list[tuple[str, float]] = [("gzsl", 0.0)] if gzsl else []
    if gzsl and calibration is not None:
        settings.append(("gzsl_calibrated", float(calibration)))
    for protocol, gamma in settings:
        truth, seen_rows, unseen_rows, hits, hit_k = _gzsl_outcomes(
            scores, labels, class_ids, seen_class_ids, unseen_class_ids, gamma, ks
        )
        rows.extend(_proportion_row(protocol, f"hit{k}", h) for k, h in hit_k.items())
        rows.append(_proportion_row(protocol, "seen_acc", hits[seen_rows]))
        rows.append(_proportion_row(protocol, "unseen_acc", hits[unseen_rows]))
        rows.append(
            _harmonic_row(protocol, "harmonic_mean", hits, truth, seen_rows, unseen_rows, "sample")
        )
        for metric, chosen in (("seen_acc", seen_rows), ("unseen_acc", unseen_rows)):
            rows.append(
                _class_mean_row(protocol, f"{metric}_class_mean", hits[chosen], truth[chosen])
            )
        rows.append(
            _harmonic_row(
                protocol, "harmonic_mean_class_mean", hits, truth, seen_rows, unseen_rows, "class"
            )
        )
    return rows


def cross_dataset_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    target_groups: Mapping[int, str],
    ks: Sequence[int] = (1, 5),
) -> list[dict[str, object]]:
    """Cross-dataset rows (protocol ``xdata``): the target dataset's samples ranked among the
    target dataset's classes (``target_groups`` maps each to its group: shared, close, novel).

    ``top{k}`` and ``top1_class_mean`` over all target samples, and ``top1_<group>`` over the
    samples of each group's classes (still ranked among all target classes), each with n and a
    95 % Wilson interval.
    """
    target = np.array(sorted(int(i) for i in target_groups), dtype=np.int64)
    sub_scores, truth, sub_ids, columns = _zsl_problem(scores, labels, class_ids, target)
    rows = [
        _proportion_row("xdata", f"top{k}", _hits(sub_scores, columns, k))
        for k in _reported_ks(ks, sub_ids.size)
    ]
    top1 = _hits(sub_scores, columns, 1)
    rows.append(_class_mean_row("xdata", "top1_class_mean", top1, truth))
    group_of = np.array([target_groups[int(c)] for c in truth])
    for group in sorted(set(group_of.tolist())):
        rows.append(_proportion_row("xdata", f"top1_{group}", top1[group_of == group]))
    return rows


def within_dataset_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    unseen_by_dataset: Mapping[str, Sequence[int]],
    ks: Sequence[int] = (1, 5),
) -> list[dict[str, object]]:
    """Pooled splits: ZSL within each dataset (protocol ``zsl_<dataset>``): that dataset's
    unseen test samples among its own unseen classes, the task of its single-dataset run with
    the same unseen classes. Datasets with fewer than two unseen classes are left out."""
    rows: list[dict[str, object]] = []
    for dataset, unseen in sorted(unseen_by_dataset.items()):
        if len(unseen) < 2:
            continue
        sub_scores, _, sub_ids, columns = _zsl_problem(scores, labels, class_ids, unseen)
        rows += [
            _proportion_row(f"zsl_{dataset}", f"top{k}", _hits(sub_scores, columns, k))
            for k in _reported_ks(ks, sub_ids.size)
        ]
    return rows


# --------------------------------------------------------------------------------------------
# The vanilla ST-GCN baseline
# --------------------------------------------------------------------------------------------


def vanilla_classifier_scores(
    seen_logits: np.ndarray,
    logit_class_ids: Iterable[int] | np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
) -> np.ndarray:
    """Place a seen-class classifier's logits in an all-class score matrix.

    Classes the classifier has no output for get ``-inf``: it can never predict them, which is
    why the paper's vanilla ST-GCN scores 0 on unseen classes.
    """
    logits = np.asarray(seen_logits, dtype=np.float64)
    logit_ids = as_class_ids("logit_class_ids", logit_class_ids)
    ids = as_class_ids("class_ids", class_ids)
    if logits.ndim != 2 or logits.shape[1] != logit_ids.size:
        raise ValueError(
            f"seen_logits of shape {logits.shape} do not match {logit_ids.size} logit_class_ids"
        )
    if not np.isfinite(logits).all():
        raise ValueError("seen_logits contain NaN or inf")
    missing = np.setdiff1d(logit_ids, ids)
    if missing.size:
        raise ValueError(f"logit class id(s) {missing.tolist()} are not in class_ids")
    scores = np.full((logits.shape[0], ids.size), -np.inf)
    scores[:, _columns_of(ids, logit_ids)] = logits
    return scores


def vanilla_baseline_rows(
    seen_logits: np.ndarray,
    logit_class_ids: Iterable[int] | np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    *,
    seen_class_ids: Iterable[int] | np.ndarray,
    unseen_class_ids: Iterable[int] | np.ndarray,
    ks: Sequence[int] = (1, 5),
    gzsl: bool = True,
) -> list[dict[str, object]]:
    """:func:`metric_rows` of the seen-class classifier (the paper's "vanilla ST-GCN" row).

    Raises:
        ValueError: the classifier has outputs for unseen classes (it was trained on them).
    """
    leaked = np.intersect1d(
        as_class_ids("logit_class_ids", logit_class_ids),
        as_class_ids("unseen_class_ids", unseen_class_ids),
    )
    if leaked.size:
        raise ValueError(
            f"the classifier has outputs for unseen class id(s) {leaked.tolist()}; a vanilla "
            "baseline must be trained on seen classes only"
        )
    scores = vanilla_classifier_scores(seen_logits, logit_class_ids, class_ids)
    return metric_rows(
        scores, labels, class_ids, seen_class_ids, unseen_class_ids, ks=ks, gzsl=gzsl
    )


def supervised_rows(
    seen_logits: np.ndarray,
    logit_class_ids: Iterable[int] | np.ndarray,
    labels: np.ndarray,
    seen_class_ids: Iterable[int] | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> list[dict[str, object]]:
    """The seen-class classifier's own task: top-k among the seen classes on the seen classes'
    test samples (protocol ``supervised``), the reference a zero-shot result is read against.

    Raises:
        ValueError: no test sample of a seen class, or the classifier's outputs are not
            exactly the seen classes.
    """
    seen = as_class_ids("seen_class_ids", seen_class_ids)
    outputs = as_class_ids("logit_class_ids", logit_class_ids)
    if not np.array_equal(np.sort(outputs), np.sort(seen)):
        raise ValueError(
            f"the classifier's outputs {outputs.tolist()} are not the seen classes {seen.tolist()}"
        )
    keep = np.isin(labels, seen)
    if not keep.any():
        raise ValueError("no test sample of a seen class: the supervised reference is undefined")
    matrix, _, _, columns = check_inputs(
        np.asarray(seen_logits)[keep], np.asarray(labels)[keep], outputs
    )
    return [
        _proportion_row("supervised", f"top{k}", _hits(matrix, columns, k))
        for k in _reported_ks(ks, outputs.size)
    ]


# --------------------------------------------------------------------------------------------
# Per-class views
# --------------------------------------------------------------------------------------------


def predict(scores: np.ndarray, class_ids: Iterable[int] | np.ndarray) -> np.ndarray:
    """Top-1 class id per row (first column among ties)."""
    ids = as_class_ids("class_ids", class_ids)
    matrix = np.asarray(scores)
    if matrix.ndim != 2 or matrix.shape[1] != ids.size:
        raise ValueError(f"scores of shape {matrix.shape} do not match {ids.size} class_ids")
    return ids[np.argmax(matrix, axis=1)]


def per_class_accuracy(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: Iterable[int] | np.ndarray,
    class_names: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """One row per class present in ``labels``.

    Columns: ``action_id``, ``action_name`` (when ``class_names`` is given), ``num_samples``,
    ``num_correct``, ``accuracy`` (%), ``most_confused_with`` (most frequent wrong prediction, or
    -1 when there is none), ``confused_count`` and, with ``class_names``,
    ``most_confused_with_name`` ("" when there is none).
    """
    matrix, truth, ids, columns = check_inputs(scores, labels, class_ids)
    correct = _hits(matrix, columns, 1)
    predicted = predict(matrix, ids)
    records = []
    for class_id in np.unique(truth):
        rows = truth == class_id
        wrong = predicted[rows & ~correct]
        if wrong.size:
            values, counts = np.unique(wrong, return_counts=True)
            confused, confused_count = int(values[np.argmax(counts)]), int(counts.max())
        else:
            confused, confused_count = -1, 0
        record = {"action_id": int(class_id)}
        if class_names is not None:
            record["action_name"] = class_names.get(int(class_id), "")
        record.update(
            num_samples=int(rows.sum()),
            num_correct=int(correct[rows].sum()),
            accuracy=float(100.0 * correct[rows].mean()),
            most_confused_with=confused,
            confused_count=confused_count,
        )
        if class_names is not None:
            record["most_confused_with_name"] = class_names.get(confused, "")
        records.append(record)
    return pd.DataFrame.from_records(records)


def confusion_matrix(
    scores: np.ndarray, labels: np.ndarray, class_ids: Iterable[int] | np.ndarray
) -> np.ndarray:
    """``(K, K)`` int64 counts: row = true class, column = predicted class (``class_ids`` order)."""
    matrix, truth, ids, columns = check_inputs(scores, labels, class_ids)
    predicted_columns = np.argmax(matrix, axis=1)
    counts = np.zeros((ids.size, ids.size), dtype=np.int64)
    np.add.at(counts, (columns, predicted_columns), 1)
    return counts


def confusion_matrix_figure(
    counts: np.ndarray,
    class_names: Sequence[str],
    title: str = "",
    normalise: bool = True,
) -> Figure:
    """A heat map of a confusion matrix (rows normalised to %, by default).

    Built on a bare :class:`~matplotlib.figure.Figure` with an Agg canvas: no pyplot state, nothing
    shown. Save it with ``figure.savefig(path)``.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    if len(class_names) != counts.shape[0]:
        raise ValueError(
            f"{len(class_names)} class names for a {counts.shape[0]}-class confusion matrix"
        )
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(100.0 * counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        label = "% of true class"
    else:
        values = counts.astype(float)
        label = "samples"
    longest = max((len(str(name)) for name in class_names), default=0)
    # the rotated x labels and the y labels take room in proportion to the longest name
    size = min(max(5.0, 0.28 * counts.shape[0] + 2.5 + 0.06 * longest), 30.0)
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(values, cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=axes, label=label, fraction=0.046, pad=0.04)
    ticks = np.arange(counts.shape[0])
    font = 8 if counts.shape[0] <= 30 else 5
    axes.set_xticks(ticks, labels=list(class_names), rotation=90, fontsize=font)
    axes.set_yticks(ticks, labels=list(class_names), fontsize=font)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if counts.shape[0] <= 15:
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                if counts[i, j]:
                    axes.text(
                        j, i, str(counts[i, j]), ha="center", va="center", color="white", fontsize=7
                    )
    if title:
        # wrapped to the figure's width (about 11 characters per inch at this size)
        axes.set_title(textwrap.fill(title, width=max(20, int(11 * size))), fontsize=9)
    return figure
