"""``zsl_training.repeats``: every head trained once per seed, each calibrated with its own seed,
evaluated per seed, and the tables' ``mean ± std [interval]`` over the seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pose_zsl.datasets import TorchArtifactDataset
from pose_zsl.models.heads import head_from_artifact, score
from pose_zsl.pipelines.evaluation import nodes as eval_nodes
from pose_zsl.pipelines.zsl_training import nodes as zsl_nodes
from pose_zsl.reporting import mlflow_metric_values
from pose_zsl.zsl.calibration import calibration_partition
from pose_zsl.zsl.metrics import metric_rows
from pose_zsl.zsl.tables import class_embeddings, feature_matrix

PROJECT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 8
UNSEEN = [6, 7]
PSEUDO = [4, 5]
PER_CLASS = 12  # samples per class: 8 train, 4 test
SEED = 4  # not 0: the seeds must be seed, seed + 1, ..., not 0, 1, ...
REPEATS = 3
STGCN_SEED = 11  # the ST-GCN's seed: every row's backbone_seed (one backbone per split here)
# Short schedules: the heads only need to differ between seeds and learn a little.
SHORT = {
    "devise": {"epochs": 4},
    "relation_net": {"episodes": 30, "lr_step": 20, "log_every": 10},
    "infonce": {"epochs": 4},
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def base_parameters(name: str) -> dict:
    """One pipeline's parameters as the default environment resolves them."""
    from pose_zsl.environments import config_loader

    return dict(config_loader(None)["parameters"][name])


def head_parameters(repeats: int) -> dict:
    return {**base_parameters("zsl_training"), **SHORT, "seed": SEED, "repeats": repeats}


@pytest.fixture(scope="module")
def problem() -> dict:
    """Features that are noisy linear images of each class's label vector (train and test
    samples of every class), the split's classes, its calibration partition and calibration
    features (the fit / holdout / pseudo-unseen samples), and label embeddings."""
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(NUM_CLASSES), PER_CLASS)
    index = np.tile(np.arange(PER_CLASS), NUM_CLASSES)
    samples = pd.DataFrame(
        {
            "sample_id": [
                f"S001C001P{i:03d}R001A{a + 1:03d}" for a, i in zip(ids, index, strict=True)
            ],
            "action_id": ids,
            "xsub": np.where(index % 3 == 2, "test", "train"),
        }
    )
    split_classes = pd.DataFrame(
        {
            "split": "nearest",  # a grid slot: the tables order their columns by slot
            "action_id": np.arange(NUM_CLASSES),
            "action_name": [f"action {i}" for i in range(NUM_CLASSES)],
            "role": np.where(np.isin(np.arange(NUM_CLASSES), UNSEEN), "unseen", "seen"),
            "pseudo_unseen": np.isin(np.arange(NUM_CLASSES), PSEUDO),
        }
    )
    vectors = rng.normal(size=(NUM_CLASSES, 16)).astype(np.float32)
    visual = rng.normal(size=(16, 24)).astype(np.float32)

    def features_of(rows: pd.DataFrame, noise: float) -> pd.DataFrame:
        labels = rows["action_id"].to_numpy()
        values = vectors[labels] @ visual + noise * rng.normal(size=(len(rows), 24))
        return pd.DataFrame(
            {
                "sample_id": rows["sample_id"].to_numpy(dtype=str),
                "action_id": labels,
                "protocol_split": rows["xsub"].to_numpy() if "xsub" in rows else "train",
                "is_seen": ~np.isin(labels, UNSEEN),
                "feature": list(values.astype(np.float32)),
            }
        )

    partition = calibration_partition(
        samples, split_classes, protocol="xsub", holdout_fraction=0.25, seed=0
    )
    embeddings = pd.DataFrame(
        {
            "action_id": np.arange(NUM_CLASSES),
            "action_name": [f"action {i}" for i in range(NUM_CLASSES)],
            "vector": list(vectors),
            "embedder": "random",
            "dim": 16,
        }
    )
    return {
        # noise large enough that heads of different seeds disagree on some test samples
        "features": features_of(samples, 2.0),
        "calibration_features": features_of(partition, 2.0),
        "calibration_samples": partition,
        "split_classes": split_classes,
        "embeddings": embeddings,
    }


def train(problem: dict, kind: str, repeats: int) -> tuple[dict, pd.DataFrame, list[dict]]:
    return zsl_nodes.train_variant(
        kind,
        problem["features"],
        problem["embeddings"],
        problem["split_classes"],
        head_parameters(repeats),
    )


def calibrate(problem: dict, main: dict, repeats: list[dict]) -> dict:
    return zsl_nodes.calibrate_head(
        main,
        repeats,
        problem["calibration_features"],
        problem["calibration_samples"],
        problem["embeddings"],
        problem["split_classes"],
        head_parameters(1 + len(repeats)),
    )


def evaluate(problem: dict, main: dict, repeats: list[dict], calibration: dict):
    return eval_nodes.evaluate_variant(
        main,
        repeats,
        calibration,
        problem["features"],
        problem["embeddings"],
        problem["split_classes"],
        {**base_parameters("evaluation"), "dataset": "toy"},
        SEED,
        STGCN_SEED,
    )


@pytest.fixture(scope="module")
def devise(problem) -> dict:
    """The DeViSE variant trained, calibrated and evaluated with three repeats and with one."""
    main, history, repeats = train(problem, "devise", REPEATS)
    single, single_history, no_repeats = train(problem, "devise", 1)
    calibration = calibrate(problem, main, repeats)
    single_calibration = calibrate(problem, single, no_repeats)
    return {
        "main": main,
        "history": history,
        "repeats": repeats,
        "single": single,
        "single_history": single_history,
        "no_repeats": no_repeats,
        "calibration": calibration,
        "single_calibration": single_calibration,
        "evaluation": evaluate(problem, main, repeats, calibration),
        "single_evaluation": evaluate(problem, single, no_repeats, single_calibration),
    }


def weights(artefact: dict) -> torch.Tensor:
    return torch.cat([v.flatten().double() for v in artefact["state_dict"].values()])


# --------------------------------------------------------------------------------------------
# the parameter
# --------------------------------------------------------------------------------------------


def test_repeat_seeds_are_seed_plus_r() -> None:
    assert zsl_nodes.repeat_seeds({"seed": SEED, "repeats": 3}) == [SEED, SEED + 1, SEED + 2]
    assert zsl_nodes.repeat_seeds({"seed": SEED, "repeats": 1}) == [SEED]
    default = base_parameters("zsl_training")["repeats"]  # the YAML holds the default
    assert len(zsl_nodes.repeat_seeds({"seed": SEED, "repeats": default})) == default >= 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, "3", True, None])
def test_bad_repeats_name_the_parameter(problem, bad) -> None:
    with pytest.raises(ValueError, match=r"^zsl_training\.repeats must be an integer >= 1"):
        zsl_nodes.repeat_seeds({"seed": 0, "repeats": bad})
    params = {**head_parameters(1), "repeats": bad}
    with pytest.raises(ValueError, match=r"^zsl_training\.repeats must be an integer >= 1"):
        zsl_nodes.train_variant(
            "devise", problem["features"], problem["embeddings"], problem["split_classes"], params
        )


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SHORT))
def test_train_node_yields_one_head_per_seed(problem, kind) -> None:
    main, history, repeats = train(problem, kind, REPEATS)
    heads = [main, *repeats]
    assert [h["meta"]["seed"] for h in heads] == [SEED, SEED + 1, SEED + 2]
    assert all(h["kind"] == kind for h in heads)
    for i in range(len(heads)):
        for j in range(i + 1, len(heads)):
            assert not torch.equal(weights(heads[i]), weights(heads[j])), (i, j)
    # The head of `seed` is the one a single repeat trains: the exported model is unchanged.
    single, single_history, no_repeats = train(problem, kind, 1)
    assert no_repeats == []
    assert torch.equal(weights(main), weights(single))
    assert {k: v for k, v in main.items() if k != "state_dict"} == {
        k: v for k, v in single.items() if k != "state_dict"
    }
    pd.testing.assert_frame_equal(history, single_history)
    # Each repeat is exactly the head its recorded seed trains (CPU training is deterministic
    # for a seed): the seed in the artefact is the one it was trained with.
    for repeat in repeats:
        alone, _, _ = zsl_nodes.train_variant(
            kind,
            problem["features"],
            problem["embeddings"],
            problem["split_classes"],
            {**head_parameters(1), "seed": repeat["meta"]["seed"]},
        )
        assert torch.equal(weights(repeat), weights(alone))


def test_repeat_heads_round_trip_through_their_catalog_entry(devise, tmp_path) -> None:
    from pose_zsl.environments import config_loader

    entry = config_loader(None)["catalog"]["{split}.{head}.{embedding}.zsl_repeat_models"]
    assert entry["type"] == "pose_zsl.datasets.TorchArtifactDataset"
    assert entry["metadata"]["kedro-viz"]["layer"] == "models"
    path = entry["filepath"].format(split="nearest", head="devise", embedding="random")
    assert path == "data/06_models/zsl_nearest_devise_random_repeats.pt"
    dataset = TorchArtifactDataset(filepath=str(tmp_path / Path(path).name))
    dataset.save(devise["repeats"])
    loaded = dataset.load()  # weights_only: a plain list of artefacts loads safely
    assert [r["meta"]["seed"] for r in loaded] == [SEED + 1, SEED + 2]
    for before, after in zip(devise["repeats"], loaded, strict=True):
        assert torch.equal(weights(before), weights(after))


# --------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------


def test_calibration_trains_one_calibration_head_per_seed(problem, devise, monkeypatch) -> None:
    calls: list[tuple[int, set[str]]] = []
    honest = zsl_nodes._train

    def recording(kind, features, label_embeddings, seen, params):
        calls.append((params["seed"], set(features["sample_id"])))
        return honest(kind, features, label_embeddings, seen, params)

    monkeypatch.setattr(zsl_nodes, "_train", recording)
    result = calibrate(problem, devise["main"], devise["repeats"])
    fit = set(problem["calibration_samples"].query("role == 'fit'")["sample_id"].astype(str))
    assert [seed for seed, _ in calls] == [SEED, SEED + 1, SEED + 2]
    assert all(ids == fit for _, ids in calls)
    assert result == devise["calibration"]  # recording changed nothing
    assert result["seed"] == SEED
    assert [c["seed"] for c in result["repeat_calibrations"]] == [SEED + 1, SEED + 2]
    # Each repeat's constant is the one a single-seed calibration of its head chooses.
    for repeat, entry in zip(devise["repeats"], result["repeat_calibrations"], strict=True):
        alone = calibrate(problem, repeat, [])
        assert alone["seed"] == entry["seed"]
        for key in ("gamma", "validation_seen_acc", "validation_unseen_acc"):
            assert entry[key] == alone[key], key
    # The keys of the exported head's calibration are those of a single repeat, unchanged.
    single = devise["single_calibration"]
    assert single["repeat_calibrations"] == []
    assert {k: v for k, v in result.items() if k != "repeat_calibrations"} == {
        k: v for k, v in single.items() if k != "repeat_calibrations"
    }
    json.dumps(result)  # the catalog writes it as JSON


def test_calibration_refuses_repeats_of_a_shared_seed(problem, devise) -> None:
    with pytest.raises(ValueError, match="heads share a training seed"):
        calibrate(problem, devise["main"], [devise["main"]])


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def test_evaluation_scores_every_seed_with_its_own_constant(problem, devise) -> None:
    metrics, per_class, _, _ = devise["evaluation"]
    single, single_per_class, _, _ = devise["single_evaluation"]
    assert list(metrics.columns) == eval_nodes.METRIC_COLUMNS
    assert sorted(metrics["seed"].unique()) == [SEED, SEED + 1, SEED + 2]
    assert len(metrics) == REPEATS * len(single)
    # The seed of `seed` reads exactly as a single repeat's evaluation; per-class table likewise.
    pd.testing.assert_frame_equal(
        metrics[metrics["seed"] == SEED].reset_index(drop=True), single.reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(per_class, single_per_class)
    # Every repeat's rows are its own head's scores with its own seed's constant.
    test = problem["features"][problem["features"]["protocol_split"] == "test"]
    vectors, class_ids = class_embeddings(problem["embeddings"])
    gammas = {c["seed"]: c["gamma"] for c in devise["calibration"]["repeat_calibrations"]}
    for repeat in devise["repeats"]:
        seed = repeat["meta"]["seed"]
        head = head_from_artifact(repeat, source="test")
        expected = metric_rows(
            score(head, feature_matrix(test), vectors),
            test["action_id"].to_numpy(),
            class_ids,
            [c for c in range(NUM_CLASSES) if c not in UNSEEN],
            UNSEEN,
            calibration=gammas[seed],
        )
        got = metrics.loc[metrics["seed"] == seed, list(pd.DataFrame(expected).columns)]
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), pd.DataFrame(expected), check_dtype=False
        )


def test_evaluation_matches_repeat_heads_to_their_constants(problem, devise) -> None:
    calibration = {**devise["calibration"], "repeat_calibrations": []}
    with pytest.raises(ValueError, match=r"zsl_repeat_models\[0\] \(seed 5\) has no calibration"):
        evaluate(problem, devise["main"], devise["repeats"], calibration)


def test_evaluation_reads_saved_repeats_and_calibration_alike(problem, devise, tmp_path) -> None:
    dataset = TorchArtifactDataset(filepath=str(tmp_path / "repeats.pt"))
    dataset.save(devise["repeats"])
    calibration = json.loads(json.dumps(devise["calibration"]))
    metrics = evaluate(problem, devise["main"], dataset.load(), calibration)[0]
    pd.testing.assert_frame_equal(metrics, devise["evaluation"][0])


def _cell_rows(metrics: pd.DataFrame, protocol: str, metric: str) -> pd.DataFrame:
    return metrics[(metrics["protocol"] == protocol) & (metrics["metric"] == metric)]


def _expected_cell(rows: pd.DataFrame) -> str:
    """``mean ± std [low, high]`` computed here from the seeds' rows: std with ddof 1 (the
    sample standard deviation over seeds), bounds the mean of the seeds' bounds."""
    values = rows["value"].to_numpy(dtype=float)
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    low = sum(rows["ci_low"]) / len(rows)
    high = sum(rows["ci_high"]) / len(rows)
    return f"{mean:.1f} ± {std:.1f} [{low:.1f}, {high:.1f}]"


def test_tables_show_mean_and_std_over_seeds(devise) -> None:
    metrics = devise["evaluation"][0]
    assert _cell_rows(metrics, "zsl", "top1")["n"].nunique() == 1
    zsl, gzsl, suh = (
        eval_nodes.zsl_table(metrics),
        eval_nodes.gzsl_table(metrics),
        eval_nodes.seen_unseen_table(metrics),
    )
    spread = 0.0
    for protocol, metric, table, joiner in [
        ("zsl", "top1", zsl, " |"),
        ("zsl", "top1_class_mean", zsl, " |"),
        ("gzsl", "hit1", gzsl, " / "),
        ("gzsl", "seen_acc", suh, " / "),
        ("gzsl_calibrated", "unseen_acc", suh, " / "),
        ("gzsl_calibrated", "harmonic_mean", suh, " |"),
    ]:
        rows = _cell_rows(metrics, protocol, metric)
        assert len(rows) == REPEATS
        cell = _expected_cell(rows)
        assert f"{cell}{joiner}" in table, (protocol, metric, cell, table)
        spread = max(spread, rows["value"].std())
    assert spread > 0  # the seeds disagree somewhere: the ± is not vacuously 0.0
    assert "Heads trained with 3 seeds (4, 5, 6; `zsl_training.repeats`)" in zsl
    # collapse diagnostics have no interval: mean ± std alone
    share = _cell_rows(metrics, "zsl", "top_class_share")["value"]
    assert f"| {share.mean():.1f} ± {share.std():.1f} / " in zsl


def test_a_single_repeat_leaves_tables_and_mlflow_keys_as_before(devise) -> None:
    metrics = devise["single_evaluation"][0]
    assert set(metrics["seed"]) == {SEED}
    table = eval_nodes.zsl_table(metrics)
    assert "±" not in table and "seeds" not in table
    top1 = _cell_rows(metrics, "zsl", "top1").iloc[0]
    cell = f"{top1.value:.1f} [{top1.ci_low:.1f}, {top1.ci_high:.1f}]"
    assert f"| devise | random | {cell} |" in table
    keys = mlflow_metric_values(metrics)
    assert keys == {
        f"{r.split}.{r.head}.{r.embedding}.{r.protocol}.{r.metric}": {"value": r.value, "step": 0}
        for r in metrics.itertuples()
    }


def test_mlflow_keys_name_the_seed_of_every_repeat(devise) -> None:
    metrics = devise["evaluation"][0]
    single = mlflow_metric_values(devise["single_evaluation"][0])
    values = mlflow_metric_values(metrics)
    assert len(values) == len(metrics)  # one key per row: none overwritten
    assert {k: v for k, v in values.items() if ".seed" not in k} == single
    for r in metrics[metrics["seed"] != SEED].itertuples():
        key = f"nearest.devise.random.seed{r.seed}.{r.protocol}.{r.metric}"
        assert values[key] == {"value": r.value, "step": 0}


def test_pipelines_pass_the_repeats_from_training_to_evaluation() -> None:
    from pose_zsl.pipelines.evaluation.pipeline import create_pipeline as evaluation
    from pose_zsl.pipelines.zsl_training.pipeline import create_pipeline as training

    name = "nearest.relation_net.learned.zsl_repeat_models"
    assert name in training().all_outputs()
    consumers = {n.name for n in training().only_nodes_with_inputs(name).nodes}
    assert consumers == {"nearest.relation_net.learned.calibrate_on_pseudo_unseen"}
    assert {n.name for n in evaluation().only_nodes_with_inputs(name).nodes} == {
        "nearest.relation_net.learned.evaluate"
    }
