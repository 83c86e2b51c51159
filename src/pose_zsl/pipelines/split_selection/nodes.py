"""Split-selection node: thin wrapper over :mod:`pose_zsl.zsl.splits`."""

from __future__ import annotations

from typing import Any

import pandas as pd


def select_splits(
    label_embeddings: pd.DataFrame,
    samples: pd.DataFrame,
    actions: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Resolve each split of ``params["splits"]`` (which also shape the grid: one namespace
    per split) to its seen / unseen / pseudo-unseen classes, from the first learned label
    embedding. In a pooled environment (``actions`` from several datasets) the pooled splits
    are allowed too; a cross-dataset split's target classes are grouped by their nearest
    source class (``counterpart_similarity``) and its samples checked to be split by dataset.

    Returns the combined splits table (``split`` and ``rule`` both the split's name), a
    markdown report, and one table per split for the namespaced pipelines.
    """
    from pose_zsl.zsl.splits import (
        CROSS_DATASET_SPLITS,
        check_cross_dataset_protocol,
        check_training_samples,
        make_splits,
        split_report,
        target_group_report,
        target_groups,
    )

    rules = list(params["splits"])
    table = make_splits(
        label_embeddings,
        rules,
        num_unseen=int(params["num_unseen"]),
        distance=params["distance"],
        seed=int(params["seed"]),
        num_pseudo_unseen=params["num_pseudo_unseen"],
        pooled_classes=actions if "datasets" in actions else None,
        num_unseen_per_dataset=params["num_unseen_per_dataset"],
    )
    table.insert(1, "rule", table["split"])
    check_training_samples(table, samples, params["protocol"])
    reports = split_report(table, label_embeddings, params["distance"])
    per_split = {split: table[table["split"] == split].reset_index(drop=True) for split in rules}
    for split in set(rules) & set(CROSS_DATASET_SPLITS):
        check_cross_dataset_protocol(samples, split, params["protocol"])
        per_split[split] = target_groups(
            per_split[split], actions, label_embeddings, float(params["counterpart_similarity"])
        )
        reports[split] += "\n" + target_group_report(per_split[split])
    report = "\n".join(reports[split] for split in rules)
    return {"splits": table, "split_report": report, **per_split}


def partition_calibration_samples(
    splits: pd.DataFrame, samples: pd.DataFrame, params: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """Each slot's calibration partition of its seen-class training samples, decided once per
    split: ``fit`` / ``holdout`` (stratified by class) and ``pseudo_unseen``. Keys are slots."""
    from pose_zsl.zsl.calibration import calibration_partition

    return {
        slot: calibration_partition(
            samples,
            splits[splits["split"] == slot],
            protocol=params["protocol"],
            holdout_fraction=float(params["calibration_holdout"]),
            seed=int(params["seed"]),
        )
        for slot in params["splits"]
    }
