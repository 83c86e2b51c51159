"""Ingestion nodes: thin wrappers over :mod:`pose_zsl.skeleton.ingest`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pose_zsl.datasets import PooledSource, RawSource, synthetic_settings
from pose_zsl.reporting import markdown_table

if TYPE_CHECKING:
    from pose_zsl.skeleton.ingest import IngestResult

logger = logging.getLogger(__name__)

MAX_LISTED_SKIPS = 200


def synthetic_recordings(settings: dict[str, Any]) -> dict[str, int]:
    """The synthetic generator's settings (parameters ``synthetic_data``), checked; saving them
    as ``raw_recordings`` writes the files (:class:`pose_zsl.datasets.SyntheticSkeletonDataset`)
    unless the folder already holds exactly these."""
    return synthetic_settings(settings)


def ingest_recordings(
    raw_recordings: RawSource | PooledSource, params: dict[str, Any]
) -> tuple[pd.DataFrame, pa.Table, pd.DataFrame]:
    """Parse every recording of the source (of each source of a pool, then pooled by
    :func:`pose_zsl.skeleton.pooled.pool_datasets`) into the common schema; bad files are
    skipped.

    Raises:
        ValueError: nothing could be ingested from a source; when no file of the format was
            there at all, the message names the files the format reads and what the folder
            holds instead.
        FileNotFoundError: a file the format needs is missing (same addition).
    """
    if not isinstance(raw_recordings, PooledSource):
        return _ingest_source(raw_recordings, params)
    from pose_zsl.skeleton.pooled import DatasetPart, merged_summary, pool_datasets

    parts = [
        DatasetPart(source.dataset, _action_names(source.dataset), *_ingest_source(source, params))
        for source in raw_recordings.sources
    ]
    samples, sequences, skipped, actions = pool_datasets(parts, raw_recordings.target)
    logger.info(
        "Pooled %s: %d samples, %d classes; classes with the same name in several datasets: %s",
        raw_recordings.dataset,
        len(samples),
        len(actions),
        merged_summary(actions),
    )
    return samples, sequences, skipped


def _ingest_source(
    raw_recordings: RawSource, params: dict[str, Any]
) -> tuple[pd.DataFrame, pa.Table, pd.DataFrame]:
    from pose_zsl.skeleton import ingest

    spool = _spool(params)
    try:
        result = _ingest(raw_recordings, params, spool)
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
    samples, sequences = result.samples, result.sequences
    if params["layout_adapter"]:
        from pose_zsl.skeleton.adapt import adapt_sequences

        samples, sequences = adapt_sequences(
            samples, sequences, params["layout_adapter"], spool=spool
        )
        logger.info(
            "Read the samples of %s as layout %s", raw_recordings.path, params["layout_adapter"]
        )
    return samples, sequences, result.skipped


def _ingest(raw_recordings: RawSource, params: dict[str, Any], spool: Path | bool) -> IngestResult:
    from pose_zsl.skeleton import ingest

    if raw_recordings.format == "ntu":
        result = ingest.ingest_ntu_dir(
            raw_recordings.path,
            dataset=raw_recordings.dataset,
            max_bodies=params["max_bodies"],
            denoise=params["denoise"],
            workers=params["workers"],
            limit=params["limit"],
            source=raw_recordings.source,
            # the official missing-skeleton list names real recordings, not generated ones
            skip_missing_list=raw_recordings.source != "synthetic",
            spool=spool,
        )
    elif raw_recordings.format == "msr_action3d":
        result = ingest.ingest_msr_dir(raw_recordings.path, workers=params["workers"], spool=spool)
    elif raw_recordings.format == "utkinect":
        result = ingest.ingest_utkinect_dir(raw_recordings.path, labels=params["utkinect_labels"])
    else:
        result = ingest.ingest_stgcn_arrays(
            raw_recordings.path,
            raw_recordings.dataset,
            benchmark=raw_recordings.benchmark,
            spool=spool,
        )
    return result


def _spool(params: dict[str, Any]) -> Path | bool:
    """The folder the sequences are streamed into while files are read (``spool_dir``; unset:
    the system's temporary folder): the node then returns them memory-mapped from there, so
    no process holds the whole dataset in memory."""
    folder = params.get("spool_dir")
    if not folder:
        return True
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


def action_table(raw_recordings: RawSource | PooledSource) -> pd.DataFrame:
    """Every class of the dataset (0-based id, official name and the dataset's name), seen in
    the data or not; for a pool, the pooled class table (:func:`~pose_zsl.skeleton.pooled.
    pool_actions`), with each class's owning dataset and its id there."""
    if isinstance(raw_recordings, PooledSource):
        from pose_zsl.skeleton.pooled import pool_actions

        return pool_actions(
            [(source.dataset, _action_names(source.dataset)) for source in raw_recordings.sources]
        )
    names = _action_names(raw_recordings.dataset)
    return pd.DataFrame(
        {"action_id": range(len(names)), "action_name": names, "dataset": raw_recordings.dataset}
    )


def _action_names(dataset: str) -> list[str]:
    if dataset == "msr_action3d":
        from pose_zsl.skeleton.msr import action_names

        return action_names()
    if dataset == "utkinect":
        from pose_zsl.skeleton.utkinect import action_names

        return action_names()
    from pose_zsl.skeleton.ntu_tables import action_names

    return action_names(120 if dataset == "ntu120" else 60)


def ingestion_report(
    samples: pd.DataFrame, skipped: pd.DataFrame, actions: pd.DataFrame
) -> tuple[str, Figure]:
    """A markdown summary (counts by action and protocol, skipped samples by reason; for a
    pool, the samples per dataset and the classes several datasets share) and a histogram of
    sequence lengths."""
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
    if "datasets" in actions:
        lines += ["", *_pool_summary(samples, actions)]
    if len(skipped):
        shown = skipped[["sample_id", "category", "reason"]].head(MAX_LISTED_SKIPS)
        lines += ["", f"## Skipped samples (first {len(shown)})", "", markdown_table(shown)]
    counts = samples.groupby(["action_id", "action_name"]).size().rename("samples").reset_index()
    for protocol in ("xsub", "xview", "xset", "xdata"):
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


def _pool_summary(samples: pd.DataFrame, actions: pd.DataFrame) -> list[str]:
    from pose_zsl.skeleton.pooled import merged_summary

    counts = samples["source"].value_counts().sort_index()
    return [
        "## Pooled datasets",
        "",
        *(f"- {dataset}: {count} samples" for dataset, count in counts.items()),
        "",
        "Classes of several datasets (equal names after label normalisation count as one "
        f"class): {merged_summary(actions)}",
    ]


def _reason_counts(skipped: pd.DataFrame) -> dict[str, int]:
    return skipped["category"].value_counts().to_dict() if len(skipped) else {}
