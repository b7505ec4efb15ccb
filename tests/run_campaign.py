"""A seeded random campaign against the run's guarantees (``tests/test_run_campaign*.py``).

One seed draws a plan: paper or live, a few segments (each a fresh :class:`Runner` on the
same run directory; one may end in a SIGKILL of a forked child at a random step), and in
each segment a random stream of books, deltas, prints, bars, settlements, stale /
crossed / one-sided / dead books, gaps, events of an unknown instrument and out-of-order
stamps, with a person's ``kill`` / ``flatten`` / ``resume`` (through
:func:`argus_core.request_trading_state`) and a risk check switched between allow, veto,
shrink, raise and "returns None" between events.  A random strategy sends market, IOC
and GTC limits, post-only, reduce-only exits, cancels and two-leg baskets.  The live venue
(:class:`CampaignVenue`) keeps its own record of every order it was sent, every fill it
reported and every order it ended, in an append-only log file, so its state outlives a
SIGKILLed process like an exchange's does (it answers ``open_orders``, ``lookup`` and
``resume`` from it).

After the seed, :func:`check` compares the ledger with that record and with the market
the plan streamed (see its docstring for the invariants).  Nothing here is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import sys
import time
import traceback
import types
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import kill9_support
import pytest

from argus_core import (
    Bar,
    BasketIncomplete,
    BookDelta,
    CancelIntent,
    Fill,
    FillCorrection,
    Instrument,
    Intent,
    Ledger,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    Portfolio,
    RiskAction,
    RiskCheck,
    RiskContext,
    RiskDecision,
    Settlement,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
    Trade,
    Venue,
    VenueError,
    VenueResume,
    converter,
    hookimpl,
    request_trading_state,
)
from argus_core import plugins as core_plugins
from argus_core.config import parse_config
from argus_core.execution import UNWIND_TRIES
from argus_core.models import BookStatus
from argus_core.runner import Runner

VENUE = "cmp"
X, Y, Z = f"{VENUE}:X/USD", f"{VENUE}:Y/USD", f"{VENUE}:Z/USD"  # Z: not an instrument
B = f"{VENUE}:B/YES"  # a binary outcome: resolves YES (1), NO (0) or void (at cost)
TRADED = (X, Y, B)
S = 10**9
STARTING_CASH = Decimal(10000)
RETRY_NS = 2 * S  # the engine's flatten / halt-cancel retry period (HALT_CANCEL_RETRY_NS)
_Q = Decimal("1e-7")  # equity rows are kept to 1e-8; two roundings apart at most


# -- the plan ----------------------------------------------------------------------------
@attrs.frozen
class Step:
    """One step of a segment: a market event, or something done between two events."""

    kind: str  # "ev", "kill", "flatten", "resume", "check", "sigkill", "correct"
    event: Any = None
    arg: str = ""

    def __str__(self) -> str:
        if self.kind != "ev":
            return f"{self.kind}{'(' + self.arg + ')' if self.arg else ''}"
        e = self.event
        name, iid = type(e).__name__, getattr(e, "instrument_id", "?").split(":")[-1]
        t = getattr(e, "ts_ns", 0) / S
        if isinstance(e, OrderBook):
            return f"book {iid}@{t:g} {e.bids[:1].tolist()}/{e.asks[:1].tolist()}"
        if isinstance(e, BookDelta):
            return f"delta {iid}@{t:g} {e.side.value} {e.price}x{e.size}"
        if isinstance(e, Trade):
            return f"trade {iid}@{t:g} {e.price}"
        if isinstance(e, Bar):
            return f"bar {iid}@{t:g} c={e.close}"
        if isinstance(e, Settlement):
            return f"settle {iid}@{t:g} {'void' if e.price is None else e.price}"
        return f"{name} {iid}@{t:g}"


@attrs.frozen
class Plan:
    """Everything one seed does.  ``venue``: ``one`` (a venue without basket orders),
    ``basket`` (``supports_baskets``: legs go together, all or none) or ``multi`` (the
    multi-venue composite of two campaign venues: X and B on one, Y on the other, which
    refuses the venue's reduce-only flag)."""

    seed: int
    mode: str
    drawdown: str | None  # max_drawdown_fraction, or None: no drawdown check
    exits_checked: bool  # the switchable check also judges exits
    segments: tuple[tuple[Step, ...], ...]
    venue: str = "one"

    def trace(self, limit: int = 400) -> str:
        """The plan as text (segments separated), cut to ``limit`` lines."""
        lines = [f"seed {self.seed}: mode {self.mode}, venue {self.venue}, drawdown "
                 f"{self.drawdown}, exits checked {self.exits_checked}"]
        for k, seg in enumerate(self.segments):
            lines.append(f"-- segment {k} (a new Runner on the same run directory)")
            lines += [f"  {i:3d} {s}" for i, s in enumerate(seg)]
        return "\n".join(lines[:limit])


class _Market:
    """The generator's own view of one instrument: a mid that walks, and the book it shows
    (a binary outcome's on a 0.01 grid inside (0, 1))."""

    def __init__(self, rng: random.Random, mid: float, binary: bool = False) -> None:
        self.rng, self.mid, self.binary = rng, mid, binary
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def walk(self) -> None:
        """One step of the mid (sometimes a jump: what trips the drawdown switch)."""
        rng = self.rng
        if self.binary:
            move = rng.gauss(0, 0.02) + (rng.choice([-0.2, 0.15]) if rng.random() < 0.04 else 0)
            self.mid = min(0.95, max(0.05, round(self.mid + move, 2)))
            return
        self.mid = max(1.0, round(self.mid * (1 + rng.gauss(0, 0.01)), 2))
        if rng.random() < 0.04:
            self.mid = max(1.0, round(self.mid * rng.uniform(0.8, 1.08), 2))

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        if self.binary:
            half = self.rng.choice([0.01, 0.01, 0.02, 0.03])
            bid, ask = max(0.01, round(self.mid - half, 2)), min(0.99, round(self.mid + half, 2))
            depth = [round(self.rng.uniform(20, 300)) for _ in range(3)]
            return ([(round(bid - k / 100, 2), depth[k]) for k in range(3) if bid - k / 100 > 0],
                    [(round(ask + k / 100, 2), depth[k]) for k in range(3) if ask + k / 100 < 1])
        half = round(self.rng.uniform(0.05, 1.0), 2)
        bid, ask = round(self.mid - half, 2), round(self.mid + half, 2)
        depth = [round(self.rng.uniform(20, 120)) for _ in range(3)]
        return ([(round(bid - k, 2), depth[k]) for k in range(3)],
                [(round(ask + k, 2), depth[k]) for k in range(3)])


CORRECTIONS = ("fee", "fee", "fee2", "dupe", "bust", "bust", "bust-old", "unknown")


def make_plan(seed: int, *, steps: int = 40, sigkill: bool | None = None) -> Plan:
    """Draw seed ``seed``'s plan (``sigkill``: force one segment to end in a SIGKILL, or
    none; default: drawn)."""
    rng = random.Random(seed)
    mode = rng.choice(["paper", "live"])
    drawdown = rng.choice([None, "0.01", "0.02", "0.04"])
    venue = rng.choice(["one", "basket", "multi"])
    markets = {X: _Market(rng, 100.0), Y: _Market(rng, 50.0),
               B: _Market(rng, round(rng.uniform(0.2, 0.8), 2), binary=True)}
    t = 1
    n_seg = rng.choice([1, 2, 2, 3, 3])
    killed = rng.random() < 0.3 if sigkill is None else sigkill
    kill_seg = rng.randrange(n_seg - 1) if killed and n_seg > 1 else -1
    if killed and n_seg == 1:
        n_seg, kill_seg = 2, 0
    settled: set[str] = set()  # X or Y settle at most once between them; B once
    segments: list[tuple[Step, ...]] = []
    for k in range(n_seg):
        seg: list[Step] = []
        t += 1  # a restart's first event is later than the last segment's (see resume)
        for _ in range(rng.randint(steps // 2, steps)):
            r = rng.random()
            if r < 0.04:
                seg.append(Step("kill"))
                continue
            if r < 0.08:
                seg.append(Step("flatten"))
                continue
            if r < 0.13:
                seg.append(Step("resume"))
                continue
            if r < 0.19:
                seg.append(Step("check", arg=rng.choice(
                    ["allow", "allow", "veto", "shrink", "raise", "none"])))
                continue
            if r < 0.27 and mode == "live":
                seg.append(Step("correct", arg=rng.choice(CORRECTIONS)))
                continue
            t += rng.choice([1, 1, 1, 1, 2, 0]) if rng.random() > 0.04 else rng.randint(6, 12)
            iid = rng.choice([X, Y] if B in settled else [X, Y, B])
            m = markets[iid]
            m.walk()
            ev = _event(rng, m, iid, t, bool(settled & {X, Y}) if iid != B else False)
            seg.append(Step("ev", ev))
            if isinstance(ev, Settlement):
                settled.add(iid)
        if k == kill_seg:
            at = rng.randrange(1, len(seg) + 1)
            seg.insert(at, Step("sigkill"))
            # Nothing after the SIGKILL happens: a settlement drawn there never settled (the
            # tail then gave its market no book, and a flatten could never close it).
            settled -= {s.event.instrument_id for s in seg[at + 1:]
                        if s.kind == "ev" and isinstance(s.event, Settlement)}
        if k == n_seg - 1:  # the tail: live two-sided books that can take a flatten
            seg.append(Step("check", arg="allow"))  # a check vetoing every exit may hold it
            for _ in range(4):
                for iid in TRADED:
                    if iid == B and B in settled:
                        continue  # a resolved market shows no book
                    t += 1
                    bids, asks = markets[iid].levels()
                    seg.append(Step("ev", OrderBook(iid, t * S, bids=bids, asks=asks)))
        segments.append(tuple(seg))
    return Plan(seed, mode, drawdown, rng.random() < 0.5, tuple(segments), venue)


def _event(rng: random.Random, m: _Market, iid: str, t: int, settled: bool) -> MarketEvent:
    """One random market event of ``iid`` at second ``t`` (``settled``: no settlement)."""
    ts = t * S
    kind = rng.choices(["book", "delta", "one_sided", "crossed", "empty", "trade", "bad_print",
                        "bar", "dead", "unknown", "backwards", "settle"],
                       [30, 14, 3, 3, 2, 12, 2, 16, 2, 2, 2,
                        0 if settled else (2.5 if m.binary else 0.6)])[0]
    if kind == "book":
        bids, asks = m.levels()
        m.bids, m.asks = dict(bids), dict(asks)
        return OrderBook(iid, ts, bids=bids, asks=asks)
    if kind == "one_sided":
        bids, asks = m.levels()
        m.bids, m.asks = (dict(bids), {}) if rng.random() < 0.5 else ({}, dict(asks))
        return OrderBook(iid, ts, bids=list(m.bids.items()), asks=list(m.asks.items()))
    if kind == "empty":
        m.bids, m.asks = {}, {}
        return OrderBook(iid, ts, bids=[], asks=[])
    step = 0.01 if m.binary else 1.0
    if kind in ("delta", "crossed"):
        side = rng.choice([Side.BUY, Side.SELL])
        if kind == "crossed":  # a bid at or above the best ask (a feed that missed updates)
            side = Side.BUY
            price = round(min(m.asks, default=m.mid) + rng.choice([0, 0.5]) * step, 2)
        else:
            price = round(m.mid + (-1 if side is Side.BUY else 1) * rng.uniform(0.05, 2) * step,
                          2)
        price = min(0.99, max(0.01, price)) if m.binary else price
        size = rng.choice([0.0, float(rng.randint(1, 80))])
        ladder = m.bids if side is Side.BUY else m.asks
        if size:
            ladder[price] = size
        else:
            ladder.pop(price, None)
        return BookDelta(iid, ts, side, price, size)
    if kind in ("trade", "bad_print"):
        price = m.mid * (rng.choice([0.5, 1.6]) if kind == "bad_print" else 1)
        return Trade(iid, ts, Decimal(str(round(price, 2))), Decimal(rng.randint(1, 30)))
    if kind == "bar":
        o = round(m.mid * (1 + rng.gauss(0, 0.003)), 2)
        c = m.mid
        return Bar(iid, ts, o, max(o, c) + 0.5 * step, max(0.01, min(o, c) - 0.5 * step), c,
                   rng.choice([1000.0, 1000.0, 0.0]))
    if kind == "dead":
        return BookStatus(iid, ts, False, "checksum mismatch")
    if kind == "unknown":
        return Trade(Z, ts, Decimal("7"), Decimal(1))
    if kind == "backwards":  # a print stamped before the clock (a late packet)
        return Trade(iid, max(S, ts - 3 * S), Decimal(str(m.mid)), Decimal(1))
    if m.binary:  # resolved YES, NO, or voided (positions returned at cost)
        price = rng.choice([Decimal(1), Decimal(0), None])
        return Settlement(iid, ts, price, "voided" if price is None else "resolved")
    return Settlement(iid, ts, Decimal(str(rng.choice([0, 1, round(m.mid, 2)]))), "resolved")


# -- the live venue and its record --------------------------------------------------------
class Record:
    """The venue's append-only record (JSON lines; each line one ``os.write``, so what a
    SIGKILLed process wrote is there)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, kind: str, **data: Any) -> None:
        """Append one entry."""
        line = json.dumps({"kind": kind, "pid": os.getpid(), **data}, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every entry so far."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


class Campaign:
    """What the venue, the strategy, the check and the probe share during one seed."""

    current: ClassVar[Campaign | None] = None

    def __init__(self, plan: Plan, run_dir: Path, record: Record) -> None:
        self.plan, self.run_dir, self.record = plan, run_dir, record
        self.segment: Sequence[Step] = ()
        self.runner: Runner | None = None
        self.config: Any = None
        self.check_mode = "allow"
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.sigkill_pipe: int | None = None  # the child's end: written, then it waits
        self.problems: list[str] = []
        self.owed: dict[str, int] = {}  # instrument -> market time a flatten became owed
        self.flatten_busy: set[str] = set()  # instruments a probe found a flatten in flight
        self.fresh()

    def fresh(self) -> None:
        """What one process's venues share (a new segment starts with none of it)."""
        self.books: dict[str, tuple[dict[float, float], dict[float, float], bool]] = {}
        # The venue's clock starts just after every event of the earlier segments: what
        # it stamps before this segment's first event (a correction, a late fill) comes
        # after every equity row an earlier process wrote.
        k = next((i for i, seg in enumerate(self.plan.segments) if seg is self.segment), 0)
        self.now = 1 + max((s.event.ts_ns for seg in self.plan.segments[:k] for s in seg
                            if s.kind == "ev"), default=0)
        self.venues: dict[str, CampaignVenue] = {}
        #: executions the venue holds back until the next step (lost if the process dies)
        self.late: list[tuple[CampaignVenue, Fill | OrderUpdate]] = []
        self.killed_baskets: set[str] = set()
        self.stream_ended = False  # no next step to release held-back news at

    def problem(self, text: str) -> None:
        """An invariant broke (kept with the seed's trace)."""
        self.problems.append(text)


def _latency(rng: random.Random) -> Coroutine[Any, Any, None]:
    """A round trip of a few loop turns (a kill step, a SIGKILL may land meanwhile)."""
    async def wait(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)
    return wait(rng.choice([0, 0, 0, 1, 3, 8, 20]))


class CampaignVenue(Venue):
    """Streams the current segment; live orders fill against the book it last streamed
    (IOC/market at once at the touch, sometimes only the touch's size; GTC when a later
    book crosses its limit).  It answers as real venues do, drawn per order: the
    acknowledgement before the fills, after them or only in ``submit``'s answer; fills on
    the executions stream, returned by ``submit`` and streamed too, streamed twice, or held
    back until the next step (after the IOC's cancel of its rest).  A resolved market
    refuses orders and cancels its resting ones, some filled first and reported after the
    resolution.  ``tag``: its name inside the multi-venue composite."""

    name = VENUE
    supports_live_orders = True
    default_stale_after_s = 5.0

    def __init__(self, settings: object, tag: str = "a", serves: Sequence[str] = TRADED,
                 streams: bool = True, refuses_reduce_only: bool = False) -> None:
        c = Campaign.current
        assert c is not None
        self.c, self.tag, self.serves, self.streams = c, tag, tuple(serves), streams
        self.refuses_reduce_only = refuses_reduce_only
        c.venues[tag] = self
        self._queue: asyncio.Queue[Fill | OrderUpdate | FillCorrection] = asyncio.Queue()
        # A restart's late news is stamped at this segment's first event (after every row
        # an earlier process wrote: see make_plan).
        first = [s.event.ts_ns for s in c.segment if s.kind == "ev"]
        self.resume_ts = first[0] if first else c.now
        # The venue's memory, rebuilt from its record: what a restarted client finds.
        self.orders: dict[str, dict[str, Any]] = {}
        self.resolved: dict[str, Settlement] = {}
        for e in c.record.read():
            if e["kind"] == "resolved":
                self.resolved[e["iid"]] = Settlement(
                    e["iid"], e["ts"], None if e["price"] is None else Decimal(e["price"]),
                    e["reason"])
            if e.get("v", "a") != tag:
                continue
            if e["kind"] == "accept":
                self.orders[e["coid"]] = {"order": e["order"], "left": Decimal(e["qty"]),
                                          "done": None}
            elif e["kind"] == "vfill":
                self.orders[e["coid"]]["left"] -= Decimal(e["quantity"])
            elif e["kind"] == "vdone":
                self.orders[e["coid"]]["done"] = e["status"]

    async def instruments(self) -> Sequence[Instrument]:
        known = {X: Instrument(VENUE, "X/USD"), Y: Instrument(VENUE, "Y/USD"),
                 B: Instrument(VENUE, "B/YES", kind="binary", tick_size="0.01", lot_size="1")}
        return [known[i] for i in self.serves]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        c = self.c
        if not self.streams:
            return
        for ev in self.resolved.values():  # a resolved market says so on every connect
            yield ev
        for i, step in enumerate(c.segment):
            self._release_late()
            if step.kind == "ev":
                ev = step.event
                c.now = max(c.now, ev.ts_ns)
                self._see(ev)
                yield ev
                if c.plan.mode == "live":
                    for venue in list(c.venues.values()):
                        venue._match(ev)
                if isinstance(ev, Settlement) and ev.instrument_id in TRADED:
                    self._resolve(ev)
            elif step.kind == "sigkill":
                assert c.sigkill_pipe is not None, "a SIGKILL step outside a child"
                os.write(c.sigkill_pipe, b"k")
                time.sleep(30)  # the parent SIGKILLs us here
            elif step.kind == "check":
                c.check_mode = step.arg
            elif step.kind != "correct":
                runner = c.runner
                if runner is not None and runner.ledger.in_transaction:
                    # The loop is idle (waiting for the next event) yet holds the write
                    # lock: `argus kill` would wait for the next event, and fail after the
                    # busy timeout in a quiet market.  Said, and the request skipped (here
                    # it would deadlock this thread for the timeout).
                    c.problem(f"idle loop holds the ledger's write lock: {step.kind} at "
                              f"step {i} cannot be written")
                else:
                    _person(c.run_dir, step.kind, f"campaign step {i}")
            for _ in range(12):  # answers arrive, the loop goes idle and commits
                await asyncio.sleep(0)
            if step.kind == "correct" and c.plan.mode == "live":
                _correct(c, step.arg)
                for _ in range(12):
                    await asyncio.sleep(0)
            probe(c)
        c.stream_ended = True
        self._release_late()
        for _ in range(12):
            await asyncio.sleep(0)

    def _release_late(self) -> None:
        late, self.c.late = self.c.late, []
        for venue, item in late:
            venue._queue.put_nowait(item)

    def _see(self, ev: object) -> None:
        books = self.c.books
        iid = getattr(ev, "instrument_id", None)
        if isinstance(ev, OrderBook):
            books[iid] = ({float(p): float(q) for p, q in ev.bids if q > 0},
                          {float(p): float(q) for p, q in ev.asks if q > 0}, True)
        elif isinstance(ev, BookDelta):
            bids, asks, live = books.get(iid, ({}, {}, False))
            ladder = bids if ev.side is Side.BUY else asks
            if ev.size_f > 0:
                ladder[ev.price_f] = ev.size_f
            else:
                ladder.pop(ev.price_f, None)
            books[iid] = (bids, asks, live)
        elif isinstance(ev, BookStatus):
            bids, asks, _ = books.get(iid, ({}, {}, False))
            books[iid] = (bids, asks, False)

    def _touch(self, iid: str, side: Side) -> tuple[float, float] | None:
        """The best price ``side`` would take now and its size (None: no sane two-sided
        book)."""
        bids, asks, live = self.c.books.get(iid, ({}, {}, False))
        if not live or not bids or not asks or max(bids) >= min(asks):
            return None
        if side is Side.BUY:
            return min(asks), asks[min(asks)]
        return max(bids), bids[max(bids)]

    def _style(self, coid: str) -> random.Random:
        return random.Random(f"{self.c.plan.seed}-{coid}-style")

    def _emit(self, item: Fill | OrderUpdate, how: str) -> None:
        """Report ``item`` on the executions stream as ``how`` says (``none``: not at all,
        as a basket's executed legs that only its ``BasketIncomplete`` carries)."""
        if how == "none":
            return
        if how == "late" and not self.c.stream_ended:  # held back until the next step
            self.c.late.append((self, item))
            return
        self._queue.put_nowait(item)
        if how == "dupe":
            self._queue.put_nowait(item)

    def _fill(self, coid: str, price: Decimal, qty: Decimal, liq: Liquidity) -> Fill:
        """Record a fill of ``coid`` (reported by the caller)."""
        o = self.orders[coid]
        od = o["order"]
        n = sum(1 for e in self.c.record.read() if e["kind"] == "vfill")
        fill = Fill(f"VF{n + 1}-{os.getpid()}-{coid}", coid, VENUE, od["instrument_id"],
                    Side(od["side"]), price, qty, Decimal(0), liq, self.c.now)
        o["left"] -= qty
        self.c.record.write("vfill", v=self.tag, coid=coid, fill_id=fill.fill_id,
                            quantity=str(qty), price=str(price), side=od["side"],
                            iid=od["instrument_id"], ts=fill.ts_ns)
        return fill

    def _done(self, coid: str, status: OrderStatus, reason: str, how: str = "stream") -> None:
        self.orders[coid]["done"] = status.value
        self.c.record.write("vdone", v=self.tag, coid=coid, status=status.value)
        self._emit(OrderUpdate(coid, status, self.c.now, reason=reason), how)

    def _match(self, ev: object) -> None:
        """Resting GTC orders a new book crosses fill at their limit."""
        iid = getattr(ev, "instrument_id", None)
        for coid, o in list(self.orders.items()):
            od = o["order"]
            if o["done"] or o["left"] <= 0 or od["instrument_id"] != iid:
                continue
            side = Side(od["side"])
            touch = self._touch(iid, side)
            limit = Decimal(od["limit_price"]) if od.get("limit_price") else None
            if touch is None or limit is None:
                continue
            price = Decimal(repr(touch[0]))
            if (side is Side.BUY and price <= limit) or (side is Side.SELL and price >= limit):
                how = self._style(coid).choice(["stream", "stream", "dupe", "late"])
                self._emit(self._fill(coid, limit, o["left"], Liquidity.MAKER), how)

    def _resolve(self, ev: Settlement) -> None:
        """The market resolved: refuse its orders from now; its resting orders end, some
        matched just before and reported after the resolution."""
        c = self.c
        c.record.write("resolved", iid=ev.instrument_id, ts=ev.ts_ns,
                       price=None if ev.price is None else str(ev.price), reason=ev.reason)
        for venue in list(c.venues.values()):
            venue.resolved[ev.instrument_id] = ev
            if c.plan.mode != "live":
                continue
            for coid, o in list(venue.orders.items()):
                od = o["order"]
                if o["done"] or o["left"] <= 0 or od["instrument_id"] != ev.instrument_id:
                    continue
                rng = venue._style(coid + "-resolve")
                if od.get("limit_price") and rng.random() < 0.5:
                    venue._emit(venue._fill(coid, Decimal(od["limit_price"]), o["left"],
                                            Liquidity.MAKER), rng.choice(["stream", "late"]))
                    continue
                venue._done(coid, OrderStatus.CANCELLED, "market resolved")

    def _refusal(self, order: Order) -> str | None:
        if order.instrument_id in self.resolved:
            return f"market {order.instrument_id} is resolved: it takes no orders"
        if self.refuses_reduce_only and order.reduce_only:
            return "reduce-only orders are not accepted on this market"
        return None

    def _accept(self, order: Order) -> None:
        od = converter.unstructure(order)
        self.orders[order.client_order_id] = {"order": od, "left": order.quantity,
                                              "done": None}
        self.c.record.write("accept", v=self.tag, coid=order.client_order_id, order=od,
                            qty=str(order.quantity))

    def _act(self, order: Order, rng: random.Random) -> list[Fill]:
        """Take ``order`` and do what the market lets it; the fills ``submit`` returns."""
        coid = order.client_order_id
        self._accept(order)
        ack = rng.choice(["first", "first", "after", "answer"])
        fills_how = rng.choice(["stream", "stream", "returned", "dupe", "late"])
        opened = OrderUpdate(coid, OrderStatus.OPEN, self.c.now, f"V-{coid}")
        if ack == "first":
            self._emit(opened, "stream")
        fills: list[Fill] = []
        if order.time_in_force is not TimeInForce.GTC:
            touch = self._touch(order.instrument_id, order.side)
            price = Decimal(repr(touch[0])) if touch is not None else None
            ok = price is not None and (order.limit_price is None or (
                price <= order.limit_price if order.side is Side.BUY
                else price >= order.limit_price))
            qty = order.quantity
            if ok and touch is not None and rng.random() < 0.3:  # only the touch's size
                qty = min(qty, Decimal(int(touch[1])))
            if ok and price is not None and qty > 0:
                fills.append(self._fill(coid, price, qty, Liquidity.TAKER))
                for fill in fills:
                    self._emit(fill, "stream" if fills_how == "returned" else fills_how)
            if self.orders[coid]["left"] > 0:
                self._done(coid, OrderStatus.CANCELLED, "IOC: nothing more to take")
        else:
            self._match(order)
        if ack == "after":
            self._emit(opened, "stream")
        return fills if fills_how == "returned" else []

    async def submit(self, order: Order) -> list[Fill]:
        c = self.c
        _record_send(c, order, committed=_committed(c.run_dir, order.client_order_id),
                     via=self.tag)
        rng = random.Random(f"{c.plan.seed}-{order.client_order_id}")
        await _latency(rng)
        if order.basket_id and order.basket_id not in c.killed_baskets \
                and rng.random() < 0.2:
            # A person's kill while the basket's first leg is on its way.
            c.killed_baskets.add(order.basket_id)
            runner = c.runner
            if runner is not None and not runner.ledger.in_transaction:
                _person(c.run_dir, "kill", f"kill during basket {order.basket_id}")
        refused = self._refusal(order)
        if refused:
            raise VenueError(refused)
        r = rng.random()
        if r < 0.04:  # refused before acting
            raise VenueError("503 Service Unavailable (refused, nothing done)")
        fills = self._act(order, rng)
        await _latency(rng)  # the answer's way back: the executions stream may be faster
        if r < 0.08:  # acted, then the answer was lost
            raise OrderUnknown("timeout reading the answer", [order.client_order_id])
        return fills

    async def cancel(self, client_order_id: str) -> None:
        o = self.orders.get(client_order_id)
        if o is None or o["done"] or o["left"] <= 0:
            raise VenueError(f"unknown or finished order {client_order_id}")
        self._done(client_order_id, OrderStatus.CANCELLED, "cancelled")

    async def open_orders(self) -> list[Order]:
        return [converter.structure(o["order"], Order) for o in self.orders.values()
                if not o["done"] and o["left"] > 0]

    async def lookup(self, order: Order) -> OrderUpdate | None:
        if order.client_order_id in self.orders:
            return OrderUpdate(order.client_order_id, OrderStatus.OPEN, self.c.now,
                               f"V-{order.client_order_id}")
        return OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, self.c.now,
                           reason="never received")

    def resume(self, known: VenueResume) -> None:
        """Report what the ledger missed (fills and ends of orders while nobody listened),
        then the corrections as they stand (each fill's final fee, its bust)."""
        booked = set(known.fill_ids)
        ts = self.resume_ts
        fees: dict[str, tuple[str, dict[str, Any]]] = {}
        busts: dict[str, dict[str, Any]] = {}
        for e in self.c.record.read():
            if e.get("v", "a") != self.tag:
                continue
            if e["kind"] == "vfill" and e["fill_id"] not in booked:
                od = self.orders[e["coid"]]["order"]
                self._queue.put_nowait(Fill(e["fill_id"], e["coid"], VENUE, od["instrument_id"],
                                            Side(od["side"]), Decimal(e["price"]),
                                            Decimal(e["quantity"]), Decimal(0),
                                            Liquidity.TAKER, ts))
            elif e["kind"] == "vdone":
                self._queue.put_nowait(OrderUpdate(e["coid"], OrderStatus(e["status"]),
                                                   ts, reason="while disconnected"))
            elif e["kind"] == "vcorr" and e["fee"] is not None:
                fees[e["fill_id"]] = (e["fee"], e)
            elif e["kind"] == "vcorr":
                busts[e["fill_id"]] = e
        for fid, (fee, e) in fees.items():
            self._queue.put_nowait(FillCorrection(fid, ts, e["reason"], fee=Decimal(fee)))
        for fid, e in busts.items():
            self._queue.put_nowait(FillCorrection(fid, ts, e["reason"], bust=True))

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        while True:
            yield await self._queue.get()


class BasketVenue(CampaignVenue):
    """A venue that takes a basket's legs together (``supports_baskets``): all legs fill
    or none does; sometimes refused whole, sometimes its answer lost after it acted, and
    sometimes left incomplete (``BasketIncomplete``: the first legs executed, the rest
    killed)."""

    supports_baskets = True

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        c = self.c
        for order in orders:
            _record_send(c, order, committed=_committed(c.run_dir, order.client_order_id),
                         via="basket")
        rng = random.Random(f"{c.plan.seed}-{orders[0].basket_id}")
        await _latency(rng)
        refused = next((r for r in map(self._refusal, orders) if r), None)
        if refused:
            raise VenueError(refused)
        r = rng.random()
        if r < 0.06:
            raise VenueError("basket refused (nothing done)")
        if r < 0.2:  # the first legs executed, the others could not be placed
            k = rng.randrange(1, len(orders))
            fills = []
            for order in orders:
                self._accept(order)
            for order in orders[:k]:
                touch = self._touch(order.instrument_id, order.side)
                price = Decimal(repr(touch[0])) if touch else order.limit_price or Decimal(1)
                fill = self._fill(order.client_order_id, price, order.quantity,
                                  Liquidity.TAKER)
                fills.append(fill)
                self._emit(fill, rng.choice(["stream", "late", "none"]))
            for order in orders[k:]:
                self._done(order.client_order_id, OrderStatus.CANCELLED, "basket leg killed")
            raise BasketIncomplete(f"leg {orders[k].client_order_id} could not be placed; "
                                   f"the executed legs stand", fills)
        for order in orders:
            self._accept(order)
        prices = []
        for order in orders:
            touch = self._touch(order.instrument_id, order.side)
            price = Decimal(repr(touch[0])) if touch is not None else None
            if price is None or (order.limit_price is not None and (
                    price > order.limit_price if order.side is Side.BUY
                    else price < order.limit_price)):
                break
            prices.append(price)
        fills = []
        fills_how = rng.choice(["stream", "returned", "dupe", "late"])
        if len(prices) == len(orders):  # all or none
            for order, price in zip(orders, prices, strict=True):
                fills.append(self._fill(order.client_order_id, price, order.quantity,
                                        Liquidity.TAKER))
            for fill in fills:
                self._emit(fill, "stream" if fills_how == "returned" else fills_how)
        else:
            for order in orders:
                self._done(order.client_order_id, OrderStatus.CANCELLED,
                           "basket not fillable as a whole")
        if r < 0.28:
            raise OrderUnknown("timeout reading the basket's answer",
                               [o.client_order_id for o in orders])
        return fills if fills_how == "returned" else []


def _multi_venue(settings: object) -> Venue:
    """The multi-venue composite (argustrade-multivenue) of two campaign venues: X and B
    on ``a`` (which streams the segment), Y on ``b``, which refuses the reduce-only flag
    (a kill's flatten there is refused, then sent again without it)."""
    from argus_multivenue.venue import MultiVenue

    c = Campaign.current
    assert c is not None
    inner = {"a": CampaignVenue(None, "a", (X, B)),
             "b": CampaignVenue(None, "b", (Y,), streams=False, refuses_reduce_only=True)}
    return MultiVenue(config=c.config, inner=inner)


def _correct(c: Campaign, what: str) -> None:
    """A venue's correction of a fill it reported (a final fee, a second fee, a repeat,
    a bust of the newest or the oldest fill, one for a fill nobody knows)."""
    entries = c.record.read()
    held_back = {item.fill_id for _, item in c.late if isinstance(item, Fill)}
    busted = {e["fill_id"] for e in entries if e["kind"] == "vcorr" and e["bust"]}
    fills = [e for e in entries if e["kind"] == "vfill" and e["fill_id"] not in held_back
             and e["fill_id"] not in busted and e.get("v", "a") in c.venues]
    corrected = [e for e in entries if e["kind"] == "vcorr"]
    fee: Decimal | None = None
    target: dict[str, Any] | None = None
    if what == "unknown":
        n = len(corrected)
        target, fee = {"fill_id": f"VF-ghost-{n}", "v": next(iter(c.venues))}, Decimal("0.5")
    elif what == "dupe":
        if not corrected or corrected[-1].get("v", "a") not in c.venues:
            return
        e = corrected[-1]
        venue = c.venues[e["v"]]
        venue._queue.put_nowait(FillCorrection(e["fill_id"], c.now, e["reason"],
                                               fee=None if e["fee"] is None else Decimal(e["fee"]),
                                               bust=e["bust"]))
        return
    elif what in ("fee", "bust"):
        target = fills[-1] if fills else None
    elif what == "bust-old":
        target = fills[0] if fills else None
    elif what == "fee2":
        fee_of = {e["fill_id"]: e["fee"] for e in corrected if e["fee"] is not None}
        again = [f for f in fills if f["fill_id"] in fee_of]
        target = again[-1] if again else None
        if target is not None:
            fee = Decimal(fee_of[target["fill_id"]]) - Decimal("0.005")  # a rebate
    if target is None:
        return
    if what == "fee":
        fee = (Decimal(target["quantity"]) * Decimal(target["price"]) / 1000).quantize(
            Decimal("1e-8")) + Decimal("0.01")
    bust = fee is None
    reason = f"campaign {what}"
    c.record.write("vcorr", v=target["v"], fill_id=target["fill_id"], ts=c.now,
                   fee=None if fee is None else str(fee), bust=bust, reason=reason)
    c.venues[target["v"]]._queue.put_nowait(
        FillCorrection(target["fill_id"], c.now, reason, fee=fee, bust=bust))


def _committed(run_dir: Path, coid: str) -> bool:
    """Whether ``coid``'s order row is committed (read by another connection)."""
    return bool(kill9_support.ledger_rows(
        run_dir, "select 1 from orders where client_order_id = ?", (coid,)))


def _record_send(c: Campaign, order: Order, *, committed: bool, via: str = "paper") -> None:
    runner = c.runner
    assert runner is not None
    pos = runner.account.positions.get(order.instrument_id)
    c.record.write("send", coid=order.client_order_id, iid=order.instrument_id,
                   side=order.side.value, qty=str(order.quantity),
                   reduce_only=order.reduce_only, strategy=order.strategy,
                   state=runner.risk.ctx.trading_state, committed=committed,
                   held=str(pos.quantity if pos is not None else 0), ts=runner.market.now_ns,
                   basket=order.basket_id, via=via)


def _person(run_dir: Path, action: str, reason: str) -> None:
    """A person's kill / flatten / resume, as ``argus kill`` writes it."""
    if not (run_dir / "argus.db").exists():
        return
    ledger = Ledger.in_dir(run_dir)
    try:
        request_trading_state(ledger, action, reason, "campaign")
    finally:
        ledger.close()


# -- the strategy and the switchable check ------------------------------------------------
class RandomStrategy(Strategy):
    """Every kind of intent, drawn per event from the seed (no state of its own)."""

    name = "rnd"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent | CancelIntent]:
        iid = getattr(event, "instrument_id", None)
        if iid not in TRADED:
            return ()
        rng = random.Random(f"{self.seed}-{event.ts_ns}-{iid}-{type(event).__name__}")  # type: ignore[union-attr]
        r = rng.random()
        if r < 0.005:
            raise RuntimeError("strategy bug")
        if r > 0.55:
            return ()
        held = ctx.portfolio.position(iid).quantity
        side = rng.choice([Side.BUY, Side.SELL])
        qty = Decimal(rng.choice([1, 1, 2, 3, 5, 8, 20]))
        ref = _price(ctx, iid, side)
        kind = rng.choice(["market", "ioc", "ioc", "gtc", "gtc", "post", "exit", "exit",
                           "cancel", "basket", "basket", "basket", "sized"])
        if kind == "market":
            return (Intent(self.name, iid, side, quantity=qty),)
        if kind == "sized":
            return (Intent(self.name, iid, side),)
        if kind == "cancel":
            return (CancelIntent(self.name, rng.choice([None, iid]), "campaign",
                                 rng.choice([None, side])),)
        if kind == "exit":
            if held == 0:
                return ()
            out = Side.SELL if held > 0 else Side.BUY
            q = abs(held) * Decimal(rng.choice([1, 1, 2])) / 2 if rng.random() < 0.7 else qty
            return (Intent(self.name, iid, out, quantity=q, reduce_only=True,
                           order_type=rng.choice([OrderType.MARKET, OrderType.LIMIT]),
                           limit_price=_away(ref, out, -2, iid) if ref else None,
                           reason="exit"),)
        if ref is None:
            return ()
        if kind == "ioc":
            return (Intent(self.name, iid, side, quantity=qty, order_type=OrderType.LIMIT,
                           limit_price=_away(ref, side, rng.choice([-1, 0, 1]), iid),
                           time_in_force=TimeInForce.IOC),)
        if kind in ("gtc", "post"):
            return (Intent(self.name, iid, side, quantity=qty, order_type=OrderType.LIMIT,
                           limit_price=_away(ref, side, rng.choice([-1, 1, 2, 3]), iid),
                           time_in_force=TimeInForce.GTC if kind == "gtc"
                           else TimeInForce.POST_ONLY),)
        other = rng.choice([i for i in TRADED if i != iid])
        oref = _price(ctx, other, side)
        if oref is None:
            return ()
        # Unique per event across restarts: the event number goes on after a restart.
        c = Campaign.current
        seq = c.runner.engine.seq if c is not None and c.runner is not None else 0
        basket = f"b{self.seed}-{seq}-{iid[-5]}"
        return tuple(Intent(self.name, i, side, quantity=qty, order_type=OrderType.LIMIT,
                            limit_price=_away(p, side, -1, i), basket_id=basket)
                     for i, p in ((iid, ref), (other, oref)))


def _price(ctx: StrategyContext, iid: str, side: Side) -> Decimal | None:
    book = ctx.market.books.get(iid)
    if book is not None:
        best = book.best_ask() if side is Side.BUY else book.best_bid()
        if best is not None:
            return Decimal(repr(best))
    bar = ctx.market.bars.get(iid)
    return Decimal(repr(bar.close)) if bar is not None else None


def _away(price: Decimal, side: Side, ticks: int, iid: str = X) -> Decimal:
    """``ticks`` of 0.5 (the binary B: 0.01) away from ``price`` against ``side``
    (negative: through it)."""
    move = (Decimal("0.01") if iid == B else Decimal("0.5")) * ticks
    out = price - move if side is Side.BUY else price + move
    return min(max(out, Decimal("0.01")), Decimal("0.99")) if iid == B else \
        max(out, Decimal("0.01"))


class SwitchCheck(RiskCheck):
    """A check a step switches: allow, veto, shrink to 1, raise, or return None."""

    name = "campaign_check"
    checks_exits = False

    def check(self, intent: Intent, quantity: Decimal, price: Decimal, portfolio: Portfolio,
              ctx: RiskContext) -> RiskDecision:
        c = Campaign.current
        mode = c.check_mode if c is not None else "allow"
        if mode == "veto":
            return RiskDecision.veto(self.name, "campaign veto")
        if mode == "shrink":
            return RiskDecision(RiskAction.SHRINK, self.name, "campaign shrink", Decimal(1))
        if mode == "raise":
            raise ValueError("campaign check bug")
        if mode == "none":
            return None  # type: ignore[return-value]  # a check that forgot to return
        return RiskDecision.allow(self.name)


class ExitsSwitchCheck(SwitchCheck):
    """The same, judging exits too (a fat-finger check)."""

    checks_exits = True


# -- the probe: a flatten owed must go out -------------------------------------------------
#: A refused flatten's risk event: the order, and the wait before it is sent again.
_REFUSED_FLATTEN = re.compile(r"refused flatten (\S+): .*sent again in (\d+) s")


def _flatten_retries(events: Iterable[dict[str, Any]]) -> list[int]:
    """When each refused flatten among ``events`` (risk event rows, oldest first) is sent
    again: the kill switch's backoff after a venue's refusal (2 s, doubling up to 16 s
    while the refusals run on)."""
    return [e["ts_ns"] + int(m.group(2)) * S for e in events
            if (m := _REFUSED_FLATTEN.search(e["reason"]))]


def probe(c: Campaign) -> None:
    """After every step: while HALTED with a flatten asked for, a held instrument whose
    book is tradeable and two-sided must see a flatten order within the retry period."""
    runner = c.runner
    if runner is None:
        return
    raw = runner.ledger.get_control("trading_state")
    latch = json.loads(raw) if raw else {}
    halted_flat = latch.get("state") == "halted" and latch.get("flatten")
    now = runner.market.now_ns
    for iid in TRADED:
        pos = runner.account.positions.get(iid)
        held = pos.quantity if pos is not None else 0
        ok, _ = runner.market.tradeable(iid)
        takes = ok and runner.market.live_mid(iid) is not None
        # A check that judges exits (a fat-finger check) may veto them: by design.
        held_by_check = c.plan.exits_checked and c.check_mode == "veto"
        if not (halted_flat and held and takes) or iid in runner.market.settled \
                or held_by_check:
            c.owed.pop(iid, None)
            continue
        # A flatten in flight (sent, the venue's answer not yet booked) is the kill switch
        # at work: owed again from its end, at the latest the first probe that finds it
        # ended (seed 54042: one sent at 87 s and refused at 94 s, retried 2 s later).
        busy = bool(runner.ledger.query(
            "select 1 from orders where strategy = 'flatten' and instrument_id = ? and "
            "status not in ('filled', 'cancelled', 'rejected') limit 1", (iid,)))
        if busy or iid in c.flatten_busy:
            c.owed[iid] = now
            (c.flatten_busy.add if busy else c.flatten_busy.discard)(iid)
            continue
        since = c.owed.setdefault(iid, now)
        # A flatten the venue refused waits out its backoff (2 s, doubling to 16 s while
        # the refusals run on, by design): owed again from its retry (seed 92716: refused
        # at 69 s after two refusals, retried 8 s later).
        retry = max(_flatten_retries(runner.ledger.query(
            "select r.ts_ns, r.reason from risk_events r join orders o on instr(r.reason,"
            " 'refused flatten ' || o.client_order_id || ':') where r.check_name = 'flatten'"
            " and r.action = 'refused' and o.instrument_id = ? order by r.id",
            (iid,))), default=0)
        if retry > since:
            since = c.owed[iid] = retry
        # The flatten stands back for another exit sent on its position (a basket's
        # unwind), by design: owed again from that exit (seed 103881: the market quiet from
        # 11 s to 22 s, an unwind took the 22 s event, the flatten went at 23 s).
        (other,) = runner.ledger.query(
            "select max(ts_ns) as t from orders where strategy != 'flatten' and reduce_only "
            "and instrument_id = ? and ts_ns >= ?", (iid, max(since, now - RETRY_NS)))
        if other["t"] is not None:
            since = c.owed[iid] = other["t"]
        if now - since > RETRY_NS + S:
            sent = runner.ledger.query(
                "select count(*) as n from orders where strategy = 'flatten' and "
                "instrument_id = ? and ts_ns >= ?", (iid, since))[0]["n"]
            if not sent:
                c.problem(f"flatten owed on {iid} (holding {held}) since {since / S:g}s, "
                          f"book tradeable, none sent by {now / S:g}s")
                c.owed[iid] = now  # said once per period


# -- running a seed ------------------------------------------------------------------------
def install(monkeypatch: Any) -> None:
    """Register :class:`CampaignVenue` as plugin ``cmp`` (for one test)."""
    module = types.ModuleType("argus_test_campaign_venue")

    def register_venues(register: Any) -> None:
        register(VENUE, CampaignVenue)
        register(VENUE_NAMES["basket"], BasketVenue)
        register(VENUE_NAMES["multi"], _multi_venue)

    module.register_venues = hookimpl(register_venues)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_campaign_venue", module)
    monkeypatch.setattr(core_plugins, "BUILTINS", (*core_plugins.BUILTINS,
                                                   (VENUE, "argus_test_campaign_venue")))


@pytest.fixture(autouse=True)
def campaign_venue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The campaign venue registered, and its thousands of expected vetoes and refusals
    kept out of the log, for each test of a module that imports this fixture."""
    install(monkeypatch)
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def ev(event: object) -> Step:
    """A plan step streaming ``event``."""
    return Step("ev", event)


def book(iid: str, t: int, bids: list[tuple[float, float]],
         asks: list[tuple[float, float]]) -> Step:
    """A plan step streaming a whole book of ``iid`` at second ``t``."""
    return ev(OrderBook(iid, t * S, bids=bids, asks=asks))


VENUE_NAMES = {"one": VENUE, "basket": "cmpbasket", "multi": "cmpmulti"}


def _runner(c: Campaign) -> Runner:
    plan = c.plan
    checks = ["max_drawdown"] if plan.drawdown else []
    raw: dict[str, Any] = {"argus": {"plugins": [], "mode": plan.mode, "seed": plan.seed},
                           "run": {"venue": VENUE_NAMES[plan.venue], "strategies": [],
                                   "risk_checks": checks,
                                   "starting_cash": str(STARTING_CASH)}}
    if plan.drawdown:
        raw["plugins"] = {"risk": {"max_drawdown_fraction": plan.drawdown}}
    config = parse_config(raw, c.run_dir.parent / "campaign.toml")
    c.fresh()
    c.config = config
    runner = Runner(config, c.run_dir, live_confirmed=plan.mode == "live",
                    strategies={"rnd": RandomStrategy(plan.seed)})
    runner.risk.checks.append(ExitsSwitchCheck() if plan.exits_checked else SwitchCheck())
    if plan.mode == "paper":  # the paper broker's own record of what it was sent
        submit = runner.broker.submit

        def recorded(order: Order, ts_ns: int) -> list[Fill]:
            _record_send(c, order, committed=runner.ledger.order_status(
                order.client_order_id) is not None)
            return submit(order, ts_ns)

        runner.broker.submit = recorded  # type: ignore[method-assign]
    c.runner = runner
    return runner


def _run_segment(c: Campaign, seg: Sequence[Step]) -> None:
    c.segment, c.owed, c.flatten_busy = seg, {}, set()
    runner = _runner(c)
    try:
        runner.run_sync()
    except Exception as exc:  # the invariant: no crash on any input
        c.problem(f"the run crashed: {type(exc).__name__}: {exc}\n"
                  + "".join(traceback.format_exc(limit=-6)))
    finally:
        c.runner = None


def _run_killed(c: Campaign, seg: Sequence[Step]) -> None:
    """The segment in a forked child, SIGKILLed (kill9_support.sigkill) at its step."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, and wait at the SIGKILL step
        os.close(read_end)
        c.sigkill_pipe = write_end
        code = 0
        try:
            _run_segment(c, seg)
            if c.problems:
                c.record.write("child_problems", problems=c.problems)
        except BaseException:  # a forked child must never return into pytest's frames
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reached = pipe.read(1)
    if reached:
        kill9_support.sigkill(pid)
    os.waitpid(pid, 0)
    if not reached:
        c.problem("the child ended before its SIGKILL step")
    kill9_support.assert_lock_free(c.run_dir)  # the kernel released the dead writer's lock
    if (c.run_dir / "argus.db").exists():
        ok = kill9_support.integrity(c.run_dir)
        if ok != "ok":
            c.problem(f"ledger integrity after SIGKILL: {ok}")
    for e in c.record.read():
        if e["kind"] == "child_problems":
            c.problems.extend(e["problems"])


@attrs.frozen
class Result:
    """One seed's outcome."""

    plan: Plan
    problems: tuple[str, ...]
    orders: int
    fills: int
    seconds: float

    def report(self) -> str:
        """The failing seed, what broke and its trace."""
        return ("\n".join(["", f"SEED {self.plan.seed} broke:", *self.problems, "",
                           self.plan.trace()]))


@contextlib.contextmanager
def _current(c: Campaign) -> Iterator[None]:
    Campaign.current = c
    try:
        yield
    finally:
        Campaign.current = None


def run_seed(seed: int, workdir: Path, plan: Plan | None = None) -> Result:
    """Run seed ``seed`` (or ``plan``) in ``workdir`` and check every invariant."""
    started = time.perf_counter()
    plan = plan or make_plan(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    c = Campaign(plan, workdir / "run", Record(workdir / "venue.jsonl"))
    with _current(c):
        for seg in plan.segments:
            if any(s.kind == "sigkill" for s in seg):
                _run_killed(c, seg)
            else:
                _run_segment(c, seg)
    problems = [*c.problems, *check(plan, c.run_dir, c.record)]
    with Ledger.in_dir(c.run_dir) as ledger:
        n_orders = ledger.query("select count(*) as n from orders")[0]["n"]
        n_fills = ledger.query("select count(*) as n from fills")[0]["n"]
    return Result(plan, tuple(problems), n_orders, n_fills, time.perf_counter() - started)


# -- the invariants ------------------------------------------------------------------------
def _reduces(held: Decimal, side: str, qty: Decimal) -> bool:
    signed = qty if side == "buy" else -qty
    return held != 0 and (held > 0) != (signed > 0) and abs(signed) <= abs(held)


def check(plan: Plan, run_dir: Path, record: Record) -> list[str]:
    """Every invariant of a finished seed, as a list of what broke:

    * every order the broker (paper) or venue (live) was sent has its ledger row written
      before the send (live: committed, seen by another connection); no client order id
      is sent twice (across restarts and a SIGKILL); nothing goes out while HALTED
      unless reduce-only and reducing the position held at that moment;
    * every ledger order the broker or venue never received is final unfilled (live: or
      pending); live: every fill the venue reported is booked exactly once, and nothing else is;
    * each position row == the sum of its booked fills, each order's filled quantity ==
      its fills (never more than its quantity), the cash of every equity row == starting
      cash less the fills booked by then;
    * every equity row == cash + sum(qty x a mark the market justified by then: the mid
      of a live two-sided book, else the last print or bar close, or the price of a fill
      since);
    * a run HALTED with a flatten ends flat (the tail streams books that can take it);
    * fill corrections: each fill's fee is the last fee the venue gave it (before any
      bust); a busted fill is offset once by ``<fill id>:bust`` (the other side, same
      quantity and price, its fee refunded) with one audit row; a correction of a fill
      the ledger does not have is a risk event and books nothing; every equity row's cash
      counts each fee as corrected by then;
    * settlements: a settled instrument is flat at the end, its settlement fills at the
      settlement price (a void: at the position's average cost), and no order on it goes
      out after it settled;
    * baskets: a vetoed leg leaves the whole basket unsent; legs that end final with
      unequal fills are unwound (an unwind risk event or order), at most once per leg.
    """
    out: list[str] = []
    entries = record.read()
    with Ledger.in_dir(run_dir) as ledger:
        orders = {r["client_order_id"]: r for r in ledger.query("select * from orders")}
        fills = ledger.query("select * from fills order by rowid")
        positions = {r["instrument_id"]: Decimal(r["quantity"])
                     for r in ledger.query("select * from positions")}
        equity = ledger.query("select * from equity order by ts_ns")
        raw = ledger.get_control("trading_state")
        corrections = ledger.query("select * from fill_corrections order by rowid")
        events = ledger.query("select * from risk_events")
    latch = json.loads(raw) if raw else {}
    sends = [e for e in entries if e["kind"] == "send"]
    # -- the one order path ------------------------------------------------------------
    seen: set[str] = set()
    for s in sends:
        coid = s["coid"]
        if coid in seen:
            out.append(f"order {coid} sent twice")
        seen.add(coid)
        if not s["committed"]:
            out.append(f"order {coid} sent before its ledger row was "
                       f"{'committed' if plan.mode == 'live' else 'written'}")
        # The ledger's flag: a flatten the venue refused as reduce-only goes again without
        # the venue's flag (documented), still an exit for the HALTED gate.
        reduce_only = s["reduce_only"] or bool(orders.get(coid, {}).get("reduce_only"))
        if s["state"] == "halted" and not (
                reduce_only and _reduces(Decimal(s["held"]), s["side"], Decimal(s["qty"]))):
            out.append(f"order {coid} ({s['strategy']} {s['side']} {s['qty']}, reduce_only "
                       f"{s['reduce_only']}, holding {s['held']}) sent while HALTED")
        if plan.mode == "live" and coid not in orders:
            out.append(f"order {coid} reached the venue but is not in the ledger")
    for coid, row in orders.items():  # paper too: a leg cancelled unsent stays no OPEN row
        if row["strategy"] == "settlement" or coid in seen:
            continue
        if row["status"] not in ("cancelled", "rejected", "pending") or \
                Decimal(row["filled_quantity"]):
            out.append(f"order {coid} never reached the venue but is {row['status']} "
                       f"filled {row['filled_quantity']}")
    if plan.mode == "live":
        reported = {e["fill_id"] for e in entries if e["kind"] == "vfill"}
        booked = {f["fill_id"] for f in fills if not f["client_order_id"].startswith("settle-")
                  and not f["fill_id"].endswith(":bust")}
        for fid in sorted(reported - booked):
            out.append(f"venue fill {fid} never booked")
        for fid in sorted(booked - reported):
            out.append(f"fill {fid} booked but never reported by the venue")
    # -- positions, orders, cash ---------------------------------------------------------
    by_iid: dict[str, Decimal] = {}
    by_order: dict[str, Decimal] = {}
    for f in fills:
        q = Decimal(f["quantity"]) * (1 if f["side"] == "buy" else -1)
        by_iid[f["instrument_id"]] = by_iid.get(f["instrument_id"], Decimal(0)) + q
        by_order[f["client_order_id"]] = by_order.get(f["client_order_id"], Decimal(0)) + abs(q)
    for iid in set(by_iid) | set(positions):
        if by_iid.get(iid, 0) != positions.get(iid, 0):
            out.append(f"position {iid}: ledger {positions.get(iid, 0)} != fills "
                       f"{by_iid.get(iid, 0)}")
    for coid, row in orders.items():
        filled, qty = Decimal(row["filled_quantity"]), Decimal(row["quantity"])
        # its own side's fills, less the busted ones (each offset on the other side)
        net = sum((Decimal(f["quantity"]) * (1 if f["side"] == row["side"] else -1)
                   for f in fills if f["client_order_id"] == coid and (
                       f["side"] == row["side"] or f["fill_id"].endswith(":bust"))),
                  Decimal(0))
        if coid in by_order and net != filled:
            out.append(f"order {coid}: filled_quantity {filled} != its fills {net}")
        if filled > qty:
            out.append(f"order {coid} filled {filled} of {qty}")
    out += _check_equity(plan, fills, equity, corrections)
    out += _check_corrections(entries, fills, corrections, events)
    out += _check_settlements(plan, entries, fills, positions, orders)
    out += _check_baskets(orders, events)
    # -- the kill switch -----------------------------------------------------------------
    if latch.get("state") == "halted" and latch.get("flatten"):
        last = max((st.event.ts_ns for seg in plan.segments for st in seg if st.kind == "ev"),
                   default=0)
        for iid, q in positions.items():
            # A venue refusing the flatten (a 503) is asked again after a doubling wait, up
            # to 16 s: one still waiting when the stream ends is the kill switch's backoff
            # by design, not a flatten given up (seed 63336: the tail's 12 s were shorter).
            waits = _flatten_retries(
                e for e in events if e["check_name"] == "flatten" and e["action"] == "refused"
                and (m := _REFUSED_FLATTEN.search(e["reason"]))
                and orders.get(m.group(1), {}).get("instrument_id") == iid)
            if q and not (waits and waits[-1] > last):
                out.append(f"HALTED with flatten ({latch.get('reason')}) yet {iid} is held: "
                           f"{q} at the end, after the tail's books")
    return out


#: An observation: (market time, instrument, price, uncertain, bound).  ``bound`` None: a
#: price the market justified; "le" / "ge": a live one-sided book showing asks / bids
#: only, whose best price bounds the mark held then from above / below.
_Obs = tuple[int, str, Decimal, bool, str | None]


def _observations(plan: Plan) -> list[_Obs]:
    """Every price the streamed market justified and every one-sided book's bound
    (:data:`_Obs`), in stream order; ``uncertain``: seen by a SIGKILLed process, which
    may have lost it with its uncommitted work."""
    out: list[_Obs] = []
    now = 0
    for seg in plan.segments:
        books: dict[str, tuple[dict[float, float], dict[float, float], bool]] = {}
        # Market state keeps the newest print and bar by their own time: one stamped
        # before the newest (a late or replayed one) marks nothing (a fresh runner has none).
        newest: dict[tuple[str, type], int] = {}
        killed = any(s.kind == "sigkill" for s in seg)
        if killed:  # its marks may all be lost: the checkpoint's (the last before) stands
            # (at its own time: restamped at the segment's start it hid a fill since, the
            # mark of a position opened on a one-sided book: seed 13468)
            last = {iid: (t, p) for t, iid, p, _, b in out if b is None}
            out += [(t, iid, p, True, None) for iid, (t, p) in last.items()]
        for step in seg:
            if step.kind == "sigkill":
                break
            if step.kind != "ev":
                continue
            ev = step.event
            now = max(now, getattr(ev, "ts_ns", 0))
            iid = getattr(ev, "instrument_id", None)
            if iid not in TRADED:
                continue
            bids, asks, live = books.get(iid, ({}, {}, False))
            if isinstance(ev, OrderBook):
                bids = {float(p): float(q) for p, q in ev.bids if q > 0}
                asks = {float(p): float(q) for p, q in ev.asks if q > 0}
                live = True
            elif isinstance(ev, BookDelta):
                bids, asks = dict(bids), dict(asks)
                ladder = bids if ev.side is Side.BUY else asks
                if ev.size_f > 0:
                    ladder[ev.price_f] = ev.size_f
                else:
                    ladder.pop(ev.price_f, None)
            elif isinstance(ev, BookStatus):
                live = False
            books[iid] = (bids, asks, live)
            mid = None
            if live and bids and asks and max(bids) < min(asks):
                mid = Decimal(repr((max(bids) + min(asks)) / 2))
            if isinstance(ev, Trade | Bar):
                key = (iid, Trade if isinstance(ev, Trade) else Bar)
                if ev.ts_ns < newest.get(key, ev.ts_ns):
                    continue
                newest[key] = ev.ts_ns
            if isinstance(ev, OrderBook | BookDelta):
                price = mid
                if live and bool(bids) != bool(asks):  # one-sided: bounds the mark held
                    out.append((now, iid, Decimal(repr(min(asks) if asks else max(bids))),
                                killed, "le" if asks else "ge"))
            elif isinstance(ev, Trade):
                price = ev.price if mid is None else None
            elif isinstance(ev, Bar):
                price = Decimal(repr(ev.close)) if mid is None else None
            else:
                price = None
            if price is not None:
                out.append((now, iid, price, killed, None))
    return out


def _bounded(value: Decimal, after: list[tuple[int, Decimal, bool, str]], ts: int,
             start: int | None = None, since: int | None = None) -> set[Decimal]:
    """``value`` as the one-sided books ``after`` it (``(time, bound, uncertain, kind)``,
    in stream order; from index ``start``, or those stamped at or after ``since``) left
    it by row time ``ts``: each bound applied, or also skipped where the row may have
    been written before it (stamped at the row's time, or at the fill's own time) or a
    SIGKILL may have lost it."""
    out = {value}
    for k, (t, bound, uncertain, kind) in enumerate(after):
        if (start is not None and k < start) or (since is not None and t < since) or t > ts:
            continue
        moved = {min(v, bound) if kind == "le" else max(v, bound) for v in out}
        out = out | moved if uncertain or t in (ts, since) else moved
    return out


def _fee_then(fill: dict[str, Any], history: dict[str, list[dict[str, Any]]], ts: int
              ) -> Decimal:
    """``fill``'s fee as corrected by market time ``ts`` (its fee corrections in order)."""
    changes = history.get(fill["fill_id"])
    if not changes:
        return Decimal(fill["fee"])
    fee = Decimal(changes[0]["old_value"])
    for c in changes:
        if c["ts_ns"] <= ts:
            fee = Decimal(c["new_value"])
    return fee


def _check_equity(plan: Plan, fills: list[dict[str, Any]], equity: list[dict[str, Any]],
                  corrections: Sequence[dict[str, Any]] = ()) -> list[str]:
    out: list[str] = []
    obs = _observations(plan)
    history: dict[str, list[dict[str, Any]]] = {}
    for c in corrections:
        if c["kind"] == "fee":
            history.setdefault(c["fill_id"], []).append(c)
    for row in equity:
        ts = row["ts_ns"]
        cash, held = STARTING_CASH, {i: Decimal(0) for i in TRADED}
        fill_prices: dict[str, list[tuple[int, Decimal]]] = {i: [] for i in TRADED}
        for f in fills:
            if f["ts_ns"] > ts:
                continue
            q, p = Decimal(f["quantity"]), Decimal(f["price"])
            sign = 1 if f["side"] == "buy" else -1
            cash -= sign * q * p + _fee_then(f, history, ts)
            if f["instrument_id"] in held:
                held[f["instrument_id"]] += sign * q
                fill_prices[f["instrument_id"]].append((f["ts_ns"], p))
        if Decimal(row["cash"]) != cash:
            out.append(f"equity row {ts / S:g}s: cash {row['cash']} != starting cash less "
                       f"the fills booked by then ({cash})")
            continue
        choices: list[set[Decimal]] = []
        for iid in TRADED:
            if not held[iid]:
                continue
            # Each price with the one-sided books' bounds that came after it (index k:
            # the bounds after the k-th observation, in stream order).
            bounds: list[tuple[int, Decimal, bool, str]] = []
            mine: list[tuple[int, Decimal, bool, int]] = []
            for t, i, p, u, b in obs:
                if i != iid or t > ts:
                    continue
                if b is None:
                    mine.append((t, p, u, len(bounds)))
                else:
                    bounds.append((t, p, u, b))
            seen: set[tuple[Decimal, int]] = set()
            if mine:
                seen.add(mine[-1][1::2])
                seen |= {(p, k) for _, p, u, k in mine if u}  # a SIGKILL may have lost the newest
                # A row at T may be written before T's last events (at a commit, or before
                # a late print stamped at the clock): any price seen at T, or the last
                # one before it, is one the market made by then.
                seen |= {(p, k) for t, p, _, k in mine if t == ts}
                before = [(p, k) for t, p, _, k in mine if t < ts]
                if before:
                    seen.add(before[-1])
            ok: set[Decimal] = set()
            for p, k in seen:
                ok |= _bounded(p, bounds, ts, start=k)
            # A fill marks its position until a market price comes after it; one a SIGKILL
            # may have lost does not count (seed 17277: the mid after the fill was lost
            # with the killed process's uncommitted work, the fill's mark stood).
            # (surely seen prices come in time order: the last before the row, else the row's)
            sure = [t for t, _, u, _ in mine if not u]
            last_t = next((t for t in reversed(sure) if t < ts), sure[-1]) if sure else 0
            for t, p in fill_prices[iid]:
                if t >= last_t:
                    ok |= _bounded(p, bounds, ts, since=t)
            choices.append({q * held[iid] for q in ok})
        want = Decimal(row["equity"])
        sums = {cash}
        for values in choices:
            sums = {s + v for s in sums for v in values}
        if not any(abs(want - s) <= _Q for s in sums):
            near = min(sums, key=lambda s: abs(want - s))
            out.append(f"equity row {ts / S:g}s: {want} is no justified valuation (holding "
                       f"{ {i: str(q) for i, q in held.items() if q} }; nearest {near})")
    return out


def _check_corrections(entries: list[dict[str, Any]], fills: list[dict[str, Any]],
                       corrections: list[dict[str, Any]], events: list[dict[str, Any]]
                       ) -> list[str]:
    out: list[str] = []
    rows = {f["fill_id"]: f for f in fills}
    last_fee: dict[str, str] = {}
    busted: list[str] = []
    for e in entries:
        if e["kind"] != "vcorr":
            continue
        fid = e["fill_id"]
        if fid not in rows:
            if not any(r["action"] == "unknown_correction" and fid in r["reason"]
                       for r in events):
                out.append(f"correction of fill {fid}, which the ledger does not have, "
                           f"left no risk event")
            continue
        if e["bust"]:
            busted.append(fid)
        elif fid not in busted:
            last_fee[fid] = e["fee"]
    for fid, fee in last_fee.items():
        if Decimal(rows[fid]["fee"]) != Decimal(fee):
            out.append(f"fill {fid}: fee {rows[fid]['fee']} != the venue's last fee {fee}")
    for fid in dict.fromkeys(busted):
        f = rows[fid]
        offsets = [g for g in fills if g["fill_id"] == f"{fid}:bust"]
        audits = [c for c in corrections if c["fill_id"] == fid and c["kind"] == "bust"]
        if len(offsets) != 1 or len(audits) != 1:
            out.append(f"bust of fill {fid}: {len(offsets)} offsets, {len(audits)} audit rows "
                       f"(want one each)")
            continue
        g = offsets[0]
        if (g["side"] == f["side"] or Decimal(g["quantity"]) != Decimal(f["quantity"])
                or Decimal(g["price"]) != Decimal(f["price"])
                or Decimal(g["fee"]) != -Decimal(f["fee"])
                or g["instrument_id"] != f["instrument_id"]):
            out.append(f"bust of fill {fid}: offset {g['side']} {g['quantity']} @ "
                       f"{g['price']} fee {g['fee']} does not undo {f['side']} "
                       f"{f['quantity']} @ {f['price']} fee {f['fee']}")
    for fid in {f["fill_id"][:-5] for f in fills if f["fill_id"].endswith(":bust")} - set(
            busted):
        out.append(f"fill {fid} busted in the ledger but never by the venue")
    return out


def _settlements(plan: Plan) -> dict[str, Settlement]:
    """Each instrument's first settlement the run saw (a SIGKILLed segment's too: the
    venue says it again on the next connect)."""
    out: dict[str, Settlement] = {}
    for seg in plan.segments:
        for step in seg:
            if step.kind == "sigkill":
                break
            if step.kind == "ev" and isinstance(step.event, Settlement):
                out.setdefault(step.event.instrument_id, step.event)
    return out


def _average(lot: tuple[Decimal, Decimal], q: Decimal, p: Decimal
             ) -> tuple[Decimal, Decimal]:
    """``(held, average cost)`` after a signed trade ``q`` at ``p``."""
    held, cost = lot
    if held == 0 or (held > 0) == (q > 0):  # opens or adds: the average moves
        cost = (cost * abs(held) + p * abs(q)) / (abs(held) + abs(q))
    elif abs(q) > abs(held):  # flips: the rest opens at this price
        cost = p
    held += q
    return held, (cost if held else Decimal(0))


def _check_settlements(plan: Plan, entries: list[dict[str, Any]], fills: list[dict[str, Any]],
                       positions: dict[str, Decimal], orders: dict[str, dict[str, Any]]
                       ) -> list[str]:
    out: list[str] = []
    settled = _settlements(plan)
    for iid, ev in settled.items():
        if positions.get(iid, 0):
            out.append(f"{iid} settled at {ev.ts_ns / S:g}s "
                       f"({'void' if ev.price is None else ev.price}) yet "
                       f"{positions[iid]} is held at the end")
        lot = (Decimal(0), Decimal(0))
        # Each strategy slot's book, as the core keeps them: a slot's own fill is its own;
        # a house fill (the kill switch's flatten) that reduces what the books hold is
        # shared by them pro rata, else it is the house book's; its bust comes out of the
        # books it went into, in the same shares.  A void gives each book holding the
        # instrument back at its own average cost, when several hold it.
        books: dict[str, tuple[Decimal, Decimal]] = {}
        house: dict[str, list[tuple[str, Decimal]]] = {}  # fill id -> its shares in the books
        for f in fills:
            if f["instrument_id"] != iid:
                continue
            q = Decimal(f["quantity"]) * (1 if f["side"] == "buy" else -1)
            p = Decimal(f["price"])
            own = ""  # a void's settlement of one book (its id ends "-<slot>-1")
            if f["liquidity"] == "settlement":
                if ev.price is None and books.get(
                        name := f["fill_id"].rsplit("-", 2)[-2], (0, 0))[0]:
                    own = name
                want = ev.price if ev.price is not None else books[own][1] if own else lot[1]
                if abs(p - want) > Decimal("1e-6"):
                    out.append(f"{iid}: settlement fill {f['fill_id']} at {p}, not "
                               f"{'the average cost ' if ev.price is None else ''}{want}")
            lot = _average(lot, q, p)
            order = orders.get(f["client_order_id"])
            slot = own or (order["strategy"] if order else "")
            holders = {s: b for s, b in sorted(books.items()) if b[0]}
            total = sum((b[0] for b in holders.values()), Decimal(0))
            busts = house.get(f["fill_id"].split(":bust")[0]) if ":bust" in f["fill_id"] \
                else None
            if busts:  # a bust of a house fill: out of the books it was booked in
                whole = abs(sum((b for _, b in busts), Decimal(0)))
                parts = [(name, -b * abs(q) / whole) for name, b in busts]
            elif own or slot not in ("flatten", "settlement") or total == 0 \
                    or (total > 0) == (q > 0):
                books[slot] = _average(books.get(slot, (Decimal(0), Decimal(0))), q, p)
                house[f["fill_id"]] = [(slot, q)]
                continue
            else:
                parts = [(name, q * b[0] / total) for name, b in holders.items()]
            left, house[f["fill_id"]] = q, []
            for n, (name, part) in enumerate(parts, 1):
                share = left if n == len(parts) else part.quantize(Decimal("1e-12"))
                left -= share
                if share:
                    books[name] = _average(books.get(name, (Decimal(0), Decimal(0))), share, p)
                    house[f["fill_id"]].append((name, share))
    for s in entries:
        if s["kind"] == "send" and s["iid"] in settled and \
                s["ts"] > settled[s["iid"]].ts_ns:
            out.append(f"order {s['coid']} ({s['strategy']} {s['side']} {s['qty']}) sent on "
                       f"{s['iid']} at {s['ts'] / S:g}s, after it settled")
    return out


def _check_baskets(orders: dict[str, dict[str, Any]], events: list[dict[str, Any]]
                   ) -> list[str]:
    out: list[str] = []
    baskets: dict[str, list[dict[str, Any]]] = {}
    for row in orders.values():
        if row["basket_id"]:
            baskets.setdefault(row["basket_id"], []).append(row)
    unwind_said = {b for b in baskets for r in events  # skipped: a leg that closed a position
                   if r["action"] in ("unwind", "unwind_skipped")
                   and f"partial basket {b}:" in r["reason"]}
    for r in events:
        intent = json.loads(r["intent_json"]) if r.get("intent_json") else {}
        b = intent.get("basket_id")
        if r["action"] == "veto" and b and not intent.get("reduce_only") and any(
                not o["reduce_only"] for o in baskets.get(b, ())):
            out.append(f"basket {b}: a leg was vetoed ({r['reason'][:60]}) yet legs were "
                       f"sent")
    for b, rows in baskets.items():
        legs = [o for o in rows if not o["reduce_only"]]
        unwinds = [o["instrument_id"] for o in rows if o["reduce_only"]]
        for iid in set(unwinds):  # what an unwind left is sent again, UNWIND_TRIES at most
            if unwinds.count(iid) > UNWIND_TRIES:
                out.append(f"basket {b}: {unwinds.count(iid)} unwinds of {iid}")
        if len(legs) < 2 or any(o["status"] not in ("filled", "cancelled", "rejected")
                                for o in legs):
            continue
        filled = {Decimal(o["filled_quantity"]) for o in legs}
        if len(filled) > 1 and b not in unwind_said and not unwinds:
            out.append(f"basket {b}: legs final and filled unequally "
                       f"({sorted(map(str, filled))}) yet nothing was unwound")
    return out


# -- shrinking -----------------------------------------------------------------------------
def kind_of(problem: str) -> str:
    """A problem's class: its text without ids, numbers and times."""
    text = re.sub(r"[0-9a-f]{12}-\S+|VF\S+|settle-\S+", "<id>", problem.split("\n")[0])
    return re.sub(r"-?\d[\d.]*(E[+-]?\d+)?", "#", text)[:70]


def shrink(plan: Plan, workdir: Path, kind: str | None = None, rounds: int = 3) -> Plan:
    """Greedily drop segments and steps of ``plan`` while a problem of class ``kind``
    (default: its first problem's) remains; the smallest plan found."""
    def fails(p: Plan) -> bool:
        nonlocal n
        n += 1
        r = run_seed(p.seed, workdir / f"s{n}", p)
        return any(kind_of(x) == kind for x in r.problems)

    n = 0
    if kind is None:
        first = run_seed(plan.seed, workdir / "s0", plan).problems
        if not first:
            return plan
        kind = kind_of(first[0])
    for _ in range(rounds):
        before = plan
        segs = list(plan.segments)
        k = 0
        while k < len(segs) and len(segs) > 1:
            trial = attrs.evolve(plan, segments=tuple(segs[:k] + segs[k + 1:]))
            if fails(trial):
                plan, segs = trial, segs[:k] + segs[k + 1:]
            else:
                k += 1
        for s in range(len(plan.segments)):
            i = 0
            while i < len(plan.segments[s]):
                seg = plan.segments[s]
                trial_seg = seg[:i] + seg[i + 1:]
                trial = attrs.evolve(plan, segments=(*plan.segments[:s], trial_seg,
                                                     *plan.segments[s + 1:]))
                if trial_seg and fails(trial):
                    plan = trial
                else:
                    i += 1
        if plan == before:
            break
    return plan
