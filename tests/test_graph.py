"""Skeleton layouts and ST-GCN adjacency partitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_shared

from pose_zsl.models.graph import (
    PARTITIONS,
    binary_adjacency,
    build_adjacency,
    hop_distance,
    normalize_columns,
)
from pose_zsl.skeleton.layouts import LAYOUT_NAMES, Layout, get_layout

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "stgcn"

# name: (joints, bones, centre joint name)
EXPECTED_LAYOUTS = {
    "ntu-rgb+d": (25, 24, "spine_shoulder"),
    "kinect-v1": (20, 19, "shoulder_center"),
    "openpose-18": (18, 17, "neck"),
    "coco-17": (17, 16, "nose"),
}


def _floyd_warshall(num_joints: int, bones: tuple[tuple[int, int], ...]) -> np.ndarray:
    distance = np.full((num_joints, num_joints), np.inf)
    np.fill_diagonal(distance, 0)
    for a, b in bones:
        distance[a, b] = distance[b, a] = 1
    for k in range(num_joints):
        distance = np.minimum(distance, distance[:, [k]] + distance[[k], :])
    return distance


def test_known_layout_names() -> None:
    assert set(LAYOUT_NAMES) == set(EXPECTED_LAYOUTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYOUTS))
def test_layout_structure(name: str) -> None:
    layout = get_layout(name)
    joints, bones, centre = EXPECTED_LAYOUTS[name]
    assert layout.name == name
    assert layout.num_joints == joints == len(layout.joint_names)
    assert len(set(layout.joint_names)) == joints
    assert len(layout.bones) == bones
    assert layout.joint_names[layout.center] == centre
    # Every layout is a tree spanning all joints: V - 1 bones and everything reachable.
    assert bones == joints - 1
    assert np.isfinite(hop_distance(joints, layout.bones)).all()


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYOUTS))
def test_binary_adjacency_is_symmetric_without_self_links(name: str) -> None:
    layout = get_layout(name)
    adjacency = binary_adjacency(layout.num_joints, layout.bones)
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert np.trace(adjacency) == 0
    assert adjacency.sum() == 2 * len(layout.bones)


def test_ntu_layout_matches_reference_bones() -> None:
    layout = get_layout("ntu-rgb+d")
    assert layout.center == 20
    one_based = {frozenset((a + 1, b + 1)) for a, b in layout.bones}
    # The reference's hand chains: tip - thumb - hand.
    assert {frozenset((22, 23)), frozenset((23, 8)), frozenset((24, 25)), frozenset((25, 12))} <= (
        one_based
    )
    assert frozenset((22, 8)) not in one_based


def test_kinect_v1_layout_matches_msr_body_model() -> None:
    layout = get_layout("kinect-v1")
    one_based = {frozenset((a + 1, b + 1)) for a, b in layout.bones}
    assert frozenset((7, 4)) in one_based and frozenset((3, 20)) in one_based
    assert layout.joint_names[19] == "head" and layout.joint_names[6] == "hip_center"


def test_unknown_layout_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown skeleton layout 'nope'") as info:
        get_layout("nope")
    for name in LAYOUT_NAMES:
        assert name in str(info.value)


def test_layout_rejects_bad_bones() -> None:
    with pytest.raises(ValueError, match="invalid bone"):
        Layout("bad", 2, ("a", "b"), ((0, 2),), 0, 3)
    with pytest.raises(ValueError, match="duplicate bones"):
        Layout("bad", 2, ("a", "b"), ((0, 1), (1, 0)), 0, 3)


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYOUTS))
def test_hop_distance_matches_floyd_warshall(name: str) -> None:
    layout = get_layout(name)
    exact = _floyd_warshall(layout.num_joints, layout.bones)
    np.testing.assert_array_equal(hop_distance(layout.num_joints, layout.bones), exact)
    truncated = hop_distance(layout.num_joints, layout.bones, max_hop=1)
    np.testing.assert_array_equal(truncated, np.where(exact <= 1, exact, np.inf))


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYOUTS))
@pytest.mark.parametrize("partition", PARTITIONS)
@pytest.mark.parametrize("reference_exact", [True, False])
def test_partitions_normalised_and_complete(
    name: str, partition: str, reference_exact: bool
) -> None:
    layout = get_layout(name)
    adjacency = build_adjacency(layout, partition, reference_exact=reference_exact)
    expected_subsets = {"uniform": 1, "distance": 2, "spatial": 3}[partition]
    assert adjacency.shape == (expected_subsets, layout.num_joints, layout.num_joints)
    assert adjacency.dtype == np.float32
    # Every destination joint averages its closed neighbourhood.
    np.testing.assert_allclose(adjacency.sum(axis=(0, 1)), 1.0, rtol=0, atol=1e-6)
    # The subsets split the neighbourhood: disjoint supports, nothing lost.
    support = adjacency > 0
    assert support.sum(axis=0).max() == 1
    closed = binary_adjacency(layout.num_joints, layout.bones) + np.eye(layout.num_joints)
    np.testing.assert_array_equal(support.any(axis=0), closed > 0)
    assert support.sum() == layout.num_joints + 2 * len(layout.bones)


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYOUTS))
def test_bfs_spatial_partition_splits_bones_evenly(name: str) -> None:
    layout = get_layout(name)
    adjacency = build_adjacency(layout, "spatial", reference_exact=False)
    counts = [int((subset > 0).sum()) for subset in adjacency]
    # On a tree, each bone is one step towards the centre in one direction and away in the other.
    assert counts == [layout.num_joints, len(layout.bones), len(layout.bones)]
    np.testing.assert_array_equal(np.diag(adjacency[0]) > 0, True)


def test_ntu_spatial_partition_counts() -> None:
    truncated = build_adjacency("ntu-rgb+d", "spatial", reference_exact=True)
    assert [int((subset > 0).sum()) for subset in truncated] == [25, 40, 8]
    closer = {(j + 1, i + 1) for j, i in zip(*np.nonzero(truncated[2]), strict=True)}
    assert closer == {(2, 1), (3, 4), (5, 6), (9, 10), (21, 2), (21, 3), (21, 5), (21, 9)}
    bfs = build_adjacency("ntu-rgb+d", "spatial", reference_exact=False)
    assert [int((subset > 0).sum()) for subset in bfs] == [25, 24, 24]
    # Both modes share the root subset and the overall neighbourhood.
    np.testing.assert_array_equal(truncated[0], bfs[0])
    np.testing.assert_array_equal(truncated.sum(0), bfs.sum(0))


def test_ntu_degrees_give_reference_weights() -> None:
    uniform = build_adjacency("ntu-rgb+d", "uniform")[0]
    assert uniform[20, 20] == np.float32(0.2)  # spine shoulder: itself + 4 bones
    assert uniform[0, 0] == np.float32(0.25)
    for leaf in (3, 15, 19, 21, 23):
        assert uniform[leaf, leaf] == np.float32(0.5)


def test_spatial_partition_equals_reference_fixture() -> None:
    path = FIXTURES / "graph_A.pt"
    require_shared(path, "the reference ST-GCN graph")
    reference = torch.load(path, weights_only=True).numpy()
    np.testing.assert_array_equal(build_adjacency("ntu-rgb+d", "spatial"), reference)
    assert not np.array_equal(
        build_adjacency("ntu-rgb+d", "spatial", reference_exact=False), reference
    )


def test_distance_partition_by_hop() -> None:
    adjacency = build_adjacency("kinect-v1", "distance", max_hop=2)
    hops = hop_distance(20, get_layout("kinect-v1").bones)
    assert adjacency.shape == (3, 20, 20)
    for hop in range(3):
        np.testing.assert_array_equal(adjacency[hop] > 0, hops == hop)


def test_dilation_skips_hops() -> None:
    adjacency = build_adjacency("coco-17", "distance", max_hop=2, dilation=2)
    hops = hop_distance(17, get_layout("coco-17").bones)
    assert adjacency.shape == (2, 17, 17)
    np.testing.assert_array_equal(adjacency.sum(0) > 0, (hops == 0) | (hops == 2))
    np.testing.assert_allclose(adjacency.sum(axis=(0, 1)), 1.0, atol=1e-6)


def test_normalize_columns_leaves_empty_columns_zero() -> None:
    matrix = np.array([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_array_equal(normalize_columns(matrix), [[0.25, 0.0], [0.75, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"partition": "star"}, "unknown partition 'star'"),
        ({"max_hop": 0}, "max_hop must be >= 1"),
        ({"dilation": 0}, "dilation must be >= 1"),
    ],
)
def test_build_adjacency_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_adjacency("ntu-rgb+d", **kwargs)
