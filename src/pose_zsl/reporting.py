"""Reporting helpers shared by the pipelines: markdown tables, metric histories, curves."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.2f}") -> str:
    """Render a DataFrame as a GitHub markdown table (floats formatted, NaN as a dash)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "-" if pd.isna(value) else float_format.format(value)
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def format_interval(
    value: float, low: float, high: float, digits: int = 1, spread: float | None = None
) -> str:
    """``70.8 [52.6, 83.8]``, or with a ``spread`` (a standard deviation) ``70.8 ± 4.1 [52.6,
    83.8]``; the interval is left out when missing (NaN), a missing value is a dash."""
    if pd.isna(value):
        return "-"
    text = f"{value:.{digits}f}"
    if spread is not None:
        text += f" ± {spread:.{digits}f}"
    if pd.isna(low) or pd.isna(high):
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def metric_history(
    history: pd.DataFrame, step_column: str, columns: list[str]
) -> dict[str, list[dict[str, float]]]:
    """Per-step values of ``columns`` in the ``{name: [{"value", "step"}, ...]}`` form that
    kedro-mlflow's metrics-history dataset logs as MLflow metric histories (NaN steps dropped)."""
    curves = {}
    for column in columns:
        if column not in history:
            continue
        points = history[[step_column, column]].dropna()
        curves[column] = [
            {"value": float(value), "step": int(step)}
            for step, value in points.itertuples(index=False)
        ]
    return {name: points for name, points in curves.items() if points}


def mlflow_metric_values(metrics: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Every measurement as an MLflow metric ``<split>.<head>.<embedding>.<protocol>.<metric>``.

    A variant's first seed (``zsl_training.seed``: the exported head's) keeps that key; the
    heads of further seeds (``zsl_training.repeats`` > 1) log under
    ``<split>.<head>.<embedding>.seed<K>.<protocol>.<metric>``.
    """
    first = metrics.groupby(["slot", "head", "embedding"])["seed"].transform("min")
    values = {}
    for r, is_first in zip(metrics.itertuples(index=False), metrics["seed"] == first, strict=True):
        variant = f"{r.split}.{r.head}.{r.embedding}" + ("" if is_first else f".seed{r.seed}")
        values[f"{variant}.{r.protocol}.{r.metric}"] = {"value": r.value, "step": 0}
    return values


def training_curve_figure(
    history: pd.DataFrame, step_column: str, left: list[str], right: list[str], title: str
) -> Figure:
    """Loss-like columns on the left axis, accuracy-like columns on the right, against steps."""
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    for column in left:
        if column in history:
            axis.plot(history[step_column], history[column], label=column)
    axis.set_xlabel(step_column)
    axis.set_ylabel(", ".join(left))
    if right:
        twin = axis.twinx()
        for column in right:
            if column in history:
                twin.plot(history[step_column], history[column], "--", label=column)
        twin.set_ylabel(", ".join(right))
        twin.legend(loc="upper right")
    axis.legend(loc="upper left")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def joint_space_figure(
    sample_points: np.ndarray,
    sample_labels: np.ndarray,
    class_points: np.ndarray,
    class_ids: np.ndarray,
    class_names: dict[int, str],
    unseen_ids: list[int],
    title: str,
) -> Figure:
    """A 2-D map (PCA of classes and samples together) of a joint pose-language space.

    Class points carry their names; unseen classes and their samples are drawn in colour,
    seen ones in grey, so one sees whether unseen samples land near their own class name.
    """
    points = np.concatenate([class_points, sample_points]).astype(np.float64)
    # directions matter, not lengths: the two sides of a head live at different scales
    points /= np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    centred = points - points.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    plane = centred @ axes[:2].T
    classes, samples = plane[: len(class_points)], plane[len(class_points) :]
    figure = Figure(figsize=(8, 7))
    FigureCanvasAgg(figure)
    # fixed axes (no layout engine): label boxes measured while placing them stay put
    axis = figure.add_axes((0.03, 0.03, 0.94, 0.84))
    palette = dict(zip(unseen_ids, _COLOURS, strict=False))
    seen_samples = ~np.isin(sample_labels, unseen_ids)
    axis.scatter(*samples[seen_samples].T, s=6, c="#bbbbbb", label="seen-class sample")
    for class_id, colour in palette.items():
        mine = sample_labels == class_id
        axis.scatter(*samples[mine].T, s=14, c=colour, marker="x")
    unseen_first = sorted(
        zip(classes, class_ids, strict=True), key=lambda c: int(c[1]) not in palette
    )
    for (x, y), class_id in unseen_first:
        colour = palette.get(int(class_id), "#555555")
        axis.scatter([x], [y], s=40 if int(class_id) in palette else 12, c=colour, marker="o")
    _place_labels(axis, unseen_first, class_names, palette)
    axis.scatter(
        [], [], s=14, c="#377eb8", marker="x", label="unseen-class sample (its class colour)"
    )
    axis.scatter([], [], s=40, c="#377eb8", marker="o", label="unseen class name")
    axis.scatter([], [], s=12, c="#555555", marker="o", label="seen class name")
    axis.legend(loc="lower right", fontsize=7, framealpha=0.8)
    axis.set_title(textwrap.fill(title, width=90), fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
    return figure


def _place_labels(
    axis: Axes, classes: list, class_names: dict[int, str], palette: dict[int, str]
) -> None:
    """Name the class points, unseen first; a seen class's name that would overlap a name
    already placed is left out (its point stays), so the names never pile up."""
    renderer = axis.figure.canvas.get_renderer()
    placed = []
    for (x, y), class_id in classes:
        unseen = int(class_id) in palette
        label = axis.annotate(
            class_names[int(class_id)],
            (x, y),
            fontsize=8 if unseen else 5,
            color=palette.get(int(class_id), "#555555"),
            xytext=(3, 3),
            textcoords="offset points",
        )
        box = label.get_window_extent(renderer)
        if not unseen and any(box.overlaps(other) for other in placed):
            label.remove()
            continue
        placed.append(box)


_COLOURS = [
    "#e41a1c",
    "#377eb8",
    "#4daf4a",
    "#984ea3",
    "#ff7f00",
    "#a65628",
    "#f781bf",
    "#999999",
    "#66c2a5",
    "#fc8d62",
    "#8da0cb",
    "#e78ac3",
]
