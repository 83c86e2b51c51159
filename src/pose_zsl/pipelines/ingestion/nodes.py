"""Ingestion nodes: thin wrappers over :mod:`pose_zsl.skeleton.ingest`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pose_zsl.datasets import RawSource
from pose_zsl.reporting import markdown_table

if TYPE_CHECKING:
    from pose_zsl.skeleton.ingest import IngestResult

logger = logging.getLogger(__name__)

MAX_LISTED_SKIPS = 200


def ingest_recordings(
    raw_recordings: RawSource, params: dict[str, Any]
) -> tuple[pd.DataFrame, pa.Table, pd.DataFrame]:
    """Parse every recording of the source into the common schema; bad files are skipped.

    Raises:
        ValueError: nothing could be ingested; when no file of the format was there at all,
            the message names the files the format reads and what the folder holds instead.
        FileNotFoundError: a file the format needs is missing (same addition).
    """
    from pose_zsl.skeleton import ingest

    try:
        result = _ingest(raw_recordings, params)
    except FileNotFoundError as error:
        if not Path(raw_recordings.path).is_dir():
            raise
        hint = ingest.wrong_format_message(raw_recordings.path, raw_recordings.format)
        raise FileNotFoundError(f"{error}; {hint}") from error
    if result.samples.empty and result.skipped.empty:
        raise ValueError(
            f"no usable recording in {raw_recordings.path}: "
            + ingest.wrong_format_message(raw_recordings.path, raw_recordings.format)
        )
    if result.samples.empty:
        raise ValueError(
            f"no usable recording in {raw_recordings.path}: "
            f"{len(result.skipped)} skipped ({_reason_counts(result.skipped)})"
        )
    logger.info(
        "Ingested %d samples from %s, skipped %d (%s)",
        len(result.samples),
        raw_recordings.path,
        len(result.skipped),
        _reason_counts(result.skipped),
    )
    return result.samples, result.sequences, result.skipped


def _ingest(raw_recordings: RawSource, params: dict[str, Any]) -> IngestResult:
    from pose_zsl.skeleton import ingest

    if raw_recordings.format == "ntu":
        result = ingest.ingest_ntu_dir(
            raw_recordings.path,
            dataset=raw_recordings.dataset,
            max_bodies=params["max_bodies"],
            denoise=params["denoise"],
            workers=params.get("workers"),
            limit=params.get("limit"),
            source=raw_recordings.source,
            # the official missing-skeleton list names real recordings, not generated ones
            skip_missing_list=raw_recordings.source != "synthetic",
        )
    elif raw_recordings.format == "msr_action3d":
        result = ingest.ingest_msr_dir(raw_recordings.path, workers=params.get("workers"))
    elif raw_recordings.format == "utkinect":
        result = ingest.ingest_utkinect_dir(
            raw_recordings.path, labels=params.get("utkinect_labels", "modified")
        )
    else:
        result = ingest.ingest_stgcn_arrays(
            raw_recordings.path, raw_recordings.dataset, benchmark=raw_recordings.benchmark
        )
    return result


def action_table(raw_recordings: RawSource) -> pd.DataFrame:
    """Every class of the dataset (0-based id, official name and the dataset's name), seen in
    the data or not."""
    if raw_recordings.dataset == "msr_action3d":
        from pose_zsl.skeleton.msr import action_names
    elif raw_recordings.dataset == "utkinect":
        from pose_zsl.skeleton.utkinect import action_names
    else:
        from functools import partial

        from pose_zsl.skeleton.ntu_tables import action_names as ntu_names

        action_names = partial(ntu_names, 120 if raw_recordings.dataset == "ntu120" else 60)
    names = action_names()
    return pd.DataFrame(
        {"action_id": range(len(names)), "action_name": names, "dataset": raw_recordings.dataset}
    )


def ingestion_report(samples: pd.DataFrame, skipped: pd.DataFrame) -> tuple[str, Figure]:
    """A markdown summary (counts by action and protocol, skipped samples by reason) and a
    histogram of sequence lengths."""
    lines = [
        "# Ingestion report",
        "",
        f"- samples: {len(samples)}",
        f"- skipped: {len(skipped)}",
        f"- sources: {', '.join(sorted(samples['source'].dropna().unique()))}",
        f"- frames: min {samples['num_frames'].min()}, median "
        f"{int(samples['num_frames'].median())}, max {samples['num_frames'].max()}",
        "",
        "## Skipped samples by reason",
        "",
    ]
    reasons = _reason_counts(skipped)
    lines += [f"- {reason}: {count}" for reason, count in reasons.items()] or ["none"]
    if len(skipped):
        shown = skipped[["sample_id", "category", "reason"]].head(MAX_LISTED_SKIPS)
        lines += ["", f"## Skipped samples (first {len(shown)})", "", markdown_table(shown)]
    counts = samples.groupby(["action_id", "action_name"]).size().rename("samples").reset_index()
    for protocol in ("xsub", "xview", "xset"):
        if samples[protocol].notna().any():
            per_split = samples.groupby(["action_id", protocol]).size().unstack(fill_value=0)
            per_split.columns = [f"{protocol}_{c}" for c in per_split.columns]
            counts = counts.merge(per_split, left_on="action_id", right_index=True, how="left")
    lines += ["", "## Samples by action", "", markdown_table(counts)]
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    axis.hist(samples["num_frames"].astype(int), bins=30, color="#4477aa")
    axis.set_xlabel("frames per sample")
    axis.set_ylabel("samples")
    axis.set_title("Sequence lengths")
    figure.tight_layout()
    return "\n".join(lines) + "\n", figure


def _reason_counts(skipped: pd.DataFrame) -> dict[str, int]:
    return skipped["category"].value_counts().to_dict() if len(skipped) else {}
