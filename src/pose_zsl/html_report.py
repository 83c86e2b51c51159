"""One self-contained HTML page per run: the markdown reports, tables and PNG figures of the run
inlined (figures as ``data:`` URIs), so the file can be mailed, archived or opened from MLflow
without the folder it came from."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

import pandas as pd
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 2rem;
       color: #222; line-height: 1.4; }
nav { background: #f4f4f6; padding: 0.5rem 1rem; border-radius: 6px; }
nav ul { columns: 3; margin: 0; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f4f4f6; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8rem; color: #555; }
details { margin: 0.3rem 0 1rem; } summary { cursor: pointer; }
"""


@dataclass
class Section:
    """A top-level part of the report: a heading and its HTML body, built with the helpers."""

    heading: str
    parts: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")


def markdown_html(text: str, top_level: int = 3) -> str:
    """A markdown report (tables included) as HTML; raw HTML in it is escaped, not rendered.
    Its headings start at ``<h{top_level}>`` so that they sit below the page's sections."""
    shift = top_level - 1
    return re.sub(
        r"<(/?)h([1-6])>",
        lambda match: f"<{match[1]}h{min(int(match[2]) + shift, 6)}>",
        _MARKDOWN.render(text),
    )


def figure_html(png: bytes, caption: str) -> str:
    """A PNG inlined as a ``data:`` URI with its caption (also its alt text)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"figure {caption!r} is not a PNG image")
    data = base64.b64encode(png).decode("ascii")
    text = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def frame_html(frame: pd.DataFrame, float_digits: int = 1) -> str:
    """A table (values escaped, floats rounded, missing values as a dash)."""
    return frame.to_html(
        index=False,
        na_rep="-",
        float_format=lambda value: f"{value:.{float_digits}f}",
        border=0,
        escape=True,
    )


def collapsed(summary: str, body: str) -> str:
    """``body`` behind a click on ``summary`` (long tables that most readers skip)."""
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def heading_html(text: str, level: int = 3) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def report_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: title, a table of contents, then each section."""
    contents = "".join(
        f'<li><a href="#{section.anchor}">{html.escape(section.heading)}</a></li>'
        for section in sections
    )
    body = "".join(
        f'<section id="{section.anchor}"><h2>{html.escape(section.heading)}</h2>'
        + "".join(section.parts)
        + "</section>"
        for section in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
        f"<nav><ul>{contents}</ul></nav>{body}</body></html>\n"
    )
