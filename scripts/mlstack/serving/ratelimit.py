"""A per-source rate limit on /feedback (FEEDBACK_RATE_PER_MINUTE, off by default).

A source is the bearer token when the request carries one, else the client's
address. Each source has a token bucket of FEEDBACK_BURST requests refilled at the
set rate; past it, a 429 says when to come back. The buckets live in each worker:
with W workers a source can get up to W times the rate, which is what a limit
against one runaway client needs (a shared limit belongs in the proxy in front).
Off by default because the web app is a single source for all its users, and the
brief's every-k retraining must work out of the box.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

MAX_SOURCES = 10_000  # forget the stalest past this, so memory stays bounded


@dataclass
class RateLimiter:
    per_minute: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, time
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_time(self, source: str, now: float | None = None) -> float:
        """0 if `source` may go on now (and one request is counted), else the seconds
        until it may."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60
        with self._lock:
            tokens, then = self._buckets.get(source, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * rate)
            if tokens >= 1:
                self._buckets[source] = (tokens - 1, now)
                self._forget_stale()
                return 0.0
            self._buckets[source] = (tokens, now)
            return (1 - tokens) / rate

    def _forget_stale(self) -> None:
        if len(self._buckets) > MAX_SOURCES:
            oldest = sorted(self._buckets, key=lambda s: self._buckets[s][1])
            for source in oldest[: len(oldest) - MAX_SOURCES]:
                del self._buckets[source]


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
