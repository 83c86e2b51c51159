"""ST-GCN training node: thin wrapper over :mod:`pose_zsl.training.stgcn_trainer`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from matplotlib.figure import Figure

from pose_zsl.zsl.tables import seen_class_ids, split_name

logger = logging.getLogger(__name__)


def train_stgcn_on_seen_classes(
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    run_suffix: str = "",
) -> tuple[dict, pd.DataFrame]:
    """Train ST-GCN on the split's seen classes (training protocol split only), resuming from
    the split's last checkpoint when one exists. Unseen-class samples never reach the loaders:
    the trainer selects by seen ids and its leakage guard re-checks the loader indices.

    Checkpoints live in ``<checkpoint_root>/<split><run_suffix>`` (a repeat's backbone passes
    ``_seed<seed>``, so no two seeds share a folder)."""
    from pose_zsl.training.stgcn_trainer import (
        IncompatibleCheckpointError,
        stgcn_artifact,
        train_config_from_params,
        train_stgcn,
    )

    checkpoint_root = params["checkpoint_root"]
    config = train_config_from_params(params)
    run_name = split_name(split_classes) + run_suffix
    checkpoint_dir = Path(checkpoint_root) / run_name if checkpoint_root else None
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


def effective_stgcn_config(params: dict[str, Any]) -> dict[str, Any]:
    """The ST-GCN training config every split trains with (the preset and its overrides)."""
    from pose_zsl.training.stgcn_trainer import train_config_from_params

    return {"preset": params["preset"], **train_config_from_params(params).to_dict()}


def calibration_fit_samples(
    samples: pd.DataFrame, calibration_samples: pd.DataFrame
) -> pd.DataFrame:
    """The rows of ``samples`` whose calibration role is ``fit``."""
    fit = calibration_samples.loc[calibration_samples["role"] == "fit", "sample_id"]
    return samples[samples["sample_id"].astype("string").isin(fit.astype("string"))]


def train_calibration_stgcn(
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    calibration_samples: pd.DataFrame,
    params: dict[str, Any],
    run_suffix: str = "",
) -> tuple[dict, pd.DataFrame]:
    """The split's calibration ST-GCN: the split's own recipe (this module's training node, so
    the same effective config), trained on the ``fit`` calibration samples only.

    Its classes are the split's seen classes minus the pseudo-unseen ones; its checkpoints live
    in ``<checkpoint_root>/<split>_calibration``. Leakage guards: the samples handed to the
    trainer are re-checked against the partition (fit role only: no holdout or pseudo-unseen
    sample, no unseen class, no test sample), and the trainer's own guard re-checks what its
    loaders read against this restricted table and the calibration classes.
    """
    from pose_zsl.zsl.calibration import assert_calibration_roles, calibration_classes

    fit = calibration_fit_samples(samples, calibration_samples)
    assert_calibration_roles(
        fit["sample_id"],
        {"fit"},
        calibration_samples,
        samples,
        split_classes,
        split_column=params["protocol"],
        where="the calibration ST-GCN's training samples",
    )
    return train_stgcn_on_seen_classes(
        fit, sequences, calibration_classes(split_classes), params, run_suffix
    )


def _repeat_backbones(
    train: Callable[[dict[str, Any], str], tuple[dict, pd.DataFrame]],
    params: dict[str, Any],
    repeats: int,
    repeat_backbone: bool,
) -> tuple[list[dict], pd.DataFrame]:
    """``train(params, run_suffix)`` once per repeat k >= 1 with its own backbone, with the ST-GCN
    seed ``stgcn_training.seed + k``: the artefacts (their meta records ``repeat``) and the
    histories, one table with columns ``repeat`` and ``backbone_seed`` in front."""
    from pose_zsl.training.stgcn_trainer import HISTORY_COLUMNS
    from pose_zsl.zsl.repeats import REPEAT_COLUMNS, backbone_repeats

    artefacts, histories = [], []
    for k in backbone_repeats(repeats, repeat_backbone):
        seed = int(params["seed"]) + k
        # everything else is the split's own recipe; the seed also names the checkpoint folder
        artefact, history = train({**params, "seed": seed}, f"_seed{seed}")
        artefact["meta"]["repeat"] = k
        artefacts.append(artefact)
        histories.append(history.assign(repeat=k, backbone_seed=seed))
    columns = [*REPEAT_COLUMNS, *HISTORY_COLUMNS]
    if not histories:
        return [], pd.DataFrame(columns=columns)
    return artefacts, pd.concat(histories, ignore_index=True)[columns]


def train_repeat_stgcns(
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    repeats: int,
    repeat_backbone: bool,
) -> tuple[list[dict], pd.DataFrame]:
    """The split's further ST-GCNs when ``zsl_training.repeat_backbone`` is on: one per repeat
    k = 1 .. ``repeats`` - 1, trained exactly as the split's own (this module's node, same
    samples and recipe) but with the seed ``stgcn_training.seed + k``; nothing (``[]`` and an
    empty history) when the option is off. Checkpoints: ``<checkpoint_root>/<split>_seed<seed>``.
    """
    return _repeat_backbones(
        lambda seeded, suffix: train_stgcn_on_seen_classes(
            samples, sequences, split_classes, seeded, suffix
        ),
        params,
        repeats,
        repeat_backbone,
    )


def train_repeat_calibration_stgcns(
    samples: pd.DataFrame,
    sequences: pa.Table,
    split_classes: pd.DataFrame,
    calibration_samples: pd.DataFrame,
    params: dict[str, Any],
    repeats: int,
    repeat_backbone: bool,
) -> tuple[list[dict], pd.DataFrame]:
    """The calibration twins of :func:`train_repeat_stgcns`: per repeat k >= 1, the split's
    calibration ST-GCN (:func:`train_calibration_stgcn`, its leakage guards included) trained
    with the seed ``stgcn_training.seed + k`` on the same ``fit`` samples. Checkpoints:
    ``<checkpoint_root>/<split>_calibration_seed<seed>``."""
    return _repeat_backbones(
        lambda seeded, suffix: train_calibration_stgcn(
            samples, sequences, split_classes, calibration_samples, seeded, suffix
        ),
        params,
        repeats,
        repeat_backbone,
    )


def training_curves(
    stgcn_history: pd.DataFrame, split_classes: pd.DataFrame
) -> tuple[dict, Figure]:
    """Per-epoch loss and accuracies as MLflow metric histories, and as a figure titled with
    the split."""
    from pose_zsl.reporting import metric_history, training_curve_figure

    columns = ["train_loss", "train_acc", "val_acc", "lr", "samples_per_s"]
    title = f"ST-GCN training, split {split_name(split_classes)}"
    figure = training_curve_figure(
        stgcn_history, "epoch", ["train_loss"], ["train_acc", "val_acc"], title
    )
    return metric_history(stgcn_history, "epoch", columns), figure


def stgcn_module(stgcn_model: dict) -> Any:
    """The trained network as a ``torch.nn.Module``, for MLflow's pytorch flavour."""
    from pose_zsl.training.stgcn_trainer import model_from_artifact

    return model_from_artifact(stgcn_model)[0]
