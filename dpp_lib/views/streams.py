"""Configuration views (API reference "Stream Endpoints"): streams and sprints."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dpp_lib.errors import BadParameter
from dpp_lib.metrics.common import Scope
from dpp_lib.store.schema import sprints
from dpp_lib.views.common import Org

SPRINT_STATES = ("future", "active", "closed")


def delivery_streams(org: Org, *, scope: Scope) -> list[dict[str, Any]]:
    """Active delivery streams the scope covers, by name."""
    return [
        {
            "id": str(s.stream_id),
            "name": s.name,
            "display_name": s.display_name,
            "team_size": s.team_size,
        }
        for s in org.delivery_in(scope)
    ]


def tech_streams(org: Org, *, scope: Scope) -> list[dict[str, Any]]:
    return [
        {
            "id": str(s.stream_id),
            "name": s.name,
            "display_name": s.display_name,
            "github_org": s.github_org,
        }
        for s in org.tech_in(scope)
    ]


def sprint_list(
    conn: sa.Connection, *, delivery_stream_id: object, state: str | None = None
) -> list[dict[str, Any]]:
    """One delivery stream's sprints, newest start first; ``state`` filters."""
    if state is not None and state not in SPRINT_STATES:
        raise BadParameter("state", f"unknown sprint state {state!r}", allowed=list(SPRINT_STATES))
    s = sprints
    stmt = sa.select(s).where(s.c.delivery_stream_id == delivery_stream_id)
    if state is not None:
        stmt = stmt.where(s.c.state == state)
    return [
        {
            "id": str(r.sprint_id),
            "name": r.name,
            "state": r.state,
            "start_date": r.start_date.isoformat(),
            "end_date": r.end_date.isoformat(),
            "goal": r.goal,
            "jira_sprint_id": r.jira_sprint_id,
        }
        for r in conn.execute(stmt.order_by(s.c.start_date.desc(), s.c.name))
    ]
