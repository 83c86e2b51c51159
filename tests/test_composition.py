"""The calibration constant for a free-text candidate list (pose_zsl.zsl.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from pose_zsl.zsl.calibration import (
    CalibrationProxy,
    _sub_problem_h,
    choose_calibration,
    composition_gamma,
    margin_grid,
)
from pose_zsl.zsl.metrics import gzsl_metrics

TRAIN_SEEN = np.arange(40)
PSEUDO = np.arange(40, 45)


def proxy_problem(seed: int = 0, per_class: int = 4) -> CalibrationProxy:
    """A head biased towards its 40 training classes: every seen column scores N(0.5, 1), the
    unseen ones N(-0.5, 1), and a sample's own class 3 more. The best of 40 seen columns is
    high by chance, so the whole list needs a larger constant than a list of two seen names."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([TRAIN_SEEN, PSEUDO])
    labels = np.concatenate([np.repeat(TRAIN_SEEN, per_class), np.repeat(PSEUDO, 12)])
    scores = rng.normal(size=(labels.size, ids.size)) + np.where(
        np.isin(ids, TRAIN_SEEN), 0.5, -0.5
    )
    scores[np.arange(labels.size), np.searchsorted(ids, labels)] += 3.0
    choice = choose_calibration(scores, labels, ids, TRAIN_SEEN, PSEUDO, true_unseen_ids=[99])
    return choice.proxy


def test_the_whole_list_gets_the_evaluations_constant():
    proxy = proxy_problem()
    assert composition_gamma(proxy, 1.0, 1.0) == proxy.gamma
    assert composition_gamma(proxy, 55 / 55, 7 / 5) == proxy.gamma  # more names than classes


def test_a_few_training_names_get_a_smaller_constant_chosen_the_same_way():
    proxy = proxy_problem()
    few = composition_gamma(proxy, 2 / 40, 4 / 5)
    assert 0 <= few < proxy.gamma  # less of the best-of-40 inflation to undo
    assert composition_gamma(proxy, 2 / 40, 4 / 5) == few  # seeded draws: same answer
    # On new samples of the same head, lists of 2 training and 4 other names are ranked better
    # (higher mean H) with that constant than with the whole list's.
    fresh, rng = proxy_problem(seed=5), np.random.default_rng(9)
    h = np.zeros(2)
    for _ in range(300):
        seen = rng.choice(TRAIN_SEEN, 2, replace=False)
        h += _sub_problem_h(
            fresh, seen, rng.choice(PSEUDO, 4, replace=False), np.array([few, proxy.gamma])
        )
    assert h[0] > h[1]


def test_sub_problem_h_is_the_evaluations_h():
    # The vectorised sweep must agree with gzsl_metrics, the evaluation's own scoring.
    proxy = proxy_problem(seed=1)
    grid = margin_grid(proxy.scores, proxy.class_ids, proxy.train_seen)[::10]
    seen, unseen = TRAIN_SEEN[[0, 3, 7]], PSEUDO[[1, 4]]
    rows = np.isin(proxy.labels, np.concatenate([seen, unseen]))
    cols = np.isin(proxy.class_ids, np.concatenate([seen, unseen]))
    expected = [
        gzsl_metrics(
            proxy.scores[rows][:, cols],
            proxy.labels[rows],
            proxy.class_ids[cols],
            seen,
            unseen,
            calibration=float(g),
            ks=(1,),
        )["harmonic_mean"]
        for g in grid
    ]
    np.testing.assert_allclose(_sub_problem_h(proxy, seen, unseen, grid), expected, atol=1e-9)


def test_the_proxy_travels_as_json_and_keeps_class_shares_when_cut():
    proxy = proxy_problem()
    again = CalibrationProxy.from_dict(proxy.to_dict())
    np.testing.assert_allclose(again.scores, proxy.scores, rtol=1e-6)  # stored as float32
    np.testing.assert_array_equal(again.labels, proxy.labels)
    assert again.gamma == proxy.gamma
    total = proxy.labels.size  # 40 x 4 seen + 5 x 12 pseudo-unseen = 220
    cut = CalibrationProxy.from_dict(proxy.to_dict(max_rows=110))
    assert cut.labels.size == 110
    for label in np.unique(proxy.labels):  # every class keeps about half its rows
        kept, had = (cut.labels == label).sum(), (proxy.labels == label).sum()
        assert abs(kept - had * 110 / total) <= 1, label


def test_a_broken_proxy_names_its_file():
    values = proxy_problem().to_dict()
    values["labels"] = values["labels"][:-1]
    with pytest.raises(ValueError, match="calib.json: calibration proxy scores of shape"):
        CalibrationProxy.from_dict(values, source="calib.json")
    with pytest.raises(ValueError, match="calib.json: unreadable calibration proxy"):
        CalibrationProxy.from_dict({"gamma": 1.0}, source="calib.json")


@pytest.mark.parametrize("fractions", [(0.0, 1.0), (1.0, 0.0), (float("nan"), 1.0)])
def test_a_list_without_seen_or_other_names_needs_no_constant(fractions):
    with pytest.raises(ValueError, match="needs seen and unseen candidates"):
        composition_gamma(proxy_problem(), *fractions)
