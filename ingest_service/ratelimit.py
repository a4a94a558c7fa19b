"""Per-key rate limits by endpoint tier (metrics contract "Rate Limiting"): a fixed one-minute
window per (key, tier), aligned to the minute so ``X-RateLimit-Reset`` is the same for every
client. Counted in this process: with several API processes behind one address the limit
applies per process (docs/decisions.md)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int  # when the window ends, Unix seconds
    retry_after: int  # seconds, when refused

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch),
            "X-RateLimit-Policy": f"{self.limit};w={WINDOW_SECONDS}",
        }


class RateLimiter:
    def __init__(self, limits: dict[str, int], *, clock: Callable[[], float] = time.time) -> None:
        self.limits, self.clock = limits, clock
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}  # → (window, count)
        self._lock = threading.Lock()

    def hit(self, subject: str, tier: str) -> Decision:
        limit = self.limits.get(tier) or self.limits.get("summary") or 100
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        reset = (window + 1) * WINDOW_SECONDS
        with self._lock:
            current, count = self._counts.get((subject, tier), (window, 0))
            if current != window:
                count = 0
                if len(self._counts) > 100_000:  # forget finished windows now and then
                    self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            if count >= limit:
                return Decision(False, limit, 0, reset, max(1, math.ceil(reset - now)))
            self._counts[(subject, tier)] = (window, count + 1)
        return Decision(True, limit, limit - count - 1, reset, 0)
