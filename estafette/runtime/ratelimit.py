"""Per-client rate limits for public routes: a token bucket per client address, in memory.

Each client (IP address) has a bucket of `burst` tokens that refills at `per_minute` tokens a minute;
a request takes one token, and a request that finds the bucket empty is refused with 429 and a
`Retry-After` of the seconds until a token is back. The policies that let anonymous callers in apply
it (runtime/auth.py); the limits are settings (`ESTAFETTE_PUBLIC_RATE_LIMIT_PER_MINUTE`, `..._BURST`,
runtime/settings.py). Each service process keeps its own buckets: several processes behind one
address multiply the limit, which is fine for a limit that only has to stop floods.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimited(Exception):
    """The client has used up its requests; it may try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """Token buckets keyed by client. `per_minute=0` turns the limit off."""

    def __init__(
        self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self.per_second = per_minute / 60
        self.burst = burst
        self._clock = clock
        self._max_clients = max_clients
        #: client → (tokens left, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> None:
        """Take one token of `client`'s bucket; RateLimited if it is empty."""
        if self.per_second <= 0:
            return
        now = self._clock()
        tokens, then = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_second)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            raise RateLimited(max(1, math.ceil(round((1 - tokens) / self.per_second, 6))))
        if client not in self._buckets and len(self._buckets) >= self._max_clients:
            self._forget_full_buckets(now)
        self._buckets[client] = (tokens - 1, now)

    def _forget_full_buckets(self, now: float) -> None:
        """Drop the clients whose buckets have refilled (they are as good as new), so that memory
        stays bounded however many addresses call."""
        refill = self.burst / self.per_second
        self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < refill}
