"""The page URL's query string: encoding filter values, and writing them back into the
browser's address bar with ``history.replaceState`` so a view can be bookmarked (DESIGN §10).

The kernel cannot touch the browser's location directly; it displays a two-line Javascript
output in a hidden ``Output`` widget, which the page runs. No script is loaded from anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode

import ipywidgets as widgets  # type: ignore[import-untyped]
from IPython.display import Javascript, display

# Characters left readable in the address bar (they are safe in a query value).
SAFE = ",:"


def encode(params: Mapping[str, str]) -> str:
    """``{"stream": "payments", "range": "90d"}`` → ``stream=payments&range=90d`` (in the
    mapping's order; ``+`` of a time zone offset is escaped so it does not become a space)."""
    return urlencode(list(params.items()), safe=SAFE)


def replace_state_script(query: str) -> str:
    """Javascript that puts ``query`` in the address bar without reloading or adding a
    history entry (the path and fragment stay)."""
    literal = json.dumps(query)
    return (
        f"(function () {{ var q = {literal};"
        " var url = window.location.pathname + (q ? '?' + q : '') + window.location.hash;"
        " window.history.replaceState(window.history.state, '', url); })();"
    )


class UrlWriter:
    """An invisible ``Output`` widget that rewrites the page's query string on demand;
    ``widget`` must be displayed on the page (anywhere) for ``write`` to reach it."""

    def __init__(self) -> None:
        self.widget = widgets.Output(layout=widgets.Layout(height="0px", overflow="hidden"))
        self.widget.add_class("dpp-url-writer")
        self.last: str | None = None

    def write(self, query: str) -> None:
        if query == self.last:
            return
        self.last = query
        self.widget.clear_output()
        with self.widget:
            display(Javascript(replace_state_script(query)))  # type: ignore[no-untyped-call]
