"""Evaluation nodes: score each variant on the test split and assemble the paper's tables."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pose_zsl.grid import EMBEDDINGS, HEADS, SPLITS
from pose_zsl.pipelines.stgcn_training.nodes import seen_class_ids, split_name, unseen_class_ids
from pose_zsl.pipelines.zsl_training.nodes import class_embeddings, feature_matrix
from pose_zsl.reporting import format_interval, markdown_table

logger = logging.getLogger(__name__)

#: ``split`` is the split's own name (its rule: nearest, msr_random_1, ntu60_55_5, ...);
#: ``slot`` is the grid namespace it ran under (nearest, random, furthest); ``seed`` the
#: training seed of the head (of the ST-GCN for the vanilla baseline), so runs of one variant
#: with different seeds can share the table. ``value``, ``ci_low``, ``ci_high`` (95 %) are in
#: %; ``n`` is the number of test samples behind the value
#: (:func:`pose_zsl.zsl.metrics.metric_rows`).
METRIC_COLUMNS = [
    "dataset",
    "split",
    "slot",
    "head",
    "embedding",
    "embedder",
    "seed",
    "protocol",
    "metric",
    "value",
    "n",
    "ci_low",
    "ci_high",
]


def test_rows(features: pd.DataFrame) -> pd.DataFrame:
    rows = features[features["protocol_split"] == "test"]
    if rows.empty:
        raise ValueError("no test-split samples in the feature table")
    return rows


def _variant_columns(
    split_classes: pd.DataFrame, params: dict[str, Any], head: str, embedder: str
) -> dict[str, str]:
    slot = split_name(split_classes)
    return {
        "dataset": params["dataset"],
        "split": str(split_classes["rule"].iloc[0]) if "rule" in split_classes else slot,
        "slot": slot,
        "head": head,
        "embedding": "random" if embedder == "random" else "learned",
        "embedder": embedder,
    }


def evaluate_variant(
    zsl_model: dict,
    calibration: dict[str, Any],
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    training_seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, Figure, Figure]:
    """ZSL, GZSL and calibrated GZSL metrics of one head on the test split (with n, 95 %
    intervals and collapse diagnostics), per-class accuracy (GZSL), a confusion matrix of the
    unseen test samples among unseen classes, and a 2-D map of the head's joint pose-language
    space.

    The ``seed`` column is the one the head artefact records; ``training_seed`` (the
    ``zsl_training`` seed) stands in for artefacts written before heads recorded it. A WARNING
    names the variant when one class takes at least ``collapse_warning_share`` % of its ZSL
    predictions.
    """
    from pose_zsl.models.heads import head_from_artifact, joint_space_points, score
    from pose_zsl.reporting import joint_space_figure
    from pose_zsl.zsl.metrics import (
        confusion_matrix,
        confusion_matrix_figure,
        metric_rows,
        per_class_accuracy,
        restrict_scores,
    )

    model = head_from_artifact(zsl_model, source="zsl_model")
    seen, unseen = seen_class_ids(split_classes), unseen_class_ids(split_classes)
    test = test_rows(features)
    labels = test["action_id"].to_numpy(dtype=np.int64)
    vectors, class_ids = class_embeddings(label_embeddings)
    scores = score(model, feature_matrix(test), vectors)
    columns = _variant_columns(
        split_classes, params, model.kind, str(label_embeddings["embedder"].iloc[0])
    )
    seed = int((zsl_model.get("meta") or {}).get("seed", training_seed))
    rows = metric_rows(
        scores,
        labels,
        class_ids,
        seen,
        unseen,
        calibration=float(calibration["gamma"]),
        ks=tuple(params["top_k"]),
    )
    metrics = pd.DataFrame(
        [{**columns, "seed": seed, **row} for row in rows], columns=METRIC_COLUMNS
    )
    warn_if_collapsed(metrics, float(params["collapse_warning_share"]))

    names = dict(zip(label_embeddings["action_id"], label_embeddings["action_name"], strict=True))
    per_class = per_class_accuracy(scores, labels, class_ids, names)
    per_class.insert(0, "protocol", "gzsl")

    is_unseen = np.isin(labels, unseen)
    unseen_scores, unseen_ids = restrict_scores(scores[is_unseen], class_ids, np.asarray(unseen))
    counts = confusion_matrix(unseen_scores, labels[is_unseen], unseen_ids)
    title = f"{columns['split']} / {columns['head']} / {columns['embedding']}: ZSL (unseen test)"
    figure = confusion_matrix_figure(counts, [names[int(i)] for i in unseen_ids], title=title)
    sample_points, class_points = joint_space_points(model, feature_matrix(test), vectors)
    space = joint_space_figure(
        sample_points,
        labels,
        class_points,
        class_ids,
        names,
        unseen,
        title=f"{columns['split']} / {columns['head']} / {columns['embedding']}: "
        "joint pose-language space (PCA, test samples)",
    )
    return metrics, per_class, figure, space


def warn_if_collapsed(metrics: pd.DataFrame, threshold: float) -> bool:
    """Log a WARNING naming the variant when its most-predicted class takes at least
    ``threshold`` % of the ZSL predictions; returns whether it did."""
    share = metrics.loc[
        (metrics["protocol"] == "zsl") & (metrics["metric"] == "top_class_share"), "value"
    ]
    collapsed = not share.empty and share.iloc[0] >= threshold
    if collapsed:
        row = metrics.iloc[0]
        logger.warning(
            "%s / %s / %s (seed %s): one class takes %.1f %% of the ZSL predictions "
            "(collapse_warning_share %.0f %%): the head predicts one class for almost every "
            "sample",
            row["split"],
            row["head"],
            row["embedding"],
            row["seed"],
            share.iloc[0],
            threshold,
        )
    return collapsed


def collect_metrics(
    params: dict[str, Any], stgcn_seed: int, **inputs: pd.DataFrame
) -> tuple[pd.DataFrame, ...]:
    """All variants' metrics plus the vanilla ST-GCN baseline, and the paper-style tables.

    ``inputs`` holds ``<split>__<head>__<embedding>`` metric tables and, per split,
    ``<split>__features`` and ``<split>__split_classes``. ``stgcn_seed`` (the ST-GCN's training
    seed) is the baseline's ``seed``.
    """
    from pose_zsl.zsl.metrics import vanilla_baseline_rows

    tables = [inputs[f"{s}__{h}__{e}"] for s in SPLITS for h in HEADS for e in EMBEDDINGS]
    for split in SPLITS:
        split_classes = inputs[f"{split}__split_classes"]
        test = test_rows(inputs[f"{split}__features"])
        seen = seen_class_ids(split_classes)
        rows = vanilla_baseline_rows(
            np.stack(test["seen_logits"].to_numpy()),
            seen,
            test["action_id"].to_numpy(dtype=np.int64),
            sorted(split_classes["action_id"].astype(int)),
            seen_class_ids=seen,
            unseen_class_ids=unseen_class_ids(split_classes),
            ks=tuple(params["top_k"]),
        )
        columns = _variant_columns(split_classes, params, "vanilla_stgcn", "none")
        columns["embedding"] = "none"
        columns["seed"] = int(stgcn_seed)
        tables.append(pd.DataFrame([{**columns, **r} for r in rows], columns=METRIC_COLUMNS))
    metrics = pd.concat(tables, ignore_index=True)
    return (
        metrics,
        mlflow_metric_values(metrics),
        zsl_table(metrics),
        gzsl_table(metrics),
        seen_unseen_table(metrics),
    )


def mlflow_metric_values(metrics: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Every measurement as an MLflow metric ``<split>.<head>.<embedding>.<protocol>.<metric>``."""
    return {
        f"{r.split}.{r.head}.{r.embedding}.{r.protocol}.{r.metric}": {"value": r.value, "step": 0}
        for r in metrics.itertuples(index=False)
    }


def _pivot(metrics: pd.DataFrame, protocol: str, metric: str) -> pd.DataFrame:
    """``value [ci_low, ci_high]`` cells, rows (head, embedding), columns splits in slot order."""
    chosen = metrics[(metrics["protocol"] == protocol) & (metrics["metric"] == metric)]
    cells = chosen.assign(
        cell=[
            format_interval(v, lo, hi)
            for v, lo, hi in zip(chosen["value"], chosen["ci_low"], chosen["ci_high"], strict=True)
        ]
    )
    table = cells.pivot_table(
        index=["head", "embedding"], columns="split", values="cell", aggfunc="first"
    )
    return table.reindex(columns=_split_order(metrics))


def _split_order(metrics: pd.DataFrame) -> list[str]:
    order = metrics.drop_duplicates("slot").set_index("slot")["split"]
    return [order[s] for s in SPLITS if s in order.index]


def _sample_counts(metrics: pd.DataFrame, protocol: str, metric: str, what: str) -> str:
    """``n = <what> per split: nearest 24, ...`` from the rows of one metric."""
    chosen = metrics[(metrics["protocol"] == protocol) & (metrics["metric"] == metric)]
    counts = chosen.groupby("split")["n"].unique()
    parts = [
        f"{split} {'/'.join(str(int(n)) for n in sorted(counts[split]))}"
        for split in _split_order(metrics)
        if split in counts.index
    ]
    return f"n = {what} per split: {', '.join(parts)}.\n\n"


def _title(metrics: pd.DataFrame, text: str) -> str:
    dataset = ", ".join(sorted(metrics["dataset"].unique()))
    return (
        f"# {text}\n\nDataset: {dataset}. Test split of the protocol; values in %, as "
        "`value [95 % interval]` (Wilson for accuracies, means of per-class accuracies at their "
        "effective sample size; a seeded parametric bootstrap for H; see pose_zsl.zsl.stats)."
        "\n\n"
    )


def _section(heading: str, table: pd.DataFrame) -> str:
    return f"## {heading}\n\n{markdown_table(table.reset_index())}\n\n"


def zsl_table(metrics: pd.DataFrame) -> str:
    """Table 1 of the paper: ZSL top-1 (unseen test samples among unseen classes), per sample
    and as a mean of per-class accuracies, and how concentrated each head's predictions are."""
    share = _pivot(metrics, "zsl", "top_class_share")
    entropy = _pivot(metrics, "zsl", "prediction_entropy")
    return (
        _title(metrics, "ZSL top-1 accuracy (paper Table 1)")
        + _sample_counts(metrics, "zsl", "top1", "unseen test samples")
        + markdown_table(_pivot(metrics, "zsl", "top1").reset_index())
        + "\n\n"
        + _section("Mean of per-class top-1", _pivot(metrics, "zsl", "top1_class_mean"))
        + "## Collapse: share of the most-predicted class / prediction entropy\n\n"
        "Entropy of the predicted-class distribution in % of log2 K (K unseen classes): 100 "
        "means every class predicted equally often, 0 one class for every sample. (The "
        "vanilla ST-GCN scores no unseen class, so its ties all fall on the first one.)\n\n"
        + markdown_table((share + " / " + entropy).reset_index())
        + "\n"
    )


def gzsl_table(metrics: pd.DataFrame) -> str:
    """Table 2 of the paper: GZSL hit@1 / hit@5 of unseen test samples among all classes."""
    cells = _pivot(metrics, "gzsl", "hit1") + " / " + _pivot(metrics, "gzsl", "hit5")
    text = _title(metrics, "GZSL top-1 / top-5 of unseen samples (paper Table 2)")
    text += _sample_counts(metrics, "gzsl", "hit1", "unseen test samples")
    return text + markdown_table(cells.reset_index()) + "\n"


def seen_unseen_table(metrics: pd.DataFrame) -> str:
    """Seen accuracy S, unseen accuracy U and H, without and with calibrated stacking, per
    sample (as the skeleton papers) and as means of per-class accuracies (as Xian et al.)."""
    parts = [
        _title(metrics, "GZSL seen (S) / unseen (U) accuracy and harmonic mean (H)"),
        _sample_counts(metrics, "gzsl", "seen_acc", "seen test samples"),
        _sample_counts(metrics, "gzsl", "unseen_acc", "unseen test samples"),
    ]
    for suffix, average in (("", "per sample"), ("_class_mean", "mean of per-class")):
        for protocol, label in (("gzsl", "Without calibration"), ("gzsl_calibrated", "Calibrated")):
            cells = None
            for metric in ("seen_acc", "unseen_acc", "harmonic_mean"):
                formatted = _pivot(metrics, protocol, metric + suffix)
                cells = formatted if cells is None else cells + " / " + formatted
            if cells is not None and not cells.empty:
                parts.append(_section(f"{label} (S / U / H, {average})", cells))
    return "".join(parts)
