"""What dashboard pages are made of: zones (a titled block a filter can hide), metric tiles,
charts, empty states that say what is missing and what would fix it, and the "reduced
confidence" badge of spec §5.6. Everything but ``Zone`` is an HTML string; values are
escaped here, so callers pass plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Protocol

import ipywidgets as widgets  # type: ignore[import-untyped]

STYLE = """<style>
.dpp-page { font-family: system-ui, sans-serif; color: #1f2933; }
.dpp-page .widget-html-content { line-height: 1.35; }
.dpp-page p { margin: 0.3em 0; }
.dpp-zone { border-top: 2px solid #d9dee3; margin-top: 0.8em; padding-top: 0.2em; }
.dpp-zone h2 { font-size: 1.15em; margin: 0.3em 0; }
.dpp-row { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
.dpp-tile { border: 1px solid #d9dee3; border-radius: 6px; padding: 0.5em 0.8em;
  min-width: 10em; max-width: 17em; background: #fafbfc; }
.dpp-tile .dpp-label { font-size: 0.8em; color: #52606d; text-transform: uppercase; }
.dpp-tile .dpp-value { font-size: 1.5em; font-weight: 600; }
.dpp-tile .dpp-detail { font-size: 0.8em; color: #52606d; }
.dpp-level { display: inline-block; border-radius: 3px; padding: 0 0.4em; font-size: 0.75em;
  color: #fff; background: #7b8794; }
.dpp-level-elite { background: #1a9850; } .dpp-level-high { background: #66a61e; }
.dpp-level-medium { background: #d69e2e; } .dpp-level-low { background: #d73027; }
.dpp-figure { margin: 0; }
.dpp-figure figcaption { font-size: 0.8em; color: #52606d; max-width: 40em; }
.dpp-empty { border-left: 4px solid #9aa5b1; background: #f5f7fa; padding: 0.4em 0.8em;
  max-width: 40em; }
.dpp-reduced-confidence { border-left: 4px solid #d69e2e; background: #fff8e6;
  padding: 0.2em 0.6em; font-size: 0.8em; margin: 0.2em 0; }
.dpp-notice { border-left: 4px solid #3b82f6; background: #eef4ff; padding: 0.3em 0.8em; }
</style>"""


class WarningLike(Protocol):
    def text(self) -> str: ...


@dataclass(frozen=True)
class Tile:
    """One figure of a summary bar: ``value`` already formatted; ``level``: a DORA level
    (elite | high | medium | low) or None; ``empty``: why there is no figure and what would
    give one (then ``value`` is not shown)."""

    key: str
    label: str
    value: str
    detail: str = ""
    level: str | None = None
    warnings: Sequence[WarningLike] = ()
    empty: str | None = None


class Zone:
    """A titled block of the page: ``show(html)`` replaces its content; ``hidden`` hides
    it (a zone toggle). Its element has the classes ``dpp-zone dpp-zone-<key>``."""

    def __init__(self, key: str, title: str) -> None:
        self.key = key
        self.body = widgets.HTML(value=empty_state("Loading…", "", key=f"{key}-loading"))
        self.widget = widgets.VBox([widgets.HTML(value=f"<h2>{escape(title)}</h2>"), self.body])
        self.widget.add_class("dpp-zone")
        self.widget.add_class(f"dpp-zone-{key}")

    def show(self, html: str) -> None:
        self.body.value = html

    @property
    def hidden(self) -> bool:
        return bool(self.widget.layout.display == "none")

    @hidden.setter
    def hidden(self, value: bool) -> None:
        self.widget.layout.display = "none" if value else ""


def row(parts: Iterable[str]) -> str:
    return f'<div class="dpp-row">{"".join(parts)}</div>'


def tile(t: Tile) -> str:
    level = (
        f' <span class="dpp-level dpp-level-{escape(t.level)}">{escape(t.level)}</span>'
        if t.level
        else ""
    )
    body = (
        f'<div class="dpp-value dpp-none">—</div><div class="dpp-detail">{escape(t.empty)}</div>'
        if t.empty is not None
        else f'<div class="dpp-value">{escape(t.value)}{level}</div>'
        + (f'<div class="dpp-detail">{escape(t.detail)}</div>' if t.detail else "")
    )
    return (
        f'<div class="dpp-tile" id="dpp-tile-{escape(t.key)}">'
        f'<div class="dpp-label">{escape(t.label)}</div>{body}{badge(t.warnings)}</div>'
    )


def figure(key: str, svg: str, *, caption: str = "", warnings: Sequence[WarningLike] = ()) -> str:
    """A chart (an SVG string from ``dpp_lib.charts``) with its badge and caption."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure class="dpp-figure dpp-chart" id="dpp-chart-{escape(key)}">'
        f"{badge(warnings)}{svg}{cap}</figure>"
    )


def empty_state(missing: str, fix: str, *, key: str) -> str:
    """What is missing, and what would fix it (never a blank chart)."""
    fix_html = f" <span>{escape(fix)}</span>" if fix else ""
    return (
        f'<div class="dpp-empty" role="status" id="dpp-empty-{escape(key)}">'
        f"<strong>{escape(missing)}</strong>{fix_html}</div>"
    )


def badge(warnings: Sequence[WarningLike]) -> str:
    """The "reduced confidence" marker of a figure, with each low rate (§5.6); empty
    without warnings."""
    if not warnings:
        return ""
    rates = "; ".join(escape(w.text()) for w in warnings)
    return (
        '<div class="dpp-reduced-confidence" role="note">'
        f"<strong>Reduced confidence</strong>: {rates}</div>"
    )


def notices(texts: Sequence[str]) -> str:
    if not texts:
        return ""
    items = "".join(f"<p>{escape(t)}</p>" for t in texts)
    return f'<div class="dpp-notice" role="status" id="dpp-notices">{items}</div>'


def paragraph(text: str, *, key: str = "") -> str:
    ident = f' id="dpp-{escape(key)}"' if key else ""
    return f"<p{ident}>{escape(text)}</p>"
