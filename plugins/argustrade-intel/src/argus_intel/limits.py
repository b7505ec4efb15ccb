"""Per-key rate limits (token buckets) and the UTC day daily quotas count against."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable

import attrs


@attrs.define
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` tokens at most, refilled at ``rate`` per second;
    each request takes one.  In memory (a restart refills every bucket; the daily quota,
    which is persisted, is what bounds a key over a day)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rate: float, burst: float) -> tuple[bool, float, float]:
        """Take one token: ``(allowed, tokens left, seconds until one is available)``."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + max(now - bucket.updated, 0.0) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True, bucket.tokens, 0.0
            return False, bucket.tokens, (1.0 - bucket.tokens) / rate


def utc_day(now_s: float) -> str:
    """The UTC date of ``now_s`` (the day a quota counts against), ISO format."""
    return dt.datetime.fromtimestamp(now_s, tz=dt.UTC).date().isoformat()


def seconds_to_utc_midnight(now_s: float) -> int:
    """Whole seconds (at least 1) until the next UTC midnight, when quotas reset."""
    today = dt.datetime.fromtimestamp(now_s, tz=dt.UTC).date()
    midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return max(1, math.ceil(midnight.timestamp() - now_s))
