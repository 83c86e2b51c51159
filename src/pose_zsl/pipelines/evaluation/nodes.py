"""Evaluation nodes: score each variant on the test split and assemble the paper's tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pose_zsl.grid import EMBEDDINGS, HEADS, SPLITS
from pose_zsl.pipelines.stgcn_training.nodes import seen_class_ids, split_name, unseen_class_ids
from pose_zsl.pipelines.zsl_training.nodes import class_embeddings, feature_matrix
from pose_zsl.reporting import markdown_table

#: ``split`` is the split's own name (its rule: nearest, msr_random_1, ntu60_55_5, ...);
#: ``slot`` is the grid namespace it ran under (nearest, random, furthest).
METRIC_COLUMNS = [
    "dataset", "split", "slot", "head", "embedding", "embedder", "protocol", "metric", "value",
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
) -> tuple[pd.DataFrame, pd.DataFrame, Figure, Figure]:
    """ZSL, GZSL and calibrated GZSL metrics of one head on the test split, per-class
    accuracy (GZSL), a confusion matrix of the unseen test samples among unseen classes, and a
    2-D map of the head's joint pose-language space."""
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
    rows = metric_rows(
        scores, labels, class_ids, seen, unseen,
        calibration=float(calibration["gamma"]), ks=tuple(params["top_k"]),
    )
    metrics = pd.DataFrame([{**columns, **row} for row in rows], columns=METRIC_COLUMNS)

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
        sample_points, labels, class_points, class_ids, names, unseen,
        title=f"{columns['split']} / {columns['head']} / {columns['embedding']}: "
        "joint pose-language space (PCA, test samples)",
    )
    return metrics, per_class, figure, space


def collect_metrics(params: dict[str, Any], **inputs: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """All variants' metrics plus the vanilla ST-GCN baseline, and the paper-style tables.

    ``inputs`` holds ``<split>__<head>__<embedding>`` metric tables and, per split,
    ``<split>__features`` and ``<split>__split_classes``.
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
    chosen = metrics[(metrics["protocol"] == protocol) & (metrics["metric"] == metric)]
    table = chosen.pivot_table(
        index=["head", "embedding"], columns="split", values="value", aggfunc="first"
    )
    order = metrics.drop_duplicates("slot").set_index("slot")["split"]
    return table.reindex(columns=[order[s] for s in SPLITS if s in order.index])


def _title(metrics: pd.DataFrame, text: str) -> str:
    dataset = ", ".join(sorted(metrics["dataset"].unique()))
    return f"# {text}\n\nDataset: {dataset}. Test split of the protocol; values in %.\n\n"


def zsl_table(metrics: pd.DataFrame) -> str:
    """Table 1 of the paper: ZSL top-1 (unseen test samples among unseen classes)."""
    table = _pivot(metrics, "zsl", "top1").reset_index()
    return _title(metrics, "ZSL top-1 accuracy (paper Table 1)") + markdown_table(table) + "\n"


def gzsl_table(metrics: pd.DataFrame) -> str:
    """Table 2 of the paper: GZSL hit@1 / hit@5 of unseen test samples among all classes."""
    hit1, hit5 = _pivot(metrics, "gzsl", "hit1"), _pivot(metrics, "gzsl", "hit5")
    cells = hit1.map(lambda v: f"{v:.2f}") + " / " + hit5.map(lambda v: f"{v:.2f}")
    text = _title(metrics, "GZSL top-1 / top-5 of unseen samples (paper Table 2)")
    return text + markdown_table(cells.reset_index()) + "\n"


def seen_unseen_table(metrics: pd.DataFrame) -> str:
    """Seen accuracy S, unseen accuracy U and H, without and with calibrated stacking."""
    parts = [_title(metrics, "GZSL seen (S) / unseen (U) accuracy and harmonic mean (H)")]
    for protocol, label in (("gzsl", "Without calibration"), ("gzsl_calibrated", "Calibrated")):
        cells = None
        for metric in ("seen_acc", "unseen_acc", "harmonic_mean"):
            formatted = _pivot(metrics, protocol, metric).map(lambda v: f"{v:.1f}")
            cells = formatted if cells is None else cells + " / " + formatted
        if cells is not None and not cells.empty:
            parts += [f"## {label} (S / U / H)\n\n", markdown_table(cells.reset_index()), "\n\n"]
    return "".join(parts)
