"""Kalshi's per-second request limits (reads and writes counted apart, by access tier),
modelled locally so the venue waits instead of collecting 429s."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A token bucket: ``per_second`` requests per second, bursts up to ``per_second``."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._tokens = per_second
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.per_second,
                                   self._tokens + (now - self._at) * self.per_second)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.per_second)
