"""Per-key rate limiting: a token bucket per key (or per client address for anonymous calls).

In memory and per process: right for the embedded default, where one process serves. Several
servers behind a balancer would each allow the full rate; at that scale put the limit in front
(the proxy) or in Redis, keeping this interface.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Buckets kept before idle (full) ones are dropped, so random keys cannot grow memory forever.
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``take(name)`` returns 0 when a request may go, else the seconds to wait before retrying."""

    def __init__(self, rate_per_second: float, burst: int, *, clock: Callable[[], float] | None = None) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("the rate must be positive and the burst at least 1")
        self.rate = rate_per_second
        self.burst = float(burst)
        self._clock = clock or time.monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._forget_idle(now)
                bucket = self._buckets[name] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.rate
        for name in [n for n, b in self._buckets.items() if now - b.stamp >= full_after]:
            del self._buckets[name]
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()
