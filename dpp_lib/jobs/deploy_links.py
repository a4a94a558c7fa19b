"""Store on each deployment record what the DORA rules derive from other events (spec
§4.4.4, DESIGN §5): ``caused_incident``/``incident_id`` (deploy → incident correlation) and,
for a deploy that names no PR, ``linked_pr_number``/``linked_ticket_id``/``lead_time_hrs``
of the latest-merged PR it shipped by the time rule.

The rules live once, in ``dpp_lib.metrics.dora``; the metrics apply them live, so they are
never stale. The stored columns are refreshed for the tech streams a worker batch touches
with deploys or incidents, and for every stream by ``dpp rebuild`` and
``dpp metrics materialise``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.metrics import dora
from dpp_lib.metrics.common import Scope, records
from dpp_lib.store import read
from dpp_lib.store.schema import deployment_records, tech_streams

EVERYTHING = datetime(9999, 1, 1, tzinfo=UTC)
KEEP: Any = object()
FIELDS = ("caused_incident", "incident_id", "linked_pr_number", "linked_ticket_id", "lead_time_hrs")


def refresh_deploy_links(
    conn: sa.Connection, *, tech_stream_ids: Iterable[uuid.UUID] | None, window_minutes: int
) -> int:
    """Recompute the links of every record of these tech streams (None: all); returns how
    many records changed."""
    if tech_stream_ids is None:
        wanted = list(conn.execute(sa.select(tech_streams.c.stream_id)).scalars())
    else:
        wanted = sorted(set(tech_stream_ids))
    changed = 0
    for stream in wanted:
        scope = Scope(tech_stream_id=stream)
        deploys = read.deploys(conn, as_of=EVERYTHING, scope=scope)
        if deploys.empty:
            continue
        incidents = read.incidents(conn, as_of=EVERYTHING, scope=scope)
        prs = read.prs(conn, as_of=EVERYTHING, scope=scope)
        updates = _links(deploys, incidents, prs, window_minutes)
        stored = _stored(conn, list(updates))
        for rid, values in updates.items():
            if values["lead_time_hrs"] is KEEP:
                values["lead_time_hrs"] = stored.get(rid, {}).get("lead_time_hrs")
        todo = [
            {"rid": rid, **values}
            for rid, values in updates.items()
            if any(_differs(stored[rid].get(k), values[k]) for k in FIELDS)
        ]
        if todo:
            d = deployment_records
            conn.execute(
                d.update()
                .where(d.c.record_id == sa.bindparam("rid"))
                .values({k: sa.bindparam(k) for k in FIELDS}),
                todo,
            )
        changed += len(todo)
    return changed


def _links(
    deploys: pd.DataFrame, incidents: pd.DataFrame, prs: pd.DataFrame, window_minutes: int
) -> dict[Any, dict[str, Any]]:
    correlated = dora.correlate_incidents(deploys, incidents, window_minutes=window_minutes)
    shipped = dora.shipped_prs(prs, deploys)
    by_record: dict[Any, list[dict[str, Any]]] = {}
    for row in records(shipped):
        by_record.setdefault(row["record_id"], []).append(row)
    out: dict[Any, dict[str, Any]] = {}
    for d in records(correlated):
        ships = by_record.get(d["record_id"], [])
        explicit = [s for s in ships if s["ship_rule"] == "explicit"]
        chosen = None
        if explicit:
            chosen = min(explicit, key=lambda s: (s["merged_at"], s["pr_number"]))
        elif ships:
            chosen = max(ships, key=lambda s: (s["merged_at"], s["pr_number"]))
        named = _missing_to_none(d["linked_pr_number"])
        values = {
            "caused_incident": bool(d["caused_incident"]),
            "incident_id": _missing_to_none(d["incident_id"]),
            "linked_pr_number": int(named) if named is not None else None,
            "linked_ticket_id": _missing_to_none(d["linked_ticket_id"]),
            "lead_time_hrs": KEEP,  # no shipped PR known: the projection's value stands
        }
        if chosen is not None:
            lead = chosen["lead_time_hrs"]
            values |= {
                "linked_pr_number": int(chosen["pr_number"]),
                "linked_ticket_id": _missing_to_none(chosen["linked_ticket_id"]),
                "lead_time_hrs": round(float(lead), 3)
                if lead is not None and not pd.isna(lead)
                else None,
            }
        out[d["record_id"]] = values
    return out


def _stored(conn: sa.Connection, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    d = deployment_records
    out: dict[Any, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        for r in conn.execute(
            sa.select(d.c.record_id, *(d.c[k] for k in FIELDS)).where(
                d.c.record_id.in_(ids[i : i + 500])
            )
        ):
            out[r.record_id] = dict(r._mapping)
    return out


def _missing_to_none(value: Any) -> Any:
    """NaN/NaT/None (how a frame holds a missing value) → None."""
    try:
        return None if value is None or pd.isna(value) else value
    except (TypeError, ValueError):  # lists and other non-scalars are values
        return value


def _differs(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    if isinstance(b, float):
        return abs(float(a) - b) > 1e-6
    return bool(a != b)
