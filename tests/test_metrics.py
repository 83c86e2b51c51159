"""Zero-shot metrics on hand-made score matrices: top-k, ZSL, GZSL S/U/H, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pose_zsl.zsl.calibration import choose_calibration, margin_grid
from pose_zsl.zsl.metrics import (
    calibrated_stacking,
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

# Classes 10, 20 are seen; 30, 40 unseen. Ids are not column positions on purpose.
CLASS_IDS = np.array([10, 20, 30, 40])
SEEN = [10, 20]
UNSEEN = [30, 40]

#                      10    20    30    40
SCORES = np.array([
    [0.90, 0.10, 0.50, 0.00],  # true 10: top-1 hit
    [0.80, 0.70, 0.10, 0.20],  # true 20: rank 2
    [0.75, 0.20, 0.50, 0.10],  # true 30: rank 2 overall, rank 1 among unseen; margin 0.25
    [0.60, 0.30, 0.40, 0.10],  # true 40: rank 4 overall, rank 2 among unseen
    [0.10, 0.20, 0.30, 0.40],  # true 40: top-1 hit
])
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
        scores, labels, ids, train_seen_ids=range(6), pseudo_unseen_ids=[6, 7],
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
        ({"true_unseen_ids": [7]},
         r"leakage: validation labels include true unseen class id\(s\) \[7\]"),
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
        choose_calibration(
            widened, labels, np.arange(9), range(6), [6, 7], true_unseen_ids=[8]
        )


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
    assert list(frame.columns) == ["protocol", "metric", "value"]
    assert set(frame["protocol"]) == {"zsl", "gzsl", "gzsl_calibrated"}
    gzsl = frame[frame.protocol == "gzsl"].set_index("metric")["value"]
    assert list(gzsl.index) == ["hit1", "hit2", "seen_acc", "unseen_acc", "harmonic_mean"]
    calibrated = frame[frame.protocol == "gzsl_calibrated"].set_index("metric")["value"]
    assert calibrated["unseen_acc"] == pytest.approx(200 / 3)
    assert frame.loc[frame.protocol == "zsl", "metric"].tolist() == ["top1"]  # 2 unseen classes
    assert "gzsl_calibrated" not in {r["protocol"] for r in metric_rows(
        SCORES, LABELS, CLASS_IDS, SEEN, UNSEEN)}


def test_vanilla_classifier_scores_zero_on_unseen_by_construction():
    logits = np.array([[2.0, 1.0], [0.5, 3.0], [4.0, -1.0], [0.0, 0.1], [-3.0, -2.0]])
    scores = vanilla_classifier_scores(logits, [10, 20], CLASS_IDS)
    assert np.isneginf(scores[:, 2:]).all()
    rows = pd.DataFrame(vanilla_baseline_rows(
        logits, [10, 20], LABELS, CLASS_IDS, seen_class_ids=SEEN, unseen_class_ids=UNSEEN
    )).set_index(["protocol", "metric"])["value"]
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
        (lambda: topk_accuracy(SCORES, np.array([10, 20, 30, 40, 50]), CLASS_IDS, 1),
         r"\[50\] have no score column .* disagree"),
        (lambda: topk_accuracy(SCORES[:, :3], LABELS, CLASS_IDS, 1), "3 columns but class_ids"),
        (lambda: topk_accuracy(np.zeros((0, 4)), np.zeros(0, int), CLASS_IDS, 1), "empty"),
        (lambda: topk_accuracy(np.where(SCORES > 0.85, np.nan, SCORES), LABELS, CLASS_IDS, 1),
         r"NaN or \+inf in 1 row"),
        (lambda: topk_accuracy(SCORES, LABELS, CLASS_IDS, 0), "k must be"),
        (lambda: topk_accuracy(SCORES, LABELS[:4], CLASS_IDS, 1), "labels has 4 entries"),
        (lambda: zsl_metrics(SCORES[:3], LABELS[:3], CLASS_IDS, UNSEEN),
         r"unseen class id\(s\) \[40\] have no test samples"),
        (lambda: zsl_metrics(SCORES, LABELS, CLASS_IDS, [30]), "at least 2 unseen"),
        (lambda: gzsl_metrics(SCORES, LABELS, CLASS_IDS, [10, 20, 30], UNSEEN),
         "both seen and unseen"),
        (lambda: gzsl_metrics(SCORES, LABELS, CLASS_IDS, [10], UNSEEN),
         r"\[20\] have score columns but are neither"),
        (lambda: gzsl_metrics(SCORES, LABELS, CLASS_IDS, SEEN, [30, 40, 50]),
         r"\[50\] have no score column"),
        (lambda: gzsl_metrics(SCORES[2:], LABELS[2:], CLASS_IDS, SEEN, UNSEEN),
         "no seen-class test samples"),
        (lambda: calibrated_stacking(SCORES, CLASS_IDS, SEEN, np.nan), "finite"),
        (lambda: vanilla_classifier_scores(np.full((2, 2), np.nan), SEEN, CLASS_IDS), "NaN"),
    ],
)
def test_bad_input_raises_specific_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
