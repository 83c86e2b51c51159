"""Pooled datasets and cross-dataset zero-shot: the class table and its name rule, the
cross-dataset protocol and its leakage guards, the pooled and cross splits, the counterpart
rule, the cross-dataset metrics, and the three environments as ``kedro run --env`` resolves
them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import random_walk_skeletons

from pose_zsl.skeleton.pooled import (
    PERFORMER_STRIDE,
    DatasetPart,
    merged_summary,
    pool_actions,
    pool_datasets,
)
from pose_zsl.skeleton.store import sequences_table
from pose_zsl.training import stgcn_trainer
from pose_zsl.training.stgcn_trainer import TrainConfig, train_stgcn
from pose_zsl.zsl.metrics import cross_dataset_rows, within_dataset_rows
from pose_zsl.zsl.splits import (
    check_cross_dataset_protocol,
    make_splits,
    pooled_split_unseen,
    resolve_unseen,
    target_groups,
)

SOURCE_NAMES = ["wave", "kick", "Hand clap", "bow"]
# "hand-clap." is "Hand clap" after label normalisation; "clap hands" is not
TARGET_NAMES = ["jump", "hand-clap.", "clap hands"]


def part(dataset: str, names: list[str], seed: int, prefix: str) -> DatasetPart:
    samples, ids, arrays = random_walk_skeletons(len(names), 6, joints=20, seed=seed)
    ids = [f"{prefix}{sample_id}" for sample_id in ids]
    samples["sample_id"] = pd.array(ids, dtype="string")
    skipped = pd.DataFrame(columns=["path", "sample_id", "category", "reason"])
    return DatasetPart(dataset, names, samples, sequences_table(ids, arrays), skipped)


@pytest.fixture(scope="module")
def pooled() -> tuple[pd.DataFrame, pa.Table, pd.DataFrame, pd.DataFrame]:
    parts = [part("src", SOURCE_NAMES, 0, "a_"), part("tgt", TARGET_NAMES, 1, "b_")]
    return pool_datasets(parts, target="tgt")


# ---- the class table -----------------------------------------------------------------------


def test_only_names_equal_after_normalisation_are_one_class() -> None:
    actions = pool_actions([("src", SOURCE_NAMES), ("tgt", TARGET_NAMES)])
    assert actions["action_id"].tolist() == [0, 1, 2, 3, 4, 5]
    assert actions["action_name"].tolist() == [
        "wave",
        "kick",
        "Hand clap",
        "bow",
        "jump",
        "clap hands",
    ]
    assert actions["datasets"].tolist() == ["src", "src", "src;tgt", "src", "tgt", "tgt"]
    assert actions["dataset_action_id"].tolist() == [0, 1, 2, 3, 0, 2]
    assert merged_summary(actions) == "Hand clap (src;tgt)"


def test_pooling_refuses_ambiguous_input() -> None:
    with pytest.raises(ValueError, match="at least two datasets"):
        pool_actions([("src", SOURCE_NAMES)])
    with pytest.raises(ValueError, match="'src' has two classes with the same name"):
        pool_actions([("src", ["wave", "Wave!"]), ("tgt", TARGET_NAMES)])
    with pytest.raises(ValueError, match="named twice"):
        pool_actions([("src", SOURCE_NAMES), ("src", TARGET_NAMES)])


def test_pooled_samples_take_pooled_ids_keep_performers_apart_and_split_by_dataset(
    pooled,
) -> None:
    samples, sequences, _, _ = pooled
    source = samples[samples["source"] == "src"]
    target = samples[samples["source"] == "tgt"]
    assert len(source) == 24 and len(target) == 18 and sequences.num_rows == 42
    assert sequences.column("sample_id").to_pylist() == samples["sample_id"].tolist()
    # target classes 0, 1, 2 of "tgt" are pooled 4, 2 (merged into "Hand clap") and 5
    assert sorted(target["action_id"].unique()) == [2, 4, 5]
    assert set(target.loc[target["action_id"] == 2, "action_name"]) == {"Hand clap"}
    assert set(source["performer"]) == set(range(1, 7))
    assert set(target["performer"]) == {PERFORMER_STRIDE + p for p in range(1, 7)}
    assert set(source["xdata"]) == {"train"} and set(target["xdata"]) == {"test"}


def test_pooling_refuses_a_sample_id_in_two_datasets_and_an_unknown_target() -> None:
    first, second = part("src", SOURCE_NAMES, 0, "x_"), part("tgt", TARGET_NAMES, 1, "x_")
    with pytest.raises(ValueError, match=r"sample id 'x_S001C001P001R001A001' occurs in both"):
        pool_datasets([first, second])
    with pytest.raises(ValueError, match="target 'other' is not one of the pooled"):
        pool_datasets([first, part("tgt", TARGET_NAMES, 1, "y_")], target="other")


# ---- the cross-dataset protocol and its guards ---------------------------------------------


def cross_classes() -> pd.DataFrame:
    return pool_actions([("msr_action3d", SOURCE_NAMES), ("utkinect", TARGET_NAMES)])


def cross_samples(pooled) -> pd.DataFrame:
    samples = pooled[0].copy()
    samples["source"] = samples["source"].map({"src": "msr_action3d", "tgt": "utkinect"})
    return samples


def test_the_cross_protocol_check_catches_a_target_sample_marked_for_training(pooled) -> None:
    samples = cross_samples(pooled)
    check_cross_dataset_protocol(samples, "msr_to_utkinect", "xdata")
    leaked = samples.copy()
    leaked.loc[leaked.index[-1], "xdata"] = "train"  # one UTKinect sample leaks into training
    wrong_side = r"1 samples are on the wrong side.*'b_S001C001P006R001A003'"
    with pytest.raises(ValueError, match=wrong_side):
        check_cross_dataset_protocol(leaked, "msr_to_utkinect", "xdata")
    with pytest.raises(ValueError, match="split_selection.protocol .* must be 'xdata'"):
        check_cross_dataset_protocol(samples, "msr_to_utkinect", "xsub")
    with pytest.raises(ValueError, match="no 'xdata' column; set 'target: utkinect'"):
        check_cross_dataset_protocol(samples.drop(columns="xdata"), "msr_to_utkinect", "xdata")


def tiny_config() -> TrainConfig:
    return TrainConfig(
        epochs=1, batch_size=8, window=16, window_mode="resize", width=0.125, device="cpu",
        precision="fp32", val_fraction=0.2, protocol="xdata",
    )  # fmt: skip


@pytest.mark.usefixtures("one_torch_thread")
def test_the_trainer_guard_stops_a_target_sample_of_a_shared_class(pooled, monkeypatch) -> None:
    """The shared class (2, "Hand clap") is seen, so only the protocol keeps its target
    samples out of training; a selection that forgets the split must trip the guard."""
    samples, sequences, _, actions = pooled
    seen = [0, 1, 2, 3]
    _, result = train_stgcn(samples, sequences, seen, tiny_config())
    assert result.num_train + result.num_val == int((samples["source"] == "src").sum())

    def forgets_the_split(frame: pd.DataFrame, ids: list[int], protocol: str) -> pd.DataFrame:
        return frame[frame["action_id"].isin(ids)]

    monkeypatch.setattr(stgcn_trainer, "_select_training_rows", forgets_the_split)
    with pytest.raises(ValueError, match=r"leakage guard.*'xdata' split is \['test'\]"):
        train_stgcn(samples, sequences, seen, tiny_config())


# ---- splits ----------------------------------------------------------------------------------


def test_a_cross_split_makes_the_targets_own_classes_unseen_and_keeps_shared_ones_seen() -> None:
    classes = cross_classes()
    ids = classes["action_id"].tolist()
    assert pooled_split_unseen("msr_to_utkinect", classes, ids) == [4, 5]
    assert pooled_split_unseen("utkinect_to_msr", classes, ids) == [0, 1, 3]
    labels = classes[["action_id", "action_name"]].assign(vector=[[1.0, float(i)] for i in ids])
    table = make_splits(labels, ["msr_to_utkinect"], num_pseudo_unseen=1, pooled_classes=classes)
    assert table.loc[table["role"] == "unseen", "action_id"].tolist() == [4, 5]
    assert table["dataset"].tolist()[-2:] == ["utkinect", "utkinect"]


def test_pooled_random_splits_are_the_union_of_each_datasets_own_split() -> None:
    msr = [f"msr action {i}" for i in range(20)]
    utk = [f"utk action {i}" for i in range(10)]
    classes = pool_actions([("msr_action3d", msr), ("utkinect", utk)])
    ids = classes["action_id"].tolist()
    for k in (1, 2):
        got = pooled_split_unseen(
            f"pooled_random_{k}", classes, ids, seed=0, num_unseen_per_dataset={"utkinect": 3}
        )
        own_msr = resolve_unseen(f"msr_random_{k}", table_of(msr), seed=0)
        own_utk = resolve_unseen(f"random_{k}", table_of(utk), num_unseen=3, seed=0)
        assert got == sorted(own_msr + [20 + i for i in own_utk])
    with pytest.raises(ValueError, match="'num_unseen_per_dataset' has no entry for 'utkinect'"):
        pooled_split_unseen("pooled_random_1", classes, ids, num_unseen_per_dataset={})


def table_of(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"action_id": range(len(names)), "action_name": names})


def test_pooled_splits_need_a_pooled_environment() -> None:
    single = table_of(SOURCE_NAMES)
    with pytest.raises(ValueError, match="needs a pooled environment"):
        pooled_split_unseen("msr_to_utkinect", single, [0, 1, 2, 3])
    other = pool_actions([("msr_action3d", SOURCE_NAMES), ("ntu60", TARGET_NAMES)])
    with pytest.raises(ValueError, match=r"needs datasets \['msr_action3d', 'utkinect'\]"):
        pooled_split_unseen("msr_to_utkinect", other, other["action_id"].tolist())


def test_the_counterpart_rule_on_a_hand_made_example() -> None:
    """Unit vectors at known angles: cos(target, nearest source) decides close vs novel; a
    class the source also has is shared whatever its vector."""
    classes = cross_classes()  # source 0..3 (2 shared with the target), target-only 4, 5

    def at(degrees: float) -> list[float]:
        return [float(np.cos(np.radians(degrees))), float(np.sin(np.radians(degrees)))]

    # class 4 lies 60 degrees from its nearest source classes (cos 0.5), class 5 20 (cos 0.94)
    vectors = [at(0), at(120), at(180), at(240), at(60), at(20)]
    labels = classes[["action_id", "action_name"]].assign(vector=vectors)
    split = make_splits(labels, ["msr_to_utkinect"], num_pseudo_unseen=0, pooled_classes=classes)
    table = target_groups(split, classes, labels, min_similarity=0.6).set_index("action_id")
    assert table.loc[2, "target_group"] == "shared"
    assert table.loc[5, "target_group"] == "close" and table.loc[5, "counterpart"] == "wave"
    assert table.loc[4, "target_group"] == "novel"
    # cos 60 deg = 0.5 exactly (to float64 rounding of cos/sin): at the threshold counts as close
    assert target_groups(split, classes, labels, 0.5 - 1e-12).loc[4, "target_group"] == "close"
    assert table.loc[4, "counterpart_similarity"] == pytest.approx(0.5)
    assert table.loc[[0, 1, 3], "target_group"].isna().all()
    with pytest.raises(ValueError, match="'counterpart_similarity' must lie in"):
        target_groups(split, classes, labels, 1.5)


# ---- metrics -------------------------------------------------------------------------------


def test_cross_dataset_rows_rank_targets_among_target_classes_and_split_by_group() -> None:
    class_ids = np.array([0, 1, 2, 3])  # 0, 1 source-only; 2 shared; 3 novel target class
    # sample 0 (class 2): a source-only column scores highest, which must not count
    scores = np.array([[9.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 3.0, 1.0]])
    labels = np.array([2, 3, 3])
    rows = {
        r["metric"]: r
        for r in cross_dataset_rows(scores, labels, class_ids, {2: "shared", 3: "novel"})
    }
    assert rows["top1"]["value"] == pytest.approx(200 / 3) and rows["top1"]["n"] == 3
    assert rows["top1_shared"]["value"] == 100.0 and rows["top1_shared"]["n"] == 1
    assert rows["top1_novel"]["value"] == 50.0 and rows["top1_novel"]["n"] == 2
    assert rows["top1_class_mean"]["value"] == 75.0
    assert "top5" not in rows  # two target classes: top-5 is not a ranking
    assert rows["top1"]["ci_low"] < rows["top1"]["value"] < rows["top1"]["ci_high"]


def test_within_dataset_rows_rank_each_datasets_unseen_among_its_own() -> None:
    class_ids = np.array([0, 1, 2, 3])
    scores = np.array(
        [[0.0, 5.0, 1.0, 0.0], [0.0, 0.0, 2.0, 0.0], [5.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 1.0]]
    )
    labels = np.array([0, 2, 3, 1])
    rows = within_dataset_rows(scores, labels, class_ids, {"a": [0, 2], "b": [1, 3], "c": [9]})
    by_protocol = {r["protocol"]: r for r in rows if r["metric"] == "top1"}
    # "a" among {0, 2}: sample 0 wrong (0.0 < 1.0), sample 1 right; "b" among {1, 3}: the
    # out-of-dataset column 0 of sample 2 does not count, both right; "c" has one class: none
    assert by_protocol["zsl_a"]["value"] == 50.0 and by_protocol["zsl_a"]["n"] == 2
    assert by_protocol["zsl_b"]["value"] == 100.0 and by_protocol["zsl_b"]["n"] == 2
    assert set(by_protocol) == {"zsl_a", "zsl_b"}


# ---- the ingestion node: pooling real recordings, through the layout adapter ----------------


def raw_pool(ntu_root, msr_root, target: str | None = None):
    from pose_zsl.datasets import PooledSource, RawSource

    sources = (
        RawSource(str(ntu_root), "ntu", "ntu60", "ntu"),
        RawSource(str(msr_root), "msr_action3d", "msr_action3d", "msr_action3d"),
    )
    return PooledSource(sources, target)


def ingestion_params(**overrides) -> dict:
    """The ingestion parameters ``kedro run`` resolves, one worker, one body, ``overrides``."""
    from pose_zsl.environments import config_loader

    base = config_loader(None)["parameters"]["ingestion"]
    return base | {"workers": 1, "max_bodies": 1} | overrides


def test_ntu_and_msr_recordings_pool_in_the_kinect_v1_layout(
    skeleton_ntu_samples, skeleton_msr_root, tmp_path
) -> None:
    import shutil

    from pose_zsl.pipelines.ingestion.nodes import action_table, ingest_recordings
    from pose_zsl.skeleton.store import SequenceStore

    ntu = tmp_path / "ntu"  # the top-level real files only (sub-folders hold variants of them)
    ntu.mkdir()
    for path in sorted(skeleton_ntu_samples.glob("*.skeleton"))[:8]:
        shutil.copy(path, ntu)
    raw = raw_pool(ntu, skeleton_msr_root / "real_world_coordinates", target="msr_action3d")
    with pytest.raises(ValueError, match=r"different joint layouts .*ingestion.layout_adapter"):
        ingest_recordings(raw, ingestion_params(layout_adapter=None))
    samples, sequences, _ = ingest_recordings(raw, ingestion_params(layout_adapter="kinect-v1"))
    actions = action_table(raw)
    assert set(samples["layout"]) == {"kinect-v1"}
    store = SequenceStore(sequences)
    assert {store.shape(i)[2] for i in range(len(store))} == {20}
    ntu_rows = samples["source"] == "ntu60"
    assert ntu_rows.sum() > 0 and (~ntu_rows).sum() > 0
    # MSR's 20 classes follow NTU-60's 60: no MSR name equals an NTU name after normalisation
    assert len(actions) == 80 and actions["datasets"].str.contains(";").sum() == 0
    msr_names = samples.loc[~ntu_rows, "action_id"].map(dict(enumerate(actions["action_name"])))
    assert (msr_names == samples.loc[~ntu_rows, "action_name"]).all()
    assert set(samples.loc[~ntu_rows, "xdata"]) == {"test"}
    assert set(samples.loc[ntu_rows, "xdata"]) == {"train"}


def test_the_report_tables_of_a_cross_dataset_run_have_no_gzsl_rows_and_a_cross_section() -> None:
    from pose_zsl.pipelines.evaluation.nodes import gzsl_table, seen_unseen_table, zsl_table

    def row(protocol: str, metric: str, value: float, n: int) -> dict:
        return {
            "dataset": "msr_action3d+utkinect", "split": "nearest", "slot": "nearest",
            "head": "devise", "embedding": "learned", "embedder": "st", "seed": 0,
            "protocol": protocol, "metric": metric, "value": value, "n": n,
            "ci_low": value - 5.0, "ci_high": value + 5.0,
        }  # fmt: skip

    metrics = pd.DataFrame(
        [
            row("zsl", "top1", 40.0, 199),
            row("zsl", "top1_class_mean", 41.0, 199),
            row("zsl", "top_class_share", 20.0, 199),
            row("zsl", "prediction_entropy", 90.0, 199),
            row("xdata", "top1", 40.0, 199),
            row("xdata", "top1_close", 60.0, 80),
            row("xdata", "top1_novel", 26.7, 119),
        ]
    )
    text = zsl_table(metrics)
    assert "## Cross-dataset: nearest" in text
    assert "top1_close 80" in text and "top1_novel 119" in text
    assert "60.0 [55.0, 65.0]" in text
    assert "hit1" not in gzsl_table(metrics)
    assert "Calibrated" not in seen_unseen_table(metrics)
