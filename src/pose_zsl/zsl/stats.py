"""Uncertainty of evaluation numbers: Wilson intervals, a parametric bootstrap, seed summaries.

Every accuracy in this project is measured on a few dozen to a few thousand test samples, so
each number carries a 95 % interval:

* an accuracy (top-k, hit@k, S, U, and their means of per-class accuracies) gets the Wilson
  score interval, which stays inside [0, 1] and is honest at small ``n`` and at 0 or 100 %.
  A mean of per-class accuracies is a weighted proportion; it is treated as a proportion of
  its *effective* sample size (Kish): ``n_eff = 1 / sum_c(w_c^2 / n_c)`` for weights ``w_c``
  summing to 1 over classes of ``n_c`` test samples. With equal weights that is
  ``C^2 / sum_c(1 / n_c)``: ``n`` itself when every class has the same number of samples,
  fewer when a few classes with few samples weigh as much as large ones;
* H, a function of two accuracies, gets a seeded percentile interval from a parametric
  bootstrap: S and U (seen and unseen test samples are disjoint, hence independent) are drawn
  from their Jeffreys posteriors Beta(``n_eff * acc`` + 1/2, ``n_eff * (1 - acc)`` + 1/2) and
  H is recomputed from each draw. With a fixed seed and a fixed number of draws the interval is
  the same on every run. When H is exactly 0 or 100 % the interval's end is H itself (the
  draws never reach the ends), as Brown, Cai & DasGupta (2001) do for Jeffreys' interval.

Why not resample test samples (the plain bootstrap): it cannot move a group or class with no
hits, all hits or one sample. A collapsed head has U = 0 exactly, so H would read
"0.0 [0.0, 0.0]" at n = 24, and a class mean over one-sample classes would get a zero-width
interval. In a simulation (8 settings of 300 test sets: 5-10 unseen and 15-55 seen classes,
1-40 test samples per class, equal or unequal, true accuracies 2-90 %), resampling covered the
true H in 0-98 % of the test sets of a setting and the true class mean in 0-95 %; the
intervals here covered them in 94-99 % and 93-100 % (the test suite repeats a short version).

Plain numpy, no Kedro.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

#: Two-sided coverage of every interval reported.
CONFIDENCE = 0.95
#: Bootstrap draws: the Monte-Carlo error of a 2.5 % percentile from 2000 draws is about
#: sqrt(0.025 * 0.975 / 2000) = 0.35 % of probability mass, well below the interval widths at
#: the test-set sizes here.
BOOTSTRAP_RESAMPLES = 2000
#: Fixed bootstrap seed: rerunning an evaluation reproduces its intervals exactly.
BOOTSTRAP_SEED = 0


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``successes`` out of ``n`` (element-wise), as proportions.

    ``successes`` and ``n`` may be fractional (an effective sample size and its share of hits).

    Raises:
        ValueError: ``n`` < 1, ``successes`` outside [0, n], or ``confidence`` outside (0, 1).
    """
    k = np.asarray(successes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    if np.any(total < 1):
        raise ValueError(f"n must be at least 1, got {total}")
    if np.any((k < 0) | (k > total)):
        raise ValueError(f"successes must lie in [0, n], got {k} of {total}")
    z = _z(confidence)
    p = k / total
    z2n = z * z / total
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * np.sqrt(p * (1.0 - p) / total + z2n / (4.0 * total))
    # The closed form reaches 0 and 1 only up to rounding; at k = 0 or k = n it is exact there.
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(k == total, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def weighted_accuracy(
    hits: np.ndarray, strata: np.ndarray, *, per_stratum: bool
) -> tuple[float, float]:
    """An accuracy (a proportion, 0-1) and its effective sample size.

    Args:
        hits: 0/1 outcome per sample.
        strata: class (or other stratum) per sample.
        per_stratum: ``False``: the flat share of hits (effective size = number of samples);
            ``True``: the mean of per-stratum accuracies (effective size
            ``S^2 / sum_s(1 / n_s)``, see the module docstring).
    """
    outcome = np.asarray(hits)
    groups = np.asarray(strata)
    if outcome.ndim != 1 or outcome.shape != groups.shape:
        raise ValueError(
            f"hits and strata must be 1-D of one length, got {outcome.shape} and {groups.shape}"
        )
    if outcome.size == 0:
        raise ValueError("no samples: an accuracy needs at least one")
    if not np.isin(outcome, (0, 1)).all():
        raise ValueError("hits must be 0/1 outcomes")
    if not per_stratum:
        return float(outcome.mean()), float(outcome.size)
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    rates = np.bincount(inverse, weights=outcome.astype(np.float64)) / sizes
    return float(rates.mean()), float(sizes.size**2 / np.sum(1.0 / sizes))


def accuracy_draws(
    accuracies: Sequence[tuple[float, float]],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """``(resamples, len(accuracies))`` draws of independent accuracies (0-1), each given as
    ``(accuracy, effective sample size)``, from its Jeffreys posterior Beta(n acc + 1/2,
    n (1 - acc) + 1/2)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    values = np.array([a for a, _ in accuracies], dtype=np.float64)
    sizes = np.array([n for _, n in accuracies], dtype=np.float64)
    if values.size == 0 or np.any((values < 0) | (values > 1)) or np.any(sizes <= 0):
        raise ValueError(
            f"accuracies must be (value in [0, 1], size > 0) pairs, got {list(accuracies)}"
        )
    rng = np.random.default_rng(seed)
    return rng.beta(
        sizes * values + 0.5, sizes * (1.0 - values) + 0.5, size=(resamples, values.size)
    )


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    accuracies: Sequence[tuple[float, float]],
    *,
    value: float,
    bounds: tuple[float, float] = (0.0, 1.0),
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` of independent accuracies (module docstring).

    Args:
        statistic: maps the ``(resamples, len(accuracies))`` draws of
            :func:`accuracy_draws` to one value per draw (e.g. H of S and U).
        accuracies: ``(accuracy, effective sample size)`` per input, e.g. from
            :func:`weighted_accuracy`.
        value, bounds: the statistic on the data and its range: an end of the interval is the
            value when the value sits on that end of the range.
    """
    draws = accuracy_draws(accuracies, resamples=resamples, seed=seed)
    values = np.asarray(statistic(draws), dtype=np.float64)
    if values.shape != (draws.shape[0],):
        raise ValueError(
            f"statistic must return one value per draw ({draws.shape[0]}), got shape {values.shape}"
        )
    return percentile_interval(values, confidence, value=value, bounds=bounds)


def percentile_interval(
    values: np.ndarray,
    confidence: float = CONFIDENCE,
    *,
    value: float | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> tuple[float, float]:
    """The central ``confidence`` range of bootstrap draws ``values`` (percentile method); an
    end is ``value`` itself when ``value`` sits on that end of ``bounds``."""
    _z(confidence)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100.0 - tail])
    if value is not None and value <= bounds[0]:
        low = bounds[0]
    if value is not None and value >= bounds[1]:
        high = bounds[1]
    return float(low), float(high)


def summarise_seeds(metrics: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1; NaN for one seed) of ``value`` over seeds.

    ``metrics`` holds rows of the evaluation's metrics table, possibly several per variant that
    differ only in ``seed`` (and their value, n and interval; ``backbone_seed`` too when each
    repeat had its own ST-GCN). ``keys`` (default: every column but ``seed``,
    ``backbone_seed``, ``value``, ``n``, ``ci_low``, ``ci_high``) identify one measurement.

    Returns:
        One row per measurement: ``keys`` plus ``mean``, ``std``, ``repeats`` and ``seeds``
        (sorted, comma-separated); where the rows have them, ``n`` (every seed's: they are
        scored on the same test samples) and ``ci_low``, ``ci_high``: the seeds' 95 % interval
        bounds averaged bound by bound (NaN where the rows have none). That interval is the
        test-sample uncertainty of one run: seeds share the test samples, so it does not
        narrow as seeds are added; ``std`` is the spread that training seeds alone cause.

    Raises:
        ValueError: a seed repeated within one measurement (the same run counted twice), or
            seeds of one measurement scored on different numbers of test samples.
    """
    if metrics.empty:
        raise ValueError("no metric rows to summarise")
    for column in ("seed", "value"):
        if column not in metrics:
            raise ValueError(f"metrics table has no {column!r} column")
    per_run = {"seed", "backbone_seed", "value", "n", "ci_low", "ci_high"}
    by = list(keys) if keys is not None else [c for c in metrics.columns if c not in per_run]
    duplicated = metrics.duplicated([*by, "seed"])
    if duplicated.any():
        first = metrics.loc[duplicated, [*by, "seed"]].iloc[0].to_dict()
        raise ValueError(f"seed listed twice for one measurement, e.g. {first}")
    grouped = metrics.groupby(by, sort=False, dropna=False)
    summary = grouped["value"].agg(mean="mean", std="std", repeats="size").reset_index()
    seeds = grouped["seed"].agg(lambda s: ",".join(str(v) for v in sorted(s))).reset_index()
    summary = summary.merge(seeds.rename(columns={"seed": "seeds"}), on=by, how="left")
    if "n" in metrics:
        sizes = grouped["n"].agg(["nunique", "first"]).reset_index()
        if (sizes["nunique"] > 1).any():
            first = sizes.loc[sizes["nunique"] > 1, by].iloc[0].to_dict()
            raise ValueError(
                "the seeds of one measurement were scored on different numbers of test samples "
                f"(n), e.g. {first}: a spread over seeds needs one test set"
            )
        summary = summary.merge(sizes[[*by, "first"]].rename(columns={"first": "n"}), on=by)
    bounds = [c for c in ("ci_low", "ci_high") if c in metrics]
    if bounds:
        # numpy's mean keeps NaN: a measurement without an interval keeps none
        means = grouped[bounds].agg(lambda s: float(np.mean(s.to_numpy(dtype=np.float64))))
        summary = summary.merge(means.reset_index(), on=by, how="left")
    return summary


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t interval over them (NaN bounds for fewer than 2).

    Used across splits: each split is one draw of which classes are unseen, so the spread of a
    metric over splits is what a new split would see; the test-sample intervals of each split
    are already inside that spread."""
    from scipy.stats import t

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(mean - half), float(mean + half)


def summarise_splits(metrics: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Mean, standard deviation and 95 % t-interval over splits of one metric per ``keys``.

    Each split's value is first averaged over the seeds of its heads. Returns one row per
    ``keys`` with ``splits`` (how many), ``mean``, ``std`` (ddof 1), ``ci_low``, ``ci_high``.
    """
    per_split = metrics.groupby([*keys, "split"], sort=False)["value"].mean().reset_index()
    rows = []
    for key, group in per_split.groupby(list(keys), sort=False):  # a list: keys are tuples
        values = group["value"].to_numpy()
        mean, low, high = t_interval(values)
        std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        rows.append({**dict(zip(keys, key, strict=True)), "splits": values.size, "mean": mean,
                     "std": std, "ci_low": low, "ci_high": high})  # fmt: skip
    return pd.DataFrame(rows, columns=[*keys, "splits", "mean", "std", "ci_low", "ci_high"])


def paired_differences(
    metrics: pd.DataFrame, keys: Sequence[str], column: str, minuend: str, subtrahend: str
) -> pd.DataFrame:
    """Per ``keys``, the difference ``minuend - subtrahend`` of ``column``'s two values, paired
    by split (the same unseen classes and test samples), with its mean, std and 95 %
    t-interval over the splits both were measured on."""
    per_split = metrics.groupby([*keys, column, "split"], sort=False)["value"].mean()
    wide = per_split.unstack(column)
    if minuend not in wide or subtrahend not in wide:
        return pd.DataFrame(columns=[*keys, "splits", "mean", "std", "ci_low", "ci_high"])
    difference = (wide[minuend] - wide[subtrahend]).dropna().rename("value").reset_index()
    summary = summarise_splits(difference, keys)
    return summary.assign(comparison=f"{minuend} - {subtrahend}")
