"""Split-selection node: thin wrapper over :mod:`pose_zsl.zsl.splits`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pose_zsl.grid import SPLITS


def select_splits(
    label_embeddings: pd.DataFrame, samples: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Resolve each split slot of the grid to its seen / unseen / pseudo-unseen classes.

    Returns the combined splits table (``split`` = slot name, ``rule`` = how it was chosen), a
    markdown report, and one table per slot for the namespaced pipelines.
    """
    from pose_zsl.zsl.splits import check_training_samples, make_splits, split_report

    slots = params["slots"]
    if set(slots) != set(SPLITS):
        raise ValueError(
            f"parameter split_selection.slots must define exactly the grid's splits {list(SPLITS)}"
            f", got {sorted(slots)}"
        )
    rules = [slots[slot]["rule"] for slot in SPLITS]
    table = make_splits(
        label_embeddings,
        rules,
        num_unseen=int(params["num_unseen"]),
        distance=params["distance"],
        seed=int(params["seed"]),
        num_pseudo_unseen=params.get("num_pseudo_unseen"),
    )
    slot_of_rule = {rule: slot for slot, rule in zip(SPLITS, rules, strict=True)}
    table.insert(1, "rule", table["split"])
    table["split"] = table["split"].map(slot_of_rule).astype("string")
    check_training_samples(table, samples, params["protocol"])
    reports = split_report(table, label_embeddings, params["distance"])
    report = "\n".join(
        f"{text}\nRule: `{slots[slot]['rule']}`.\n" for slot, text in reports.items()
    )
    per_slot = {slot: table[table["split"] == slot].reset_index(drop=True) for slot in SPLITS}
    return {"splits": table, "split_report": report, **per_slot}


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
        for slot in SPLITS
    }
