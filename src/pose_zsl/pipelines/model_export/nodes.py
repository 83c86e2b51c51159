"""Model export node: check one trained variant and bundle it for the pyfunc dataset."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def package_predictor(
    stgcn_model: dict,
    zsl_model: dict,
    label_embeddings: pd.DataFrame,
    calibration: dict,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The variant's four catalog objects and serving options, after checking that they
    make a working :class:`~pose_zsl.inference.ZeroShotPredictor` (a mismatched ST-GCN, head
    or embedding table fails the run here, not at serving time). The dataset checks again,
    with the text embedder, on temporary files whose names mean nothing to a user: this check
    names the artefacts."""
    from pose_zsl.inference import ZeroShotPredictor

    predictor = ZeroShotPredictor(stgcn_model, zsl_model, label_embeddings, calibration)
    logger.info("packaging the zero-shot predictor %s", predictor.describe())
    return {
        "stgcn_model": stgcn_model,
        "zsl_model": zsl_model,
        "label_embeddings": label_embeddings,
        "calibration": calibration,
        "device": str(params["device"]),
        "batch_size": int(params["batch_size"]),
    }
