"""Kalshi's rate limits, modelled locally so the venue waits instead of collecting 429s.

Kalshi bills every request in tokens (docs getting_started/rate_limits): most cost the
default of 10, some more or less (``GET /account/endpoint_costs`` lists them), and a
batch costs its per-item cost once per order.  Reads and writes have separate budgets
per second by access tier; the tier's "requests per second" of this plugin's settings
are requests at the default cost, so a budget is ``per_s * 10`` tokens (Basic: 200 read,
100 write tokens per second, as documented).  :class:`EndpointCosts` prices a request;
:class:`RateLimiter` spends its tokens.

A sliding window, not a token bucket: at most ``limit`` requests start in any
``window_s + headroom_s`` seconds, so no one-second window at the exchange ever holds
more than the tier allows (a bucket that is full again after a burst would let twice
the limit through in one window).  The headroom absorbs network jitter that bunches
requests up on the way.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import Mapping
from typing import Any

from argus_core import DataError
from argus_venue_kalshi import constants as C

#: Tokens a request costs unless Kalshi lists it otherwise.
DEFAULT_COST = 10
#: Documented costs used until (or unless) ``GET /account/endpoint_costs`` is read:
#: (method, path under /trade-api/v2) -> tokens per item.  A batch cancel bills 2 tokens
#: per order ("cancelling 25 orders costs 25 x 2 = 50 tokens"; the older docs' 0.2
#: transactions per cancel); a batch create the default per order.
DOCUMENTED_COSTS: Mapping[tuple[str, str], int] = {
    ("DELETE", "/portfolio/orders/batched"): 2,
}
#: Endpoints billed once per item of the batch they carry.
BATCHED = frozenset({("POST", "/portfolio/orders/batched"),
                     ("DELETE", "/portfolio/orders/batched")})


class EndpointCosts:
    """Token costs by endpoint: ``cost(method, path, items)``.  Paths may be templates
    (``/portfolio/orders/{order_id}``) as ``GET /account/endpoint_costs`` gives them,
    with or without the ``/trade-api/v2`` prefix."""

    def __init__(self, default: int = DEFAULT_COST,
                 costs: Mapping[tuple[str, str], int] | None = None) -> None:
        self.default = default
        self.exact: dict[tuple[str, str], int] = {}
        self.templates: list[tuple[str, re.Pattern[str], int]] = []
        for (method, path), cost in (DOCUMENTED_COSTS if costs is None else costs).items():
            path = path.removeprefix(C.API_PREFIX)
            if "{" in path:
                pattern = re.compile("^" + re.sub(r"\\\{[^/]*\\\}", "[^/]+",
                                                  re.escape(path)) + "$")
                self.templates.append((method.upper(), pattern, cost))
            else:
                self.exact[(method.upper(), path)] = cost

    @classmethod
    def from_payload(cls, payload: Any) -> EndpointCosts:
        """From a ``GET /account/endpoint_costs`` answer (``default_cost``,
        ``endpoint_costs``: ``[{method, path, cost}]``); a malformed one is a DataError."""
        try:
            default = int(payload["default_cost"])
            costs = {(str(e["method"]), str(e["path"])): int(e["cost"])
                     for e in payload["endpoint_costs"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"kalshi: GET /account/endpoint_costs answered an unusable "
                            f"body ({type(exc).__name__}: {exc})") from None
        if default < 1 or any(c < 0 for c in costs.values()):
            raise DataError("kalshi: GET /account/endpoint_costs: costs must be positive")
        return cls(default, costs)

    def cost(self, method: str, path: str, items: int = 1) -> int:
        """Tokens of one request to ``path`` (under /trade-api/v2) carrying ``items``
        orders (a batch bills each)."""
        method = method.upper()
        each = self.exact.get((method, path))
        if each is None:
            each = next((c for m, p, c in self.templates if m == method and p.match(path)),
                        self.default)
        return each * (max(items, 1) if (method, path) in BATCHED else 1)


class RateLimiter:
    """At most ``limit`` tokens spent in any ``window_s + headroom_s`` seconds."""

    def __init__(self, limit: int, window_s: float = 1.0, headroom_s: float = 0.1) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 token per window, got {limit}")
        self.limit, self.span_s = limit, window_s + headroom_s
        self._sent: collections.deque[float] = collections.deque()  # one entry per token
        self._resume_at = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self, weight: int = 1) -> None:
        """Wait until ``weight`` more tokens fit (a request's cost)."""
        if weight > self.limit:
            raise ValueError(f"a request of {weight} tokens exceeds the budget of "
                             f"{self.limit} tokens per window")
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

    def held_for(self) -> float:
        """Seconds left of a :meth:`hold` (0 when none)."""
        return max(0.0, self._resume_at - time.monotonic())

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the exchange answered 429 with Retry-After)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)
