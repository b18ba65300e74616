"""Per-caller request rate limits: a token bucket per caller, refilled at ``rate`` requests per
second up to ``burst``. Buckets live in this process; behind a load balancer each instance
limits what reaches it, so the effective limit is per instance (docs/operations.md)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, caller: str) -> float:
        """Take one token for ``caller``: 0.0 when allowed, else the seconds until one is free."""
        now = self._clock()
        tokens, stamp = self._buckets.pop(caller, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1.0:
            self._buckets[caller] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[caller] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
        if len(self._buckets) > self._max_callers:
            # The least recently seen caller has refilled the longest: forgetting it costs nothing.
            self._buckets.popitem(last=False)
        return wait
