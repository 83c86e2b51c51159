"""A checkpoint resumes only on the data it was trained on: the sequences' values and labels,
not just their sample ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_skeletons
from test_stgcn_trainer import SEEN, tiny_config

from pose_zsl.skeleton.store import SequenceStore, sequences_table
from pose_zsl.training.stgcn_trainer import (
    IncompatibleCheckpointError,
    _fingerprint,
    train_stgcn,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def toy() -> tuple[pd.DataFrame, list[str], list[np.ndarray]]:
    return random_walk_skeletons(4, 6, seed=3)


def _train(samples: pd.DataFrame, ids: list, arrays: list, checkpoints: Path, epochs: int) -> list:
    """Train to ``epochs`` with ``checkpoints``; the epochs this call computed."""
    computed: list[int] = []
    train_stgcn(
        samples,
        sequences_table(ids, arrays),
        SEEN,
        tiny_config(epochs=epochs, dropout=0.0),
        checkpoint_dir=checkpoints,
        on_epoch_end=lambda epoch, row: computed.append(epoch),
    )
    return computed


def _a_training_sample(samples: pd.DataFrame, ids: list[str]) -> int:
    """The position of a seen-class sample of the training split (the trainer reads it)."""
    rows = samples.set_index("sample_id").loc[ids]
    usable = (rows["xsub"] == "train") & rows["action_id"].isin(SEEN)
    return int(np.flatnonzero(usable.to_numpy())[0])


def test_the_same_data_resumes(toy, tmp_path) -> None:
    samples, ids, arrays = toy
    assert _train(samples, ids, arrays, tmp_path, epochs=1) == [0]
    assert _train(samples, ids, arrays, tmp_path, epochs=2) == [1]  # epoch 0 came from disk


def test_regenerated_values_under_the_same_ids_do_not_resume(toy, tmp_path) -> None:
    samples, ids, arrays = toy
    _train(samples, ids, arrays, tmp_path, epochs=1)
    changed = [array.copy() for array in arrays]
    changed[_a_training_sample(samples, ids)][0, 0, 0, 0] += 0.5  # one coordinate
    with pytest.raises(IncompatibleCheckpointError, match=r"(train|val)_samples: checkpoint"):
        _train(samples, ids, changed, tmp_path, epochs=2)
    # What the pipeline does with it (train_stgcn_on_seen_classes): a fresh start.
    fresh: list[int] = []
    train_stgcn(
        samples,
        sequences_table(ids, changed),
        SEEN,
        tiny_config(epochs=2, dropout=0.0),
        checkpoint_dir=tmp_path,
        fresh=True,
        on_epoch_end=lambda epoch, row: fresh.append(epoch),
    )
    assert fresh == [0, 1]
    assert _train(samples, ids, changed, tmp_path, epochs=3) == [2]  # the new data resumes


def test_the_fingerprint_covers_values_labels_and_order(toy) -> None:
    """Relabelling cannot be checked through a resume alone: it also moves samples between
    the training and validation hold-outs, which changes which ids are trained on."""
    _, ids, arrays = toy
    positions, labels = np.arange(len(ids)), np.arange(len(ids)) % 3

    def fingerprint(arrays: list[np.ndarray], positions=positions, labels=labels) -> str:
        return _fingerprint(SequenceStore(sequences_table(ids, arrays)), positions, labels)

    reference = fingerprint(arrays)
    assert fingerprint([array.copy() for array in arrays]) == reference
    changed = [array.copy() for array in arrays]
    changed[5][-1, 0, 24, 2] = np.nextafter(changed[5][-1, 0, 24, 2], np.float32(np.inf))
    assert fingerprint(changed) != reference  # one ulp of the last value of one sequence
    relabelled = np.where(positions == 5, (labels + 1) % 3, labels)
    assert fingerprint(arrays, labels=relabelled) != reference
    assert fingerprint(arrays, positions=positions[::-1], labels=labels[::-1]) != reference
