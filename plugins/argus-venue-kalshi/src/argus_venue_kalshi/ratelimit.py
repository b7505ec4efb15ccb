"""Kalshi's per-second request limits (reads and writes counted apart, by access tier),
modelled locally so the venue waits instead of collecting 429s.

A sliding window, not a token bucket: at most ``limit`` requests start in any
``window_s + headroom_s`` seconds, so no one-second window at the exchange ever holds
more than the tier allows (a bucket that is full again after a burst would let twice
the limit through in one window).  The headroom absorbs network jitter that bunches
requests up on the way.
"""

from __future__ import annotations

import asyncio
import collections
import time


class RateLimiter:
    """At most ``limit`` request weights in any ``window_s + headroom_s`` seconds."""

    def __init__(self, limit: int, window_s: float = 1.0, headroom_s: float = 0.1) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, got {limit}")
        self.limit, self.span_s = limit, window_s + headroom_s
        self._sent: collections.deque[float] = collections.deque()  # one entry per weight
        self._resume_at = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self, weight: int = 1) -> None:
        """Wait until ``weight`` more requests fit (a batch of n orders weighs n)."""
        if weight > self.limit:
            raise ValueError(f"{weight} requests at once exceed the limit of {self.limit} "
                             f"per window")
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.span_s:
                    self._sent.popleft()
                wait = self._resume_at - now
                if wait <= 0 and len(self._sent) + weight <= self.limit:
                    self._sent.extend([now] * weight)
                    return
                if wait <= 0:
                    wait = self._sent[len(self._sent) + weight - self.limit - 1] \
                        + self.span_s - now
                await asyncio.sleep(max(wait, 0.001))

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the exchange answered 429 with Retry-After)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)
