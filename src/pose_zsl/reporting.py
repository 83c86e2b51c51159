"""Reporting helpers shared by the pipelines: markdown tables, metric histories, curves."""

from __future__ import annotations

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
