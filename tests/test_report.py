"""The HTML report: made from the run's own tables and figures, and read in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import TinyRun, running_under_ci

from pose_zsl import grid
from pose_zsl.html_report import figure_html, markdown_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Counting what a reader would see, in the rendered page: figures that decoded and have a size
# on screen, and tables. Written into <body> attributes that --dump-dom prints.
PROBE = """<script>
addEventListener("load", () => {
  const shown = [...document.images].filter(
    (image) => image.complete && image.naturalWidth > 0 && image.getBoundingClientRect().width > 100
  );
  document.body.dataset.images = document.images.length;
  document.body.dataset.shown = shown.length;
  document.body.dataset.tables = document.querySelectorAll("table").length;
  const sections = [...document.querySelectorAll("h2")];
  document.body.dataset.headers = sections.map((h) => h.textContent).join("|");
});
</script>"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the closed network refuses its connections
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",  # run the page's load handler before the DOM is dumped
    "--dump-dom",
]


def test_markdown_headings_sit_below_the_page_sections_and_raw_html_is_escaped() -> None:
    page = markdown_html("# Title\n\n## Part\n\n<script>alert(1)</script>\n\n| a |\n|---|\n| 1 |\n")
    assert "<h3>Title</h3>" in page and "<h4>Part</h4>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<table>" in page and "<td>1</td>" in page


def test_a_figure_that_is_not_a_png_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'confusion' is not a PNG"):
        figure_html(b"GIF89a", "confusion")
    assert 'alt="a &lt;b&gt;"' in figure_html(PNG_SIGNATURE + b"rest", "a <b>")


def report_of(run: TinyRun) -> str:
    return (run.project / "data/08_reporting/report.html").read_text()


def test_the_report_holds_every_table_and_figure_of_the_run(
    tiny_tracked_project: TinyRun,
) -> None:
    page = report_of(tiny_tracked_project)
    variants = grid.variants()  # the tiny run's environment keeps the default grid
    splits = sorted({split for split, _, _ in variants})
    assert len(variants) == 18, variants
    # each variant's confusion matrix and joint-space map, each split's curve, the histogram
    assert page.count('<img src="data:image/png;base64,') == 2 * len(variants) + len(splits) + 1
    for split, head, embedding in variants:
        assert f"<h3>{split} / {head} / {embedding}</h3>" in page
    assert re.search(r"<td>\d+\.\d ± \d+\.\d \[\d+\.\d, \d+\.\d\]</td>", page), "no interval cell"
    for split in splits:  # every unseen class with its nearest seen class, as in splits.md
        classes = pd.read_parquet(
            tiny_tracked_project.project / f"data/05_model_input/split_classes_{split}.parquet"
        )
        for name in classes.loc[classes["role"] == "unseen", "action_name"]:
            assert f"<td>{name}</td>" in page, (split, name)
    assert 'src="http' not in page and 'href="http' not in page, "the page must stand alone"


def chromium_or_skip() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if running_under_ci():
            pytest.fail(f"{message}; CI installs it in .ci/run and must run this test")
        pytest.skip(message)
    return path


def test_the_report_renders_in_headless_chromium(
    tiny_tracked_project: TinyRun, tmp_path: Path
) -> None:
    chromium = chromium_or_skip()
    page = report_of(tiny_tracked_project)
    probed = tmp_path / "report.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body is not None, result.stdout[:2000]
    seen = dict(re.findall(r'data-(\w+)="([^"]*)"', body[1]))
    expected_images = page.count("<img ")
    assert int(seen["images"]) == expected_images
    assert int(seen["shown"]) == expected_images, "figures that did not decode or have no size"
    # result tables + splits + a per-class table per variant
    assert int(seen["tables"]) >= page.count("<table") > 18
    assert seen["headers"].split("|")[:3] == ["Results", "Splits", "ST-GCN training"]
