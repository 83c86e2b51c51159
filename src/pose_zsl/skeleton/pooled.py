"""Several skeleton datasets as one: one class table, performers kept apart, and the
cross-dataset protocol.

Pooling rules (the same for pooled training and for cross-dataset evaluation):

* **Classes.** The datasets are taken in the order given. Each class of a later dataset whose
  name equals a class name of an earlier one after :func:`~pose_zsl.text.label_text.
  normalise_label` (lower case, notes in parentheses and punctuation dropped) *is* that class:
  it gets the earlier class's id and its samples count as that class. Every other class gets
  the next free 0-based id. Nothing looser counts as the same class ("hand clap" and "clap
  hands" stay two classes); the merged pairs are logged and listed in the ingestion report.
* **Performers.** Dataset ``i`` (0-based, in pool order) adds ``i * PERFORMER_STRIDE`` to its
  performer numbers, so subject 1 of two datasets are two people (validation holds out whole
  performers).
* **Cross-dataset protocol** (column ``xdata``): with a ``target`` dataset, its samples are
  ``test`` and every other sample is ``train``: the target dataset reaches no training or
  model-selection step (the trainer's leakage guard admits ``train`` rows only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from pose_zsl.text.label_text import normalise_label

logger = logging.getLogger(__name__)

PERFORMER_STRIDE = 1000
CROSS_PROTOCOL = "xdata"

#: Columns of the pooled class table (the ``actions`` table of a pooled environment).
ACTION_COLUMNS = ("action_id", "action_name", "dataset", "dataset_action_id", "datasets")


@dataclass(frozen=True)
class DatasetPart:
    """One dataset of a pool: its name, its classes in 0-based order and what ingestion read."""

    dataset: str
    action_names: Sequence[str]
    samples: pd.DataFrame
    sequences: pa.Table
    skipped: pd.DataFrame


def pool_actions(datasets: Sequence[tuple[str, Sequence[str]]]) -> pd.DataFrame:
    """The pooled class table from ``(dataset, class names in 0-based order)`` pairs.

    Columns :data:`ACTION_COLUMNS`: the pooled id, the class's name and owning dataset (the
    first that has it) with its id there, and ``datasets``, the ";"-joined datasets that have
    the class (more than one for a merged class).

    Raises:
        ValueError: fewer than two datasets, a dataset named twice, or two classes of one
            dataset with the same normalised name.
    """
    names = [dataset for dataset, _ in datasets]
    if len(names) < 2:
        raise ValueError(f"pooling needs at least two datasets, got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"dataset named twice in the pool: {names}")
    rows: list[dict] = []
    by_key: dict[str, dict] = {}
    for dataset, classes in datasets:
        keys = [normalise_label(name) for name in classes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"dataset {dataset!r} has two classes with the same name: {classes}")
        for position, (name, key) in enumerate(zip(classes, keys, strict=True)):
            if key in by_key:
                row = by_key[key]
                row["datasets"] += f";{dataset}"
                logger.info(
                    "class %r of %s is class %d %r of %s (same name after normalisation)",
                    name, dataset, row["action_id"], row["action_name"], row["dataset"],
                )  # fmt: skip
                continue
            row = {
                "action_id": len(rows),
                "action_name": str(name),
                "dataset": dataset,
                "dataset_action_id": position,
                "datasets": dataset,
            }
            rows.append(row)
            by_key[key] = row
    return pd.DataFrame(rows, columns=list(ACTION_COLUMNS)).astype(
        {"action_name": "string", "dataset": "string", "datasets": "string"}
    )


def merged_classes(actions: pd.DataFrame) -> pd.DataFrame:
    """The classes that more than one pooled dataset has (empty when none)."""
    return actions[actions["datasets"].str.contains(";", regex=False)]


def merged_summary(actions: pd.DataFrame) -> str:
    """``"name (dataset;dataset), ..."`` of the merged classes, or ``"none"``."""
    merged = merged_classes(actions)
    pairs = zip(merged["action_name"], merged["datasets"], strict=True)
    return ", ".join(f"{name} ({datasets})" for name, datasets in pairs) or "none"


def pooled_id_map(actions: pd.DataFrame, dataset: str, classes: Sequence[str]) -> dict[int, int]:
    """0-based class id in ``dataset`` -> pooled id, by the pooling name rule."""
    pooled = {
        normalise_label(n): int(i)
        for i, n in zip(actions["action_id"], actions["action_name"], strict=True)
    }
    return {position: pooled[normalise_label(name)] for position, name in enumerate(classes)}


def pool_datasets(
    parts: Sequence[DatasetPart], target: str | None = None
) -> tuple[pd.DataFrame, pa.Table, pd.DataFrame, pd.DataFrame]:
    """``samples``, ``sequences``, ``skipped`` and the class table of the pooled datasets.

    Samples keep their ids and take pooled class ids and names; ``source`` names their
    dataset; performers are offset per dataset; ``xdata`` is set when ``target`` is given.

    Raises:
        ValueError: ``target`` is not one of the datasets, the datasets have different joint
            layouts, or a sample id occurs in two datasets (naming both).
    """
    actions = pool_actions([(part.dataset, part.action_names) for part in parts])
    datasets = [part.dataset for part in parts]
    if target is not None and target not in datasets:
        raise ValueError(f"cross-dataset target {target!r} is not one of the pooled {datasets}")
    layouts = {p.dataset: sorted(set(p.samples["layout"].astype(str))) for p in parts}
    if len({tuple(v) for v in layouts.values()}) != 1 or any(len(v) != 1 for v in layouts.values()):
        raise ValueError(
            f"the pooled datasets have different joint layouts {layouts}: set parameter "
            "ingestion.layout_adapter to one layout they can all be read as (e.g. kinect-v1)"
        )
    owner: dict[str, str] = {}
    frames = []
    for index, part in enumerate(parts):
        for sample_id in part.samples["sample_id"]:
            if sample_id in owner:
                raise ValueError(
                    f"sample id {sample_id!r} occurs in both {owner[sample_id]} and {part.dataset}"
                )
            owner[sample_id] = part.dataset
        frames.append(_pooled_samples(part, index, actions, target))
    samples = pd.concat(frames, ignore_index=True)
    sequences = pa.concat_tables([part.sequences for part in parts])
    skipped = pd.concat([part.skipped for part in parts if len(part.skipped)] or [parts[0].skipped])
    return samples, sequences, skipped.reset_index(drop=True), actions


def _pooled_samples(
    part: DatasetPart, index: int, actions: pd.DataFrame, target: str | None
) -> pd.DataFrame:
    ids = pooled_id_map(actions, part.dataset, part.action_names)
    names = dict(zip(actions["action_id"], actions["action_name"], strict=True))
    samples = part.samples.copy()
    samples["source"] = pd.Series(part.dataset, index=samples.index, dtype="string")
    pooled = samples["action_id"].map(lambda a: ids[int(a)]).astype("Int64")
    samples["action_id"] = pooled
    samples["action_name"] = pooled.map(lambda a: names[int(a)]).astype("string")
    samples["performer"] = samples["performer"] + index * PERFORMER_STRIDE
    if target is not None:
        split = "test" if part.dataset == target else "train"
        samples[CROSS_PROTOCOL] = pd.Series(split, index=samples.index, dtype="string")
    return samples
