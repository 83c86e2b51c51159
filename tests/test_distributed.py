"""ST-GCN training and feature extraction as 2 ``gloo`` ranks on the CPU (the torchrun path).

Each rank is a separate process (forked from a fork server) that sets the rendezvous variables
as ``torchrun`` would and calls the ordinary ``train_stgcn`` (one epoch, then a second call that
resumes from rank 0's checkpoint) and ``extract_features``; what it saw and produced comes back
in a pickle. The comparison with one process is exact in its batches: ``batch_size`` is the global
batch and the ranks' shards of a step are the samples one process would batch, with
synchronised batch norm (PortableSyncBatchNorm on the CPU) so that the normalisation statistics
are the global batch's too, and dropout off (its masks are random per rank). The training set
has an even size, so no sample is repeated to pad the last batch. What remains is float
summation order: the first step is compared within its rounding bound, the end of training within
that bound grown over the steps (see STEP_TOLERANCE and GROWTH).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from test_stgcn_trainer import SEEN, TIMING, tiny_config, toy_data

from pose_zsl.models.stgcn import STGCN
from pose_zsl.training import batching, stgcn_trainer
from pose_zsl.training.batching import EpochSampler
from pose_zsl.training.distributed import DistributedError, launch_from_env
from pose_zsl.training.features import extract_features
from pose_zsl.training.stgcn_trainer import TrainConfig, train_stgcn

WORLD = 2
UNSEEN = [1]
PER_CLASS = 12  # 8 training-split samples per class: 18 to train, 6 to validate (both even)
LAUNCH_TIMEOUT_S = 180
PRELOAD = ["pose_zsl.training.stgcn_trainer", "pose_zsl.training.features", "pose_zsl.models.stgcn"]


def config(**overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "epochs": 2,
        "dropout": 0.0,
        "sync_batchnorm": True,
        "cpu_threads": 1,
        "distributed_timeout_s": 60.0,
    }
    settings.update(overrides)
    return tiny_config(**settings)


def data() -> tuple[pd.DataFrame, pa.Table]:
    return toy_data(per_class=PER_CLASS)


def feature_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """An odd number of samples, so that the ranks' extraction shards differ in size."""
    return samples.iloc[:-1]


# ---------------------------------------------------------------------------------------------
# what every rank runs (module level, so that the rank processes can import it)


class _Recorder:
    """Patches the trainer, inside one rank, to record what that rank saw and did."""

    def __init__(self) -> None:
        self.train_items: list[list[int]] = []  # per epoch, the dataset items this rank trained on
        self._current: list[int] = []
        self.first_step: list[torch.Tensor] | None = None  # the parameters after it
        self.first_grads: list[torch.Tensor] | None = None  # the gradients it applied
        self.saves = 0
        self.info_lines: list[str] = []

    def install(self, die_in_epoch: int | None) -> None:
        recorder = self
        collate = batching.WindowCollate.__call__
        step = torch.optim.SGD.step
        save = stgcn_trainer.atomic_torch_save

        def recording_collate(self: batching.WindowCollate, items: list) -> batching.Batch:
            if self.train:
                if die_in_epoch is not None and len(recorder.train_items) == die_in_epoch:
                    if recorder._current:  # mid-epoch: after this epoch's first step
                        os._exit(17)
                recorder._current.extend(int(item[2]) for item in items)
            return collate(self, items)

        def recording_step(self: torch.optim.SGD, *args: Any, **kwargs: Any) -> Any:
            params = [p for group in self.param_groups for p in group["params"]]
            if recorder.first_grads is None:  # already averaged over the ranks by DDP
                recorder.first_grads = [p.grad.detach().clone() for p in params]
            result = step(self, *args, **kwargs)
            if recorder.first_step is None:
                recorder.first_step = [p.detach().clone() for p in params]
            return result

        def counting_save(obj: Any, path: Any) -> None:
            recorder.saves += 1
            save(obj, path)

        class Lines(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.levelno == logging.INFO:
                    recorder.info_lines.append(record.getMessage())

        batching.WindowCollate.__call__ = recording_collate  # type: ignore[method-assign]
        torch.optim.SGD.step = recording_step  # type: ignore[method-assign]
        stgcn_trainer.atomic_torch_save = counting_save
        trainer_log = logging.getLogger(stgcn_trainer.__name__)
        trainer_log.setLevel(logging.INFO)
        trainer_log.addHandler(Lines())

    def end_epoch(self, epoch: int, row: dict) -> None:
        self.train_items.append(self._current)
        self._current = []


def _rank_main(
    rank: int, port: int, workdir: str, checkpoints: str, settings: dict, die_in_epoch: int | None
) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    recorder = _Recorder()
    recorder.install(die_in_epoch if rank == 1 else None)
    outcome: dict[str, Any] = {}
    samples, sequences = data()

    def train(**overrides: Any) -> tuple[torch.nn.Module, stgcn_trainer.TrainingResult]:
        return train_stgcn(
            samples,
            sequences,
            SEEN,
            config(**{**settings, **overrides}),
            checkpoint_dir=checkpoints,
            on_epoch_end=recorder.end_epoch,
        )

    try:
        if die_in_epoch is not None:
            train()
        # Epoch 1, then a second call that resumes from rank 0's checkpoint for epoch 2.
        train(epochs=1)
        model, result = train()
        features = extract_features(
            model,
            feature_samples(samples),
            sequences,
            SEEN,
            unseen_ids=UNSEEN,
            meta=result.artifact_meta(),
            batch_size=4,
            device="cpu",
        )
        outcome.update(
            state={k: v.clone() for k, v in model.state_dict().items()},
            model_class=type(model.data_bn).__name__,
            history=result.history,
            best_epoch=result.best_epoch,
            features=features,
        )
        # Per-rank batch-norm statistics (the CPU default), averaged after each epoch.
        unsynced, _ = train_stgcn(samples, sequences, SEEN, config(epochs=1, sync_batchnorm=None))
        outcome["unsynced_state"] = unsynced.state_dict()
    except Exception as error:  # reported to the test, which checks the message
        outcome.update(error_type=type(error).__name__, error=str(error))
    outcome.update(
        train_items=recorder.train_items,
        first_step=recorder.first_step,
        first_grads=recorder.first_grads,
        saves=recorder.saves,
        info_lines=recorder.info_lines,
    )
    with open(Path(workdir) / f"rank{rank}.pkl", "wb") as handle:
        pickle.dump(outcome, handle)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch(
    workdir: Path, checkpoints: Path, die_in_epoch: int | None = None, **settings: Any
) -> tuple[list[dict[str, Any] | None], list[int | None]]:
    """Run :func:`_rank_main` as ``WORLD`` spawned ranks; their outcomes and exit codes."""
    workdir.mkdir(parents=True, exist_ok=True)
    # The fork server imports torch and the project once; every rank is a fork of it (a fork of
    # this process could inherit other tests' threads and locks). The server imports by module
    # name before it knows the tests' sys.path, hence the project modules, not this one.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    port = _free_port()
    ranks = [
        context.Process(
            target=_rank_main,
            args=(rank, port, str(workdir), str(checkpoints), settings, die_in_epoch),
        )
        for rank in range(WORLD)
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(LAUNCH_TIMEOUT_S)
    for process in ranks:
        if process.is_alive():
            process.kill()
            process.join()
    outcomes = []
    for rank in range(WORLD):
        path = workdir / f"rank{rank}.pkl"
        outcomes.append(pickle.loads(path.read_bytes()) if path.exists() else None)
    return outcomes, [process.exitcode for process in ranks]


def _succeeded(outcomes: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    for rank, outcome in enumerate(outcomes):
        assert outcome is not None, f"rank {rank} wrote no outcome"
        assert "error" not in outcome, f"rank {rank}: {outcome['error_type']}: {outcome['error']}"
    return outcomes  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# fixtures


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def single_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    root = tmp_path_factory.mktemp("ddp")
    outcomes, exit_codes = launch(root / "out", root / "checkpoints")
    assert exit_codes == [0] * WORLD
    return _succeeded(outcomes), root / "checkpoints"


@pytest.fixture(scope="module")
def single_run() -> dict[str, Any]:
    """The same training in this process, recording its first step the same way (and the
    initial weights, against which the end of training is measured)."""
    initial: list[torch.Tensor] = []
    first_grads: list[torch.Tensor] = []
    first_step: list[torch.Tensor] = []
    step = torch.optim.SGD.step

    def recording_step(self: torch.optim.SGD, *args: Any, **kwargs: Any) -> Any:
        params = [p for group in self.param_groups for p in group["params"]]
        if not initial:
            initial.extend(p.detach().clone() for p in params)
            first_grads.extend(p.grad.detach().clone() for p in params)
        result = step(self, *args, **kwargs)
        if not first_step:
            first_step.extend(p.detach().clone() for p in params)
        return result

    samples, sequences = data()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("RANK", "WORLD_SIZE"):
            patch.delenv(name, raising=False)
        patch.setattr(torch.optim.SGD, "step", recording_step)
        model, result = train_stgcn(samples, sequences, SEEN, config())
    return {
        "model": model,
        "result": result,
        "initial": initial,
        "first_grads": first_grads,
        "first_step": first_step,
    }


# ---------------------------------------------------------------------------------------------
# the sampler


@pytest.mark.parametrize("length", [10, 11, 3])
@pytest.mark.parametrize("world", [2, 3])
def test_sampler_shards_are_disjoint_cover_the_epoch_and_have_equal_lengths(
    length: int, world: int
) -> None:
    def shards(remainder: str, epoch: int = 0) -> list[list[int]]:
        out = []
        for rank in range(world):
            sampler = EpochSampler(
                length, shuffle=True, seed=4, rank=rank, world_size=world, remainder=remainder
            )
            sampler.set_epoch(epoch)
            keys = list(sampler)
            assert len(keys) == len(sampler) and {e for _, e in keys} <= {epoch}
            out.append([index for index, _ in keys])
        return out

    padded, dropped, uneven = shards("pad"), shards("drop"), shards("uneven")
    assert len({len(s) for s in padded}) == 1 and len({len(s) for s in dropped}) == 1
    assert sorted(sum(uneven, [])) == list(range(length))  # disjoint, complete
    assert set(sum(padded, [])) == set(range(length))
    assert len(sum(padded, [])) - length == (-length) % world  # only the padding repeats
    flat_dropped = sum(dropped, [])
    assert len(flat_dropped) == len(set(flat_dropped)) == length - length % world
    assert shards("pad", epoch=1) != padded and shards("pad") == padded  # seeded per epoch


def test_rank_steps_together_form_the_single_process_batches() -> None:
    single = [i for i, _ in EpochSampler(18, shuffle=True, seed=2)]
    share = 4
    rank_orders = [
        [i for i, _ in EpochSampler(18, shuffle=True, seed=2, rank=r, world_size=WORLD)]
        for r in range(WORLD)
    ]
    for step in range(3):
        together = sorted(sum((o[step * share : (step + 1) * share] for o in rank_orders), []))
        assert together == sorted(single[step * share * WORLD : (step + 1) * share * WORLD])


def test_sampler_rejects_bad_shard_arguments() -> None:
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, world_size=2\)"):
        EpochSampler(5, shuffle=False, rank=2, world_size=2)
    with pytest.raises(ValueError, match="remainder 'spill'"):
        EpochSampler(5, shuffle=False, remainder="spill")


# ---------------------------------------------------------------------------------------------
# two ranks against one process


def test_ranks_train_on_disjoint_shards_that_cover_the_data(distributed_run) -> None:
    outcomes, _ = distributed_run
    assert [len(o["train_items"]) for o in outcomes] == [2, 2]
    for epoch in range(2):
        rank0, rank1 = (o["train_items"][epoch] for o in outcomes)
        assert len(rank0) == len(rank1) == 9
        assert not set(rank0) & set(rank1)
        assert sorted(rank0 + rank1) == list(range(18))
    assert outcomes[0]["train_items"][0] != outcomes[0]["train_items"][1]  # reshuffled


def test_weights_are_identical_across_ranks(distributed_run) -> None:
    outcomes, _ = distributed_run
    first0, first1 = (o["first_step"] for o in outcomes)
    assert len(first0) == len(first1) > 0
    for left, right in zip(first0, first1, strict=True):
        assert torch.equal(left, right)
    for state in ("state", "unsynced_state"):  # parameters and BN statistics
        for key, value in outcomes[0][state].items():
            assert torch.equal(value, outcomes[1][state][key]), (state, key)
    pd.testing.assert_frame_equal(
        outcomes[0]["history"].drop(columns=TIMING), outcomes[1]["history"].drop(columns=TIMING)
    )


# How far the two runs may differ. One gradient entry of a global batch is a sum over its
# (sample, body, frame, joint) positions; the ranks sum their halves and DDP adds the two, one
# process sums all of them in one kernel: the same terms in another order. Reordering a float32
# sum of n terms moves it by at most about n * eps of the terms' magnitude (Higham's bound for
# recursive summation; typically ~sqrt(n) * eps, 8 eps here), taken relative to the norm of the
# whole gradient because the gradients of conv biases followed by batch norm are pure rounding
# noise around 0. The bound also covers a ReLU whose input lies within rounding of 0 and lands
# on the other side in one run: that drops one of the ~1e6 gated activations of a step from the
# backward pass, measured at 4.4e-4 of the gradient norm (the second step of this training).
EPS32 = torch.finfo(torch.float32).eps


def _summed_terms(settings: TrainConfig, joints: int = 25) -> int:
    """Positions summed into one weight's gradient over a global batch, at the first block
    (the widest sum)."""
    return settings.batch_size * settings.max_bodies * settings.window * joints


STEP_TOLERANCE = 2 * EPS32 * _summed_terms(config())  # 1.5e-3 of the gradient norm
# After the first step the runs no longer start from the same weights: each later step adds at
# most STEP_TOLERANCE of its gradient, and the steps after it amplify that difference (batch
# norm over 8 samples, lr 0.05, momentum 0.9). Measured here: the flipped ReLU of the second step
# (4.4e-4 of that step's gradient) ends as 1.5e-2 of the whole update after the third step, and
# a one-ulp change of the first gradient ends either at 1e-6 or on that same 1.5e-2 branch (a
# ReLU input of 2e-7 decides which). GROWTH bounds that amplification per step with a margin:
# that branch needs 3.3 (its worst single tensor 1.7), and per-rank batch statistics, a real
# difference, still end 5x beyond the resulting tolerance (0.09 of the update).
GROWTH = 20


def _vector(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().double().flatten() for t in tensors])


def test_first_step_gradients_match_one_process_on_the_same_global_batch(
    distributed_run, single_run
) -> None:
    """The first step starts from the same weights on the same global batch: the averaged rank
    gradients are the one-process gradients up to summation order."""
    outcomes, _ = distributed_run
    ddp, single = outcomes[0]["first_grads"], single_run["first_grads"]
    norm = _vector(single).norm()
    names = [name for name, _ in single_run["model"].named_parameters()]
    assert len(ddp) == len(single) == len(names)
    for name, left, right in zip(names, ddp, single, strict=True):
        difference = (left.double() - right.double()).norm()
        assert difference <= STEP_TOLERANCE * norm, (name, float(difference / norm))
    assert (_vector(ddp) - _vector(single)).norm() <= STEP_TOLERANCE * norm


def _end_of_training_differences(
    state: dict[str, torch.Tensor], single_run: dict[str, Any]
) -> dict[str, float]:
    """Each parameter's distance from the one-process run, over the norm of that run's whole
    update (final minus initial weights)."""
    model = single_run["model"]
    names = [name for name, _ in model.named_parameters()]
    final = [model.state_dict()[name] for name in names]
    update = (_vector(final) - _vector(single_run["initial"])).norm()
    return {
        name: float((state[name].double() - value.double()).norm() / update)
        for name, value in zip(names, final, strict=True)
    }


def test_two_ranks_match_one_process_on_the_same_global_batches(
    distributed_run, single_run
) -> None:
    outcomes, _ = distributed_run
    result = single_run["result"]
    assert result.num_train % WORLD == 0  # no padding: the same samples
    assert outcomes[0]["best_epoch"] == result.best_epoch
    settings = config()
    steps = -(-result.num_train // settings.batch_size) * (result.best_epoch + 1)
    tolerance = STEP_TOLERANCE * steps * GROWTH  # behind the returned (best-epoch) weights
    differences = _end_of_training_differences(outcomes[0]["state"], single_run)
    worst = max(differences, key=differences.__getitem__)
    assert differences[worst] <= tolerance, (worst, differences[worst], tolerance)
    single_state = single_run["model"].state_dict()
    for key, value in outcomes[0]["state"].items():
        if key in differences:
            continue
        if not value.is_floating_point():  # batch counters
            assert torch.equal(value, single_state[key]), key
            continue
        # Running statistics: moving averages of the batch statistics, as close as the weights.
        relative = (value.double() - single_state[key].double()).norm() / value.double().norm()
        assert relative <= tolerance, (key, float(relative))
    history, single_history = outcomes[0]["history"], result.history
    assert history["epoch"].tolist() == [0, 1]
    # A mean loss moves, relative to itself, no more than the weights relative to their update.
    np.testing.assert_allclose(history["train_loss"], single_history["train_loss"], rtol=tolerance)
    assert history["train_acc"].tolist() == single_history["train_acc"].tolist()
    assert history["val_acc"].tolist() == single_history["val_acc"].tolist()
    assert outcomes[0]["model_class"] == "BatchNorm1d"  # a plain ST-GCN comes back
    # The tolerance still separates a real difference: per-rank batch statistics (the same
    # training without synchronised batch norm, one epoch = the best epoch's weights here).
    assert result.best_epoch == 0
    unsynced = _end_of_training_differences(outcomes[0]["unsynced_state"], single_run)
    assert max(unsynced.values()) > tolerance, max(unsynced.values())


def test_only_rank_zero_writes_checkpoints_and_logs_progress(distributed_run) -> None:
    outcomes, checkpoints = distributed_run
    assert [o["saves"] for o in outcomes] == [2, 0]
    assert sorted(os.listdir(checkpoints)) == ["last.pt"]
    saved = torch.load(checkpoints / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["world_size"] == WORLD
    assert any(line.startswith("epoch 2/2") for line in outcomes[0]["info_lines"])
    assert outcomes[1]["info_lines"] == []


def test_sharded_features_are_gathered_and_match_one_process(distributed_run) -> None:
    outcomes, _ = distributed_run
    samples, sequences = data()
    rank0, rank1 = (o["features"] for o in outcomes)
    pd.testing.assert_frame_equal(rank0, rank1)
    model = STGCN(num_classes=len(SEEN), width_multiplier=0.125)
    model.load_state_dict(outcomes[0]["state"])
    single = extract_features(
        model.eval(),
        feature_samples(samples),
        sequences,
        SEEN,
        unseen_ids=UNSEEN,
        window=16,
        max_bodies=2,
        window_mode="resize",
        batch_size=4,
        device="cpu",
    )
    assert rank0["sample_id"].tolist() == single["sample_id"].tolist()
    assert len(rank0) == len(feature_samples(samples)) == 47  # odd: shards of 24 and 23
    np.testing.assert_allclose(np.stack(rank0["feature"]), np.stack(single["feature"]), atol=1e-5)
    np.testing.assert_allclose(
        np.stack(rank0["seen_logits"]), np.stack(single["seen_logits"]), atol=1e-5
    )


# ---------------------------------------------------------------------------------------------
# bad input


def test_a_rank_dying_mid_epoch_fails_the_others_and_keeps_the_checkpoint(tmp_path) -> None:
    checkpoints = tmp_path / "checkpoints"
    outcomes, exit_codes = launch(tmp_path / "died", checkpoints, die_in_epoch=1)
    assert exit_codes[1] == 17 and outcomes[1] is None  # rank 1 died in its second epoch
    survivor = outcomes[0]
    assert survivor is not None and survivor["error_type"] == "DistributedError"
    assert "rank 0 of 2: training stopped in epoch 2" in survivor["error"]
    assert "another rank probably crashed" in survivor["error"]
    assert f"{checkpoints / 'last.pt'} of epoch 1 is intact" in survivor["error"]
    assert sorted(os.listdir(checkpoints)) == ["last.pt"]
    kept = torch.load(checkpoints / "last.pt", weights_only=True)
    assert kept["epoch"] == 0 and kept["world_size"] == WORLD and len(kept["history"]) == 1


def test_world_size_larger_than_the_data_is_a_clear_error(monkeypatch) -> None:
    samples, sequences = data()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "64")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    with pytest.raises(ValueError, match="world size 64 is larger than the 18 training samples"):
        train_stgcn(samples, sequences, SEEN, config())
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match=r"batch_size=8 is the global batch .* world size 3"):
        train_stgcn(samples, sequences, SEEN, config())


def test_missing_or_bad_rendezvous_variables_are_named(monkeypatch) -> None:
    samples, sequences = data()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    with pytest.raises(DistributedError, match=r"variable\(s\) MASTER_ADDR are not set"):
        train_stgcn(samples, sequences, SEEN, config())
    with pytest.raises(DistributedError, match="MASTER_ADDR"):
        extract_features(
            STGCN(num_classes=3, width_multiplier=0.125),
            samples,
            sequences,
            SEEN,
            window=16,
            max_bodies=2,
            window_mode="resize",
        )
    environment = {"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h"}
    with pytest.raises(DistributedError, match=r"RANK=2 is not in \[0, WORLD_SIZE=2\)"):
        launch_from_env({**environment, "MASTER_PORT": "29500"})
    with pytest.raises(DistributedError, match="MASTER_PORT='http' is not an integer"):
        launch_from_env({**environment, "RANK": "0", "MASTER_PORT": "http"})
    assert launch_from_env({"MASTER_ADDR": "h", "MASTER_PORT": "1"}) is None  # not a launch
