"""Skeleton graph adjacency and ST-GCN partition strategies.

``build_adjacency(layout, partition, max_hop, dilation, reference_exact)`` returns the stacked,
column-normalised partition matrices ``A`` of shape (K, V, V), indexed ``A[k, source, dest]``,
exactly as the original ST-GCN (``net/utils/graph.py``) builds them:

* the neighbourhood of a joint is every joint within ``max_hop`` hops, sampled every ``dilation``
  hops (hop 0, the joint itself, always included);
* the binary neighbourhood matrix is normalised by column, ``A[j, i] = 1 / deg(i)`` with deg
  counting the joint itself, so each destination joint averages its closed neighbourhood and
  ``A.sum(0)`` is 1 in every column;
* ``uniform``: K = 1, the whole normalised matrix;
  ``distance``: one subset per hop distance;
  ``spatial``: the root (hop 0) and, for each hop > 0, the neighbours at the same or a larger
  distance from the layout's centre joint ("root + close") and those strictly closer ("further").

Partition default (README): training uses the reference-exact partition
-----------------------------------------------------------------------
The original code measures "distance to the centre" with the *same* hop matrix it truncates at
``max_hop`` (1), so every joint two or more bones away from the centre is at distance infinity, and
``inf == inf``. For NTU (centre: spine shoulder) the "strictly closer" subset therefore keeps only 8
of the 24 bone directions; the other 16 fall into "same or further" (issues #245 and #367 of
open-mmlab/mmskeleton). ``reference_exact=True`` reproduces this quirk bit for bit (it equals the
fixture ``graph_A.pt``); ``reference_exact=False`` uses true breadth-first distances to the centre,
which is the centripetal/centrifugal split the ST-GCN paper describes (24/24 for NTU).

``STGCN`` and the training default use ``reference_exact=True``: the paper we reproduce trained
"with similar settings as that of the original model released by the authors", i.e. with this
graph; it is the only partition under which the original implementation's checkpoints load and
match (parity fixtures); and the two partitions have the same number of parameters and cost, so
the choice changes no budget. The BFS partition is one configuration switch away
(``reference_exact_graph: false``) for anyone who wants the partition as described in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pose_zsl.skeleton.layouts import Layout, get_layout

__all__ = [
    "PARTITIONS",
    "binary_adjacency",
    "build_adjacency",
    "hop_distance",
    "normalize_columns",
]

PARTITIONS: tuple[str, ...] = ("uniform", "distance", "spatial")


def binary_adjacency(num_joints: int, bones: Sequence[tuple[int, int]]) -> np.ndarray:
    """Symmetric 0/1 matrix of the bones, without self-links."""
    adjacency = np.zeros((num_joints, num_joints), dtype=np.float64)
    for a, b in bones:
        adjacency[a, b] = 1.0
        adjacency[b, a] = 1.0
    return adjacency


def hop_distance(
    num_joints: int, bones: Sequence[tuple[int, int]], max_hop: int | None = None
) -> np.ndarray:
    """Shortest-path hop counts between joints (float64, ``inf`` where not reached).

    With ``max_hop`` set, distances above it are ``inf``, which is what the original ST-GCN stores
    (it marks pairs reachable by a walk of exactly d steps, keeping the smallest d <= max_hop).
    ``max_hop=None`` runs the breadth-first search to the end.
    """
    if max_hop is not None and max_hop < 0:
        raise ValueError(f"max_hop must be >= 0, got {max_hop}")
    adjacency = binary_adjacency(num_joints, bones) > 0
    distance = np.full((num_joints, num_joints), np.inf)
    reached = np.eye(num_joints, dtype=bool)
    distance[reached] = 0
    frontier = reached.copy()
    hop = 0
    while frontier.any() and (max_hop is None or hop < max_hop):
        hop += 1
        # Boolean matrix product: joints one bone away from the current frontier.
        frontier = (frontier.astype(np.int64) @ adjacency.astype(np.int64) > 0) & ~reached
        distance[frontier] = hop
        reached |= frontier
    return distance


def normalize_columns(adjacency: np.ndarray) -> np.ndarray:
    """Divide each column by its sum (columns summing to 0 stay 0), as ``normalize_digraph``."""
    column_sums = adjacency.sum(axis=0)
    scale = np.zeros_like(column_sums)
    np.divide(1.0, column_sums, out=scale, where=column_sums > 0)
    return adjacency * scale[None, :]


def build_adjacency(
    layout: Layout | str,
    partition: str = "spatial",
    max_hop: int = 1,
    dilation: int = 1,
    reference_exact: bool = True,
) -> np.ndarray:
    """Stacked normalised partition matrices ``A[k, source, dest]`` as float32 (K, V, V).

    Args:
        layout: a ``Layout`` or its registered name.
        partition: ``"uniform"``, ``"distance"`` or ``"spatial"``.
        max_hop: neighbourhood radius in bones.
        dilation: keep hop distances 0, dilation, 2*dilation, ... up to ``max_hop``.
        reference_exact: for ``"spatial"``, measure distances to the centre with the hop matrix
            truncated at ``max_hop`` like the original ST-GCN (True), or with true BFS distances
            (False). See the module docstring. Ignored by the other partitions.
    """
    if isinstance(layout, str):
        layout = get_layout(layout)
    if partition not in PARTITIONS:
        raise ValueError(
            f"unknown partition {partition!r}; known partitions: {', '.join(PARTITIONS)}"
        )
    if max_hop < 1:
        raise ValueError(f"max_hop must be >= 1, got {max_hop}")
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")

    hops = hop_distance(layout.num_joints, layout.bones, max_hop=max_hop)
    valid_hops = range(0, max_hop + 1, dilation)
    neighbourhood = np.isin(hops, list(valid_hops)).astype(np.float64)
    normalised = normalize_columns(neighbourhood)

    if partition == "uniform":
        subsets = [normalised]
    elif partition == "distance":
        subsets = [np.where(hops == hop, normalised, 0.0) for hop in valid_hops]
    else:
        center_hops = (
            hops if reference_exact else hop_distance(layout.num_joints, layout.bones, None)
        )
        to_center = center_hops[:, layout.center]
        source_distance = to_center[:, None]  # rows are sources j
        dest_distance = to_center[None, :]  # columns are destinations i
        subsets = []
        for hop in valid_hops:
            at_hop = hops == hop
            same = at_hop & (source_distance == dest_distance)
            farther = at_hop & (source_distance > dest_distance)
            closer = at_hop & (source_distance < dest_distance)
            if hop == 0:
                subsets.append(np.where(same, normalised, 0.0))
            else:
                subsets.append(np.where(same | farther, normalised, 0.0))
                subsets.append(np.where(closer, normalised, 0.0))
    return np.stack(subsets).astype(np.float32)
