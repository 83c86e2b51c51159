"""Evaluation nodes: score each variant on the test split and assemble the paper's tables."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pose_zsl.grid import active
from pose_zsl.reporting import format_interval, markdown_table, mlflow_metric_values
from pose_zsl.zsl.repeats import backbone_rows, backbone_seed_of
from pose_zsl.zsl.stats import summarise_seeds
from pose_zsl.zsl.tables import (
    class_embeddings,
    feature_matrix,
    head_backbone,
    seen_class_ids,
    split_name,
    unseen_class_ids,
    variant_heads,
)

logger = logging.getLogger(__name__)

#: ``split`` is the split's own name (its rule: nearest, msr_random_1, ntu60_55_5, ...);
#: ``slot`` is the namespace it ran under (the split's name too); ``seed`` the
#: training seed of the head (of the ST-GCN for the vanilla baseline), so runs of one variant
#: with different seeds can share the table; ``backbone_seed`` the training seed of the ST-GCN
#: whose features the head stands on (``stgcn_training.seed`` for every row unless
#: ``zsl_training.repeat_backbone`` gives each repeat its own ST-GCN). ``value``, ``ci_low``,
#: ``ci_high`` (95 %) are in %; ``n`` is the number of test samples behind the value
#: (:func:`pose_zsl.zsl.metrics.metric_rows`).
METRIC_COLUMNS = [
    "dataset",
    "split",
    "slot",
    "head",
    "embedding",
    "embedder",
    "seed",
    "backbone_seed",
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


def embedding_variant(label_embeddings: pd.DataFrame) -> str:
    """The grid's embedding variant a label table belongs to (tables written before variants
    were named carry none: theirs is ``learned`` or ``random``)."""
    if "variant" in label_embeddings:
        return str(label_embeddings["variant"].iloc[0])
    return "random" if label_embeddings["embedder"].iloc[0] == "random" else "learned"


def _variant_columns(
    split_classes: pd.DataFrame, params: dict[str, Any], head: str, embedding: str, embedder: str
) -> dict[str, str]:
    slot = split_name(split_classes)
    return {
        "dataset": params["dataset"],
        "split": str(split_classes["rule"].iloc[0]) if "rule" in split_classes else slot,
        "slot": slot,
        "head": head,
        "embedding": embedding,
        "embedder": embedder,
    }


def evaluate_variant(
    zsl_model: dict,
    zsl_repeat_models: list[dict],
    calibration: dict[str, Any],
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    training_seed: int,
    stgcn_seed: int,
    repeat_features: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, Figure, Figure]:
    """ZSL, GZSL and calibrated GZSL metrics of one head on the test split (with n, 95 %
    intervals and collapse diagnostics), per-class accuracy (GZSL), a confusion matrix of the
    unseen test samples among unseen classes, and a 2-D map of the head's joint pose-language
    space.

    The ``seed`` column is the one the head artefact records; ``training_seed`` (the
    ``zsl_training`` seed) stands in for artefacts written before heads recorded it. The heads
    of ``zsl_repeat_models`` (``zsl_training.repeats`` > 1) are scored alike, each calibrated
    with the constant of its own seed (``calibration["repeat_calibrations"]``), and add their
    rows under their seeds; the per-class table and the figures are those of ``zsl_model``. A
    WARNING names the variant and seed when one class takes at least
    ``collapse_warning_share`` % of its ZSL predictions.

    Each head is scored on the test features of the ST-GCN it was trained on: the split's own
    (``features``, ``backbone_seed`` = ``stgcn_seed``, the ``stgcn_training`` seed) or, for a
    head of repeat k with ``zsl_training.repeat_backbone`` on, repeat k's (the rows of
    ``repeat_features`` of that repeat, ``backbone_seed`` theirs).
    """
    from pose_zsl.models.heads import joint_space_points, score
    from pose_zsl.reporting import joint_space_figure
    from pose_zsl.zsl.metrics import (
        confusion_matrix,
        confusion_matrix_figure,
        metric_rows,
        restrict_scores,
    )

    heads = _calibrated_heads(zsl_model, zsl_repeat_models, calibration, training_seed)
    backbones = [head_backbone(a) for a in [zsl_model, *zsl_repeat_models]]
    repeat_features = _or_empty(repeat_features)
    model = heads[0][0]  # the per-class table and the figures are zsl_model's
    seen, unseen = seen_class_ids(split_classes), unseen_class_ids(split_classes)
    test = test_rows(features)
    labels = test["action_id"].to_numpy(dtype=np.int64)
    vectors, class_ids = class_embeddings(label_embeddings)
    columns = _variant_columns(
        split_classes,
        params,
        model.kind,
        embedding_variant(label_embeddings),
        str(label_embeddings["embedder"].iloc[0]),
    )
    test_features = feature_matrix(test)
    has_seen_tests = bool(np.isin(labels, seen).any())
    tables = []
    for (head, seed, gamma), backbone in zip(heads, backbones, strict=True):
        own = test_rows(backbone_rows(features, repeat_features, backbone, "repeat_features"))
        head_labels = own["action_id"].to_numpy(dtype=np.int64)
        head_scores = score(head, feature_matrix(own), vectors)
        if head is model:
            scores = head_scores
        rows = metric_rows(
            head_scores,
            head_labels,
            class_ids,
            seen,
            unseen,
            calibration=gamma,
            ks=tuple(params["top_k"]),
            gzsl=has_seen_tests,
        )
        rows += pooled_split_rows(head_scores, head_labels, class_ids, split_classes, params)
        backbone_seed = backbone_seed_of(repeat_features, backbone, stgcn_seed)
        run = {"seed": seed, "backbone_seed": backbone_seed}
        table = pd.DataFrame([{**columns, **run, **row} for row in rows], columns=METRIC_COLUMNS)
        warn_if_collapsed(table, float(params["collapse_warning_share"]))
        tables.append(table)
    metrics = pd.concat(tables, ignore_index=True)

    names = dict(zip(label_embeddings["action_id"], label_embeddings["action_name"], strict=True))
    per_class = class_accuracy_table(scores, labels, class_ids, names, split_classes)

    is_unseen = np.isin(labels, unseen)
    unseen_scores, unseen_ids = restrict_scores(scores[is_unseen], class_ids, np.asarray(unseen))
    counts = confusion_matrix(unseen_scores, labels[is_unseen], unseen_ids)
    title = f"{columns['split']} / {columns['head']} / {columns['embedding']}: ZSL (unseen test)"
    figure = confusion_matrix_figure(counts, [names[int(i)] for i in unseen_ids], title=title)
    sample_points, class_points = joint_space_points(model, test_features, vectors)
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


def pooled_split_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: np.ndarray,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> list[dict[str, object]]:
    """The extra rows of a pooled environment's split: cross-dataset rows when the split has
    target groups, within-dataset ZSL rows when its unseen classes span several datasets."""
    from pose_zsl.zsl.metrics import cross_dataset_rows, within_dataset_rows

    ks = tuple(params["top_k"])
    if "target_group" in split_classes:
        target = split_classes[split_classes["target_group"].notna()]
        groups = dict(zip(target["action_id"].astype(int), target["target_group"], strict=True))
        return cross_dataset_rows(scores, labels, class_ids, groups, ks)
    if "dataset" not in split_classes:
        return []
    unseen = split_classes[split_classes["role"] == "unseen"]
    by_dataset = unseen.groupby("dataset")["action_id"].agg(lambda ids: sorted(ids.astype(int)))
    if len(by_dataset) < 2:
        return []
    return within_dataset_rows(scores, labels, class_ids, by_dataset.to_dict(), ks)


def class_accuracy_table(
    scores: np.ndarray,
    labels: np.ndarray,
    class_ids: np.ndarray,
    names: dict[int, str],
    split_classes: pd.DataFrame,
) -> pd.DataFrame:
    """Per-class top-1 (GZSL: among all classes); for a cross-dataset split, the target
    classes among the target classes (protocol ``xdata``) with each class's group."""
    from pose_zsl.zsl.metrics import per_class_accuracy, restrict_scores

    if "target_group" not in split_classes:
        table = per_class_accuracy(scores, labels, class_ids, names)
        table.insert(0, "protocol", "gzsl")
        return table
    target = split_classes[split_classes["target_group"].notna()]
    keep = np.isin(labels, target["action_id"].astype(int))
    sub_scores, sub_ids = restrict_scores(scores[keep], class_ids, target["action_id"])
    table = per_class_accuracy(sub_scores, labels[keep], sub_ids, names)
    columns = ["action_id", "target_group", "counterpart", "counterpart_similarity"]
    table = table.merge(target[columns], on="action_id", how="left")
    table.insert(0, "protocol", "xdata")
    return table


def _or_empty(table: pd.DataFrame | None) -> pd.DataFrame:
    """A repeat feature table, or an empty one where the caller passed none."""
    from pose_zsl.zsl.repeats import REPEAT_COLUMNS

    return pd.DataFrame(columns=list(REPEAT_COLUMNS)) if table is None else table


def _calibrated_heads(
    zsl_model: dict, zsl_repeat_models: list[dict], calibration: dict[str, Any], default_seed: int
) -> list[tuple[Any, int, float]]:
    """(head, seed, calibration constant of that seed) of the variant's head and its repeats."""
    heads = variant_heads(zsl_model, zsl_repeat_models, default_seed)
    gammas = {int(c["seed"]): float(c["gamma"]) for c in calibration.get("repeat_calibrations", [])}
    gammas[heads[0][1]] = float(calibration["gamma"])
    for position, (_, seed) in enumerate(heads[1:]):
        if seed not in gammas:
            raise ValueError(
                f"zsl_repeat_models[{position}] (seed {seed}) has no calibration constant; the "
                f"calibration has seeds {sorted(gammas)}: rerun the zsl_training pipeline"
            )
    return [(head, seed, gammas[seed]) for head, seed in heads]


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
    ``<split>__features``, ``<split>__split_classes`` and ``<split>__repeat_features``.
    ``stgcn_seed`` (the ST-GCN's training seed) is the baseline's ``seed`` and
    ``backbone_seed``; with ``zsl_training.repeat_backbone`` each repeat's ST-GCN adds its own
    baseline rows under its seed.
    """
    grid = active()
    tables = [inputs[f"{s}__{h}__{e}"] for s, h, e in grid.variants()]
    for split in grid.splits:
        split_classes = inputs[f"{split}__split_classes"]
        repeat_features = _or_empty(inputs.get(f"{split}__repeat_features"))
        backbones = [(inputs[f"{split}__features"], int(stgcn_seed))]
        for k in sorted(int(r) for r in repeat_features["repeat"].unique()):
            rows = backbone_rows(inputs[f"{split}__features"], repeat_features, k, "repeats")
            backbones.append((rows, backbone_seed_of(repeat_features, k, stgcn_seed)))
        for features, seed in backbones:
            tables += _baseline_tables(features, split_classes, params, seed)
    metrics = pd.concat(tables, ignore_index=True)
    return (
        metrics,
        mlflow_metric_values(metrics),
        zsl_table(metrics),
        gzsl_table(metrics),
        seen_unseen_table(metrics),
    )


def _baseline_tables(
    features: pd.DataFrame, split_classes: pd.DataFrame, params: dict[str, Any], seed: int
) -> list[pd.DataFrame]:
    """The vanilla ST-GCN rows and, where the split has seen-class test samples, the supervised
    ST-GCN rows of one ST-GCN's features, under its training ``seed``."""
    from pose_zsl.zsl.metrics import supervised_rows, vanilla_baseline_rows

    tables = []
    test = test_rows(features)
    seen = seen_class_ids(split_classes)
    # a cross-dataset split tests on the target dataset only: no seen-class test samples
    has_seen_tests = bool(test["action_id"].isin(seen).any())
    rows = vanilla_baseline_rows(
        np.stack(test["seen_logits"].to_numpy()),
        seen,
        test["action_id"].to_numpy(dtype=np.int64),
        sorted(split_classes["action_id"].astype(int)),
        seen_class_ids=seen,
        unseen_class_ids=unseen_class_ids(split_classes),
        ks=tuple(params["top_k"]),
        gzsl=has_seen_tests,
    )
    columns = _variant_columns(split_classes, params, "vanilla_stgcn", "none", "none")
    columns |= {"seed": int(seed), "backbone_seed": int(seed)}
    tables.append(pd.DataFrame([{**columns, **r} for r in rows], columns=METRIC_COLUMNS))
    if not has_seen_tests:
        return tables
    supervised = supervised_rows(
        np.stack(test["seen_logits"].to_numpy()),
        seen,
        test["action_id"].to_numpy(dtype=np.int64),
        seen,
        ks=tuple(params["top_k"]),
    )
    columns |= {"head": "stgcn"}
    tables.append(pd.DataFrame([{**columns, **r} for r in supervised], columns=METRIC_COLUMNS))
    return tables


#: The variant a table cell belongs to (within one protocol and metric).
_CELL_KEYS = ["head", "embedding", "split"]


def format_seed_cell(mean: float, std: float, low: float, high: float, repeats: int) -> str:
    """One seed: ``70.8 [52.6, 83.8]``; several: ``70.8 ± 4.1 [52.6, 83.8]`` (mean ± standard
    deviation over seeds [the seeds' interval bounds averaged]); no interval: without it."""
    return format_interval(mean, low, high, spread=std if repeats > 1 else None)


def seed_cells(metrics: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The seeds of each ``keys`` group summarised (:func:`summarise_seeds`), with its table
    cell (:func:`format_seed_cell`) in column ``cell``."""
    summary = summarise_seeds(metrics, keys=keys)
    columns = summary[["mean", "std", "ci_low", "ci_high", "repeats"]]
    return summary.assign(
        cell=[format_seed_cell(*values) for values in columns.itertuples(index=False)]
    )


def _pivot(metrics: pd.DataFrame, protocol: str, metric: str) -> pd.DataFrame:
    """Cells of :func:`format_seed_cell`, rows (head, embedding), columns splits in slot order."""
    chosen = metrics[(metrics["protocol"] == protocol) & (metrics["metric"] == metric)]
    if chosen.empty:
        cells = pd.DataFrame(columns=[*_CELL_KEYS, "cell"])
    else:
        cells = seed_cells(chosen, _CELL_KEYS)
    table = cells.pivot_table(
        index=["head", "embedding"], columns="split", values="cell", aggfunc="first"
    )
    # object dtype: cells are joined with " / " even when a protocol has no rows (a
    # cross-dataset split has no GZSL rows, and an empty pivot would be float)
    return table.reindex(columns=_split_order(metrics)).astype(object)


def _split_order(metrics: pd.DataFrame) -> list[str]:
    order = metrics.drop_duplicates("slot").set_index("slot")["split"]
    return [order[s] for s in active().splits if s in order.index]


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
    title = (
        f"# {text}\n\nDataset: {dataset}. Test split of the protocol; values in %, as "
        "`value [95 % interval]` (Wilson for accuracies, means of per-class accuracies at their "
        "effective sample size; a seeded parametric bootstrap for H; see pose_zsl.zsl.stats)."
        "\n\n"
    )
    seeds = metrics.groupby(["slot", "head", "embedding"])["seed"].unique()
    repeated = sorted({int(s) for values in seeds for s in values if len(values) > 1})
    if repeated:
        title += (
            f"Heads trained with {seeds.map(len).max()} seeds ({', '.join(map(str, repeated))}; "
            "`zsl_training.repeats`): a cell reads `mean ± std [interval]`, the mean and standard "
            "deviation (ddof 1) over the seeds and the seeds' 95 % intervals averaged bound by "
            "bound. Every seed is scored on the same test samples, so that interval is the "
            "test-sample uncertainty of one run and does not narrow as seeds are added; "
            + _spread_text(metrics)
            + "\n\n"
        )
    return title


def _spread_text(metrics: pd.DataFrame) -> str:
    """What the ± spans: the heads' seeds alone (one ST-GCN per split) or, with
    ``zsl_training.repeat_backbone``, the ST-GCN's seed as well (a backbone per repeat)."""
    column = metrics.get("backbone_seed", pd.Series(dtype=float))
    backbones = sorted(int(s) for s in column.dropna().unique())
    if len(backbones) <= 1:
        which = f", seed {backbones[0]}" if backbones else ""
        return (
            "the ± is the spread that the heads' training seeds alone cause (every repeat's "
            f"heads stand on the split's one ST-GCN{which}). Single-seed rows (the vanilla "
            "ST-GCN) read as above."
        )
    return (
        "the ± includes the backbone's seed: each repeat also trained its own ST-GCN and "
        "calibration ST-GCN (`zsl_training.repeat_backbone`; ST-GCN seeds "
        f"{', '.join(map(str, backbones))}, repeat k with the k-th), so it is the spread of "
        "the whole training, the ST-GCN's seed and the head's together. The vanilla and "
        "supervised ST-GCN rows are those ST-GCNs' own, mean ± std over them."
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
        + cross_dataset_section(metrics)
    )


def _cross_metric_order(metric: str) -> tuple[int, str]:
    """top-k first, then the class mean, then the groups in shared / close / novel order."""
    from pose_zsl.zsl.splits import TARGET_GROUPS

    groups = [f"top1_{group}" for group in TARGET_GROUPS]
    if metric in groups:
        return 2 + groups.index(metric), metric
    return (1, metric) if metric == "top1_class_mean" else (0, metric)


def cross_dataset_section(metrics: pd.DataFrame) -> str:
    """Cross-dataset splits: the target dataset's samples among its classes, overall and per
    target-class group (shared / close / novel, rule in the split report); "" when none."""
    chosen = metrics[metrics["protocol"] == "xdata"]
    text = ""
    for split, part in chosen.groupby("split", sort=False):
        cells = seed_cells(part, ["head", "embedding", "metric"])
        table = cells.pivot_table(
            index=["head", "embedding"], columns="metric", values="cell", aggfunc="first"
        )
        table = table[sorted(table.columns, key=_cross_metric_order)]
        counts = part.drop_duplicates("metric").set_index("metric")["n"]
        text += (
            f"## Cross-dataset: {split}\n\nTarget samples ranked among the target dataset's "
            "classes; top1_<group>: the samples of that group's classes (shared: same name as "
            "a source class; close / novel: nearest source class at or above / below "
            "`counterpart_similarity`). n: "
            + ", ".join(f"{metric} {int(n)}" for metric, n in counts.items())
            + f".\n\n{markdown_table(table.reset_index())}\n\n"
        )
    return text


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


#: What the over-splits table reports: (protocol, metric) per head and embedding; pooled
#: environments add each dataset's within-dataset ZSL top-1 (``zsl_<dataset>``).
OVER_SPLITS_METRICS = (
    ("zsl", "top1"),
    ("zsl", "top1_class_mean"),
    ("gzsl_calibrated", "harmonic_mean"),
    ("supervised", "top1"),
)
_OVER_SPLITS_KEYS = ["protocol", "metric", "head", "embedding"]


def summarise_over_splits(metrics: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Each head and embedding over all splits (mean, std, 95 % t-interval, seeds averaged per
    split first), each learned embedding minus the random ablation paired by split, and each
    further learned embedding minus the first (e.g. descriptions minus names)."""
    from pose_zsl.grid import RANDOM_EMBEDDING
    from pose_zsl.zsl.stats import paired_differences, summarise_splits

    wanted = pd.MultiIndex.from_tuples(OVER_SPLITS_METRICS)
    within = metrics["protocol"].str.startswith("zsl_") & (metrics["metric"] == "top1")
    chosen = metrics[metrics.set_index(["protocol", "metric"]).index.isin(wanted) | within]
    summary = summarise_splits(chosen, _OVER_SPLITS_KEYS).assign(comparison="")
    heads = chosen[chosen["embedding"] != "none"]
    learned = [e for e in dict.fromkeys(heads["embedding"]) if e != RANDOM_EMBEDDING]
    pairs = [(e, RANDOM_EMBEDDING) for e in learned] + [(e, learned[0]) for e in learned[1:]]
    differences = [
        paired_differences(
            heads, ["protocol", "metric", "head"], "embedding", first, second
        ).assign(embedding=first)
        for first, second in pairs
    ]
    table = pd.concat([summary, *differences], ignore_index=True)
    return table, over_splits_markdown(table, metrics)


def over_splits_markdown(table: pd.DataFrame, metrics: pd.DataFrame) -> str:
    """The over-splits table as markdown: ``mean ± std [interval]`` per row."""
    cells = table.assign(
        value=[
            format_interval(m, lo, hi, spread=None if pd.isna(s) else s)
            for m, s, lo, hi in table[["mean", "std", "ci_low", "ci_high"]].itertuples(False)
        ]
    )
    splits = ", ".join(_split_order(metrics))
    text = (
        f"# Over splits\n\nDataset: {', '.join(sorted(metrics['dataset'].unique()))}. Splits "
        f"({metrics['split'].nunique()}): {splits}. A cell reads `mean ± std [95 % interval]` "
        "over the splits (Student t, n = number of splits; each split's value is the mean over "
        "its heads' seeds): the interval is for a new split drawn the same way. Differences "
        "are paired by split (same unseen classes, same test samples).\n\n"
    )
    plain = cells[cells["comparison"] == ""]
    for (protocol, metric), part in plain.groupby(["protocol", "metric"], sort=False):
        shown = part[["head", "embedding", "splits", "value"]]
        text += f"## {protocol} {metric}\n\n{markdown_table(shown)}\n\n"
    paired = cells[cells["comparison"] != ""]
    if not paired.empty:
        shown = paired[["protocol", "metric", "head", "comparison", "splits", "value"]]
        text += (
            "## Learned minus random (and further learned embeddings minus the first), paired "
            f"by split\n\n{markdown_table(shown)}\n"
        )
    return text
