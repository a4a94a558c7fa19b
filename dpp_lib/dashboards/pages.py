"""HTML fragments the dashboard notebooks display. Access problems become messages on the
page (``role="alert"``), never a traceback and never the data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape

import sqlalchemy as sa

from dpp_lib.dashboards import data, identity
from dpp_lib.views.common import load_org


def message_html(kind: str, text: str) -> str:
    """An access or sign-in message (``kind``: access-denied | not-signed-in)."""
    style = "border-left: 4px solid #b3261e; background: #fdeceb; padding: 0.6em 1em"
    return (
        f'<div id="dpp-{kind}" class="dpp-message" role="alert" style="{style}">'
        f"<p>{escape(text)}</p></div>"
    )


def whoami_html(
    conn: sa.Connection,
    *,
    stream: str,
    as_of: datetime,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The signed-in user, their role grants and visible streams, and for ``stream`` its
    work in progress at ``as_of`` (or the access message)."""
    try:
        principal = identity.current_principal(conn, environ)
    except identity.NotSignedIn as exc:
        return message_html("not-signed-in", exc.message)
    org = load_org(conn)
    visible = data.visible_streams(org, principal)
    roles = data.role_lines(conn, org, principal)
    parts = [
        f'<p id="dpp-user">Signed in as <strong>{escape(principal.name)}</strong>'
        f" (user {escape(principal.subject)})</p>",
        "<h2>Roles</h2>",
        _items("dpp-roles", [r.describe() for r in roles], "no roles: you see no stream"),
        "<h2>Delivery streams you can see</h2>",
        _items("dpp-delivery-streams", [s.name for s in visible.delivery], "none"),
        "<h2>Tech streams you can see</h2>",
        _items("dpp-tech-streams", [s.name for s in visible.tech], "none"),
    ]
    if stream:
        try:
            wip = data.stream_wip(conn, principal, stream, as_of=as_of)
        except data.StreamAccessDenied as exc:
            parts.append(message_html("access-denied", exc.message))
        else:
            stages = ", ".join(f"{k} {v}" for k, v in wip.by_stage.items())
            parts.append(
                f'<h2 id="dpp-stream">{escape(wip.stream.display_name)}'
                f" ({escape(wip.stream.name)})</h2>"
                f'<p id="dpp-stream-figure">Work in progress: <strong>{wip.wip_total}</strong>'
                f" items ({escape(stages)}; {wip.blocked} blocked)"
                f" as of {escape(wip.as_of.isoformat(timespec='minutes'))}.</p>"
            )
    return "\n".join(parts)


def _items(element_id: str, values: list[str], empty: str) -> str:
    if not values:
        return f'<p id="{element_id}" class="dpp-empty">{escape(empty)}</p>'
    rows = "".join(f"<li>{escape(v)}</li>" for v in values)
    return f'<ul id="{element_id}">{rows}</ul>'
