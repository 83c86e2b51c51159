"""Zero-shot metrics on hand-made score matrices: top-k, ZSL, GZSL S/U/H, calibration."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pose_zsl.pipelines.evaluation.nodes import (
    METRIC_COLUMNS,
    gzsl_table,
    seen_unseen_table,
    warn_if_collapsed,
    zsl_table,
)
from pose_zsl.reporting import format_interval
from pose_zsl.zsl.calibration import choose_calibration, margin_grid
from pose_zsl.zsl.metrics import (
    calibrated_stacking,
    collapse_diagnostics,
    confusion_matrix,
    confusion_matrix_figure,
    gzsl_metrics,
    harmonic_mean,
    metric_rows,
    per_class_accuracy,
    predict,
    topk_accuracy,
    vanilla_baseline_rows,
    vanilla_classifier_scores,
    zsl_metrics,
)
from pose_zsl.zsl.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    accuracy_draws,
    bootstrap_interval,
    summarise_seeds,
    weighted_accuracy,
    wilson_interval,
)

# Classes 10, 20 are seen; 30, 40 unseen. Ids are not column positions on purpose.
CLASS_IDS = np.array([10, 20, 30, 40])
SEEN = [10, 20]
UNSEEN = [30, 40]

SCORES = np.array(
    [
        # 10    20    30    40
        [0.90, 0.10, 0.50, 0.00],  # true 10: top-1 hit
        [0.80, 0.70, 0.10, 0.20],  # true 20: rank 2
        [0.75, 0.20, 0.50, 0.10],  # true 30: rank 2 overall, rank 1 among unseen; margin 0.25
        [0.60, 0.30, 0.40, 0.10],  # true 40: rank 4 overall, rank 2 among unseen
        [0.10, 0.20, 0.30, 0.40],  # true 40: top-1 hit
    ]
)
LABELS = np.array([10, 20, 30, 40, 40])


def test_topk_accuracy_hand_made():
    assert topk_accuracy(SCORES, LABELS, CLASS_IDS, 1) == pytest.approx(40.0)
    assert topk_accuracy(SCORES, LABELS, CLASS_IDS, 2) == pytest.approx(80.0)
    assert topk_accuracy(SCORES, LABELS, CLASS_IDS, 3) == pytest.approx(80.0)
    assert topk_accuracy(SCORES, LABELS, CLASS_IDS, 4) == pytest.approx(100.0)


def test_ties_count_against_the_true_class():
    constant = np.zeros((3, 4))
    labels = np.array([10, 20, 30])
    assert topk_accuracy(constant, labels, CLASS_IDS, 1) == 0.0
    assert topk_accuracy(constant, labels, CLASS_IDS, 3) == 0.0
    assert topk_accuracy(constant, labels, CLASS_IDS, 4) == 100.0


def test_zsl_ranks_unseen_samples_among_unseen_classes_only():
    assert zsl_metrics(SCORES, LABELS, CLASS_IDS, UNSEEN) == {"top1": pytest.approx(200 / 3)}
    # top-5 needs more than 5 unseen classes: with 6, it is reported, not with 5.
    rng = np.random.default_rng(0)
    ids = np.arange(8)
    labels = np.repeat(np.arange(2, 8), 2)
    scores = rng.normal(size=(labels.size, 8))
    assert set(zsl_metrics(scores, labels, ids, np.arange(2, 8))) == {"top1", "top5"}
    five = labels >= 3
    assert set(zsl_metrics(scores[five], labels[five], ids, np.arange(3, 8))) == {"top1"}
    assert zsl_metrics(scores, labels, ids, np.arange(2, 8), ks=(1, 2))["top2"] == pytest.approx(
        topk_accuracy(scores[:, 2:], labels, ids[2:], 2)
    )


def test_gzsl_hand_made():
    result = gzsl_metrics(SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN, ks=(1, 2, 5))
    # unseen samples (rows 2-4): top-1 only row 4 -> 33.3; top-2 rows 2 and 4 -> 66.7
    assert result["hit1"] == pytest.approx(100 / 3)
    assert result["hit2"] == pytest.approx(200 / 3)
    assert "hit5" not in result  # k must be smaller than the 4 candidate classes
    assert result["seen_acc"] == pytest.approx(50.0)
    assert result["unseen_acc"] == pytest.approx(100 / 3)
    assert result["harmonic_mean"] == pytest.approx(2 * 50 * (100 / 3) / (50 + 100 / 3))


def test_gzsl_class_average():
    result = gzsl_metrics(SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN, average="class")
    # unseen per-class: class 30: 0/1, class 40: 1/2 -> mean 25
    assert result["unseen_acc"] == pytest.approx(25.0)
    assert result["hit1"] == pytest.approx(100 / 3)  # hit@k stays flat


def test_harmonic_mean():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(50.0, 0.0) == 0.0
    assert harmonic_mean(60.0, 40.0) == pytest.approx(48.0)


def test_calibrated_stacking_flips_exactly_when_gamma_exceeds_the_margin():
    row = SCORES[2:3]  # true 30; best seen 0.75 (class 10), best unseen 0.50: margin 0.25
    label = LABELS[2:3]
    below, above = 0.25 - 1e-9, 0.25 + 1e-9
    assert predict(calibrated_stacking(row, CLASS_IDS, SEEN, below), CLASS_IDS)[0] == 10
    assert predict(calibrated_stacking(row, CLASS_IDS, SEEN, above), CLASS_IDS)[0] == 30

    def top1(gamma: float) -> float:
        return topk_accuracy(calibrated_stacking(row, CLASS_IDS, SEEN, gamma), label, CLASS_IDS, 1)

    assert (top1(below), top1(above)) == (0.0, 100.0)
    assert top1(0.25) == 0.0  # at exactly the margin the classes tie, and a tie is not a hit
    # Only seen columns move; the input is not modified.
    shifted = calibrated_stacking(SCORES, CLASS_IDS, SEEN, 0.3)
    np.testing.assert_allclose(shifted[:, :2], SCORES[:, :2] - 0.3)
    np.testing.assert_array_equal(shifted[:, 2:], SCORES[:, 2:])
    assert SCORES[2, 0] == 0.75


def test_gzsl_calibration_argument():
    plain = gzsl_metrics(SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN)
    calibrated = gzsl_metrics(SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN, calibration=0.26)
    # Row 2 (margin 0.25) turns right; row 3 flips to class 30, still wrong; row 1 stays lost.
    assert calibrated["unseen_acc"] == pytest.approx(200 / 3)
    assert calibrated["seen_acc"] == pytest.approx(50.0)  # row 1 is still lost to class 10
    assert calibrated["harmonic_mean"] > plain["harmonic_mean"]


def _validation_scores(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train-seen classes 0-5, pseudo-unseen 6-7: a correct but seen-biased scorer."""
    ids = np.arange(8)
    labels = np.repeat(ids, 20)
    scores = rng.normal(scale=0.05, size=(labels.size, 8))
    scores[np.arange(labels.size), labels] += 0.5
    scores[:, :6] += 0.6  # bias towards train-seen classes
    return scores, labels, ids


def test_choose_calibration_recovers_the_bias():
    scores, labels, ids = _validation_scores(np.random.default_rng(0))
    choice = choose_calibration(
        scores,
        labels,
        ids,
        train_seen_ids=range(6),
        pseudo_unseen_ids=[6, 7],
        true_unseen_ids=[8, 9],
    )
    at_zero = gzsl_metrics(scores, labels, ids, range(6), [6, 7], ks=(1,))
    assert at_zero["unseen_acc"] == 0.0
    assert choice.harmonic_mean > 90.0
    assert 0.2 < choice.gamma < 1.0
    assert choice.harmonic_mean == pytest.approx(choice.sweep["harmonic_mean"].max())
    assert list(choice.sweep.columns) == ["gamma", "seen_acc", "unseen_acc", "harmonic_mean"]
    assert 0.0 in set(choice.sweep["gamma"])
    # An explicit grid is honoured; ties go to the gamma nearest 0.
    explicit = choose_calibration(
        scores, labels, ids, range(6), [6, 7], true_unseen_ids=[8, 9], grid=[-1.0, 0.0, 5.0]
    )
    assert explicit.gamma == 0.0 and explicit.harmonic_mean == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"true_unseen_ids": [7]},
            r"leakage: validation labels include true unseen class id\(s\) \[7\]",
        ),
        ({"true_unseen_ids": [5]}, "leakage"),
        ({"pseudo_unseen_ids": [6, 7, 5]}, "both seen and unseen"),
        ({"train_seen_ids": range(5)}, r"neither seen nor unseen"),
        ({"grid": []}, "grid"),
    ],
)
def test_choose_calibration_guards(change, message):
    scores, labels, ids = _validation_scores(np.random.default_rng(0))
    kwargs = {"train_seen_ids": range(6), "pseudo_unseen_ids": [6, 7], "true_unseen_ids": [8, 9]}
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        choose_calibration(scores, labels, ids, **kwargs)


def test_choose_calibration_refuses_true_unseen_columns():
    scores, labels, ids = _validation_scores(np.random.default_rng(0))
    widened = np.hstack([scores, np.zeros((scores.shape[0], 1))])
    with pytest.raises(ValueError, match=r"candidate classes .* \[8\]"):
        choose_calibration(widened, labels, np.arange(9), range(6), [6, 7], true_unseen_ids=[8])


def test_margin_grid_brackets_every_flip():
    scores, _, ids = _validation_scores(np.random.default_rng(1))
    grid = margin_grid(scores, ids, np.arange(6), quantiles=11)
    margins = scores[:, :6].max(1) - scores[:, 6:].max(1)
    assert 0.0 in grid
    assert np.all(np.diff(grid) > 0)
    # Each candidate sits just above a margin, so it flips that sample; here all margins > 0.
    assert grid[1] > margins.min() and grid[1] == pytest.approx(margins.min())
    assert grid.max() > margins.max()  # the largest gamma flips every sample


def test_metric_rows_long_format():
    rows = metric_rows(SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN, calibration=0.26, ks=(1, 2))
    frame = pd.DataFrame(rows)
    assert list(frame.columns) == ["protocol", "metric", "value", "n", "ci_low", "ci_high"]
    assert set(frame["protocol"]) == {"zsl", "gzsl", "gzsl_calibrated"}
    gzsl = frame[frame.protocol == "gzsl"].set_index("metric")
    assert list(gzsl.index) == [
        "hit1",
        "hit2",
        "seen_acc",
        "unseen_acc",
        "harmonic_mean",
        "seen_acc_class_mean",
        "unseen_acc_class_mean",
        "harmonic_mean_class_mean",
    ]
    # n: unseen samples (rows 2-4) for hit@k and U, seen samples (rows 0-1) for S, all for H
    assert gzsl["n"].to_dict() == {
        "hit1": 3,
        "hit2": 3,
        "seen_acc": 2,
        "unseen_acc": 3,
        "harmonic_mean": 5,
        "seen_acc_class_mean": 2,
        "unseen_acc_class_mean": 3,
        "harmonic_mean_class_mean": 5,
    }
    calibrated = frame[frame.protocol == "gzsl_calibrated"].set_index("metric")["value"]
    assert calibrated["unseen_acc"] == pytest.approx(200 / 3)
    zsl = frame[frame.protocol == "zsl"].set_index("metric")
    # top-5 needs more than 2 unseen classes; the class mean and diagnostics always come
    assert list(zsl.index) == ["top1", "top1_class_mean", "top_class_share", "prediction_entropy"]
    assert (zsl["n"] == 3).all()
    # among unseen classes: row 2 (30) right, row 3 (40) wrong, row 4 (40) right
    assert zsl.loc["top1_class_mean", "value"] == pytest.approx((100 + 50) / 2)
    assert "gzsl_calibrated" not in {
        r["protocol"] for r in metric_rows(SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN)
    }


@pytest.mark.parametrize("calibration", [0.0, 0.26])
def test_metric_rows_values_are_those_of_zsl_and_gzsl_metrics(calibration):
    """Adding intervals and class means leaves every existing metric's value as it was."""
    rng = np.random.default_rng(3)
    ids = np.arange(9)
    labels = rng.permutation(np.repeat(ids, [2, 5, 3, 7, 1, 4, 6, 2, 3]))
    scores = rng.normal(size=(labels.size, ids.size))
    seen, unseen = range(3), range(3, 9)
    frame = pd.DataFrame(metric_rows(scores, labels, ids, seen, unseen, calibration=calibration))
    values = frame.set_index(["protocol", "metric"])["value"]
    for metric, value in zsl_metrics(scores, labels, ids, unseen).items():
        assert values[("zsl", metric)] == value
    for average, suffix in (("sample", ""), ("class", "_class_mean")):
        expected = gzsl_metrics(
            scores, labels, ids, seen, unseen, calibration=calibration, average=average
        )
        for metric in ("seen_acc", "unseen_acc", "harmonic_mean"):
            assert values[("gzsl_calibrated", f"{metric}{suffix}")] == expected[metric]
    for k in (1, 5):
        assert values[("gzsl_calibrated", f"hit{k}")] == expected[f"hit{k}"]


# --------------------------------------------------------------------------------------------
# Intervals, class means and collapse diagnostics on heads whose answers are known
# --------------------------------------------------------------------------------------------

Z95 = NormalDist().inv_cdf(0.975)
IDS = np.arange(7)
KNOWN_SEEN, KNOWN_UNSEEN = [0, 1, 2], [3, 4, 5, 6]


def _balanced(per_class: int) -> np.ndarray:
    return np.repeat(IDS, per_class)


def _scores_predicting(predicted: np.ndarray, classes: int = IDS.size) -> np.ndarray:
    """A head whose top-1 is ``predicted`` by a margin of 1 (no ties anywhere on top)."""
    scores = np.zeros((predicted.size, classes))
    scores[np.arange(predicted.size), predicted] = 1.0
    return scores


def _half_right(labels: np.ndarray) -> np.ndarray:
    """Every other sample of a class right, the rest given the next class of its group."""
    within = np.concatenate([np.arange(c) for c in np.bincount(labels)])
    nxt = np.where(np.isin(labels, KNOWN_SEEN), (labels + 1) % 3, 3 + (labels - 2) % 4)
    return np.where(within % 2 == 0, labels, nxt)


def _rows(scores: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    rows = metric_rows(scores, labels, IDS, KNOWN_SEEN, KNOWN_UNSEEN, calibration=0.5)
    return pd.DataFrame(rows).set_index(["protocol", "metric"])


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Stat. Med. 17:857, Table I (method 3, score interval without
    # continuity correction); the 8/10 case is the usual textbook example. Published to 4
    # decimals, hence a tolerance of half a unit in the 4th.
    cases = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
        (8, 10): (0.4902, 0.9433),
    }
    successes, n = np.array(list(cases)).T
    low, high = wilson_interval(successes, n)
    expected = np.array(list(cases.values()))
    np.testing.assert_allclose(low, expected[:, 0], atol=5e-5)
    np.testing.assert_allclose(high, expected[:, 1], atol=5e-5)
    with pytest.raises(ValueError, match="successes must lie in"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="n must be at least 1"):
        wilson_interval(0, 0)


def test_perfect_head_gives_100_with_the_wilson_bound_at_n():
    labels = _balanced(6)
    frame = _rows(_scores_predicting(labels), labels)

    def wilson_low_at_100(n: int) -> float:  # Wilson at k = n reduces to n / (n + z^2)
        return 100.0 * n / (n + Z95**2)

    n = 4 * 6
    top1 = frame.loc[("zsl", "top1")]
    assert (top1["value"], top1["n"], top1["ci_high"]) == (100.0, n, 100.0)
    assert top1["ci_low"] == pytest.approx(wilson_low_at_100(n), rel=1e-12)  # float rounding
    # balanced classes: the class mean's effective sample size is n itself
    class_mean = frame.loc[("zsl", "top1_class_mean")]
    assert tuple(class_mean[["value", "n", "ci_high"]]) == (100.0, n, 100.0)
    assert class_mean["ci_low"] == pytest.approx(wilson_low_at_100(n), rel=1e-12)
    for protocol in ("gzsl", "gzsl_calibrated"):  # calibration 0.5 < margin 1: nothing flips
        for metric in ("seen_acc", "seen_acc_class_mean"):
            assert frame.loc[(protocol, metric), "ci_low"] == pytest.approx(
                wilson_low_at_100(18), rel=1e-12
            )
        for metric in ("harmonic_mean", "harmonic_mean_class_mean"):
            # 100 % of a few dozen samples is not certainty: the interval opens below; H lies
            # between S and U, so its lower end is near theirs (86.2 and 82.4 here)
            low, value, high = frame.loc[(protocol, metric), ["ci_low", "value", "ci_high"]]
            assert (value, high) == (100.0, 100.0)
            assert 80.0 < low < 100.0
    assert frame.loc[("zsl", "top_class_share"), "value"] == pytest.approx(100.0 / 4)
    assert frame.loc[("zsl", "prediction_entropy"), "value"] == pytest.approx(100.0)


def test_class_mean_interval_is_wilson_at_the_effective_sample_size():
    # unseen classes 3, 4, 5, 6 with 1, 2, 4, 8 test samples, all right except one of class 6
    labels = np.concatenate([np.repeat(KNOWN_SEEN, 3), np.repeat([3, 4, 5, 6], [1, 2, 4, 8])])
    predicted = labels.copy()
    predicted[-1] = 3
    frame = _rows(_scores_predicting(predicted), labels)
    value = 100.0 * (1 + 1 + 1 + 7 / 8) / 4
    effective_n = 4**2 / (1 / 1 + 1 / 2 + 1 / 4 + 1 / 8)  # Kish: 8.53, not 15
    low, high = wilson_interval(value / 100.0 * effective_n, effective_n)
    for protocol, metric in (("zsl", "top1_class_mean"), ("gzsl", "unseen_acc_class_mean")):
        row = frame.loc[(protocol, metric)]
        assert row["value"] == pytest.approx(value, rel=1e-12)
        assert row["n"] == 15
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((100 * low, 100 * high), rel=1e-12)
    # the flat accuracy of the same samples is a proportion of all 15
    low, high = wilson_interval(14, 15)
    assert tuple(frame.loc[("zsl", "top1"), ["ci_low", "ci_high"]]) == (100 * low, 100 * high)


def test_constant_head_gives_one_over_k_and_reads_as_collapsed():
    labels = _balanced(5)
    frame = _rows(_scores_predicting(np.full(labels.size, 3)), labels)
    for protocol, metric in (
        ("zsl", "top1"),
        ("zsl", "top1_class_mean"),
        ("gzsl", "hit1"),
        ("gzsl", "unseen_acc"),
    ):
        assert frame.loc[(protocol, metric), "value"] == 100.0 / 4  # exactly: 5 of 20
    assert frame.loc[("gzsl", "seen_acc"), "value"] == 0.0
    assert frame.loc[("gzsl", "harmonic_mean"), "value"] == 0.0
    assert frame.loc[("zsl", "top_class_share"), "value"] == 100.0
    assert frame.loc[("zsl", "prediction_entropy"), "value"] == 0.0
    assert frame.loc[("zsl", "prediction_entropy"), ["ci_low", "ci_high"]].isna().all()
    assert frame.loc[("zsl", "top_class_share"), "n"] == 20
    low, high = wilson_interval(5, 20)
    assert tuple(frame.loc[("zsl", "top1"), ["ci_low", "ci_high"]]) == (100 * low, 100 * high)


def test_intervals_contain_the_value_and_shrink_as_n_grows():
    widths = {}
    for per_class in (4, 40):
        labels = _balanced(per_class)
        frame = _rows(_scores_predicting(_half_right(labels)), labels)
        interval = frame.dropna(subset=["ci_low"])
        assert (interval["ci_low"] <= interval["value"]).all()
        assert (interval["value"] <= interval["ci_high"]).all()
        widths[per_class] = interval["ci_high"] - interval["ci_low"]
        for metric in ("top1", "top1_class_mean"):
            assert frame.loc[("zsl", metric), "value"] == 50.0
        assert frame.loc[("gzsl", "harmonic_mean"), "value"] == 50.0
    assert (widths[40] < widths[4]).all(), pd.DataFrame(widths)


def test_bootstrap_of_h_contains_h_and_is_fixed_by_its_seed():
    rng = np.random.default_rng(5)
    labels = _balanced(8)
    scores = _scores_predicting(labels) + rng.normal(scale=0.8, size=(labels.size, IDS.size))
    first, second = _rows(scores, labels), _rows(scores, labels)
    pd.testing.assert_frame_equal(first, second)
    for protocol in ("gzsl", "gzsl_calibrated"):
        for metric in ("harmonic_mean", "harmonic_mean_class_mean"):
            low, value, high = first.loc[(protocol, metric), ["ci_low", "value", "ci_high"]]
            assert low < value < high
    # The interval comes from the seed: another seed moves its ends, the same one does not.
    inputs = [(0.4, 20.0), (0.7, 30.0)]

    def h(draws: np.ndarray) -> np.ndarray:
        return 2 * draws[:, 0] * draws[:, 1] / (draws[:, 0] + draws[:, 1])

    value = 2 * 0.4 * 0.7 / 1.1
    first = bootstrap_interval(h, inputs, value=value)
    assert first == bootstrap_interval(h, inputs, value=value, seed=BOOTSTRAP_SEED)
    assert first != bootstrap_interval(h, inputs, value=value, seed=BOOTSTRAP_SEED + 1)
    assert first[0] < value < first[1]


def test_bootstrap_intervals_stay_open_at_zero_hits_and_one_sample_classes():
    """Plain resampling cannot move a stratum with no hits (or one sample): H of a head with
    U = 0 would read 0.0 [0.0, 0.0]. The drawn rates keep such intervals open."""
    labels = _balanced(5)
    frame = _rows(_scores_predicting(np.where(labels < 3, labels, 0)), labels)  # U = 0, S = 100
    for metric in ("harmonic_mean", "harmonic_mean_class_mean", "unseen_acc_class_mean"):
        low, value, high = frame.loc[("gzsl", metric), ["ci_low", "value", "ci_high"]]
        assert (low, value) == (0.0, 0.0) and high > 5.0, (metric, high)
    # one test sample in seen class 0: its class mean still has an interval of some width
    keep = (labels != 0) | (np.arange(labels.size) == 0)
    frame = _rows(_scores_predicting(_half_right(labels))[keep], labels[keep])
    low, high = frame.loc[("gzsl", "seen_acc_class_mean"), ["ci_low", "ci_high"]]
    assert high - low > 20.0


def _beta_quantile(q: float, a: float, b: float) -> tuple[float, float]:
    """The ``q`` quantile of Beta(a, b) and the density there, by quadrature (x = t^2 takes
    the x^(-1/2) singularity at 0 out of the integrand)."""
    t = np.linspace(0.0, 1.0, 400_001)[1:-1]
    x = t * t
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    pdf = np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - log_norm)
    cdf = np.concatenate([[0.0], np.cumsum((pdf * 2 * t)[1:] * np.diff(t))])
    i = int(np.searchsorted(cdf, q))
    return float(x[i]), float(pdf[i])


@pytest.mark.parametrize(("k", "n"), [(3, 10), (0, 5), (5, 5), (1, 1), (12, 40)])
def test_bootstrap_of_one_proportion_is_the_jeffreys_interval(k, n):
    """One accuracy: the bootstrap interval is Jeffreys' (Beta(k + 1/2, n - k + 1/2) quantiles,
    the end at 0 or 1 when k = 0 or k = n, as Brown, Cai & DasGupta 2001)."""
    low, high = bootstrap_interval(lambda draws: draws[:, 0], [(k / n, n)], value=k / n)
    for end, q, reached in ((low, 0.025, k == 0), (high, 0.975, k == n)):
        if reached:
            assert end == (0.0 if q < 0.5 else 1.0)
            continue
        exact, density = _beta_quantile(q, k + 0.5, n - k + 0.5)
        # Monte-Carlo error of a quantile of 2000 draws: sqrt(q (1 - q) / 2000) / density;
        # 4 standard errors, plus the quadrature grid's resolution.
        tolerance = 4 * math.sqrt(q * (1 - q) / BOOTSTRAP_RESAMPLES) / density + 1e-4
        assert end == pytest.approx(exact, abs=tolerance), (k, n, q)


def test_bootstrap_of_a_proportion_agrees_with_wilson_at_large_n():
    """At n = 400 both intervals are close to p +- 1.96 sqrt(p(1 - p) / n) (half-width 4.5
    points at p = 0.3)."""
    boot = np.array(bootstrap_interval(lambda draws: draws[:, 0], [(0.3, 400)], value=0.3))
    wilson = np.array(wilson_interval(120, 400)).ravel()
    # Wilson's and Jeffreys' ends differ by under 0.1 point here; the 2.5 % quantile of 2000
    # draws has a Monte-Carlo error of about 0.06 sd = 0.14 point.
    np.testing.assert_allclose(boot, wilson, atol=0.006)


@pytest.mark.parametrize(
    ("per_class", "seen_rate", "unseen_rate"),
    [(2, 0.9, 0.02), (1, 0.3, 0.2), (5, 0.6, 0.3)],
)
def test_intervals_cover_the_truth_in_simulated_test_sets(per_class, seen_rate, unseen_rate):
    """Over many simulated test sets of a head with known per-class hit rates, the 95 %
    intervals of H and of the class means hold the true value about 95 % of the time, also
    where plain resampling fails (U near 0: H would read "0.0 [0.0, 0.0]"; one sample per
    class: a class mean would get a zero-width interval)."""
    rng = np.random.default_rng(11)
    seen, unseen = np.arange(12), np.arange(12, 17)
    ids = np.arange(17)
    labels = np.repeat(ids, per_class)
    is_seen = labels < 12
    rate = np.where(is_seen, seen_rate, unseen_rate)
    # a miss goes to another class of the same group: wrong under ZSL and GZSL alike
    other = np.where(is_seen, (labels + 1) % 12, 12 + (labels - 11) % 5)
    true_h = 200 * seen_rate * unseen_rate / (seen_rate + unseen_rate)  # per sample = per class
    truth = {
        "harmonic_mean": true_h,
        "harmonic_mean_class_mean": true_h,
        "seen_acc_class_mean": 100 * seen_rate,
        "unseen_acc_class_mean": 100 * unseen_rate,
    }
    repeats, covered = 200, dict.fromkeys(truth, 0)
    for _ in range(repeats):
        predicted = np.where(rng.random(labels.size) < rate, labels, other)
        rows = metric_rows(_scores_predicting(predicted, ids.size), labels, ids, seen, unseen)
        frame = pd.DataFrame(rows).set_index(["protocol", "metric"])
        for metric, value in truth.items():
            low, high = frame.loc[("gzsl", metric), ["ci_low", "ci_high"]]
            covered[metric] += low <= value <= high
    # 200 test sets: a coverage of 95 % reads 0.95 +- 0.015 (one binomial standard error);
    # 0.9 is more than 3 errors below
    coverage = {metric: count / repeats for metric, count in covered.items()}
    assert min(coverage.values()) >= 0.9, coverage


def test_weighted_accuracy_and_its_effective_sample_size():
    hits = np.array([1, 1, 0, 0, 0, 1])
    strata = np.array([7, 7, 7, 9, 9, 5])
    assert weighted_accuracy(hits, strata, per_stratum=False) == (0.5, 6.0)
    accuracy, effective_n = weighted_accuracy(hits, strata, per_stratum=True)
    assert accuracy == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert effective_n == pytest.approx(9 / (1 + 1 / 3 + 1 / 2))  # classes of 1, 3, 2
    balanced = weighted_accuracy(hits[:4], np.array([1, 1, 2, 2]), per_stratum=True)
    assert balanced == (0.5, 4.0)
    draws = accuracy_draws([(0.0, 5.0), (1.0, 1.0)], resamples=4000)
    assert draws.shape == (4000, 2) and ((draws > 0) & (draws < 1)).all()
    # Jeffreys posterior means (k + 1/2) / (n + 1): 1/12 and 3/4; the Monte-Carlo error of a
    # mean of 4000 draws is at most 0.5 / sqrt(4000) = 0.008, so 0.03 is about 4 errors
    np.testing.assert_allclose(draws.mean(axis=0), [1 / 12, 0.75], atol=0.03)
    with pytest.raises(ValueError, match="0/1 outcomes"):
        weighted_accuracy(np.array([0.5, 1.0]), np.array([0, 0]), per_stratum=True)


def test_collapse_diagnostics_hand_made():
    # predictions 3, 3, 4, 5 among unseen classes 3-6: shares 1/2, 1/4, 1/4, 0
    result = collapse_diagnostics(_scores_predicting(np.array([3, 3, 4, 5]))[:, 3:], [3, 4, 5, 6])
    assert result["top_class_share"] == 50.0
    assert result["prediction_entropy"] == pytest.approx(100.0 * 1.5 / 2.0)  # 1.5 bits of 2
    with pytest.raises(ValueError, match="at least 2 classes"):
        collapse_diagnostics(np.zeros((3, 1)), [3])


def test_warn_if_collapsed_names_the_variant(caplog: pytest.LogCaptureFixture):
    labels = _balanced(5)
    columns = {"split": "furthest", "head": "devise", "embedding": "random", "seed": 3}
    collapsed = pd.DataFrame(
        [
            {**columns, **r}
            for r in metric_rows(
                _scores_predicting(np.full(labels.size, 3)), labels, IDS, KNOWN_SEEN, KNOWN_UNSEEN
            )
        ]
    )
    healthy = collapsed.assign(value=np.where(collapsed["metric"] == "top_class_share", 89.9, 0))
    with caplog.at_level(logging.WARNING, logger="pose_zsl.pipelines.evaluation.nodes"):
        assert not warn_if_collapsed(healthy, 90.0)
        assert not caplog.records
        assert warn_if_collapsed(collapsed, 90.0)
    assert "furthest / devise / random (seed 3): one class takes 100.0 %" in caplog.text


def test_tables_print_values_with_intervals_and_sample_counts():
    frames = []
    for slot, per_class in (("nearest", 4), ("random", 6)):
        labels = _balanced(per_class)
        rows = metric_rows(
            _scores_predicting(_half_right(labels)),
            labels,
            IDS,
            KNOWN_SEEN,
            KNOWN_UNSEEN,
            calibration=0.5,
        )
        variant = {
            "dataset": "toy",
            "split": f"{slot}_rule",
            "slot": slot,
            "head": "devise",
            "embedding": "learned",
            "embedder": "x",
            "seed": 0,
        }
        frames.append(pd.DataFrame([{**variant, **r} for r in rows], columns=METRIC_COLUMNS))
    metrics = pd.concat(frames, ignore_index=True)
    top1 = metrics[(metrics.metric == "top1") & (metrics.slot == "random")].iloc[0]
    cell = f"50.0 [{top1.ci_low:.1f}, {top1.ci_high:.1f}]"

    table = zsl_table(metrics)
    assert "n = unseen test samples per split: nearest_rule 16, random_rule 24." in table
    assert "| nearest_rule | random_rule |" in table
    assert "| devise | learned | 50.0 [" in table and f" | {cell} |" in table
    assert "Mean of per-class top-1" in table and "25.0 / 100.0" in table  # share / entropy
    assert f"{cell} / " in gzsl_table(metrics)
    suh = seen_unseen_table(metrics)
    assert "n = seen test samples per split: nearest_rule 12, random_rule 18." in suh
    assert "## Calibrated (S / U / H, mean of per-class)" in suh
    assert format_interval(70.84, 52.61, 83.79) == "70.8 [52.6, 83.8]"
    assert format_interval(12.0, np.nan, np.nan) == "12.0"


def test_summarise_seeds_gives_mean_and_std_over_seeds():
    rows = pd.DataFrame(
        {
            "split": ["nearest"] * 3,
            "head": ["devise"] * 3,
            "metric": ["top1"] * 3,
            "seed": [0, 1, 2],
            "value": [50.0, 60.0, 70.0],
            "n": [24] * 3,
            "ci_low": [30.0, 40.0, 50.0],
            "ci_high": [70.0, 80.0, 87.5],
        }
    )
    summary = summarise_seeds(rows)
    assert summary.to_dict("records") == [
        {
            "split": "nearest",
            "head": "devise",
            "metric": "top1",
            "mean": 60.0,
            "std": 10.0,
            "repeats": 3,
            "seeds": "0,1,2",
            "n": 24,
            # the seeds' bounds averaged; their sums are exact in binary, so == holds
            "ci_low": 120.0 / 3,
            "ci_high": 237.5 / 3,
        }
    ]
    # a measurement without intervals keeps none
    bare = summarise_seeds(rows.assign(ci_low=np.nan, ci_high=np.nan))
    assert bare[["ci_low", "ci_high"]].isna().all(axis=None)
    with pytest.raises(ValueError, match="seed listed twice"):
        summarise_seeds(pd.concat([rows, rows.iloc[:1]]))
    with pytest.raises(ValueError, match="different numbers of test samples"):
        summarise_seeds(rows.assign(n=[24, 24, 23]))


def test_vanilla_classifier_scores_zero_on_unseen_by_construction():
    logits = np.array([[2.0, 1.0], [0.5, 3.0], [4.0, -1.0], [0.0, 0.1], [-3.0, -2.0]])
    scores = vanilla_classifier_scores(logits, [10, 20], CLASS_IDS)
    assert np.isneginf(scores[:, 2:]).all()
    rows = pd.DataFrame(
        vanilla_baseline_rows(
            logits, [10, 20], LABELS, CLASS_IDS, seen_class_ids=SEEN, unseen_class_ids=UNSEEN
        )
    ).set_index(["protocol", "metric"])["value"]
    assert rows[("gzsl", "unseen_acc")] == 0.0
    assert rows[("gzsl", "hit1")] == 0.0
    assert rows[("zsl", "top1")] == 0.0
    assert rows[("gzsl", "seen_acc")] == 100.0  # rows 0 and 1 are classified right
    assert rows[("gzsl", "harmonic_mean")] == 0.0
    with pytest.raises(ValueError, match=r"outputs for unseen class id\(s\) \[30\]"):
        vanilla_baseline_rows(
            logits, [10, 30], LABELS, CLASS_IDS, seen_class_ids=SEEN, unseen_class_ids=UNSEEN
        )


def test_per_class_accuracy_and_confusion_matrix(tmp_path: Path):
    table = per_class_accuracy(SCORES, LABELS, CLASS_IDS, {10: "a", 20: "b", 30: "c", 40: "d"})
    assert table["action_id"].tolist() == [10, 20, 30, 40]
    assert table["action_name"].tolist() == ["a", "b", "c", "d"]
    assert table["num_samples"].tolist() == [1, 1, 1, 2]
    assert table["accuracy"].tolist() == [100.0, 0.0, 0.0, 50.0]
    assert table["most_confused_with"].tolist() == [-1, 10, 10, 10]

    counts = confusion_matrix(SCORES, LABELS, CLASS_IDS)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0] = expected[1, 0] = expected[2, 0] = expected[3, 0] = expected[3, 3] = 1
    np.testing.assert_array_equal(counts, expected)

    figure = confusion_matrix_figure(counts, ["a", "b", "c", "d"], title="split x head")
    assert isinstance(figure, Figure)
    assert figure.axes[0].get_title() == "split x head"
    figure.savefig(tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").stat().st_size > 0
    with pytest.raises(ValueError, match="3 class names for a 4-class"):
        confusion_matrix_figure(counts, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: topk_accuracy(SCORES, np.array([10, 20, 30, 40, 50]), CLASS_IDS, 1),
            r"\[50\] have no score column .* disagree",
        ),
        (lambda: topk_accuracy(SCORES[:, :3], LABELS, CLASS_IDS, 1), "3 columns but class_ids"),
        (lambda: topk_accuracy(np.zeros((0, 4)), np.zeros(0, int), CLASS_IDS, 1), "empty"),
        (
            lambda: topk_accuracy(np.where(SCORES > 0.85, np.nan, SCORES), LABELS, CLASS_IDS, 1),
            r"NaN or \+inf in 1 row",
        ),
        (lambda: topk_accuracy(SCORES, LABELS, CLASS_IDS, 0), "k must be"),
        (lambda: topk_accuracy(SCORES, LABELS[:4], CLASS_IDS, 1), "labels has 4 entries"),
        (
            lambda: zsl_metrics(SCORES[:3], LABELS[:3], CLASS_IDS, UNSEEN),
            r"unseen class id\(s\) \[40\] have no test samples",
        ),
        (lambda: zsl_metrics(SCORES, LABELS, CLASS_IDS, [30]), "at least 2 unseen"),
        (
            lambda: gzsl_metrics(SCORES, LABELS, CLASS_IDS, [10, 20, 30], UNSEEN),
            "both seen and unseen",
        ),
        (
            lambda: gzsl_metrics(SCORES, LABELS, CLASS_IDS, [10], UNSEEN),
            r"\[20\] have score columns but are neither",
        ),
        (
            lambda: gzsl_metrics(SCORES, LABELS, CLASS_IDS, SEEN, [30, 40, 50]),
            r"\[50\] have no score column",
        ),
        (
            lambda: gzsl_metrics(SCORES[2:], LABELS[2:], CLASS_IDS, SEEN, UNSEEN),
            "no seen-class test samples",
        ),
        (lambda: calibrated_stacking(SCORES, CLASS_IDS, SEEN, np.nan), "finite"),
        (lambda: vanilla_classifier_scores(np.full((2, 2), np.nan), SEEN, CLASS_IDS), "NaN"),
    ],
)
def test_bad_input_raises_specific_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
