"""A seeded random fault campaign for a venue's MARKET DATA path.

The pieces every venue's ``tests/test_md_campaign.py`` shares:

* :class:`TrueMarket`: the exchange's true books, evolving at random on a tick grid (size
  changes, adds, removes, touch moves inside the spread, a side or the whole book emptied
  and refilled, several instruments, trade prints), never crossed;
* :class:`MdFaultPlan`: per websocket frame a drawn :class:`MdFault` (pass, drop,
  duplicate, reorder, a corrupted checksum / hash / seq, truncated or garbled JSON, wrong
  types, a disconnect, a stalled socket, a subscribe answered late or refused, a REST
  snapshot older than the stream).  A draw depends only on ``(seed, key, n)``, so a seed
  replays and :meth:`MdFaultPlan.without` switches single faults off to shrink a failure;
* :class:`BookHistory` + :class:`MdChecker`: after every frame, each book the core's
  ``MarketState`` calls tradeable must be one the exchange actually had (never a crossed
  book, a removed level or a corrupted size), book timestamps never go backwards; at the
  end, once faults stop, every book is live and equal to the exchange's;
* :func:`run_md_campaign`: runs the seeds, shrinks the first failure (greedy, faults
  switched off in groups while it still fails) and raises :class:`MdCampaignFailure` with
  the seed, the error and the minimal trace.

The venue's own test drives its real data client frame by frame (its frame handler, its
connect / disconnect / stall paths) and feeds every event to a core ``MarketState``
exactly as the runner does (``state.apply``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal

import attrs

from argus_core import MarketState
from argus_testkit.campaign import attempt, shrink

log = logging.getLogger(__name__)


class MdFault(enum.StrEnum):
    """What happens to one frame of a market-data stream (or to the request it answers)."""

    PASS = "pass"
    DROP = "drop"                  # the frame is lost: a gap
    DUPLICATE = "duplicate"        # delivered twice
    REORDER = "reorder"            # delivered after the next frame
    CORRUPT_CHECK = "corrupt-check"  # its checksum / hash / seq is wrong
    TRUNCATE = "truncate"          # the JSON text is cut short
    GARBLE = "garble"              # a character of the JSON text is replaced
    WRONG_TYPE = "wrong-type"      # a field of the wrong type or value (NaN, "1e400", ...)
    DISCONNECT = "disconnect"      # the connection drops instead (mid-snapshot or mid-stream)
    STALL = "stall"                # the socket goes silent (no frames, no heartbeats)
    SUB_LATE = "sub-late"          # the next (re)subscribe is answered late
    SUB_REFUSED = "sub-refused"    # the next (re)subscribe is refused
    OLD_SNAPSHOT = "old-snapshot"  # a REST resnapshot older than the stream


#: Relative weights of the faults drawn for a faulty frame.
MD_WEIGHTS: Mapping[MdFault, float] = {
    MdFault.DROP: 3, MdFault.DUPLICATE: 2, MdFault.REORDER: 2, MdFault.CORRUPT_CHECK: 2,
    MdFault.TRUNCATE: 1, MdFault.GARBLE: 1, MdFault.WRONG_TYPE: 3, MdFault.DISCONNECT: 1,
    MdFault.STALL: 1, MdFault.SUB_LATE: 1, MdFault.SUB_REFUSED: 1, MdFault.OLD_SNAPSHOT: 1}


def draw_rng(seed: int, key: str, n: int) -> random.Random:
    """The random source of the ``n``-th draw of ``key`` under ``seed`` (independent of the
    order other keys were drawn in)."""
    digest = hashlib.sha256(f"md\x00{seed}\x00{key}\x00{n}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@attrs.define
class MdFaultPlan:
    """The market-data faults of one seed.

    ``rate``: the chance that a frame is faulty; ``weights``: which faults a venue's
    protocol can meet (a venue without REST resnapshots leaves ``OLD_SNAPSHOT`` out);
    ``quiet`` turns every draw into a pass (the recovery phase at the end of a seed);
    ``forced`` pins draws.  Every draw that was not a pass is in ``drawn`` and ``trace``.
    """

    seed: int
    rate: float = 0.1
    weights: Mapping[MdFault, float] = attrs.field(factory=lambda: dict(MD_WEIGHTS))
    quiet: bool = False
    forced: dict[tuple[str, int], MdFault] = attrs.Factory(dict)
    trace: list[str] = attrs.Factory(list)
    drawn: dict[tuple[str, int], MdFault] = attrs.Factory(dict)
    _counts: dict[str, int] = attrs.Factory(dict)

    def draw(self, key: str) -> tuple[MdFault, random.Random]:
        """The fault for the next frame of the stream ``key``, and a random source for its
        details (which field to corrupt, how), tied to the same draw."""
        n = self._counts.get(key, 0)
        self._counts[key] = n + 1
        rng = draw_rng(self.seed, key, n)
        forced = self.forced.get((key, n))
        if forced is not None:
            fault = forced
        elif self.quiet or rng.random() >= self.rate:
            fault = MdFault.PASS
        else:
            fault = rng.choices(list(self.weights), list(self.weights.values()))[0]
        if fault is not MdFault.PASS:
            self.drawn[(key, n)] = fault
            self.trace.append(f"{key} #{n}: {fault.value}")
        return fault, rng

    def note(self, line: str) -> None:
        """Add a line of the driver's own to the trace (what the exchange did)."""
        self.trace.append(line)

    def without(self, keys: Iterable[tuple[str, int]]) -> MdFaultPlan:
        """A fresh plan of the same seed with the draws ``keys`` pinned to a pass."""
        forced = dict(self.forced)
        forced.update({k: MdFault.PASS for k in keys})
        return MdFaultPlan(self.seed, self.rate, self.weights, forced=forced)


def truncate(text: str, rng: random.Random) -> str:
    """``text`` cut short at a random point (never the whole text)."""
    return text[: rng.randrange(1, max(2, len(text) - 1))]


def garble(text: str, rng: random.Random) -> str:
    """``text`` with one character replaced by JSON punctuation (``{``, ``"``, ...) so that
    it no longer parses.  (A replacement that still parses, such as a renamed key, is a
    different frame, not a garbled one: wrong fields are :data:`MdFault.WRONG_TYPE`'s.)"""
    for _ in range(20):
        i = rng.randrange(len(text))
        out = text[:i] + rng.choice('{}[]":,x') + text[i + 1:]
        try:
            json.loads(out)
        except ValueError:
            return out
    return truncate(text, rng)


#: Wrong values a field can arrive with: number as string and back are the venue's own
#: business; these are values no correct exchange sends.
WRONG_VALUES: tuple[object, ...] = ("NaN", "1e400", "-1e400", "Infinity", "-5", "abc", None,
                                    True, [], {}, "", "0x10")


# -- the true market -----------------------------------------------------------------------

Levels = tuple[tuple[float, float], ...]
BookKey = tuple[Levels, Levels]


def book_key(bids: Mapping[float, float], asks: Mapping[float, float]) -> BookKey:
    """A comparable form of a book: bids best first, asks best first, as floats."""
    return (tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items())))


@attrs.frozen
class Print:
    """A trade the exchange printed."""

    instrument: str
    price: Decimal
    size: Decimal
    side: str  # "buy" (taker bought: hit the ask) / "sell"
    ts_ns: int


class TrueMarket:
    """Random, never crossed books on a tick grid, one per instrument (the exchange's
    truth).  ``bids[i]`` / ``asks[i]``: ``Decimal`` price -> ``Decimal`` size.

    :meth:`step` changes one instrument's book and returns the changes as
    ``(instrument, side, price, new size)`` (size 0: the level is gone); the caller frames
    them in the venue's protocol and records the states the exchange passes through.
    """

    def __init__(self, instruments: list[str], rng: random.Random, *, tick: Decimal,
                 lo: Decimal, hi: Decimal, lot: Decimal = Decimal(1), max_levels: int = 8,
                 start_ns: int = 1_700_000_000_000_000_000, step_ns: int = 1_000_000) -> None:
        self.instruments = instruments
        self.rng = rng
        self.tick, self.lo, self.hi, self.lot = tick, lo, hi, lot
        self.max_levels = max_levels
        self.now_ns = start_ns
        self.step_ns = step_ns
        self.bids: dict[str, dict[Decimal, Decimal]] = {}
        self.asks: dict[str, dict[Decimal, Decimal]] = {}
        self.prints: list[Print] = []
        for iid in instruments:
            self.bids[iid], self.asks[iid] = {}, {}
            n_ticks = int((hi - lo) / tick)
            mid = lo + tick * rng.randint(n_ticks // 4, 3 * n_ticks // 4)
            for _ in range(rng.randint(0, max_levels)):
                self._add(iid, "bid", mid)
            for _ in range(rng.randint(0, max_levels)):
                self._add(iid, "ask", mid)

    def size(self) -> Decimal:
        """A random level size (whole lots)."""
        return self.lot * self.rng.choice((1, 2, 5, 10, 25, 100, 250, 1000, 3333))

    def best(self, iid: str) -> tuple[Decimal | None, Decimal | None]:
        """(best bid, best ask) of ``iid``, None for an empty side."""
        b, a = self.bids[iid], self.asks[iid]
        return (max(b) if b else None, min(a) if a else None)

    def _add(self, iid: str, side: str, mid: Decimal | None = None,
             inside: bool = False) -> tuple[Decimal, Decimal] | None:
        """Add a level on ``side`` (``inside``: a new best inside the spread) that keeps the
        book uncrossed; None when there is no room."""
        bid, ask = self.best(iid)
        ladder = self.bids[iid] if side == "bid" else self.asks[iid]
        t, rng = self.tick, self.rng
        if side == "bid":
            top = (ask - t) if ask is not None else (mid or self.hi) - t
            floor = self.lo if not inside or bid is None else bid + t
            top = min(top, self.hi - t)
            if top < floor:
                return None
            span = int((top - floor) / t)
            price = top - t * (rng.randint(0, min(span, 3)) if inside
                               else min(span, int(rng.expovariate(0.3))))
        else:
            floor = (bid + t) if bid is not None else (mid or self.lo) + t
            ceil = self.hi if not inside or ask is None else ask - t
            floor = max(floor, self.lo + t)
            if ceil < floor:
                return None
            span = int((ceil - floor) / t)
            price = floor + t * (rng.randint(0, min(span, 3)) if inside
                                 else min(span, int(rng.expovariate(0.3))))
        if not (self.lo <= price <= self.hi) or (side == "bid" and len(ladder) >= self.max_levels
                                                 and price not in ladder):
            return None
        if side == "ask" and len(ladder) >= self.max_levels and price not in ladder:
            return None
        size = self.size()
        ladder[price] = size
        return price, size

    def step(self) -> list[tuple[str, str, Decimal, Decimal]]:
        """One random change of one instrument's book (1-3 level changes, or a side /
        the whole book emptied); the exchange's clock moves on."""
        rng = self.rng
        self.now_ns += self.step_ns
        iid = rng.choice(self.instruments)
        changes: list[tuple[str, str, Decimal, Decimal]] = []
        roll = rng.random()
        if roll < 0.03:  # the whole book emptied
            for side, ladder in (("bid", self.bids[iid]), ("ask", self.asks[iid])):
                changes += [(iid, side, p, Decimal(0)) for p in ladder]
                ladder.clear()
            return changes
        if roll < 0.08:  # one side emptied (a one-sided book)
            side = rng.choice(("bid", "ask"))
            ladder = self.bids[iid] if side == "bid" else self.asks[iid]
            changes = [(iid, side, p, Decimal(0)) for p in ladder]
            ladder.clear()
            return changes
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            side = rng.choice(("bid", "ask"))
            ladder = self.bids[iid] if side == "bid" else self.asks[iid]
            op = rng.random()
            if ladder and op < 0.35:  # a size change
                price = rng.choice(sorted(ladder))
                ladder[price] = self.size()
                changes.append((iid, side, price, ladder[price]))
            elif ladder and op < 0.6:  # a level removed (often the touch)
                price = (max(ladder) if side == "bid" else min(ladder)) if rng.random() < 0.4 \
                    else rng.choice(sorted(ladder))
                del ladder[price]
                changes.append((iid, side, price, Decimal(0)))
            else:  # a level added (a touch move inside the spread a third of the time)
                added = self._add(iid, side, inside=rng.random() < 0.35)
                if added is not None:
                    changes.append((iid, side, *added))
        if rng.random() < 0.15:
            bid, ask = self.best(iid)
            if bid is not None or ask is not None:
                taker = "buy" if ask is not None and (bid is None or rng.random() < 0.5) \
                    else "sell"
                at = ask if taker == "buy" else bid
                assert at is not None
                self.prints.append(Print(iid, at, self.size(), taker, self.now_ns))
        return changes


class BookHistory:
    """Every state each book passed through at the exchange, in the core's float form."""

    def __init__(self) -> None:
        self.seen: dict[str, set[BookKey]] = {}
        self.current: dict[str, BookKey] = {}

    def record(self, iid: str, bids: Mapping[Decimal, Decimal],
               asks: Mapping[Decimal, Decimal]) -> None:
        """The exchange's book of ``iid`` is now ``bids`` / ``asks``."""
        key = book_key({float(p): float(q) for p, q in bids.items() if q > 0},
                       {float(p): float(q) for p, q in asks.items() if q > 0})
        self.seen.setdefault(iid, set()).add(key)
        self.current[iid] = key


class MdChecker:
    """The invariants of a market-data run, checked on the core's ``MarketState``."""

    def __init__(self, state: MarketState, history: BookHistory, plan: MdFaultPlan) -> None:
        self.state = state
        self.history = history
        self.plan = plan
        self.last_ts: dict[str, int] = {}
        self.checks = 0

    def after_frame(self, where: str) -> None:
        """Each tradeable book is one the exchange had; book timestamps never go back."""
        self.checks += 1
        for iid, seen in self.history.seen.items():
            book = self.state.books.get(iid)
            if book is None:
                continue
            if book.ts_ns < self.last_ts.get(iid, 0):
                raise AssertionError(f"{where}: {iid} book timestamp went backwards "
                                     f"({book.ts_ns} < {self.last_ts[iid]})")
            self.last_ts[iid] = book.ts_ns
            ok, _ = self.state.tradeable(iid)
            if not ok:
                continue
            fault = book.fault()
            if fault:
                raise AssertionError(f"{where}: {iid} is tradeable but {fault}")
            key = book_key(book.bids, book.asks)
            if key not in seen:
                raise AssertionError(
                    f"{where}: {iid} is tradeable with a book the exchange never had:\n"
                    f"  core:  {_short(key)}\n  truth: {_short(self.history.current[iid])}")

    def converged(self) -> list[str]:
        """Why the core does not hold the exchange's current books (empty when it does)."""
        out = []
        for iid, truth in self.history.current.items():
            ok, why = self.state.tradeable(iid)
            book = self.state.books.get(iid)
            if not ok or book is None:
                out.append(f"{iid} not tradeable: {why}")
            elif book_key(book.bids, book.asks) != truth:
                out.append(f"{iid} differs:\n  core:  {_short(book_key(book.bids, book.asks))}"
                           f"\n  truth: {_short(truth)}")
        return out


def _short(key: BookKey) -> str:
    bids, asks = key
    return f"bids {list(bids[:4])}{'...' if len(bids) > 4 else ''} | " \
           f"asks {list(asks[:4])}{'...' if len(asks) > 4 else ''}"


class LogCapture(logging.Handler):
    """Every log record's text while installed on the root logger (secrets check)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted message."""
        self.lines.append(record.getMessage())

    def __enter__(self) -> LogCapture:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def assert_no_secret(self, secrets: Iterable[str]) -> None:
        """No line holds any of ``secrets``."""
        for secret in secrets:
            if secret and any(secret in line for line in self.lines):
                raise AssertionError(f"a secret ({secret[:4]}...) is in the logs")


# -- running a campaign --------------------------------------------------------------------

MdScenario = Callable[[MdFaultPlan], Awaitable[None]]


class MdCampaignFailure(AssertionError):
    """A seed broke an invariant (or crashed): the seed, the error and the minimal trace."""


async def run_md_campaign(scenario: MdScenario, seeds: Iterable[int],
                          make_plan: Callable[[int], MdFaultPlan], *,
                          shrink_budget: int = 40) -> list[float]:
    """Run every seed; raise :class:`MdCampaignFailure` for the first that fails (shrunk),
    naming the seed, the error and the minimal trace.  Returns each seed's seconds."""
    times: list[float] = []
    for seed in seeds:
        plan = make_plan(seed)
        started = time.perf_counter()
        error = await attempt(scenario, plan)
        times.append(time.perf_counter() - started)
        if error is None:
            continue
        first = "".join(traceback.format_exception(error)[-4:])
        minimal, again = await shrink(scenario, plan, error, budget=shrink_budget)
        raise MdCampaignFailure(
            f"market-data campaign: seed {seed} failed: {error!r}\n{first}\n"
            f"replay: make_plan({seed}); minimal trace ({len(minimal.drawn)} of "
            f"{len(plan.drawn)} faults kept):\n  " + "\n  ".join(minimal.trace[-40:])
            + f"\nthe shrunk run ends with: {again!r}") from error
    return times
