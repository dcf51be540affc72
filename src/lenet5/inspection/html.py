"""One self-contained HTML page: every figure embedded as base64, no scripts, no network.

A report is a list of :class:`Section` objects; this module only lays them out.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d232a; background: #f5f6f8; }
header { background: #1f3b57; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; opacity: 0.9; font-size: 14px; }
nav { padding: 8px 32px; background: #e4e8ee; font-size: 14px; position: sticky; top: 0; }
nav a { margin-right: 14px; color: #1f3b57; text-decoration: none; white-space: nowrap; display: inline-block; }
main { padding: 8px 32px 32px; max-width: 1280px; }
section { background: white; border-radius: 8px; padding: 14px 22px; margin: 16px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,0.12); }
h2 { margin: 4px 0 8px; font-size: 19px; color: #1f3b57; }
p.note { margin: 4px 0; font-size: 14px; }
.verdict { font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.figures figure { margin: 0; max-width: 100%; }
figcaption { font-size: 12px; color: #555; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #dde1e6; padding: 3px 10px; text-align: right; }
th { background: #eef1f5; }
td:first-child, th:first-child { text-align: left; }
.tables { display: flex; flex-wrap: wrap; gap: 28px; }
"""


@dataclass
class Table:
    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass
class Section:
    """One part of the report: notes (plain text, escaped here), tables and figures (PNG paths)."""

    id: str
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (png, caption)
    verdict: str | None = None


def embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><caption>{html.escape(table.caption)}</caption><tr>{head}</tr>{body}</table>"


def _section(section: Section) -> str:
    parts = [f'<section id="{section.id}"><h2>{html.escape(section.title)}</h2>']
    if section.verdict:
        parts.append(f'<p class="note verdict">{html.escape(section.verdict)}</p>')
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
    if section.tables:
        parts.append('<div class="tables">' + "".join(_table(t) for t in section.tables) + "</div>")
    if section.figures:
        figures = "".join(f'<figure><img src="{embed_png(png)}" alt="{html.escape(caption)}">'
                          f"<figcaption>{html.escape(png.name)}: {html.escape(caption)}</figcaption></figure>"
                          for png, caption in section.figures)
        parts.append(f'<div class="figures">{figures}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def render(title: str, subtitle: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole page as one string."""
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    header = "".join(f"<p>{html.escape(line)}</p>" for line in subtitle)
    body = "\n".join(_section(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><header><h1>{html.escape(title)}</h1>{header}</header>"
            f"<nav>{nav}</nav><main>\n{body}\n</main></body></html>\n")
