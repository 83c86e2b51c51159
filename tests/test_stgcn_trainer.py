"""ST-GCN training: seen-only leakage guard, learning, checkpoint/resume, model artefact."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from conftest import random_walk_skeletons

from pose_zsl.models.stgcn import STGCN
from pose_zsl.skeleton.store import sequences_table
from pose_zsl.training import stgcn_trainer
from pose_zsl.training.stgcn_trainer import (
    CheckpointError,
    TrainConfig,
    load_stgcn_artifact,
    save_stgcn_artifact,
    stratified_holdout,
    train_stgcn,
)

SEEN = [0, 2, 3]  # class 1 plays the unseen class
TIMING = ["samples_per_s", "seconds"]


def toy_data(
    num_classes: int = 4, per_class: int = 12, seed: int = 0, joints: int = 25
) -> tuple[pd.DataFrame, pa.Table]:
    """Every third performer is 'test'."""
    samples, ids, arrays = random_walk_skeletons(num_classes, per_class, joints=joints, seed=seed)
    return samples, sequences_table(ids, arrays)


def tiny_config(**overrides: object) -> TrainConfig:
    settings: dict = {
        "epochs": 4,
        "batch_size": 8,
        "lr": 0.05,
        "lr_milestones": (3,),
        "window": 16,
        "window_mode": "resize",
        "width": 0.125,
        "dropout": 0.1,
        "device": "cpu",
        "precision": "fp32",
        "val_fraction": 0.2,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy() -> tuple[pd.DataFrame, pa.Table]:
    return toy_data(per_class=24)


@pytest.fixture(scope="module")
def full_run(toy, tmp_path_factory) -> tuple[torch.nn.Module, stgcn_trainer.TrainingResult]:
    samples, sequences = toy
    checkpoints = tmp_path_factory.mktemp("full")
    return train_stgcn(samples, sequences, SEEN, tiny_config(), checkpoint_dir=checkpoints)


def test_trains_only_seen_training_samples_and_learns(full_run, toy) -> None:
    model, result = full_run
    samples, _ = toy
    eligible = samples[samples["action_id"].isin(SEEN) & (samples["xsub"] == "train")]
    assert result.num_train + result.num_val == len(eligible)
    assert result.class_ids == SEEN and result.model_kwargs["num_classes"] == 3
    assert result.class_names == ["action 0", "action 2", "action 3"]
    history = result.history
    assert list(history.columns) == list(stgcn_trainer.HISTORY_COLUMNS)
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert history["lr"].tolist() == pytest.approx([0.05, 0.05, 0.05, 0.005])
    assert history["train_acc"].iloc[-1] > history["train_acc"].iloc[0]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["train_acc"].iloc[-1] >= 0.9
    assert result.best_epoch == int(history["val_acc"].idxmax())
    assert not model.training


def test_stratified_holdout_takes_every_class_and_is_seeded() -> None:
    labels = np.repeat([0, 1, 2], [10, 5, 1])
    train, val = stratified_holdout(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(16))
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 1, 0]
    again, _ = stratified_holdout(labels, 0.2, seed=3)
    assert np.array_equal(train, again)


def test_unseen_classes_in_the_input_are_filtered_not_an_error(toy) -> None:
    samples, sequences = toy
    assert (samples["action_id"] == 1).any()  # the unseen class is present in the input table
    _, result = train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1))
    assert result.num_train > 0


def test_leakage_guard_catches_unseen_rows_from_the_selection(toy, monkeypatch) -> None:
    samples, sequences = toy

    def leaky(frame: pd.DataFrame, seen: list[int], protocol: str) -> pd.DataFrame:
        return frame[frame[protocol] == "train"]  # forgets the seen-class filter

    monkeypatch.setattr(stgcn_trainer, "_select_training_rows", leaky)
    with pytest.raises(ValueError, match=r"leakage guard.*action 1.*not a seen class"):
        train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1))


def test_leakage_guard_catches_unseen_rows_relabelled_as_seen(toy, monkeypatch) -> None:
    samples, sequences = toy
    original = stgcn_trainer._select_training_rows

    def mislabelled(frame: pd.DataFrame, seen: list[int], protocol: str) -> pd.DataFrame:
        rows = original(frame, seen, protocol)
        unseen = frame[(frame["action_id"] == 1) & (frame[protocol] == "train")].copy()
        unseen["action_id"] = 0  # an unseen sample disguised as seen class 0
        return pd.concat([rows, unseen])

    monkeypatch.setattr(stgcn_trainer, "_select_training_rows", mislabelled)
    with pytest.raises(
        ValueError, match=r"leakage guard: the (training|validation) loader .*\[1\]"
    ):
        train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1))


def test_leakage_guard_catches_test_split_samples(toy, monkeypatch) -> None:
    samples, sequences = toy

    def with_test(frame: pd.DataFrame, seen: list[int], protocol: str) -> pd.DataFrame:
        return frame[frame["action_id"].isin(seen)]  # forgets the split filter

    monkeypatch.setattr(stgcn_trainer, "_select_training_rows", with_test)
    with pytest.raises(ValueError, match=r"leakage guard.*'xsub' split is \['test'\]"):
        train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1))


def test_interrupted_run_resumes_to_the_uninterrupted_result(full_run, toy, tmp_path) -> None:
    samples, sequences = toy
    model_full, result_full = full_run

    def interrupt(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_stgcn(
            samples, sequences, SEEN, tiny_config(), checkpoint_dir=tmp_path, on_epoch_end=interrupt
        )
    partial = torch.load(tmp_path / "last.pt", weights_only=True)
    assert partial["epoch"] == 1
    model, result = train_stgcn(samples, sequences, SEEN, tiny_config(), checkpoint_dir=tmp_path)
    pd.testing.assert_frame_equal(
        result.history.drop(columns=TIMING), result_full.history.drop(columns=TIMING)
    )
    assert result.best_epoch == result_full.best_epoch
    for key, value in model_full.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # a finished run is not retrained
    again, _ = train_stgcn(
        samples, sequences, SEEN, tiny_config(), checkpoint_dir=tmp_path, on_epoch_end=interrupt
    )
    assert torch.equal(again.fcn.weight, model.fcn.weight)


def test_incompatible_or_corrupt_checkpoint_is_a_clear_error(toy, tmp_path) -> None:
    samples, sequences = toy
    train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1), checkpoint_dir=tmp_path)
    checkpoint = tmp_path / "last.pt"
    with pytest.raises(CheckpointError, match=rf"{checkpoint}.*lr: checkpoint 0.05 != now 0.1"):
        train_stgcn(
            samples, sequences, SEEN, tiny_config(epochs=1, lr=0.1), checkpoint_dir=tmp_path
        )
    with pytest.raises(CheckpointError, match=r"class_ids"):
        train_stgcn(samples, sequences, [0, 2], tiny_config(epochs=1), checkpoint_dir=tmp_path)
    _, fresh = train_stgcn(
        samples, sequences, SEEN, tiny_config(epochs=1, lr=0.1), checkpoint_dir=tmp_path, fresh=True
    )
    assert fresh.history["lr"].tolist() == [0.1]
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=rf"{checkpoint}: cannot read the checkpoint"):
        train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1), checkpoint_dir=tmp_path)


def test_checkpoint_write_failure_leaves_no_partial_file(toy, tmp_path, monkeypatch) -> None:
    samples, sequences = toy
    real_save = torch.save

    def failing_save(obj: object, target: str, *args: object, **kwargs: object) -> None:
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    def break_saving(epoch: int, row: dict) -> None:
        monkeypatch.setattr(torch, "save", failing_save)

    with pytest.raises(OSError, match="disk full"):
        train_stgcn(
            samples,
            sequences,
            SEEN,
            tiny_config(epochs=2),
            checkpoint_dir=tmp_path,
            on_epoch_end=break_saving,
        )
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(torch, "save", real_save)
    _, result = train_stgcn(
        samples, sequences, SEEN, tiny_config(epochs=2), checkpoint_dir=tmp_path
    )
    assert result.history["epoch"].tolist() == [0, 1]


def test_artifact_round_trip_and_class_mismatch(full_run, toy, tmp_path) -> None:
    model, result = full_run
    path = tmp_path / "stgcn.pt"
    save_stgcn_artifact(path, model, result.artifact_meta())
    raw = torch.load(path, weights_only=True)
    assert raw["meta"]["class_ids"] == SEEN and raw["meta"]["window"] == 16
    loaded, meta = load_stgcn_artifact(path, expected_class_ids=SEEN)
    assert isinstance(loaded, STGCN) and not loaded.training
    assert meta["model_kwargs"]["width_multiplier"] == 0.125 and meta["layout"] == "ntu-rgb+d"
    x = torch.randn(2, 3, 16, 25, 2)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"absent from the model: \[1\]"):
        load_stgcn_artifact(path, expected_class_ids=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"not requested: \[3\]"):
        load_stgcn_artifact(path, expected_class_ids=[0, 2])
    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(broken)):
        load_stgcn_artifact(broken)


def test_layout_mismatch_and_bad_config_are_clear_errors() -> None:
    samples, sequences = toy_data(joints=20, per_class=3)  # declared kinect-v1
    with pytest.raises(ValueError, match=r"layout 'ntu-rgb\+d' was requested .*\['kinect-v1'\]"):
        train_stgcn(samples, sequences, SEEN, tiny_config(epochs=1), layout="ntu-rgb+d")
    mislabelled = samples.assign(layout="ntu-rgb+d")
    with pytest.raises(ValueError, match=r"20 joints.*'ntu-rgb\+d' expects 25"):
        train_stgcn(mislabelled, sequences, SEEN, tiny_config(epochs=1))
    with pytest.raises(ValueError, match="window_mode='stretch'"):
        tiny_config(window_mode="stretch")
    with pytest.raises(ValueError, match=r"unknown ST-GCN training parameters \['lr_decay'\]"):
        TrainConfig.from_dict({"lr_decay": 0.1})
    assert TrainConfig.from_dict({"weight_decay": "1e-4"}).weight_decay == 1e-4  # YAML string
    with pytest.raises(ValueError, match=r"TrainConfig.epochs='many' is not a number"):
        TrainConfig.from_dict({"epochs": "many"})
    with pytest.raises(ValueError, match="seen_class_ids has duplicates"):
        train_stgcn(samples, sequences, [0, 0], tiny_config(epochs=1))


def test_paper_and_small_cpu_presets() -> None:
    paper = TrainConfig.paper()
    assert (paper.lr, paper.weight_decay, paper.batch_size, paper.epochs) == (0.01, 1e-4, 48, 80)
    assert (paper.window, paper.max_bodies, paper.momentum) == (300, 2, 0.9)
    assert paper.window_mode == "pad" and TrainConfig().window_mode == "resize"
    assert [paper.lr_at(e) for e in (0, 9, 10, 49, 50)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 0.0001]
    )
    small = TrainConfig.small_cpu(epochs=3)
    assert small.epochs == 3 and small.width < 1 and small.window < paper.window
