"""Inference nodes: thin wrappers over :mod:`pose_zsl.inference`."""

from __future__ import annotations

import logging
import re
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def _as_list(value: Any) -> list[str]:
    """A parameter given as a list, or as one string separated by ``;`` (``kedro run --params``
    splits its argument at commas) or by commas (in a YAML file)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[;,]", value) if part.strip()]
    return [str(v) for v in value]


def read_inference_recordings(
    stgcn_model: dict, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``inference.recordings`` (files or folders) into a request table with the
    candidate names ``inference.labels``; unreadable files are listed with their reason.

    No recordings configured is not an error (nothing to predict, a warning); recordings that
    are all unreadable are.
    """
    from pose_zsl.inference import (
        READ_MAX_BODIES,
        check_labels,
        read_recordings,
        requests_frame,
        skipped_frame,
    )

    paths = _as_list(params["recordings"])
    if not paths:
        logger.warning(
            "parameter inference.recordings is empty: nothing to predict (e.g. kedro run "
            '--pipelines inference --params "inference.recordings=a.skeleton;b.skeleton,'
            'inference.labels=wave;kick a ball")'
        )
        return requests_frame([], []), skipped_frame()
    labels = check_labels(_as_list(params["labels"]), "inference.labels=wave;kick a ball")
    max_bodies = max(READ_MAX_BODIES, int(stgcn_model["meta"]["max_bodies"]))
    recordings, unreadable = read_recordings(
        paths, max_bodies=max_bodies, denoise=bool(params["denoise"])
    )
    if not recordings:
        reasons = "; ".join(f"{r}: {why}" for r, why in unreadable.itertuples(index=False))
        raise ValueError(f"none of the inference.recordings could be read: {reasons}")
    return requests_frame(recordings, labels), unreadable


def predict_actions(
    stgcn_model: dict,
    zsl_model: dict,
    label_embeddings: pd.DataFrame,
    calibration: dict,
    inference_requests: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Rank the requests' candidate names: the predictions plus one ``error`` row per
    recording that could not be predicted (see :meth:`pose_zsl.inference.Ranking.combined`).

    Raises:
        ValueError: there were requests but none could be predicted (the reasons are listed).
    """
    from pose_zsl.inference import (
        OptionNames,
        Ranking,
        ZeroShotPredictor,
        check_options,
        empty_predictions,
        rank_checked_requests,
    )

    options = check_options(
        int(params["top_k"]),
        params["calibration"],
        params["adapt_layout"],
        OptionNames(calibration="inference.calibration", adapt_layout="inference.adapt_layout"),
    )
    if inference_requests.empty:
        return Ranking(empty_predictions()).combined()
    predictor = ZeroShotPredictor(
        stgcn_model,
        zsl_model,
        label_embeddings,
        calibration,
        device=str(params["device"]),
        batch_size=int(params["batch_size"]),
    )
    ranking: Ranking = rank_checked_requests(predictor, inference_requests, options)
    if ranking.predictions.empty:
        reasons = "; ".join(f"{r}: {why}" for r, why in ranking.skipped.itertuples(index=False))
        raise ValueError(
            f"none of the {len(inference_requests)} recordings could be predicted: {reasons}"
        )
    logger.info(
        "ranked the candidate names of %d recordings (%d skipped) with %s",
        ranking.predictions["recording"].nunique(),
        len(ranking.skipped),
        predictor.describe(),
    )
    return ranking.combined()
