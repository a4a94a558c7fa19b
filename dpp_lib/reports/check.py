"""The self-containment check every published page passes: nothing in it may load from
another place (a script, style sheet, font, image or frame by URL), so it opens from a file
share or an e-mail attachment and tells no server that it was opened.

Refused: an ``src``/``href``/``action``/``poster``/``data``/``srcset`` attribute, a CSS
``url(...)`` or an ``@import`` whose target starts with ``http:``, ``https:`` or ``//``.
Namespace declarations (``xmlns="http://www.w3.org/2000/svg"``) name no resource and pass.
"""

from __future__ import annotations

import re

from dpp_lib.reports.errors import ExternalReference

EXTERNAL = re.compile(
    r"""
    \b(?:src|href|xlink:href|action|formaction|poster|data|srcset|background)
        \s*=\s*["']?\s*(?:https?:)?//[^\s"'>]*
    | url\(\s*["']?\s*(?:https?:)?//[^\s"')]*
    | @import\s+["']\s*(?:https?:)?//[^\s"']*
    """,
    re.IGNORECASE | re.VERBOSE,
)


def external_references(page: str) -> list[str]:
    """Each reference to something outside the page, as written in it."""
    return [m.group(0) for m in EXTERNAL.finditer(page)]


def check_self_contained(page: str, *, name: str) -> None:
    """Refuse a page that loads anything from elsewhere, naming the first reference."""
    found = external_references(page)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ExternalReference(
            f"{name} is not self-contained: it refers to {found[0][:200]!r}{more}"
        )
