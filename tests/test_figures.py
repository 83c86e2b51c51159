"""Figures as a person sees them: rendered, with every title and label inside the canvas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pose_zsl.zsl.metrics import confusion_matrix_figure, per_class_accuracy


def outside_canvas(figure) -> list[str]:
    """The axes (with their titles, tick labels and axis labels, as drawn) whose box leaves
    the figure, by their title or position."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    width, height = figure.bbox.width, figure.bbox.height
    bad = []
    for position, axes in enumerate(figure.axes):
        box = axes.get_tightbbox(renderer)  # only what is drawn: ticks in view, labels, title
        # half a pixel of slack: extents are rounded to device pixels
        if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5 or box.y1 > height + 0.5:
            bad.append(axes.get_title() or f"axes {position}")
    return bad


@pytest.mark.parametrize("classes", [5, 20, 60])
def test_confusion_matrix_titles_and_class_names_fit_the_canvas(classes: int) -> None:
    names = [f"class {i} with a long name (from sitting position)" for i in range(classes)]
    counts = np.random.default_rng(0).integers(0, 5, size=(classes, classes))
    title = "msr_random_10 / relation_net / learned_desc: ZSL (unseen test samples among unseen)"
    figure = confusion_matrix_figure(counts, names, title=title)
    assert outside_canvas(figure) == []
    axes = figure.axes[0]
    assert axes.title.get_text().replace("\n", " ") == title  # wrapped, never cut
    assert [t.get_text() for t in axes.get_xticklabels()] == names


def test_per_class_table_names_the_most_confused_class() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    table = per_class_accuracy(scores, np.array([0, 1, 1]), [0, 1], {0: "wave", 1: "clap"})
    rows = table.set_index("action_name")
    assert rows.loc["clap", "most_confused_with_name"] == "wave"
    assert rows.loc["wave", "most_confused_with_name"] == ""
    assert isinstance(rows, pd.DataFrame)


def test_the_training_curve_names_its_split() -> None:
    from pose_zsl.pipelines.stgcn_training.nodes import training_curves

    history = pd.DataFrame(
        {"epoch": [0, 1], "train_loss": [2.0, 1.0], "train_acc": [0.3, 0.6], "val_acc": [0.2, 0.5],
         "lr": [0.1, 0.1], "samples_per_s": [100.0, 110.0]}
    )  # fmt: skip
    split = pd.DataFrame({"split": ["msr_random_3"] * 2, "action_id": [0, 1], "role": ["seen"] * 2})
    _, figure = training_curves(history, split)
    assert figure.axes[0].get_title() == "ST-GCN training, split msr_random_3"
    assert outside_canvas(figure) == []


def test_the_joint_space_map_has_a_legend_and_no_piled_names() -> None:
    from pose_zsl.reporting import joint_space_figure

    rng = np.random.default_rng(0)
    class_ids = np.arange(60)
    names = {int(i): f"action number {i}" for i in class_ids}
    # many classes close together: names would pile up if all were written
    class_points = rng.normal(scale=0.05, size=(60, 8)) + 1.0
    labels = rng.integers(0, 60, size=300)
    samples = class_points[labels] + rng.normal(scale=0.02, size=(300, 8))
    unseen = [3, 17, 42]
    figure = joint_space_figure(samples, labels, class_points, class_ids, names, unseen, "t")
    figure.canvas.draw()
    axis = figure.axes[0]
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert legend == [
        "seen-class sample", "unseen-class sample (its class colour)", "unseen class name",
        "seen class name",
    ]  # fmt: skip
    renderer = figure.canvas.get_renderer()
    texts = [t for t in axis.texts if t.get_text()]
    drawn = {t.get_text() for t in texts}
    assert {names[i] for i in unseen} <= drawn  # every unseen class is named
    assert len(drawn) < 60  # some seen names were left out rather than piled up
    boxes = [t.get_window_extent(renderer) for t in texts]
    seen_boxes = [b for b, t in zip(boxes, texts, strict=True) if t.get_fontsize() < 8]
    for i, box in enumerate(seen_boxes):
        assert not any(box.overlaps(other) for other in boxes if other is not box), i
