"""The honest calibration proxy: the per-split partition, the calibration ST-GCN, its features
and the calibration head, each with its leakage guard tested by an injected leak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import random_walk_skeletons

from pose_zsl.pipelines.feature_extraction import nodes as feature_nodes
from pose_zsl.pipelines.split_selection.nodes import partition_calibration_samples
from pose_zsl.pipelines.stgcn_training import nodes as stgcn_nodes
from pose_zsl.pipelines.zsl_training import nodes as zsl_nodes
from pose_zsl.skeleton.store import sequences_table
from pose_zsl.zsl.calibration import calibration_classes, calibration_partition

PROJECT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 8
UNSEEN = [7]
PSEUDO = [5, 6]
TRAIN_SEEN = [0, 1, 2, 3, 4]  # seen minus pseudo-unseen
PER_CLASS = 9  # performers; every third is a cross-subject test performer: 6 train, 3 test

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def base_parameters(name: str) -> dict:
    """One pipeline's parameters as the default environment resolves them."""
    from pose_zsl.environments import config_loader

    return dict(config_loader(None)["parameters"][name])


def split_table(num_classes: int = NUM_CLASSES, split: str = "toy") -> pd.DataFrame:
    ids = np.arange(num_classes)
    return pd.DataFrame(
        {
            "split": split,
            "action_id": ids,
            "action_name": [f"action {i}" for i in ids],
            "role": np.where(np.isin(ids, UNSEEN), "unseen", "seen"),
            "pseudo_unseen": np.isin(ids, PSEUDO),
        }
    )


@pytest.fixture(scope="module")
def toy() -> tuple[pd.DataFrame, pa.Table]:
    samples, ids, arrays = random_walk_skeletons(NUM_CLASSES, PER_CLASS, seed=3)
    return samples, sequences_table(ids, arrays)


@pytest.fixture(scope="module")
def partition(toy) -> pd.DataFrame:
    samples, _ = toy
    return calibration_partition(
        samples, split_table(), protocol="xsub", holdout_fraction=0.25, seed=0
    )


# --------------------------------------------------------------------------------------------
# the partition
# --------------------------------------------------------------------------------------------


def test_partition_covers_exactly_the_seen_training_samples_once(toy, partition) -> None:
    samples, _ = toy
    eligible = samples[(samples["xsub"] == "train") & ~samples["action_id"].isin(UNSEEN)]
    assert list(partition.columns) == ["sample_id", "action_id", "role"]
    assert not partition["sample_id"].duplicated().any()
    assert set(partition["sample_id"]) == set(eligible["sample_id"])
    truth = eligible.set_index("sample_id")["action_id"]
    assert (partition["action_id"].to_numpy() == truth[partition["sample_id"]].to_numpy()).all()
    is_pseudo = partition["action_id"].isin(PSEUDO)
    assert (partition.loc[is_pseudo, "role"] == "pseudo_unseen").all()
    assert set(partition.loc[~is_pseudo, "role"]) == {"fit", "holdout"}


def test_partition_is_stratified_by_class() -> None:
    # train samples per class: 1, 2, 4, 6, 6 (train-seen), 3 and 3 (pseudo), 3 (unseen)
    sizes = {0: 1, 1: 2, 2: 4, 3: 6, 4: 6, 5: 3, 6: 3, 7: 3}
    samples = pd.DataFrame(
        [
            {"sample_id": f"c{action}_s{i}", "action_id": action, "xsub": "train"}
            for action, size in sizes.items()
            for i in range(size)
        ]
        + [{"sample_id": f"c{a}_test", "action_id": a, "xsub": "test"} for a in sizes]
    )
    table = calibration_partition(
        samples, split_table(), protocol="xsub", holdout_fraction=0.25, seed=0
    )
    held = table[table["role"] == "holdout"].groupby("action_id").size()
    # round(0.25 n), at least 1 but never the whole class: n=1 -> 0, 2 -> 1, 4 -> 1, 6 -> 2
    assert held.reindex(TRAIN_SEEN, fill_value=0).tolist() == [0, 1, 1, 2, 2]
    fit = table[table["role"] == "fit"].groupby("action_id").size()
    assert fit.reindex(TRAIN_SEEN, fill_value=0).tolist() == [1, 1, 3, 4, 4]
    assert not table["sample_id"].str.endswith("_test").any()


def test_partition_is_deterministic_and_independent_of_row_order(toy, partition) -> None:
    samples, _ = toy
    shuffled = samples.sample(frac=1.0, random_state=7)
    again = calibration_partition(
        shuffled, split_table(), protocol="xsub", holdout_fraction=0.25, seed=0
    )
    pd.testing.assert_frame_equal(again, partition)
    other_seed = calibration_partition(
        samples, split_table(), protocol="xsub", holdout_fraction=0.25, seed=1
    )
    assert (other_seed["role"] == "holdout").sum() == (partition["role"] == "holdout").sum()
    assert not other_seed["role"].equals(partition["role"])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_partition_refuses_a_holdout_fraction_outside_0_1(toy, fraction) -> None:
    samples, _ = toy
    with pytest.raises(ValueError, match=r"calibration_holdout must be in \(0, 1\)"):
        calibration_partition(
            samples, split_table(), protocol="xsub", holdout_fraction=fraction, seed=0
        )


def test_partition_needs_pseudo_unseen_classes(toy) -> None:
    samples, _ = toy
    classes = split_table().assign(pseudo_unseen=False)
    with pytest.raises(ValueError, match="num_pseudo_unseen >= 1"):
        calibration_partition(samples, classes, protocol="xsub", holdout_fraction=0.25, seed=0)


def test_split_selection_node_partitions_every_slot(toy, partition) -> None:
    samples, _ = toy
    splits = pd.concat([split_table(split=slot) for slot in ("nearest", "random", "furthest")])
    params = {**base_parameters("split_selection"), "seed": 0, "protocol": "xsub"}
    tables = partition_calibration_samples(splits, samples, params)
    assert set(tables) == {"nearest", "random", "furthest"}
    assert params["calibration_holdout"] == 0.25  # the setting's one home
    for table in tables.values():
        pd.testing.assert_frame_equal(table, partition)


def test_calibration_classes_are_the_proxy_problem() -> None:
    classes = calibration_classes(split_table())
    assert sorted(classes.loc[classes["role"] == "seen", "action_id"]) == TRAIN_SEEN
    assert sorted(classes.loc[classes["role"] == "unseen", "action_id"]) == PSEUDO
    assert set(classes["split"]) == {"toy_calibration"} and not classes["pseudo_unseen"].any()


# --------------------------------------------------------------------------------------------
# the calibration ST-GCN and its features
# --------------------------------------------------------------------------------------------


def stgcn_parameters(checkpoint_root: Path) -> dict:
    return {
        **base_parameters("stgcn_training"),
        "epochs": 1,
        "batch_size": 8,
        "lr_milestones": [1],
        "window": 16,
        "width": 0.125,
        "device": "cpu",
        "precision": "fp32",
        "checkpoint_root": str(checkpoint_root),
    }


def rows_of(samples: pd.DataFrame, mask: pd.Series, n: int = 1) -> pd.DataFrame:
    return samples[mask].head(n)


def leak_rows(samples: pd.DataFrame, partition: pd.DataFrame, leak: str) -> pd.DataFrame:
    """One row of the given kind, from the samples table."""
    role_of = partition.set_index("sample_id")["role"]
    roles = samples["sample_id"].map(role_of)
    masks = {
        "holdout": roles == "holdout",
        "pseudo_unseen": roles == "pseudo_unseen",
        "test": (samples["xsub"] == "test") & samples["action_id"].isin(TRAIN_SEEN),
        "unseen": samples["action_id"].isin(UNSEEN) & (samples["xsub"] == "train"),
    }
    return rows_of(samples, masks[leak])


LEAK_MESSAGES = {
    "holdout": r"leakage guard: .* calibration role is \['holdout'\]",
    "pseudo_unseen": r"leakage guard: .* calibration role is \['pseudo_unseen'\]",
    "test": r"leakage guard: .* 'xsub' split is \['test'\]",
    "unseen": r"leakage guard: .* unseen classes \[7\]",
}


@pytest.mark.parametrize("leak", sorted(LEAK_MESSAGES))
def test_calibration_stgcn_guard_catches_a_leaky_selection(
    toy, partition, tmp_path, monkeypatch, leak
) -> None:
    samples, sequences = toy
    honest = stgcn_nodes.calibration_fit_samples

    def leaky(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([honest(frame, table), leak_rows(frame, table, leak)])

    monkeypatch.setattr(stgcn_nodes, "calibration_fit_samples", leaky)
    with pytest.raises(ValueError, match=LEAK_MESSAGES[leak]):
        stgcn_nodes.train_calibration_stgcn(
            samples, sequences, split_table(), partition, stgcn_parameters(tmp_path)
        )
    assert not any(tmp_path.iterdir())  # refused before any training step


@pytest.mark.parametrize(
    ("leak", "message"),
    [
        ("test", r"leakage guard: .* 'xsub' split is \['test'\]"),
        ("pseudo_unseen", r"leakage guard: .* pseudo-unseen classes \[5\] in the fit"),
    ],
)
def test_calibration_stgcn_guard_catches_a_corrupted_partition(
    toy, partition, tmp_path, leak, message
) -> None:
    samples, sequences = toy
    row = leak_rows(samples, partition, leak)
    corrupted = pd.concat(
        [
            partition[~partition["sample_id"].isin(row["sample_id"])],
            row[["sample_id", "action_id"]].assign(role="fit"),
        ]
    )
    with pytest.raises(ValueError, match=message):
        stgcn_nodes.train_calibration_stgcn(
            samples, sequences, split_table(), corrupted, stgcn_parameters(tmp_path)
        )


@pytest.fixture(scope="module")
def calibration_stgcn(toy, partition, tmp_path_factory, one_torch_thread) -> dict:
    """The calibration ST-GCN of the toy split, and what the trainer was given."""
    from pose_zsl.training import stgcn_trainer

    samples, sequences = toy
    root = tmp_path_factory.mktemp("checkpoints")
    given: list[tuple[pd.DataFrame, list[int], object]] = []
    honest = stgcn_trainer.train_stgcn

    def recording(frame, sequences, seen, config, **kwargs):
        model, result = honest(frame, sequences, seen, config, **kwargs)
        given.append((frame.copy(), list(seen), config, result))
        return model, result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stgcn_trainer, "train_stgcn", recording)
        model, history = stgcn_nodes.train_calibration_stgcn(
            samples, sequences, split_table(), partition, stgcn_parameters(root)
        )
    return {"model": model, "history": history, "root": root, "given": given}


def test_calibration_stgcn_learns_the_fit_samples_of_the_train_seen_classes_only(
    calibration_stgcn, partition, toy
) -> None:
    samples, _ = toy
    [(frame, seen, config, result)] = calibration_stgcn["given"]
    fit = partition.loc[partition["role"] == "fit", "sample_id"]
    assert sorted(frame["sample_id"]) == sorted(fit)
    assert seen == TRAIN_SEEN and calibration_stgcn["model"]["meta"]["class_ids"] == TRAIN_SEEN
    # its own validation hold-out comes out of the fit samples (1 of each class's 4)
    assert (result.num_train, result.num_val) == (3 * len(TRAIN_SEEN), len(TRAIN_SEEN))
    assert len(calibration_stgcn["history"]) == 1
    root = calibration_stgcn["root"]
    assert (root / "toy_calibration" / "last.pt").is_file() and not (root / "toy").exists()


class _Stop(Exception):
    pass


def test_calibration_stgcn_trains_with_the_split_stgcn_config(
    calibration_stgcn, toy, monkeypatch
) -> None:
    """Same recipe: the config the split's own ST-GCN node hands the trainer."""
    from pose_zsl.training import stgcn_trainer

    samples, sequences = toy
    [(_, _, calibration_config, _)] = calibration_stgcn["given"]

    def stop(frame, sequences, seen, config, **kwargs):
        raise _Stop(config)

    monkeypatch.setattr(stgcn_trainer, "train_stgcn", stop)
    with pytest.raises(_Stop) as main:
        stgcn_nodes.train_stgcn_on_seen_classes(
            samples, sequences, split_table(), stgcn_parameters(calibration_stgcn["root"])
        )
    assert main.value.args[0] == calibration_config


def test_calibration_features_cover_the_calibration_samples_only(
    toy, partition, calibration_stgcn
) -> None:
    samples, sequences = toy
    model = calibration_stgcn["model"]
    params = {**base_parameters("feature_extraction"), "device": "cpu"}
    features = feature_nodes.extract_calibration_features(
        model, samples, sequences, split_table(), partition, params
    )
    assert sorted(features["sample_id"]) == sorted(partition["sample_id"])
    assert set(features["protocol_split"]) == {"train"}
    assert not features["action_id"].isin(UNSEEN).any()
    # "seen" to the calibration backbone: the pseudo-unseen classes are new to it
    assert (features["is_seen"] == ~features["action_id"].isin(PSEUDO)).all()
    assert len(features["seen_logits"].iloc[0]) == len(TRAIN_SEEN)


@pytest.mark.parametrize("leak", ["test", "unseen"])
def test_calibration_features_guard_catches_a_corrupted_partition(
    toy, partition, calibration_stgcn, leak
) -> None:
    samples, sequences = toy
    model = calibration_stgcn["model"]
    row = leak_rows(samples, partition, leak)
    corrupted = pd.concat([partition, row[["sample_id", "action_id"]].assign(role="holdout")])
    with pytest.raises(ValueError, match=LEAK_MESSAGES[leak]):
        feature_nodes.extract_calibration_features(
            model, samples, sequences, split_table(), corrupted, {"batch_size": 8, "device": "cpu"}
        )


# --------------------------------------------------------------------------------------------
# the calibration head
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def head_problem(toy, partition) -> dict:
    """Calibration features where each class is a noisy linear image of its label vector, the
    label embeddings, and a trained DeViSE variant (only its kind matters to calibrate_head)."""
    samples, _ = toy
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(NUM_CLASSES, 16)).astype(np.float32)
    visual = rng.normal(size=(16, 24)).astype(np.float32)
    rows = partition.copy()
    labels = rows["action_id"].to_numpy()
    features = vectors[labels] @ visual + 0.1 * rng.normal(size=(len(rows), 24))
    table = pd.DataFrame(
        {
            "sample_id": rows["sample_id"].astype(str).to_numpy(),
            "action_id": labels,
            "protocol_split": "train",
            "is_seen": ~np.isin(labels, PSEUDO),
            "feature": list(features.astype(np.float32)),
        }
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
    params = {**base_parameters("zsl_training"), "devise": {"epochs": 3}}
    model, _, _ = zsl_nodes.train_variant("devise", table, embeddings, split_table(), params)
    return {"features": table, "embeddings": embeddings, "params": params, "model": model}


def calibrate(problem: dict, partition: pd.DataFrame, features: pd.DataFrame | None = None):
    return zsl_nodes.calibrate_head(
        problem["model"],
        [],
        problem["features"] if features is None else features,
        partition,
        problem["embeddings"],
        split_table(),
        problem["params"],
    )


def test_calibration_head_fits_on_fit_samples_and_chooses_on_the_others(
    head_problem, partition, monkeypatch
) -> None:
    trained_on: list[set[str]] = []
    honest_train = zsl_nodes._train

    def recording(kind, features, label_embeddings, seen, params):
        trained_on.append(set(features["sample_id"]))
        assert sorted(seen) == TRAIN_SEEN
        assert sorted(label_embeddings["action_id"]) == TRAIN_SEEN + PSEUDO  # seen candidates
        return honest_train(kind, features, label_embeddings, seen, params)

    monkeypatch.setattr(zsl_nodes, "_train", recording)
    result = calibrate(head_problem, partition)
    assert trained_on == [set(partition.loc[partition["role"] == "fit", "sample_id"])]
    counts = partition["role"].value_counts()
    assert result["num_fit_samples"] == counts["fit"]
    assert result["num_validation_samples"] == counts["holdout"] + counts["pseudo_unseen"]
    assert result["pseudo_unseen_class_ids"] == PSEUDO
    assert np.isfinite(result["gamma"])
    for key in ("validation_seen_acc", "validation_unseen_acc", "validation_harmonic_mean"):
        assert 0.0 <= result[key] <= 100.0


@pytest.mark.parametrize(
    ("moved", "into", "message"),
    [
        ("holdout", "fit", r"head's training samples .* role is \['holdout'\]"),
        ("pseudo_unseen", "fit", r"head's training samples .* role is \['pseudo_unseen'\]"),
        ("fit", "choice", r"constant is chosen on .* role is \['fit'\]"),
    ],
)
def test_calibration_head_guard_catches_a_leaky_selection(
    head_problem, partition, monkeypatch, moved, into, message
) -> None:
    honest = zsl_nodes._calibration_rows

    def leaky(features: pd.DataFrame, table: pd.DataFrame):
        fit, choice = honest(features, table)
        ids = table.loc[table["role"] == moved, "sample_id"].head(1)
        extra = features[features["sample_id"].isin(ids)]
        if into == "fit":
            return pd.concat([fit, extra]), choice
        return fit, pd.concat([choice, extra])

    monkeypatch.setattr(zsl_nodes, "_calibration_rows", leaky)
    with pytest.raises(ValueError, match=rf"leakage guard: .*{message}"):
        calibrate(head_problem, partition)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action_id": UNSEEN[0]}, r"unseen classes \[7\]"),
        ({"protocol_split": "test"}, r"'protocol_split' split is \['test'\]"),
    ],
)
def test_calibration_head_guard_catches_unseen_or_test_features(
    head_problem, partition, change, message
) -> None:
    features = head_problem["features"]
    extra = features.head(1).assign(sample_id="S999C001P001R001A001", **change)
    with pytest.raises(ValueError, match=rf"leakage guard: the calibration features .*{message}"):
        calibrate(head_problem, partition, pd.concat([features, extra], ignore_index=True))
