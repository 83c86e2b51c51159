"""Feature-extraction node: the frozen ST-GCN over every sample of the dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa

from pose_zsl.zsl.tables import seen_class_ids, split_name, unseen_class_ids


def extract_split_features(
    stgcn_model: dict,
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """256-D pooled features and seen-class logits for all samples, seen and unseen."""
    from pose_zsl.training.features import extract_features
    from pose_zsl.training.stgcn_trainer import model_from_artifact

    seen = seen_class_ids(split_classes)
    model, meta = model_from_artifact(
        stgcn_model, expected_class_ids=seen, source=f"{split_name(split_classes)}.stgcn_model"
    )
    return extract_features(
        model,
        samples,
        sequences,
        seen,
        unseen_ids=unseen_class_ids(split_classes),
        meta=meta,
        protocol=meta["protocol"],
        batch_size=int(params["batch_size"]),
        device=params["device"],
    )


def extract_calibration_features(
    calibration_stgcn_model: dict,
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    calibration_samples: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The calibration ST-GCN's features of the split's calibration samples (fit, holdout and
    pseudo-unseen) and of nothing else: no test sample and no unseen class passes through it.

    ``is_seen`` is relative to the calibration backbone: False for the pseudo-unseen classes.
    """
    from pose_zsl.zsl.calibration import (
        CALIBRATION_ROLES,
        assert_calibration_roles,
        calibration_classes,
    )

    ids = calibration_samples["sample_id"].astype("string")
    rows = samples[samples["sample_id"].astype("string").isin(ids)]
    assert_calibration_roles(
        rows["sample_id"],
        CALIBRATION_ROLES,
        calibration_samples,
        samples,
        split_classes,
        split_column=calibration_stgcn_model["meta"]["protocol"],
        where="the samples given to the calibration ST-GCN",
    )
    return extract_split_features(
        calibration_stgcn_model, rows, sequences, calibration_classes(split_classes), params
    )


def _repeat_features(
    extract: Callable[[dict], pd.DataFrame], repeat_models: list[dict]
) -> pd.DataFrame:
    """``extract(model)`` of every repeat backbone, one table with the repeat and the backbone's
    training seed as columns (:func:`pose_zsl.zsl.repeats.with_repeat_columns`)."""
    from pose_zsl.training.features import FEATURE_COLUMNS
    from pose_zsl.zsl.repeats import empty_repeat_features, with_repeat_columns

    tables = [
        with_repeat_columns(extract(m), m["meta"]["repeat"], m["meta"]["config"]["seed"])
        for m in repeat_models
    ]
    if not tables:
        return empty_repeat_features(FEATURE_COLUMNS)
    return pd.concat(tables, ignore_index=True)


def extract_repeat_features(
    stgcn_repeat_models: list[dict],
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """:func:`extract_split_features` of each repeat ST-GCN (``zsl_training.repeat_backbone``),
    stacked with columns ``repeat`` and ``backbone_seed``; no rows when there is none."""
    return _repeat_features(
        lambda model: extract_split_features(model, samples, sequences, split_classes, params),
        stgcn_repeat_models,
    )


def extract_repeat_calibration_features(
    calibration_stgcn_repeat_models: list[dict],
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    calibration_samples: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """:func:`extract_calibration_features` (its leakage guard included) of each repeat
    calibration ST-GCN, stacked with columns ``repeat`` and ``backbone_seed``."""
    return _repeat_features(
        lambda model: extract_calibration_features(
            model, samples, sequences, split_classes, calibration_samples, params
        ),
        calibration_stgcn_repeat_models,
    )
