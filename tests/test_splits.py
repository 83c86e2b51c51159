"""Seen / unseen splits: selection rules on hand-made embeddings, benchmark splits, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pose_zsl.skeleton.store import samples_frame
from pose_zsl.zsl.splits import (
    BENCHMARK_SPLITS,
    SPLIT_COLUMNS,
    check_training_samples,
    distance_matrix,
    make_splits,
    resolve_unseen,
    select_furthest,
    select_nearest,
    select_pseudo_unseen,
    select_random,
    split_report,
    unseen_ids,
)

# Classes on a line (positions), with the nearest-neighbour structure worked out by hand:
#   0 <-> 1 at 0.1, 3 <-> 4 at 0.15, 5 <-> 6 at 0.2, 2 -> 1 at 0.25, 7 -> 6 at 19.8, 8 -> 7 at 30.
POSITIONS = np.array([0.0, 0.1, 0.35, 10.0, 10.15, 20.0, 20.2, 40.0, 70.0])


def line_vectors(distance: str) -> np.ndarray:
    """Vectors whose pairwise distances are ordered like the positions' differences: points on
    a line for Euclidean, angles of (position) degrees on the unit circle for cosine."""
    if distance == "euclidean":
        return np.stack([POSITIONS, np.zeros_like(POSITIONS)], axis=1)
    angles = np.deg2rad(POSITIONS)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def table_from(vectors: np.ndarray, names: list[str] | None = None) -> pd.DataFrame:
    names = names or [f"class {i}" for i in range(len(vectors))]
    return pd.DataFrame(
        {
            "action_id": np.arange(len(vectors)),
            "action_name": names,
            "vector": [np.asarray(v, dtype=np.float32) for v in vectors],
        }
    )


def random_table(num_classes: int, seed: int = 0) -> pd.DataFrame:
    vectors = np.random.default_rng(seed).standard_normal((num_classes, 8))
    return table_from(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


# -- distances ------------------------------------------------------------------------------------
def test_distance_matrix():
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    cosine = distance_matrix(vectors, "cosine")
    np.testing.assert_allclose(cosine, [[0, 1, 2], [1, 0, 1], [2, 1, 0]], atol=1e-12)
    euclidean = distance_matrix(vectors, "euclidean")
    np.testing.assert_allclose(euclidean[0], [0, np.sqrt(5), 4], atol=1e-12)
    assert np.array_equal(euclidean, euclidean.T)
    with pytest.raises(ValueError, match="'distance'"):
        distance_matrix(vectors, "manhattan")


# -- nearest / furthest / random on the hand-made table -------------------------------------------
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_nearest_takes_one_of_each_close_pair(distance):
    # 0 (0.1) taken, 1 skipped (its neighbour 0 is unseen), 3 taken, 4 skipped, 5 taken
    vectors = line_vectors(distance)
    assert select_nearest(vectors, 3, distance, min_separation_quantile=0.0) == [0, 3, 5]


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_nearest_keeps_unseen_classes_apart(distance):
    vectors = line_vectors(distance)
    # without separation, 2 (nearest neighbour 1, which stays seen) comes 4th
    assert select_nearest(vectors, 4, distance, min_separation_quantile=0.0) == [0, 2, 3, 5]
    # 2 is 0.35 from unseen 0, closer than a quarter of all class pairs: 7 comes instead
    assert select_nearest(vectors, 4, distance, min_separation_quantile=0.25) == [0, 3, 5, 7]


def test_nearest_skips_a_class_whose_nearest_neighbour_is_unseen():
    # 2's nearest neighbour is 0 (0.35), but 0's is 1: only rule (a) stops 2 from following 0
    positions = np.array([0.0, -0.2, 0.35, 10.0, 10.5])
    vectors = np.stack([positions, np.zeros(5)], axis=1)
    assert select_nearest(vectors, 2, "euclidean", min_separation_quantile=0.0) == [0, 3]


def test_nearest_fails_clearly_when_rule_cannot_be_met():
    with pytest.raises(ValueError, match="only 5 classes satisfy") as caught:
        select_nearest(line_vectors("euclidean"), 6, "euclidean", min_separation_quantile=0.0)
    assert "min_separation_quantile" in str(caught.value)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_furthest_ranks_by_distance_to_the_nearest_other_class(distance):
    vectors = line_vectors(distance)
    assert select_furthest(vectors, 2, distance) == [7, 8]
    # 2's nearest other class (0.25 away) is further than 5's and 6's (0.2)
    assert select_furthest(vectors, 3, distance) == [2, 7, 8]


def test_furthest_is_not_the_mean_rule():
    # class 3 is far from the cluster on average, but has a twin (4) right next to it
    positions = np.array([0.0, 1.0, 2.0, 50.0, 50.5, 10.0])
    vectors = np.stack([positions, np.zeros(6)], axis=1)
    assert select_furthest(vectors, 1, "euclidean") == [5]


def test_ties_break_by_smaller_id():
    vectors = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [6.0, 0.0]])
    assert select_nearest(vectors, 1, "euclidean") == [0]
    assert select_furthest(vectors, 1, "euclidean") == [0]


def test_random_is_seeded():
    ids = list(range(60))
    first = select_random(ids, 5, seed=7)
    assert first == select_random(ids, 5, seed=7)
    assert first == sorted(first) and len(set(first)) == 5 and set(first) <= set(ids)
    assert any(select_random(ids, 5, seed=s) != first for s in range(8, 12))


# -- the splits table -----------------------------------------------------------------------------
def test_make_splits_table():
    table = table_from(line_vectors("cosine"))
    splits = make_splits(table, ["nearest", "furthest", "random"], num_unseen=2, seed=1)
    assert tuple(splits.columns) == SPLIT_COLUMNS
    assert len(splits) == 3 * 9
    assert unseen_ids(splits, "nearest") == [0, 3]
    assert unseen_ids(splits, "furthest") == [7, 8]
    for split, rows in splits.groupby("split"):
        assert rows["action_id"].tolist() == list(range(9))
        assert (rows["role"] == "unseen").sum() == 2
        pseudo = rows[rows["pseudo_unseen"]]
        assert len(pseudo) == 2, split  # default: as many as unseen
        assert set(pseudo["role"]) == {"seen"}


def test_pseudo_unseen_count_and_seed():
    table = random_table(20)
    splits = make_splits(table, ["random"], num_unseen=5, num_pseudo_unseen=3, pseudo_unseen_seed=4)
    again = make_splits(table, ["random"], num_unseen=5, num_pseudo_unseen=3, pseudo_unseen_seed=4)
    pd.testing.assert_frame_equal(splits, again)
    assert splits["pseudo_unseen"].sum() == 3
    assert not (splits["pseudo_unseen"] & (splits["role"] == "unseen")).any()
    with pytest.raises(ValueError, match="'num_pseudo_unseen'"):
        make_splits(table, ["random"], num_unseen=5, num_pseudo_unseen=14)
    assert select_pseudo_unseen([1, 2, 3], 0) == []


def test_custom_split():
    table = random_table(10)
    splits = make_splits(table, ["mine"], custom_splits={"mine": [9, 2]})
    assert unseen_ids(splits, "mine") == [2, 9]
    with pytest.raises(ValueError, match=r"unseen action ids \[10, 12\] are outside"):
        make_splits(table, ["mine"], custom_splits={"mine": [2, 10, 12]})


# -- benchmark splits -----------------------------------------------------------------------------
EXPECTED_BENCHMARKS = {
    "ntu60_55_5": [10, 11, 19, 26, 56],
    "ntu60_48_12": [3, 5, 9, 12, 15, 40, 42, 47, 51, 56, 58, 59],
    "ntu120_110_10": [4, 13, 37, 43, 49, 65, 88, 95, 99, 106],
    "ntu120_96_24": [5, 9, 11, 16, 18, 20, 22, 29, 35, 39, 45, 49, 59, 68, 70, 81, 84, 87,
                     93, 94, 104, 113, 114, 119],
    "smie_ntu60_r1": [4, 19, 31, 47, 51],
    "smie_ntu60_r2": [12, 29, 32, 44, 59],
    "smie_ntu60_r3": [7, 20, 28, 39, 58],
}


def test_benchmark_split_ids_and_sizes():
    assert set(BENCHMARK_SPLITS) == set(EXPECTED_BENCHMARKS)
    ntu60, ntu120 = random_table(60), random_table(120)
    for name, expected in EXPECTED_BENCHMARKS.items():
        num_classes = BENCHMARK_SPLITS[name][0]
        table = ntu60 if num_classes == 60 else ntu120
        splits = make_splits(table, [name])
        assert unseen_ids(splits, name) == expected
        roles = splits["role"].value_counts()
        assert roles["unseen"] == len(expected)
        assert roles["seen"] == num_classes - len(expected)
    sizes = {name: len(ids) for name, (_, ids) in BENCHMARK_SPLITS.items()}
    assert sizes == {"ntu60_55_5": 5, "ntu60_48_12": 12, "ntu120_110_10": 10,
                     "ntu120_96_24": 24, "smie_ntu60_r1": 5, "smie_ntu60_r2": 5,
                     "smie_ntu60_r3": 5}


def test_benchmark_split_needs_its_dataset():
    with pytest.raises(ValueError, match="defined for 120 classes"):
        resolve_unseen("ntu120_110_10", random_table(60))


def test_msr_random_splits():
    table = random_table(20)
    names = [f"msr_random_{k}" for k in range(5)]
    splits = make_splits(table, names, seed=0)
    unseen = {name: unseen_ids(splits, name) for name in names}
    assert all(len(ids) == 5 for ids in unseen.values())
    assert len({tuple(ids) for ids in unseen.values()}) > 1
    assert unseen == {name: unseen_ids(make_splits(table, names, seed=0), name) for name in names}
    with pytest.raises(ValueError, match="MSR Action3D"):
        resolve_unseen("msr_random_0", random_table(60))


# -- errors ---------------------------------------------------------------------------------------
def test_unknown_split_lists_known_names():
    with pytest.raises(ValueError, match="unknown split name 'closest'") as caught:
        make_splits(random_table(10), ["closest"])
    for known in ("nearest", "furthest", "random", "ntu60_55_5", "msr_random_<k>"):
        assert known in str(caught.value)


@pytest.mark.parametrize("num_unseen", [10, 11, 0, -1])
def test_num_unseen_out_of_range(num_unseen):
    for split in ("nearest", "furthest", "random"):
        with pytest.raises(ValueError, match="'num_unseen'"):
            make_splits(random_table(10), [split], num_unseen=num_unseen)


def test_bad_split_list():
    with pytest.raises(ValueError, match="'split_names'"):
        make_splits(random_table(10), "nearest")
    with pytest.raises(ValueError, match="duplicates"):
        make_splits(random_table(10), ["random", "random"])


def samples_for(action_ids: list[int], xsub: list[str]) -> pd.DataFrame:
    return samples_frame(
        [
            {"sample_id": f"s{i}", "action_id": a, "action_name": f"class {a}", "xsub": x}
            for i, (a, x) in enumerate(zip(action_ids, xsub, strict=True))
        ]
    )


def test_check_training_samples():
    splits = make_splits(random_table(4), ["mine"], custom_splits={"mine": [3]},
                         num_pseudo_unseen=0)
    # class 3 is unseen, so only test samples for it are fine
    check_training_samples(
        splits, samples_for([0, 1, 2, 3], ["train", "train", "train", "test"]), "xsub"
    )
    with pytest.raises(ValueError, match=r"split 'mine'.*'xsub': 1 \(class 1\)"):
        check_training_samples(
            splits, samples_for([0, 1, 2, 3], ["train", "test", "train", "test"]), "xsub"
        )
    with pytest.raises(ValueError, match="'protocol_column'"):
        check_training_samples(splits, samples_for([0], ["train"]), "cross_subject")


# -- report ---------------------------------------------------------------------------------------
def test_split_report_names_nearest_seen_class():
    names = ["walk", "run", "sit", "stand", "jump", "wave", "kick", "punch", "clap"]
    table = table_from(line_vectors("euclidean"), names)
    splits = make_splits(table, ["nearest"], num_unseen=2, distance="euclidean")
    report = split_report(splits, table, distance="euclidean")["nearest"]
    assert "7 seen / 2 unseen" in report
    assert "| 0 | walk | run (1) | 0.100 |" in report
    assert "| 3 | stand | jump (4) | 0.150 |" in report
    assert "Pseudo-unseen" in report
