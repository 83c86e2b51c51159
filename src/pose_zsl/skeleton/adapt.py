"""Layout adapters: a recording of one skeleton layout read by a model trained on another.

A model is trained on one joint layout (:mod:`pose_zsl.skeleton.layouts`). A recording of
another layout can be fed to it only when every joint the model expects was measured in the
recording: the adapter then *selects* those joints, in the model's order, and never invents one.

Kinect v2 (NTU RGB+D, 25 joints) -> Kinect v1 (MSR Action3D / UTKinect, 20 joints)
-------------------------------------------------------------------------------------

Both sensors track the same skeleton; v2 adds five joints. Each v1 joint is the v2 joint at the
same anatomical point (1-based indices; v1 in the order of the MSR Action3D files):

====  ===============  ====  ===============
  v1  Kinect v1 joint    v2  NTU joint
====  ===============  ====  ===============
   1  left_shoulder       5  left_shoulder
   2  right_shoulder      9  right_shoulder
   3  shoulder_center    21  spine_shoulder
   4  spine               2  spine_mid
   5  left_hip           13  left_hip
   6  right_hip          17  right_hip
   7  hip_center          1  spine_base
   8  left_elbow          6  left_elbow
   9  right_elbow        10  right_elbow
  10  left_wrist          7  left_wrist
  11  right_wrist        11  right_wrist
  12  left_hand           8  left_hand
  13  right_hand         12  right_hand
  14  left_knee          14  left_knee
  15  right_knee         18  right_knee
  16  left_ankle         15  left_ankle
  17  right_ankle        19  right_ankle
  18  left_foot          16  left_foot
  19  right_foot         20  right_foot
  20  head                4  head
====  ===============  ====  ===============

Dropped NTU joints, and why they are dropped rather than merged into a neighbour:

* ``neck`` (3): v1 has no joint between the shoulder centre and the head; its
  ``shoulder_center`` is the point between the shoulders, which is v2's ``spine_shoulder``,
  not the neck. v1's shoulder-centre-to-head bone simply spans v2's neck.
* ``left_hand_tip`` (22), ``right_hand_tip`` (24), ``left_thumb`` (23), ``right_thumb`` (25):
  v1's ``hand`` joint is v2's ``hand`` joint (the middle of the hand), so averaging tips or
  thumbs into it would move the hand away from where a v1 sensor puts it.

The other direction (Kinect v1 -> NTU) is refused: the neck, hand tips and thumbs have no v1
joint, and inventing them would feed the model made-up positions. Use a model trained on
Kinect v1 recordings instead. Every other pair of different layouts is refused as well.

Arrays are ``(T, M, V, C)`` (or ``(T, V, C)`` for one body) with zeros for untracked joints;
selecting joints keeps those zeros, so "untracked" means the same after adapting.
"""

from __future__ import annotations

from contextlib import closing, nullcontext
from os import PathLike

import numpy as np
import pandas as pd
import pyarrow as pa

from pose_zsl.skeleton.layouts import LAYOUT_NAMES, get_layout
from pose_zsl.skeleton.store import SEQUENCE_SCHEMA, SequenceSpool, SequenceStore

__all__ = [
    "NTU_TO_KINECT_V1",
    "LayoutAdaptationError",
    "adapt_array",
    "adapt_sequences",
    "adapter_pairs",
    "can_adapt",
    "joint_indices",
    "layout_of_joint_count",
]


class LayoutAdaptationError(ValueError):
    """A recording of one layout cannot be read as another; the message names both and why."""


#: Kinect v1 joint -> the NTU RGB+D (Kinect v2) joint it is read from, in Kinect v1 order (see
#: the module docstring's table).
NTU_TO_KINECT_V1: dict[str, str] = {
    "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder",
    "shoulder_center": "spine_shoulder",
    "spine": "spine_mid",
    "left_hip": "left_hip",
    "right_hip": "right_hip",
    "hip_center": "spine_base",
    "left_elbow": "left_elbow",
    "right_elbow": "right_elbow",
    "left_wrist": "left_wrist",
    "right_wrist": "right_wrist",
    "left_hand": "left_hand",
    "right_hand": "right_hand",
    "left_knee": "left_knee",
    "right_knee": "right_knee",
    "left_ankle": "left_ankle",
    "right_ankle": "right_ankle",
    "left_foot": "left_foot",
    "right_foot": "right_foot",
    "head": "head",
}

#: (source, target) -> target joint name -> source joint name.
_CORRESPONDENCES: dict[tuple[str, str], dict[str, str]] = {
    ("ntu-rgb+d", "kinect-v1"): NTU_TO_KINECT_V1,
}

#: Why a pair is refused, where more can be said than "no correspondence is defined".
_REFUSALS: dict[tuple[str, str], str] = {
    ("kinect-v1", "ntu-rgb+d"): (
        "the NTU neck, hand tips and thumbs have no Kinect v1 joint, and inventing them would "
        "feed the model made-up positions"
    ),
}


def _check_name(name: str, context: str) -> None:
    """Raise LayoutAdaptationError, starting with ``context``, unless ``name`` is a layout."""
    if name not in LAYOUT_NAMES:
        raise LayoutAdaptationError(
            f"{context}: unknown skeleton layout {name!r}; known layouts: {', '.join(LAYOUT_NAMES)}"
        )


def adapter_pairs() -> tuple[tuple[str, str], ...]:
    """The (source, target) pairs of different layouts that have an adapter."""
    return tuple(_CORRESPONDENCES)


def can_adapt(source: str, target: str) -> bool:
    """Whether a ``source`` recording can be read as ``target`` (always so when they are equal).

    Raises:
        LayoutAdaptationError: either name is not a known layout.
    """
    for name in (source, target):
        _check_name(name, f"cannot adapt layout {source!r} to {target!r}")
    return source == target or (source, target) in _CORRESPONDENCES


def _refusal(source: str, target: str) -> str:
    """The one-line reason why ``source`` cannot be read as ``target``."""
    reason = _REFUSALS.get((source, target))
    if reason is None:
        dims = (get_layout(source).coordinate_dims, get_layout(target).coordinate_dims)
        if dims[0] != dims[1]:
            reason = f"one has {dims[0]}D coordinates and the other {dims[1]}D"
        else:
            reason = "no joint correspondence between them is defined"
    return (
        f"cannot adapt a {source!r} recording to layout {target!r}: {reason}; use a model "
        f"trained on {source} recordings"
    )


def joint_indices(source: str, target: str) -> np.ndarray:
    """0-based ``source`` joint index of every ``target`` joint, in ``target`` order.

    Raises:
        LayoutAdaptationError: a name is unknown or the pair has no adapter (naming both
            layouts and why).
    """
    if not can_adapt(source, target):
        raise LayoutAdaptationError(_refusal(source, target))
    target_names = get_layout(target).joint_names
    if source == target:
        return np.arange(len(target_names))
    correspondence = _CORRESPONDENCES[(source, target)]
    source_index = get_layout(source).joint_names.index
    return np.array([source_index(correspondence[name]) for name in target_names])


def adapt_array(data: np.ndarray, source: str, target: str) -> np.ndarray:
    """``data`` of layout ``source`` as layout ``target``.

    ``data`` is ``(T, M, V, C)`` or ``(T, V, C)``; the joint axis is the second to last. The same
    layout returns ``data`` itself; an adapter returns a new array of the same dtype with the
    target's joints.

    Raises:
        LayoutAdaptationError: unknown layout names, a pair without an adapter (e.g. kinect-v1
            to ntu-rgb+d), or an array whose shape does not fit ``source``.
    """
    indices = joint_indices(source, target)
    array = np.asarray(data)
    expected = get_layout(source).num_joints
    if array.ndim not in (3, 4) or array.shape[-2] != expected:
        raise LayoutAdaptationError(
            f"cannot adapt layout {source!r} to {target!r}: expected a (T, M, {expected}, C) "
            f"or (T, {expected}, C) array, got shape {array.shape}"
        )
    if source == target:
        return data
    return np.ascontiguousarray(array[..., indices, :])


def layout_of_joint_count(num_joints: int) -> str | None:
    """The one layout with ``num_joints`` joints, or None when none or several have it."""
    matches = [name for name in LAYOUT_NAMES if get_layout(name).num_joints == num_joints]
    return matches[0] if len(matches) == 1 else None


def _sample_layouts(samples: pd.DataFrame, ids: list[str]) -> list[str]:
    """The ``layout`` of every sequence id, in sequence order."""
    missing_columns = {"sample_id", "layout"} - set(samples.columns)
    if missing_columns:
        raise ValueError(f"samples table lacks columns {sorted(missing_columns)}")
    layouts = dict(zip(samples["sample_id"].astype(str), samples["layout"], strict=True))
    missing = [sample_id for sample_id in ids if sample_id not in layouts]
    if missing:
        raise ValueError(
            f"{len(missing)} sequence(s) have no row in the samples table, e.g. {missing[0]!r}"
        )
    for sample_id in ids:
        if pd.isna(layouts[sample_id]):
            raise ValueError(f"sample {sample_id!r}: the samples table gives no layout")
    return [str(layouts[sample_id]) for sample_id in ids]


def adapt_sequences(
    samples: pd.DataFrame,
    sequences: pa.Table,
    target: str,
    spool: str | PathLike[str] | bool | None = None,
) -> tuple[pd.DataFrame, pa.Table]:
    """The ingestion tables (see :mod:`pose_zsl.skeleton.store`) with every sequence in layout
    ``target``.

    Sequences already in ``target`` are copied unchanged; the samples' ``layout`` column becomes
    ``target``. Sequences stay in their order and unpadded: each chunk of ``sequences`` is
    filled into one buffer of its own, so the dataset is never padded or stacked, and with
    ``spool`` (a folder, or ``True`` for the system's temporary one) the adapted chunks are
    streamed to a :class:`~pose_zsl.skeleton.store.SequenceSpool` there and returned
    memory-mapped, so not even the adapted dataset is held in memory.

    Raises:
        LayoutAdaptationError: a sample's layout cannot be adapted to ``target`` (naming the
            sample), or its stored shape does not fit its layout.
        ValueError: a sequence without a samples row or layout.
    """
    _check_name(target, "cannot adapt the sequences")
    store = SequenceStore(sequences)
    layouts = _sample_layouts(samples, store.ids)
    plans = []
    for i, (sample_id, source) in enumerate(zip(store.ids, layouts, strict=True)):
        try:
            indices = joint_indices(source, target)
        except LayoutAdaptationError as error:
            raise LayoutAdaptationError(f"sample {sample_id!r}: {error}") from None
        shape = store.shape(i)
        if shape[2] != get_layout(source).num_joints:
            raise LayoutAdaptationError(
                f"sample {sample_id!r}: stored shape {list(shape)} has {shape[2]} joints but "
                f"its layout {source!r} has {get_layout(source).num_joints}"
            )
        plans.append((indices, (shape[0], shape[1], len(indices), shape[3])))
    sink = SequenceSpool(None if spool is True else spool) if spool else None
    with closing(sink) if sink is not None else nullcontext():
        tables = []
        start = 0
        for chunk in sequences.column("data").chunks:
            part = _adapted_rows(store, plans, range(start, start + len(chunk)))
            start += len(chunk)
            if sink is not None:
                sink.write(part)
            else:
                tables.append(part)
        if sink is not None:
            table = sink.finish()
        else:
            table = pa.concat_tables(tables) if tables else SEQUENCE_SCHEMA.empty_table()
    adapted = samples.copy()
    adapted["layout"] = pd.Series(target, index=adapted.index, dtype="string")
    return adapted, table


def _adapted_rows(
    store: SequenceStore,
    plans: list[tuple[np.ndarray, tuple[int, int, int, int]]],
    rows: range,
) -> pa.Table:
    """The sequences of store positions ``rows`` through their plans (joint indices, shape)."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([int(np.prod(plans[i][1])) for i in rows], out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=np.float32)
    for k, i in enumerate(rows):
        flat[offsets[k] : offsets[k + 1]] = store[i][:, :, plans[i][0], :].ravel()
    data = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat))
    shapes = pa.array([list(plans[i][1]) for i in rows], pa.list_(pa.int32(), 4))
    ids = pa.array([store.ids[i] for i in rows], pa.string())
    return pa.Table.from_arrays([ids, data, shapes], schema=SEQUENCE_SCHEMA)
