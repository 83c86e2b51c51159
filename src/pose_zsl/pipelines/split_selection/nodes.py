"""Split-selection node: thin wrapper over :mod:`pose_zsl.zsl.splits`."""

from __future__ import annotations

from typing import Any

import pandas as pd


def select_splits(
    label_embeddings: pd.DataFrame, samples: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Resolve each split of ``params["splits"]`` (which also shape the grid: one namespace
    per split) to its seen / unseen / pseudo-unseen classes, from the first learned label
    embedding.

    Returns the combined splits table (``split`` and ``rule`` both the split's name), a
    markdown report, and one table per split for the namespaced pipelines.
    """
    from pose_zsl.zsl.splits import check_training_samples, make_splits, split_report

    rules = list(params["splits"])
    table = make_splits(
        label_embeddings,
        rules,
        num_unseen=int(params["num_unseen"]),
        distance=params["distance"],
        seed=int(params["seed"]),
        num_pseudo_unseen=params.get("num_pseudo_unseen"),
    )
    table.insert(1, "rule", table["split"])
    check_training_samples(table, samples, params["protocol"])
    reports = split_report(table, label_embeddings, params["distance"])
    report = "\n".join(reports.values())
    per_split = {split: table[table["split"] == split].reset_index(drop=True) for split in rules}
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
