"""The OpenAPI examples: real answers of the demo organisation (``dpp api examples``).

The demo organisation (84 days to 2026-11-16, seed 11) is loaded into a throwaway SQLite
database through the real endpoints, then every documented endpoint is asked for
``EXAMPLE_AS_OF`` and its answer kept, lists cut to their first ``KEEP`` items so the page
stays readable. Nothing is typed by hand; ``tests/ingest_service/test_openapi.py`` checks
that the committed file is what this produces.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.errors import DppError
from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.db import make_engine
from dpp_lib.store.pr_links import check_ticket_key
from dpp_lib.store.schema import pr_events, work_item_events
from ingest_service.app import create_app

EXAMPLE_AS_OF = "2026-11-12T18:00:00Z"
DEMO_DAYS, DEMO_SEED, DEMO_UNTIL = 84, 11, "2026-11-16"  # as tests/conftest.py's demo_org
KEEP = 3
# Values of the moment the examples were made (they differ on every run).
VOLATILE = (
    *("computed_at", "request_id", "timestamp", "evaluated_at", "triggeredAt", "lastEventAt"),
    "response_time_ms",
)

# endpoint → (method, path, query); streams of the example organisation (config/example.yaml)
REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "streams/delivery": ("GET", "/api/v1/streams/delivery", {}),
    "streams/tech": ("GET", "/api/v1/streams/tech", {}),
    "sprints": ("GET", "/api/v1/sprints", {"stream": "payments"}),
    "metrics/realtime": ("GET", "/api/v1/metrics/realtime", {"stream": "payments"}),
    "metrics/diagnostic": ("GET", "/api/v1/metrics/diagnostic", {"stream": "payments"}),
    "metrics/trends": ("GET", "/api/v1/metrics/trends", {"tech_stream": "core-api"}),
    "metrics/trends#summary": ("GET", "/api/v1/metrics/trends", {}),
    "metrics/forecast": ("GET", "/api/v1/metrics/forecast", {"stream": "payments"}),
    "metrics/pulse": ("GET", "/api/v1/metrics/pulse", {"stream": "payments"}),
    "metrics/cross-stream": ("GET", "/api/v1/metrics/cross-stream", {}),
    "metrics/breakdown": (
        "GET",
        "/api/v1/metrics/breakdown",
        {"metric": "throughput", "dimension": "delivery_stream"},
    ),
    "metrics/drilldown": (
        "GET",
        "/api/v1/metrics/drilldown",
        {"metric": "cycle_time", "stream": "payments", "limit": 3},
    ),
    "admin/data-quality": ("GET", "/api/v1/admin/data-quality", {}),
    "admin/integration-health": ("GET", "/api/v1/admin/integration-health", {}),
    "admin/system-alerts": ("GET", "/api/v1/admin/system-alerts", {}),
    "cache/stats": ("GET", "/api/v1/cache/stats", {}),
    "cache/invalidate": ("POST", "/api/v1/cache/invalidate", {"pattern": "metrics/*"}),
    "pr-events/link-ticket": ("POST", "/api/v1/pr-events/{event_id}/link-ticket", {}),
    "health": ("GET", "/health", {}),
    "health/deep": ("GET", "/health/deep", {}),
}
NO_AS_OF = (
    "streams/delivery",
    "streams/tech",
    "sprints",
    "admin/integration-health",
    "admin/system-alerts",
    "cache/stats",
    "cache/invalidate",
    "pr-events/link-ticket",
    "health",
    "health/deep",
)


def generate(settings: Settings) -> dict[str, Any]:
    """Ask every endpoint of ``REQUESTS`` on the database of ``settings``."""
    engine = make_engine(settings.resolved_database_url())
    with engine.begin() as conn:
        _, token = create_key(
            conn, name="openapi examples", permissions=["metrics:read", "admin"], expires_days=1
        )
        pr_event, ticket = _unlinked_pr(conn)
    engine.dispose()
    out: dict[str, Any] = {}
    with TestClient(create_app(settings)) as client:
        for name, (method, path, query) in REQUESTS.items():
            params = dict(query)
            if name not in NO_AS_OF:
                params["as_of"] = EXAMPLE_AS_OF
            body: dict[str, Any] | None = None
            if method == "POST":
                body, params = params, {}
            if name == "pr-events/link-ticket":
                path, body = path.format(event_id=pr_event), {"ticket_id": ticket}
            answer = client.request(
                method,
                path,
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:300]}")
            out[name] = _trim(answer.json())
    return out


def _unlinked_pr(conn: sa.Connection) -> tuple[str, str]:
    """The first unlinked PR of the demo and a ticket its tech stream accepts."""
    lookups = load_lookups(conn)
    e = pr_events
    prs = conn.execute(
        sa.select(e.c.event_id, e.c.tech_stream_id)
        .where(e.c.event_type == "opened", e.c.linked_ticket_id.is_(None))
        .order_by(e.c.event_timestamp, e.c.pr_number)
    ).all()
    tickets = conn.execute(
        sa.select(work_item_events.c.ticket_id)
        .where(
            work_item_events.c.event_type == "created",
            work_item_events.c.delivery_stream_id.is_not(None),
        )
        .order_by(work_item_events.c.event_timestamp, work_item_events.c.ticket_id)
    ).scalars()
    keys = list(tickets)
    for event_id, tech_stream_id in prs:
        for key in keys:
            try:
                check_ticket_key(key, lookups, tech_stream_id=tech_stream_id)
            except DppError:
                continue
            return str(event_id), key
    raise RuntimeError("the demo organisation has no unlinked PR to link")


def generate_from_demo() -> dict[str, Any]:
    """Load the demo organisation into a temporary database and ``generate``."""
    from dpp_lib.jobs.rebuild import rebuild
    from dpp_lib.orgconfig import read_config
    from dpp_lib.settings import ensure_secrets
    from dpp_lib.store.config_tables import apply_config
    from dpp_lib.store.migrate import upgrade
    from ingest_service.demo_load import load_demo

    config = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
    with tempfile.TemporaryDirectory(prefix="dpp-examples-") as tmp:
        base = Path(tmp)
        settings = Settings(
            environment="dev",
            database_url=f"sqlite:///{base / 'demo.sqlite3'}",
            var_dir=base,
            secrets_dir=base / "secrets",
            deferred_enrichment_delay_seconds=0,
        )
        ensure_secrets(settings)
        engine = make_engine(settings.resolved_database_url())
        upgrade(engine)
        with engine.begin() as conn:
            apply_config(conn, read_config(config))
        load_demo(
            settings,
            days=DEMO_DAYS,
            seed=DEMO_SEED,
            until=DEMO_UNTIL,
            config_file=config,
            progress=False,
        )
        rebuild(engine, settings)
        engine.dispose()
        return generate(settings)


def _trim(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("…" if k in VOLATILE else _trim(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_trim(v) for v in value[:KEEP]]
    return value


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalised(examples: dict[str, Any]) -> Any:
    """The examples with ids replaced by their order of appearance (ids differ per load)."""
    text = json.dumps(examples, sort_keys=True)
    seen: dict[str, str] = {}
    return json.loads(UUID_RE.sub(lambda m: seen.setdefault(m.group(0), f"<id{len(seen)}>"), text))


def write(examples: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(examples, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
