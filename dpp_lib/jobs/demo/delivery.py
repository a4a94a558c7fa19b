"""One HTTP delivery of the demo: where it goes, its id and its exact body."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Source = Literal["github", "jira", "deployment", "incident", "pulse"]
PATHS: dict[str, str] = {
    "github": "/api/v1/webhooks/github",
    "jira": "/api/v1/webhooks/jira",
    "deployment": "/api/v1/events/deployment",
    "incident": "/api/v1/events/incident",
    "pulse": "/api/v1/events/pulse",
}
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dpp/demo-deliveries")


@dataclass(frozen=True)
class Delivery:
    """A request the demo sends. ``delivery_id`` is uuid5 of the seed and the entity key,
    so regenerating gives the same ids and the platform's dedup recognises replays."""

    source: Source
    path: str
    delivery_id: str
    event: str | None  # X-GitHub-Event for github, else None
    body: bytes  # json.dumps(..., separators=(",", ":")).encode()
    occurred_at: datetime


class Collector:
    """Gathers deliveries whose event time falls in ``[start, until]``."""

    def __init__(self, seed: int, start: datetime, until: datetime) -> None:
        self.seed = seed
        self.start = start
        self.until = until
        self.items: list[Delivery] = []

    def wants(self, at: datetime) -> bool:
        return self.start <= at <= self.until

    def add(self, source: Source, key: str, at: datetime, body: dict[str, Any],
            event: str | None = None) -> None:  # fmt: skip
        if not self.wants(at):
            return
        self.items.append(
            Delivery(
                source=source,
                path=PATHS[source],
                delivery_id=str(uuid.uuid5(NAMESPACE, f"{self.seed}:{key}")),
                event=event,
                body=json.dumps(body, separators=(",", ":")).encode(),
                occurred_at=at,
            )
        )

    def sorted(self) -> list[Delivery]:
        return sorted(self.items, key=lambda d: (d.occurred_at, d.delivery_id))
