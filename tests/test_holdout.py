"""Validation samples held out of the seen classes' training samples, by sample or performer."""

from __future__ import annotations

import numpy as np
import pytest

from pose_zsl.training.stgcn_trainer import TrainConfig, performer_holdout


def _items(performers: int = 5, classes: int = 4, repeats: int = 3):
    grid = np.array(
        [(p, c) for p in range(1, performers + 1) for c in range(classes) for _ in range(repeats)]
    )
    return grid[:, 1], grid[:, 0]  # labels, performers


def test_whole_performers_are_held_out_until_the_fraction_is_reached():
    labels, performers = _items()
    train, val = performer_holdout(labels, performers, 0.3, seed=0)
    assert np.intersect1d(performers[train], performers[val]).size == 0  # no shared performer
    assert np.union1d(train, val).tolist() == list(range(len(labels)))
    # each performer holds 20 % of the items: 0.3 needs two of them
    assert len(np.unique(performers[val])) == 2
    assert set(labels[train]) == set(labels)
    again = performer_holdout(labels, performers, 0.3, seed=0)
    assert np.array_equal(again[1], val)
    other = {tuple(np.unique(performers[performer_holdout(labels, performers, 0.3, s)[1]]))
             for s in range(8)}  # fmt: skip
    assert len(other) > 1  # the seed chooses who is held out


def test_never_every_performer_and_nothing_when_fraction_is_zero():
    labels, performers = _items(performers=2)
    train, val = performer_holdout(labels, performers, 0.99, seed=1)
    assert len(np.unique(performers[val])) == 1 and len(train) > 0
    train, val = performer_holdout(labels, performers, 0.0, seed=1)
    assert len(val) == 0 and len(train) == len(labels)


def test_a_class_left_without_training_samples_is_an_error_naming_it():
    labels = np.array([0, 0, 1, 1, 2])
    performers = np.array([1, 2, 1, 2, 2])  # class 2 only by performer 2
    with pytest.raises(ValueError, match=r"class indices \[2\] without training samples"):
        performer_holdout(labels, performers, 0.5, seed=0)  # seed 0 holds out performer 2


def test_val_by_is_checked_by_the_config():
    assert TrainConfig(val_by="performer").val_by == "performer"
    with pytest.raises(ValueError, match=r"val_by='subject'"):
        TrainConfig(val_by="subject")
