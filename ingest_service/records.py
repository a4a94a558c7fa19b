"""An accepted delivery on its way to the inbox, and the request headers kept with it."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

STORED_HEADERS = (
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-atlassian-webhook-identifier",
    "x-atlassian-webhook-retry",
    "x-atlassian-webhook-flow",
    "x-idempotency-key",
)


@dataclass(frozen=True)
class InboxRecord:
    source: str
    delivery_id: str
    event_kind: str | None
    headers: dict[str, str]
    body: bytes
    api_key_id: uuid.UUID | None = None


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def selected_headers(headers: Any) -> dict[str, str]:
    return {h: headers[h] for h in STORED_HEADERS if h in headers}
