"""Seeded random faults for a venue's order path: what a :class:`FaultPlan` draws for each
request and each websocket frame, and the trace of what it drew.

A draw depends only on ``(seed, key, n)``, where ``key`` names the request (``"POST
/0/private/AddOrder"``) or the websocket connection's frame stream and ``n`` counts the
draws for that key: the third AddOrder of a seed meets the same fault whatever the other
requests interleaved with it did, so a failing seed replays, and a fault can be switched
off on its own (:meth:`FaultPlan.without`) to shrink a failing scenario.
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping

import attrs


class HttpFault(enum.StrEnum):
    """What happens to one request (``act``: the exchange processes it first)."""

    PASS = "pass"
    LOST = "lost"              # act, then close the connection: the answer is lost
    LATE = "late"              # act, then answer only after the client's timeout
    TRUNCATED = "truncated"    # act, then half the announced body and a close
    S500_JSON = "500-json"     # without acting: 500 with a JSON body
    S502_HTML = "502-html"     # without acting: a gateway's HTML page
    S503_JSON = "503-json"     # without acting: 503 with a JSON body
    AFTER_502 = "act-502"      # act, then a gateway's 502 HTML page (the answer is lost)
    S429_RETRY = "429-retry"   # without acting: 429 with Retry-After
    S429 = "429"               # without acting: 429 without Retry-After
    RESET = "reset"            # without acting: the connection is reset (RST)

    @property
    def acts(self) -> bool:
        """Whether the exchange processes the request before the fault."""
        return self in (HttpFault.PASS, HttpFault.LOST, HttpFault.LATE, HttpFault.TRUNCATED,
                        HttpFault.AFTER_502)


class HeldOutFault(enum.StrEnum):
    """The held-out class of request faults, drawn only by plans given
    :data:`WIDE_HTTP_WEIGHTS` (a separate enum: the narrow campaign's seeds and the
    tests that walk every :class:`HttpFault` stay as they were)."""

    S429_HTML = "429-html"     # without acting: a CDN's 429 HTML page (with a Retry-After)
    S200_RATE = "200-rate"     # without acting: 200 with the venue's rate-limit error body
    ACT_LATE = "act-late"      # held past the client's timeout, then the venue acts and
    #                            answers (after the client asked and heard "unknown")

    @property
    def acts(self) -> bool:
        """Whether the exchange processes the request (the late act does, late)."""
        return self is HeldOutFault.ACT_LATE


#: Any request fault a plan draws.
AnyHttpFault = HttpFault | HeldOutFault


class WsFault(enum.StrEnum):
    """What happens to one websocket frame from the exchange."""

    PASS = "pass"
    DUPLICATE = "duplicate"    # the frame is delivered twice
    DISCONNECT = "disconnect"  # the connection drops instead (the frame is lost)


#: Relative weights of the faults drawn for a faulty request / frame.
HTTP_WEIGHTS: Mapping[AnyHttpFault, float] = {
    HttpFault.LOST: 3, HttpFault.LATE: 2, HttpFault.TRUNCATED: 2, HttpFault.S500_JSON: 1,
    HttpFault.S502_HTML: 1, HttpFault.S503_JSON: 1, HttpFault.AFTER_502: 2,
    HttpFault.S429_RETRY: 1, HttpFault.S429: 1, HttpFault.RESET: 2}
WS_WEIGHTS: Mapping[WsFault, float] = {WsFault.DUPLICATE: 2, WsFault.DISCONNECT: 1}
#: The held-out campaign's weights: rate limits as venues really answer them and late acts
#: besides the narrow class.
WIDE_HTTP_WEIGHTS: Mapping[AnyHttpFault, float] = {
    **HTTP_WEIGHTS, HttpFault.S429_RETRY: 2, HeldOutFault.S429_HTML: 1,
    HeldOutFault.S200_RATE: 2, HeldOutFault.ACT_LATE: 2}
#: ``Retry-After`` values a wide plan draws from for a 429 (absent, 0, small, large, an
#: HTTP-date ``{date+N}`` N seconds after the answer's ``Date``, garbage).
WIDE_RETRY_AFTERS: tuple[str | None, ...] = (
    None, "0", "1", "2", "3", "120", "{date+2}", "{date+120}", "soon", "-5", "nan")
#: How far past the client's timeout a wide plan's late answer / late act comes
#: (multiples of the timeout: just after, long after).
WIDE_LATE_FACTORS: tuple[float, ...] = (1.05, 1.5, 3.0, 8.0)


def _rng(seed: int, key: str, n: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{key}\x00{n}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@attrs.define
class FaultPlan:
    """The faults of one seed.

    ``http_rate`` / ``ws_rate``: the chance that a request / frame is faulty;
    ``eligible(key)`` says which requests may be faulted (e.g. the private API only);
    ``quiet`` turns every draw into a pass (the check phase at the end of a seed);
    ``forced`` pins draws (``(key, n) -> fault``), e.g. a pass to shrink a scenario.
    ``weights``: the faults drawn and their odds (:data:`HTTP_WEIGHTS` by default, or
    :data:`WIDE_HTTP_WEIGHTS`); ``retry_afters`` / ``late_factors``: what a 429's
    ``Retry-After`` and a late answer's delay are drawn from (drawn apart from the fault,
    so a plan's faults do not depend on them; the defaults are the narrow campaign's:
    ``Retry-After: 0``, the proxy's own ``late_s``).
    Every draw that was not a pass is appended to ``trace``.
    """

    seed: int
    http_rate: float = 0.3
    ws_rate: float = 0.08
    eligible: Callable[[str], bool] = lambda key: True
    quiet: bool = False
    forced: dict[tuple[str, int], AnyHttpFault | WsFault] = attrs.Factory(dict)
    trace: list[str] = attrs.Factory(list)
    drawn: dict[tuple[str, int], AnyHttpFault | WsFault] = attrs.Factory(dict)
    weights: Mapping[AnyHttpFault, float] = HTTP_WEIGHTS
    retry_afters: tuple[str | None, ...] = ("0",)
    late_factors: tuple[float, ...] = ()
    #: (key, n) -> the Retry-After / late factor drawn with that request's fault.
    details: dict[tuple[str, int], str] = attrs.Factory(dict)
    _counts: dict[str, int] = attrs.Factory(dict)

    def _next(self, key: str) -> int:
        n = self._counts.get(key, 0)
        self._counts[key] = n + 1
        return n

    def http(self, key: str) -> AnyHttpFault:
        """The fault for the next request named ``key``."""
        n = self._next(key)
        forced = self.forced.get((key, n))
        fault: AnyHttpFault
        if isinstance(forced, HttpFault | HeldOutFault):
            fault = forced
        elif self.quiet or not self.eligible(key):
            fault = HttpFault.PASS
        else:
            rng = _rng(self.seed, key, n)
            fault = (HttpFault.PASS if rng.random() >= self.http_rate else
                     rng.choices(list(self.weights), list(self.weights.values()))[0])
        self._record(key, n, fault)
        return fault

    def last(self, key: str) -> int:
        """The index ``n`` of the latest draw for ``key``."""
        return self._counts.get(key, 0) - 1

    def retry_after(self, key: str, n: int) -> str | None:
        """The ``Retry-After`` of the 429 drawn for request ``(key, n)`` (None: absent)."""
        value = _rng(self.seed, f"{key}\x00retry-after", n).choice(self.retry_afters)
        self._detail(key, n, f"Retry-After {value}")
        return value

    def late_s(self, key: str, n: int, timeout_s: float, default_s: float) -> float:
        """How long the late answer / late act of request ``(key, n)`` waits."""
        if not self.late_factors:
            return default_s
        delay = timeout_s * _rng(self.seed, f"{key}\x00late", n).choice(self.late_factors)
        self._detail(key, n, f"late {delay:.2f}s")
        return delay

    def _detail(self, key: str, n: int, what: str) -> None:
        if (key, n) not in self.details:
            self.details[(key, n)] = what
            self.trace.append(f"{key} #{n}:   {what}")

    def ws(self, key: str) -> WsFault:
        """The fault for the next frame of the stream named ``key``."""
        n = self._next(key)
        forced = self.forced.get((key, n))
        if isinstance(forced, WsFault):
            fault = forced
        elif self.quiet:
            fault = WsFault.PASS
        else:
            rng = _rng(self.seed, key, n)
            fault = (WsFault.PASS if rng.random() >= self.ws_rate else
                     rng.choices(list(WS_WEIGHTS), list(WS_WEIGHTS.values()))[0])
        self._record(key, n, fault)
        return fault

    def _record(self, key: str, n: int, fault: AnyHttpFault | WsFault) -> None:
        if fault.value != "pass":
            self.drawn[(key, n)] = fault
            self.trace.append(f"{key} #{n}: {fault.value}")

    def note(self, line: str) -> None:
        """Add a line of the driver's own to the trace (an order placed, a restart)."""
        self.trace.append(line)

    def without(self, keys: Iterable[tuple[str, int]]) -> FaultPlan:
        """A fresh plan of the same seed with the draws ``keys`` pinned to a pass."""
        forced = dict(self.forced)
        for key, n in keys:
            forced[(key, n)] = (WsFault.PASS if isinstance(self.drawn.get((key, n)), WsFault)
                                else HttpFault.PASS)
        return FaultPlan(self.seed, self.http_rate, self.ws_rate, self.eligible,
                         forced=forced, weights=self.weights, retry_afters=self.retry_afters,
                         late_factors=self.late_factors)
