"""Reporting helpers shared by the pipelines: markdown tables, metric histories, curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    axis = figure.add_subplot()
    palette = dict(zip(unseen_ids, _COLOURS, strict=False))
    seen_samples = ~np.isin(sample_labels, unseen_ids)
    axis.scatter(*samples[seen_samples].T, s=6, c="#bbbbbb", label="seen-class samples")
    for class_id, colour in palette.items():
        mine = sample_labels == class_id
        axis.scatter(*samples[mine].T, s=14, c=colour, marker="x")
    for (x, y), class_id in zip(classes, class_ids, strict=True):
        colour = palette.get(int(class_id), "#555555")
        axis.scatter([x], [y], s=40 if int(class_id) in palette else 12, c=colour, marker="o")
        axis.annotate(
            class_names[int(class_id)],
            (x, y),
            fontsize=8 if int(class_id) in palette else 5,
            color=colour,
            xytext=(3, 3),
            textcoords="offset points",
        )
    axis.set_title(title)
    axis.set_xticks([])
    axis.set_yticks([])
    figure.tight_layout()
    return figure


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
