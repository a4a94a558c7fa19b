"""Pure-ASGI middleware: a request id, the API version and the rate-limit state on every
response, and each API request's duration for the latency alert."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_VERSION = "1.0"


class LatencyWindow:
    """Durations of this process's API requests over the last ``seconds`` (the "API response
    time p95 > 5 s" alert of spec §8.5)."""

    def __init__(self, seconds: float = 900.0, max_samples: int = 50_000) -> None:
        self.seconds = seconds
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def record(self, ms: float) -> None:
        with self._lock:
            self._samples.append((time.monotonic(), ms))

    def p95(self) -> tuple[float | None, int]:
        """(p95 in ms, requests measured) over the window."""
        cutoff = time.monotonic() - self.seconds
        with self._lock:
            values = sorted(ms for at, ms in self._samples if at >= cutoff)
        if not values:
            return None, 0
        return values[min(len(values) - 1, int(0.95 * len(values)))], len(values)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, latency: LatencyWindow | None = None) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 8 <= len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.append((b"x-api-version", API_VERSION.encode()))
                for name, value in state.get("rate_limit_headers", {}).items():
                    headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if self.latency is not None and scope["path"].startswith("/api/v1/"):
                self.latency.record((time.perf_counter() - started) * 1000)
