"""Feature-extraction node: the frozen ST-GCN over every sample of the dataset."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from pose_zsl.pipelines.stgcn_training.nodes import seen_class_ids, split_name, unseen_class_ids


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
