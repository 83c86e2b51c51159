"""Choosing the calibrated-stacking constant on an honest proxy, without unseen classes.

Calibrated stacking (Chao et al. 2016) subtracts a constant ``gamma`` from every seen-class score
so that GZSL predictions are not swamped by the seen classes. ``gamma`` must be chosen without
unseen-class data, so a proxy zero-shot problem is built inside the seen classes, once per split
(:func:`calibration_partition`): the split's *pseudo-unseen* seen classes play the unseen ones,
and the other seen classes' training samples are divided, stratified by class, into ``fit`` and
``holdout`` samples. For the proxy to behave like the real problem, nothing that tunes ``gamma``
may have seen the samples it is tuned on, and no pseudo-unseen class may have been learnt:

* a *calibration ST-GCN* (the split's recipe) is trained on the ``fit`` samples only, so the
  pseudo-unseen classes are as new to its features as the unseen classes are to the real one;
* a *calibration head* (the variant's kind and settings) is trained on that backbone's features
  of the ``fit`` samples, with the seen classes as candidates;
* ``gamma`` is the value maximising H on the ``holdout`` samples (playing "seen") and the
  ``pseudo_unseen`` samples (playing "unseen"), which neither of the two networks saw
  (:func:`choose_calibration`), and is then applied to the real head's test scores
  (:func:`pose_zsl.zsl.metrics.gzsl_metrics`).

:func:`assert_calibration_roles` is the leakage guard of every step: it re-checks the samples a
step is about to use against the partition, the samples table and the split's classes. True
unseen classes and test samples appear nowhere in the proxy.
"""

from __future__ import annotations

import logging
import math
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
    """The chosen ``gamma``, its validation S / U / H (%), the whole sweep, and the proxy it
    was chosen on (kept with the model for :func:`composition_gamma`)."""

    gamma: float
    seen_acc: float
    unseen_acc: float
    harmonic_mean: float
    sweep: pd.DataFrame  # columns: gamma, seen_acc, unseen_acc, harmonic_mean
    proxy: CalibrationProxy


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
        chosen["gamma"],
        chosen["seen_acc"],
        chosen["unseen_acc"],
        chosen["harmonic_mean"],
        len(sweep),
    )
    return CalibrationChoice(
        gamma=float(chosen["gamma"]),
        seen_acc=float(chosen["seen_acc"]),
        unseen_acc=float(chosen["unseen_acc"]),
        harmonic_mean=float(chosen["harmonic_mean"]),
        sweep=sweep,
        proxy=CalibrationProxy(
            float(chosen["gamma"]), matrix, labels, ids, train_seen, pseudo_unseen
        ),
    )


# -- the proxy problem: partition, class table, leakage guard --------------------------------

#: Roles of the calibration partition: ``fit`` trains the calibration ST-GCN and head,
#: ``holdout`` (seen classes) and ``pseudo_unseen`` samples choose ``gamma``.
CALIBRATION_ROLES: tuple[str, ...] = ("fit", "holdout", "pseudo_unseen")
CALIBRATION_COLUMNS: tuple[str, ...] = ("sample_id", "action_id", "role")
#: Roles of the samples ``gamma`` is chosen on.
CHOICE_ROLES: frozenset[str] = frozenset({"holdout", "pseudo_unseen"})


def split_class_roles(split_classes: pd.DataFrame) -> tuple[list[int], list[int], list[int]]:
    """Sorted (seen, unseen, pseudo-unseen) action ids of one split's class table."""
    missing = [c for c in ("action_id", "role", "pseudo_unseen") if c not in split_classes]
    if missing:
        raise ValueError(f"the split's class table lacks the columns {missing}")

    def ids(mask: pd.Series) -> list[int]:
        return sorted(int(i) for i in split_classes.loc[mask, "action_id"])

    seen = ids(split_classes["role"] == "seen")
    unseen = ids(split_classes["role"] == "unseen")
    pseudo = ids(split_classes["pseudo_unseen"].fillna(False).astype(bool))
    if set(pseudo) - set(seen):
        raise ValueError(
            f"pseudo-unseen classes {sorted(set(pseudo) - set(seen))} are not seen classes"
        )
    return seen, unseen, pseudo


def holdout_count(num_samples: int, fraction: float) -> int:
    """Samples of one class held out: ``round(fraction * n)``, at least 1 and at most ``n - 1``
    when the class has 2 or more samples (so every class is both fitted and checked), else 0."""
    if num_samples < 2:
        return 0
    return min(num_samples - 1, max(1, math.floor(fraction * num_samples + 0.5)))


def calibration_partition(
    samples: pd.DataFrame,
    split_classes: pd.DataFrame,
    *,
    protocol: str,
    holdout_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Divide one split's seen-class training samples into the calibration roles.

    Every sample of a seen class in ``samples[protocol] == "train"`` gets exactly one role:
    ``pseudo_unseen`` if its class is one of the split's pseudo-unseen classes, otherwise
    ``holdout`` for ``holdout_count(n, holdout_fraction)`` of the ``n`` samples of its class
    (drawn with ``numpy.random.default_rng([seed, action_id])`` over the samples sorted by id, so
    the result depends neither on the table's row order nor on the other classes) and ``fit``
    for the rest. Unseen classes and test samples get no row.

    Returns:
        Columns sample_id (string), action_id (int64), role (string), sorted by sample_id.

    Raises:
        ValueError: ``holdout_fraction`` outside (0, 1), a split without pseudo-unseen classes,
            a seen class without training samples, duplicate sample ids or missing columns.
    """
    if not 0.0 < float(holdout_fraction) < 1.0:
        raise ValueError(
            f"calibration_holdout must be in (0, 1) (the share of each seen class's training "
            f"samples kept to choose the calibration), got {holdout_fraction!r}"
        )
    missing = [c for c in ("sample_id", "action_id", protocol) if c not in samples.columns]
    if missing:
        raise ValueError(f"the samples table lacks the columns {missing}")
    seen, _, pseudo = split_class_roles(split_classes)
    if not pseudo:
        raise ValueError(
            "the split has no pseudo-unseen classes to calibrate on; set num_pseudo_unseen >= 1"
        )
    is_train = samples[protocol].astype("string").eq("train").fillna(False).astype(bool)
    rows = samples.loc[is_train & samples["action_id"].isin(seen), ["sample_id", "action_id"]]
    rows = rows.astype({"sample_id": "string"}).sort_values("sample_id", kind="stable")
    duplicated = rows["sample_id"][rows["sample_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"duplicate sample ids in the samples table, e.g. {list(duplicated[:5])}")
    actions = rows["action_id"].to_numpy(dtype=np.int64)
    absent = sorted(set(seen) - set(actions.tolist()))
    if absent:
        raise ValueError(f"seen classes {absent} have no {protocol!r} training samples")
    roles = np.where(np.isin(actions, pseudo), "pseudo_unseen", "fit").astype(object)
    for action in sorted(set(seen) - set(pseudo)):
        members = np.flatnonzero(actions == action)
        order = np.random.default_rng([int(seed), action]).permutation(len(members))
        roles[members[order[: holdout_count(len(members), float(holdout_fraction))]]] = "holdout"
    return pd.DataFrame(
        {
            "sample_id": rows["sample_id"].to_numpy(),
            "action_id": actions,
            "role": pd.array(roles, dtype="string"),
        }
    ).astype({"sample_id": "string"})


def calibration_classes(split_classes: pd.DataFrame) -> pd.DataFrame:
    """The proxy problem's class table, in the split table's columns.

    The split's seen classes minus the pseudo-unseen ones are "seen", the pseudo-unseen ones are
    "unseen", the true unseen classes are left out, and the split is named
    ``<split>_calibration`` (so its ST-GCN checkpoints live apart from the split's own).
    """
    seen, _, pseudo = split_class_roles(split_classes)
    names = split_classes["split"].unique()
    if len(names) != 1:
        raise ValueError(f"split_classes must describe one split, got {list(names)}")
    rows = split_classes[split_classes["action_id"].isin(seen)].copy()
    is_pseudo = rows["action_id"].isin(pseudo)
    rows["role"] = np.where(is_pseudo, "unseen", "seen")
    rows["pseudo_unseen"] = False
    rows["split"] = f"{names[0]}_calibration"
    return rows.reset_index(drop=True)


def _indexed_partition(calibration_samples: pd.DataFrame, pseudo: list[int]) -> pd.DataFrame:
    """The partition indexed by sample_id, after checking it is one (roles, uniqueness, and
    pseudo-unseen classes exactly in the pseudo_unseen role)."""
    missing = [c for c in CALIBRATION_COLUMNS if c not in calibration_samples.columns]
    if missing:
        raise ValueError(f"the calibration samples table lacks the columns {missing}")
    table = calibration_samples.astype({"sample_id": "string"})
    duplicated = table["sample_id"][table["sample_id"].duplicated()]
    if len(duplicated):
        raise ValueError(
            "leakage guard: samples with more than one calibration role, e.g. "
            f"{list(duplicated[:5])}"
        )
    unknown = sorted(set(table["role"].astype(str)) - set(CALIBRATION_ROLES))
    if unknown:
        raise ValueError(f"unknown calibration roles {unknown}; expected {CALIBRATION_ROLES}")
    is_pseudo_class = table["action_id"].isin(pseudo).to_numpy()
    is_pseudo_role = (table["role"] == "pseudo_unseen").to_numpy(dtype=bool)
    if (is_pseudo_class & ~is_pseudo_role).any():
        bad = sorted(set(table.loc[is_pseudo_class & ~is_pseudo_role, "action_id"].astype(int)))
        raise ValueError(
            f"leakage guard: the calibration partition puts samples of the pseudo-unseen classes "
            f"{bad} in the fit or holdout role; they must stay unknown to the calibration models"
        )
    if (is_pseudo_role & ~is_pseudo_class).any():
        bad = sorted(set(table.loc[is_pseudo_role & ~is_pseudo_class, "action_id"].astype(int)))
        raise ValueError(
            f"the calibration partition gives the pseudo_unseen role to classes {bad}, which "
            "are not the split's pseudo-unseen classes"
        )
    return table.set_index("sample_id")


def assert_calibration_roles(
    sample_ids: Iterable[str],
    allowed_roles: Iterable[str],
    calibration_samples: pd.DataFrame,
    truth: pd.DataFrame,
    split_classes: pd.DataFrame,
    *,
    split_column: str,
    where: str,
) -> None:
    """Leakage guard: raise ValueError unless every sample is a calibration sample of an
    allowed role.

    Args:
        sample_ids: the samples a calibration step is about to use.
        allowed_roles: the roles it may use (``{"fit"}`` to train, :data:`CHOICE_ROLES` to
            choose ``gamma``, all of :data:`CALIBRATION_ROLES` to extract features).
        calibration_samples: the split's partition (:func:`calibration_partition`).
        truth: each sample's real ``action_id`` and protocol split (column ``split_column``): the
            samples table, or a feature table copied from it.
        split_classes: the split's class table.
        split_column: the protocol split column of ``truth``.
        where: what the samples are, for the message.

    Raises:
        ValueError: a sample of a true unseen class, of a class foreign to the split, outside
            the protocol's training split, outside the partition, of a role not allowed here, or
            whose class differs between the partition and ``truth``; or a malformed partition.
    """
    allowed = set(allowed_roles)
    if not allowed or allowed - set(CALIBRATION_ROLES):
        raise ValueError(f"allowed_roles must be among {CALIBRATION_ROLES}, got {sorted(allowed)}")
    seen, unseen, pseudo = split_class_roles(split_classes)
    table = _indexed_partition(calibration_samples, pseudo)
    for column in ("sample_id", "action_id", split_column):
        if column not in truth.columns:
            raise ValueError(f"the table checked for {where} lacks the column {column!r}")
    facts = truth.astype({"sample_id": "string"}).drop_duplicates("sample_id")
    facts = facts.set_index("sample_id")
    ids = pd.Index([str(s) for s in sample_ids], dtype="string")

    def examples(mask: np.ndarray) -> list[str]:
        return [str(s) for s in ids[mask][:5]]

    absent = ids.difference(facts.index)
    if len(absent):
        raise ValueError(
            f"leakage guard: {where} include {len(absent)} sample ids absent from the samples "
            f"table, e.g. {[str(s) for s in absent[:5]]}"
        )
    rows = facts.loc[ids]
    actions = rows["action_id"].to_numpy(dtype=np.int64, na_value=-1)
    leaked = np.isin(actions, unseen)
    if leaked.any():
        raise ValueError(
            f"leakage guard: {where} include samples of the unseen classes "
            f"{sorted(set(actions[leaked].tolist()))} (e.g. {examples(leaked)}); unseen classes "
            "must never reach calibration"
        )
    foreign = ~np.isin(actions, seen)
    if foreign.any():
        raise ValueError(
            f"leakage guard: {where} include samples of classes "
            f"{sorted(set(actions[foreign].tolist()))} that are not seen classes of the split "
            f"(e.g. {examples(foreign)})"
        )
    split = rows[split_column].astype("string").fillna("<missing>").to_numpy(dtype=object)
    not_train = split != "train"
    if not_train.any():
        raise ValueError(
            f"leakage guard: {where} include samples whose {split_column!r} split is "
            f"{sorted(set(split[not_train].tolist()))}, not 'train' (e.g. {examples(not_train)}); "
            "test samples must never reach calibration"
        )
    roles = table["role"].reindex(ids).astype(object).to_numpy()
    outside = pd.isna(roles)
    if outside.any():
        raise ValueError(
            f"leakage guard: {where} include {int(outside.sum())} samples outside the split's "
            f"calibration partition, e.g. {examples(outside)}"
        )
    wrong = ~np.isin(roles.astype(str), sorted(allowed))
    if wrong.any():
        raise ValueError(
            f"leakage guard: {where} include samples whose calibration role is "
            f"{sorted(set(roles[wrong].tolist()))} (e.g. {examples(wrong)}); only "
            f"{sorted(allowed)} may be used here"
        )
    recorded = table["action_id"].reindex(ids).to_numpy(dtype=np.int64, na_value=-1)
    relabelled = recorded != actions
    if relabelled.any():
        raise ValueError(
            f"leakage guard: {where} include samples whose class differs between the "
            f"calibration partition and the samples table (e.g. {examples(relabelled)})"
        )


# -- the constant for another candidate list -------------------------------------------------

#: Random sub-problems of the proxy averaged when choosing a constant for a candidate list.
COMPOSITION_DRAWS = 64
#: At most this many validation samples of the proxy are kept with a model (stratified).
PROXY_ROWS = 2000


@dataclass(frozen=True)
class CalibrationProxy:
    """The proxy's validation scores, kept with the model so that a constant can be chosen for a
    candidate list other than the evaluation's (:func:`composition_gamma`).

    ``gamma`` is the constant :func:`choose_calibration` chose on the whole proxy; ``scores``
    are the calibration head's ``(N, K)`` scores of the validation samples, whose action ids are
    ``labels``, against ``class_ids`` (``train_seen`` plus ``pseudo_unseen``).
    """

    gamma: float
    scores: np.ndarray
    labels: np.ndarray
    class_ids: np.ndarray
    train_seen: np.ndarray
    pseudo_unseen: np.ndarray

    def to_dict(self, max_rows: int = PROXY_ROWS, seed: int = 0) -> dict:
        """JSON-ready lists; at most ``max_rows`` validation samples, a seeded sample that
        keeps every class's share."""
        rows = np.arange(len(self.labels))
        if rows.size > max_rows:
            order = np.random.default_rng(seed).permutation(rows.size)
            # every class in proportion: the first max_rows of a random order, stratified by rank
            rank = np.empty(rows.size)
            for label in np.unique(self.labels):
                members = order[self.labels[order] == label]
                rank[members] = (np.arange(members.size) + 0.5) / members.size
            rows = np.sort(np.argsort(rank, kind="stable")[:max_rows])
        return {
            "gamma": self.gamma,
            "scores": self.scores[rows].astype(np.float32).tolist(),
            "labels": self.labels[rows].astype(int).tolist(),
            "class_ids": self.class_ids.astype(int).tolist(),
            "train_seen": self.train_seen.astype(int).tolist(),
            "pseudo_unseen": self.pseudo_unseen.astype(int).tolist(),
        }

    @classmethod
    def from_dict(cls, values: dict, source: str = "calibration") -> CalibrationProxy:
        """Read :meth:`to_dict`'s output; a malformed entry raises ValueError naming ``source``."""
        try:
            proxy = cls(
                gamma=float(values["gamma"]),
                scores=np.asarray(values["scores"], dtype=np.float64),
                labels=np.asarray(values["labels"], dtype=np.int64),
                class_ids=np.asarray(values["class_ids"], dtype=np.int64),
                train_seen=np.asarray(values["train_seen"], dtype=np.int64),
                pseudo_unseen=np.asarray(values["pseudo_unseen"], dtype=np.int64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: unreadable calibration proxy ({exc})") from exc
        shape_ok = proxy.scores.ndim == 2 and proxy.scores.shape == (
            proxy.labels.size,
            proxy.class_ids.size,
        )
        if not shape_ok or not np.isfinite(proxy.scores).all() or proxy.labels.size == 0:
            raise ValueError(
                f"{source}: calibration proxy scores of shape {proxy.scores.shape} do not match "
                f"{proxy.labels.size} labels and {proxy.class_ids.size} classes, or are not finite"
            )
        return proxy


def composition_gamma(
    proxy: CalibrationProxy,
    seen_fraction: float,
    unseen_fraction: float,
    draws: int = COMPOSITION_DRAWS,
    seed: int = 0,
) -> float:
    """The constant for a candidate list holding ``seen_fraction`` as many training classes and
    ``unseen_fraction`` as many other names as the evaluation's list (every seen and every
    unseen class of the split), chosen on the same proxy as the evaluation's constant.

    The constant corrects two things: the head's bias towards the classes it was trained on,
    and the best of many seen candidates being high by chance. The second shrinks with fewer
    seen candidates, so the evaluation's constant over-corrects a list with a few training
    names. Sub-problems of the proxy with the same fractions of its train-seen and
    pseudo-unseen classes (at least one of each, at most all) are drawn ``draws`` times, seeded,
    and the constant maximising their mean H (per sample) is returned. For fractions of 1 or
    more it is the whole proxy's ``proxy.gamma``, so a list of every class reproduces the
    evaluation.

    Raises:
        ValueError: a fraction that is not positive (a list without seen or without other
            names needs no constant).
    """
    if not (seen_fraction > 0 and unseen_fraction > 0):
        raise ValueError(
            "a calibration constant needs seen and unseen candidates, got fractions "
            f"{seen_fraction} and {unseen_fraction} of the evaluation's"
        )

    def size(fraction: float, full: int) -> int:
        return int(np.clip(round(fraction * full), 1, full))

    seen_n = size(seen_fraction, proxy.train_seen.size)
    unseen_n = size(unseen_fraction, proxy.pseudo_unseen.size)
    if seen_n == proxy.train_seen.size and unseen_n == proxy.pseudo_unseen.size:
        return proxy.gamma
    grid = margin_grid(proxy.scores, proxy.class_ids, proxy.train_seen)
    rng = np.random.default_rng(seed)
    total = np.zeros(grid.size)
    for _ in range(draws):
        seen = rng.choice(proxy.train_seen, seen_n, replace=False)
        unseen = rng.choice(proxy.pseudo_unseen, unseen_n, replace=False)
        total += _sub_problem_h(proxy, seen, unseen, grid)
    best = np.flatnonzero(total == total.max())
    return float(grid[best[np.argmin(np.abs(grid[best]))]])


def _sub_problem_h(
    proxy: CalibrationProxy, seen: np.ndarray, unseen: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """H (%, per sample) of one sub-problem of the proxy for every constant of ``grid``."""
    rows = np.isin(proxy.labels, np.concatenate([seen, unseen]))
    scores, labels = proxy.scores[rows], proxy.labels[rows]
    seen_cols, unseen_cols = np.isin(proxy.class_ids, seen), np.isin(proxy.class_ids, unseen)
    best_seen = proxy.class_ids[seen_cols][scores[:, seen_cols].argmax(1)]
    best_unseen = proxy.class_ids[unseen_cols][scores[:, unseen_cols].argmax(1)]
    margin = scores[:, seen_cols].max(1) - scores[:, unseen_cols].max(1)
    picks_seen = margin[:, None] > grid[None, :]  # (N, G): seen wins after the subtraction
    is_seen = np.isin(labels, seen)
    seen_hit = picks_seen & (best_seen == labels)[:, None]
    unseen_hit = ~picks_seen & (best_unseen == labels)[:, None]
    seen_acc = 100.0 * seen_hit[is_seen].mean(0) if is_seen.any() else np.zeros(grid.size)
    unseen_acc = 100.0 * unseen_hit[~is_seen].mean(0) if (~is_seen).any() else np.zeros(grid.size)
    denominator = seen_acc + unseen_acc
    return np.divide(
        2 * seen_acc * unseen_acc, denominator, out=np.zeros(grid.size), where=denominator > 0
    )
