"""Signing and sending demo deliveries to a running DPP service (I/O lives here only)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dpp_lib.jobs.demo.delivery import Delivery

RETRY_DELAYS = (0.2, 0.5, 1.0)  # seconds before each of the 3 retries
MAX_ERRORS = 5
CONNECTION_FAILED = 0  # key in SendReport.failed for deliveries that never got a response


@dataclass(frozen=True)
class SendReport:
    """What happened to a batch: ``failed`` counts non-202 outcomes by status code
    (``0`` = no response after the retries); ``errors`` holds the first few explanations."""

    sent: int
    accepted: int
    failed: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def hub_signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``: GitHub's X-Hub-Signature-256 and Jira's
    X-Hub-Signature use the same format."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed_request(
    d: Delivery, *, github_secret: bytes | None, jira_secret: bytes | None, api_key: str
) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) for one delivery, signed the way its source signs."""
    headers = {"Content-Type": "application/json"}
    if d.source == "github":
        headers["X-GitHub-Event"] = d.event or ""
        headers["X-GitHub-Delivery"] = d.delivery_id
        if github_secret is not None:
            headers["X-Hub-Signature-256"] = hub_signature(github_secret, d.body)
    elif d.source == "jira":
        headers["X-Atlassian-Webhook-Identifier"] = d.delivery_id
        if jira_secret is not None:
            headers["X-Hub-Signature"] = hub_signature(jira_secret, d.body)
    else:
        headers["Authorization"] = f"Bearer {api_key}"
        headers["X-Idempotency-Key"] = d.delivery_id
    return d.path, headers, d.body


def send_deliveries(
    deliveries: Sequence[Delivery],
    *,
    base_url: str,
    github_secret: bytes | None,
    jira_secret: bytes | None,
    api_key: str,
    concurrency: int = 8,
    progress: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> SendReport:
    """POST every delivery (in order, ``concurrency`` at a time, keep-alive connections).

    202 is success. Connection errors, 429 and 5xx are retried up to 3 times; anything else
    is counted as failed at once. ``transport`` is for tests (``httpx.MockTransport``).
    """
    began = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.Client(base_url=base_url, timeout=30.0, limits=limits, transport=transport)

    def post(d: Delivery) -> tuple[int, str | None]:
        path, headers, body = signed_request(
            d, github_secret=github_secret, jira_secret=jira_secret, api_key=api_key
        )
        outcome: tuple[int, str | None] = (CONNECTION_FAILED, None)
        for attempt in range(len(RETRY_DELAYS) + 1):
            if attempt:
                time.sleep(RETRY_DELAYS[attempt - 1])
            try:
                response = client.post(path, content=body, headers=headers)
            except httpx.TransportError as exc:
                outcome = (CONNECTION_FAILED, f"{d.source} {d.delivery_id}: {exc!r}")
                continue
            code = response.status_code
            detail = (
                None
                if code == 202
                else f"{d.source} {d.delivery_id} → {code}: {response.text[:300]}"
            )
            outcome = (code, detail)
            if code != 429 and code < 500:
                break
        return outcome

    counts: Counter[int] = Counter()
    errors: list[str] = []
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with (
        client,
        ThreadPoolExecutor(max_workers=max(concurrency, 1)) as pool,
        Progress(*columns, disable=not progress) as bar,
    ):
        task = bar.add_task("deliveries", total=len(deliveries))
        for code, detail in pool.map(post, deliveries):
            counts[code] += 1
            if detail is not None and len(errors) < MAX_ERRORS:
                errors.append(detail)
            bar.advance(task)
    accepted = counts.pop(202, 0)
    return SendReport(
        sent=len(deliveries),
        accepted=accepted,
        failed=dict(sorted(counts.items())),
        errors=errors,
        seconds=round(time.monotonic() - began, 3),
    )
