"""ST-GCN training node: thin wrapper over :mod:`pose_zsl.training.stgcn_trainer`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


def seen_class_ids(split_classes: pd.DataFrame) -> list[int]:
    """The split's seen action ids (the only classes ST-GCN may be trained on)."""
    return sorted(int(i) for i in split_classes.loc[split_classes["role"] == "seen", "action_id"])


def unseen_class_ids(split_classes: pd.DataFrame) -> list[int]:
    return sorted(int(i) for i in split_classes.loc[split_classes["role"] == "unseen", "action_id"])


def split_name(split_classes: pd.DataFrame) -> str:
    names = split_classes["split"].unique()
    if len(names) != 1:
        raise ValueError(f"split_classes must describe one split, got {list(names)}")
    return str(names[0])


def train_stgcn_on_seen_classes(
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict, pd.DataFrame]:
    """Train ST-GCN on the split's seen classes (training protocol split only), resuming from
    the split's last checkpoint when one exists. Unseen-class samples never reach the loaders:
    the trainer selects by seen ids and its leakage guard re-checks the loader indices."""
    from pose_zsl.training.stgcn_trainer import (
        IncompatibleCheckpointError,
        TrainConfig,
        stgcn_artifact,
        train_stgcn,
    )

    settings = dict(params)
    checkpoint_root = settings.pop("checkpoint_root", None)
    config = TrainConfig.from_dict(settings)
    checkpoint_dir = Path(checkpoint_root) / split_name(split_classes) if checkpoint_root else None
    seen = seen_class_ids(split_classes)
    try:
        model, result = train_stgcn(samples, sequences, seen, config, checkpoint_dir=checkpoint_dir)
    except IncompatibleCheckpointError as error:
        # a checkpoint of another run (other data, split or settings): it cannot be resumed
        logger.warning("%s; starting this split's training from scratch", error)
        model, result = train_stgcn(
            samples, sequences, seen, config, checkpoint_dir=checkpoint_dir, fresh=True
        )
    return stgcn_artifact(model, result.artifact_meta()), result.history


def training_curves(stgcn_history: pd.DataFrame) -> tuple[dict, Figure]:
    """Per-epoch loss and accuracies as MLflow metric histories, and as a figure."""
    from pose_zsl.reporting import metric_history, training_curve_figure

    columns = ["train_loss", "train_acc", "val_acc", "lr", "samples_per_s"]
    figure = training_curve_figure(
        stgcn_history, "epoch", ["train_loss"], ["train_acc", "val_acc"], "ST-GCN training"
    )
    return metric_history(stgcn_history, "epoch", columns), figure


def stgcn_module(stgcn_model: dict) -> Any:
    """The trained network as a ``torch.nn.Module``, for MLflow's pytorch flavour."""
    from pose_zsl.training.stgcn_trainer import model_from_artifact

    return model_from_artifact(stgcn_model)[0]
