"""``dpp demo load``: generate the demo organisation's history and send it through the real
HTTP endpoints, signed with the real secrets and a real (temporary) API key.

Same seed and ``until`` → same deliveries with the same delivery ids, so loading twice adds
nothing (the inbox deduplicates on delivery id).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dpp_lib.errors import DppError
from dpp_lib.jobs.demo import generate_demo, send_deliveries
from dpp_lib.orgconfig import read_config
from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key, revoke_key
from dpp_lib.store.config_tables import config_fingerprint, config_version
from dpp_lib.store.db import make_engine
from dpp_lib.store.migrate import is_up_to_date
from dpp_lib.store.schema import raw_events
from ingest_service.runtime import running_api
from ingest_service.worker import Worker, inbox_status

DEFAULT_CONFIG = Path("config/example.yaml")


def demo_until(until: str | None) -> datetime:
    """The end of the demo history: midnight UTC starting the given day (default today)."""
    day = date.fromisoformat(until) if until else datetime.now(UTC).date()
    return datetime.combine(day, dtime(0), tzinfo=UTC)


def load_demo(
    settings: Settings,
    *,
    days: int,
    seed: int,
    until: str | None,
    url: str | None = None,
    if_empty: bool = False,
    config_file: Path = DEFAULT_CONFIG,
    progress: bool = True,
) -> dict[str, Any]:
    engine = make_engine(settings.resolved_database_url())
    if not is_up_to_date(engine):
        raise DppError("the database schema is not up to date: run `dpp db upgrade` first")
    cfg = read_config(config_file)
    with engine.connect() as conn:
        if config_version(conn) != config_fingerprint(cfg):
            raise DppError(
                f"{config_file} is not the loaded organisation config: "
                f"run `dpp config load {config_file}` first"
            )
        existing = conn.execute(sa.select(sa.func.count()).select_from(raw_events)).scalar_one()
    if if_empty and existing:
        return {"skipped": f"the inbox already holds {existing} deliveries"}
    started = time.monotonic()
    deliveries = generate_demo(cfg, days=days, seed=seed, until=demo_until(until))
    generated = time.monotonic() - started
    with engine.begin() as conn:
        key, plaintext = create_key(
            conn, name="demo loader", permissions=["events:write"], expires_days=1
        )
    try:
        github_secret = settings.read_secret("github_webhook_secret")
        jira_secret = settings.read_secret("jira_webhook_secret")

        def send(base_url: str) -> Any:
            return send_deliveries(
                deliveries,
                base_url=base_url,
                github_secret=github_secret,
                jira_secret=jira_secret,
                api_key=plaintext,
                progress=progress,
            )

        if url:
            report = send(url)
        else:
            with running_api(settings) as base_url:
                report = send(base_url)
    finally:
        with engine.begin() as conn:
            revoke_key(conn, str(key.key_id))
    worker_stats: dict[str, Any] = {}
    if not url:
        worker = Worker.from_settings(settings, engine)
        worker.drain()
        worker_stats = dict(worker.stats.__dict__)
    with engine.connect() as conn:
        inbox = inbox_status(conn)
    return {
        "deliveries": len(deliveries),
        "sent": report.sent,
        "accepted": report.accepted,
        "failed": report.failed,
        "errors": report.errors[:5],
        "generate_seconds": round(generated, 2),
        "send_seconds": round(report.seconds, 2),
        "worker": worker_stats,
        "inbox": {k: v for k, v in inbox.items() if k != "by_source"},
    }
