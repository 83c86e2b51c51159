"""Node of the report pipeline: one HTML page from the run's reports, tables and figures."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pose_zsl.html_report import (
    Section,
    collapsed,
    figure_html,
    frame_html,
    heading_html,
    markdown_html,
    report_page,
)

log = logging.getLogger(__name__)

#: joins a split slot or variant key (``split__head__embedding``) and the artefact's kind in the
#: node's keyword names, e.g. ``nearest__devise__learned__confusion``
SEP = "__"


def _by_owner(artefacts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"nearest__devise__learned": {"confusion": ..., ...}, "nearest": {...}}`` in input
    order."""
    owners: dict[str, dict[str, Any]] = {}
    for name, value in artefacts.items():
        owner, kind = name.rsplit(SEP, 1)
        owners.setdefault(owner, {})[kind] = value
    return owners


def _variant_parts(title: str, artefacts: dict[str, Any]) -> list[str]:
    per_class: pd.DataFrame = artefacts["per_class"]
    table = per_class.drop(columns=["most_confused_with"], errors="ignore")
    return [
        heading_html(title),
        figure_html(artefacts["confusion"], f"{title}: confusion matrix, unseen test samples"),
        figure_html(artefacts["joint_space"], f"{title}: joint embedding space"),
        collapsed(f"{title}: accuracy per class ({len(table)} rows)", frame_html(table)),
    ]


def html_report(
    params: dict[str, Any],
    frames_histogram: bytes,
    zsl_top1: str,
    over_splits: str,
    gzsl: str,
    gzsl_seen_unseen: str,
    splits: str,
    ingestion: str,
    **artefacts: Any,
) -> str:
    """The run as one self-contained HTML page: results with intervals, the splits (each
    unseen class's nearest seen class), ST-GCN training curves, each variant's confusion matrix,
    joint-space map and per-class accuracy, and the ingested data."""
    results = Section("Results", [markdown_html(text) for text in (zsl_top1, over_splits)])
    results.parts += [markdown_html(gzsl), markdown_html(gzsl_seen_unseen)]
    training = Section("ST-GCN training")
    variant_sections: dict[str, Section] = {}
    for owner, found in _by_owner(artefacts).items():
        names = owner.split(SEP)
        if len(names) == 1:
            training.parts.append(figure_html(found["training_curve"], f"{owner}: training"))
            continue
        split = names[0]
        section = variant_sections.setdefault(split, Section(f"Split {split}: per variant"))
        section.parts += _variant_parts(" / ".join(names), found)
    data = Section("Data", [markdown_html(ingestion), figure_html(frames_histogram, "frames")])
    sections = [
        results,
        Section("Splits", [markdown_html(splits)]),
        training,
        *variant_sections.values(),
        data,
    ]
    subtitle = f"dataset {params['dataset']}, protocol {params['protocol']}"
    page = report_page("pose-zsl run report", subtitle, sections)
    log.info("HTML report: %d sections, %.1f MB", len(sections), len(page) / 1e6)
    return page
