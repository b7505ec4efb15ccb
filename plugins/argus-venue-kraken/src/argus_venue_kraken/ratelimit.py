"""Local models of Kraken's rate-limit counters, so the client slows down before Kraken refuses.

Kraken keeps a per-key REST call counter (+1 per call, +2 for ledger/trade
history, decaying at a tier rate) and, in the matching engine, a per-pair
trading counter (+1 per order, a penalty per cancel that depends on how long
the order rested).  Both are leaky buckets; we mirror them and wait just long
enough that the next call stays under the maximum.

The clock and the sleep are injectable so tests drive them without real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from argus_venue_kraken import constants as C

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: The longest a private call waits in line for a rate limit Kraken (or the CDN in front
#: of it: an HTTP 429 with ``Retry-After``) asked for.  A longer one is not slept: every
#: call until it ends is refused unsent, so a caller (a kill switch's flatten, sent again
#: by the engine every 2 s) is never frozen for the whole penalty.
WAIT_CAP_S = 5.0
#: The longest ``Retry-After`` believed.
RETRY_AFTER_MAX_S = 300.0


class LeakyCounter:
    """A counter that rises by a cost per call and decays linearly to zero."""

    def __init__(self, maximum: float, decay_per_s: float, clock: Clock = time.monotonic) -> None:
        self.maximum = maximum
        self.decay_per_s = decay_per_s
        self._clock = clock
        self._value = 0.0
        self._at = clock()

    def value(self) -> float:
        """The counter now, after decay."""
        now = self._clock()
        self._value = max(0.0, self._value - (now - self._at) * self.decay_per_s)
        self._at = now
        return self._value

    def wait_for(self, cost: float) -> float:
        """Seconds to wait before a call of ``cost`` keeps the counter within the maximum."""
        excess = self.value() + cost - self.maximum
        # A tolerance, or float rounding could leave a never-ending sub-nanosecond wait.
        return excess / self.decay_per_s if excess > 1e-9 else 0.0

    def add(self, cost: float) -> None:
        """Count a call."""
        self._value = self.value() + cost

    def saturate(self) -> None:
        """Kraken says we are over the limit: assume the counter is full."""
        self.value()
        self._value = max(self._value, self.maximum)


class RestRateLimiter:
    """The REST call counter of one API key."""

    def __init__(self, tier: str, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        maximum, decay = C.REST_RATE_TIERS[tier]
        self.counter = LeakyCounter(maximum, decay, clock)
        self._sleep = sleep
        self._lock = asyncio.Lock()
        #: Total seconds spent waiting (for logs and tests).
        self.waited_s = 0.0
        self._clock = clock
        self._resume_at = 0.0

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (an HTTP 429's ``Retry-After``)."""
        self._resume_at = max(self._resume_at, self._clock() + seconds)

    def held_for(self) -> float:
        """Seconds left of a :meth:`hold` (0 when none)."""
        return max(0.0, self._resume_at - self._clock())

    @staticmethod
    def cost(method: str) -> float:
        """Counter cost of a private REST method (0 for trading-engine methods)."""
        if method in C.REST_EXEMPT:
            return 0.0
        return float(C.REST_CALL_COST.get(method, 1))

    async def acquire(self, method: str) -> None:
        """Wait until ``method`` fits under the counter, then count it."""
        cost = self.cost(method)
        if cost == 0:
            return
        async with self._lock:
            delay = self.counter.wait_for(cost)
            while delay > 0:
                self.waited_s += delay
                await self._sleep(delay)
                delay = self.counter.wait_for(cost)
            self.counter.add(cost)


class TradingRateLimiter:
    """The matching engine's per-pair counter: +1 per order, an age-based penalty per cancel."""

    def __init__(self, tier: str, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._threshold, self._decay = C.TRADING_RATE_TIERS[tier]
        self._clock = clock
        self._sleep = sleep
        self._pairs: dict[str, LeakyCounter] = {}
        self.waited_s = 0.0

    def _counter(self, pair: str) -> LeakyCounter:
        counter = self._pairs.get(pair)
        if counter is None:
            counter = self._pairs[pair] = LeakyCounter(self._threshold, self._decay, self._clock)
        return counter

    @staticmethod
    def cancel_penalty(age_s: float) -> float:
        """Points a cancel of an order that rested ``age_s`` seconds costs."""
        for bound, points in C.CANCEL_PENALTY:
            if age_s < bound:
                return points
        return 0.0

    async def acquire(self, pair: str, cost: float) -> None:
        """Wait until ``cost`` points fit under the pair's threshold, then count them."""
        if cost <= 0:
            return
        counter = self._counter(pair)
        delay = counter.wait_for(cost)
        while delay > 0:
            self.waited_s += delay
            await self._sleep(delay)
            delay = counter.wait_for(cost)
        counter.add(cost)

    def saturate(self, pair: str) -> None:
        """Kraken refused with ``EOrder:Rate limit exceeded``."""
        self._counter(pair).saturate()

    def now(self) -> float:
        """The limiter's clock (used to time how long orders rested)."""
        return self._clock()
