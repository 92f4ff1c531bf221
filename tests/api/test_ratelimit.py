"""The per-key token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest

from api.service.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("k") == 0.0
    assert limiter.take("other") == 0.0  # buckets are per key
    clock.now += 100
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled only up to the burst
    assert limiter.take("k") > 0


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0, 1)
