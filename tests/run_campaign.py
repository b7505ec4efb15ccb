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
import os
import random
import re
import sys
import time
import traceback
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import kill9_support

from argus_core import (
    Bar,
    BookDelta,
    CancelIntent,
    Fill,
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
from argus_core.models import BookStatus
from argus_core.runner import Runner

VENUE = "cmp"
X, Y, Z = f"{VENUE}:X/USD", f"{VENUE}:Y/USD", f"{VENUE}:Z/USD"  # Z: not an instrument
TRADED = (X, Y)
S = 10**9
STARTING_CASH = Decimal(10000)
RETRY_NS = 2 * S  # the engine's flatten / halt-cancel retry period (HALT_CANCEL_RETRY_NS)
_Q = Decimal("1e-7")  # equity rows are kept to 1e-8; two roundings apart at most


# -- the plan ----------------------------------------------------------------------------
@attrs.frozen
class Step:
    """One step of a segment: a market event, or something done between two events."""

    kind: str  # "ev", "kill", "flatten", "resume", "check", "sigkill"
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
            return f"settle {iid}@{t:g} {e.price}"
        return f"{name} {iid}@{t:g}"


@attrs.frozen
class Plan:
    """Everything one seed does."""

    seed: int
    mode: str
    drawdown: str | None  # max_drawdown_fraction, or None: no drawdown check
    exits_checked: bool  # the switchable check also judges exits
    segments: tuple[tuple[Step, ...], ...]

    def trace(self, limit: int = 400) -> str:
        """The plan as text (segments separated), cut to ``limit`` lines."""
        lines = [f"seed {self.seed}: mode {self.mode}, drawdown {self.drawdown}, "
                 f"exits checked {self.exits_checked}"]
        for k, seg in enumerate(self.segments):
            lines.append(f"-- segment {k} (a new Runner on the same run directory)")
            lines += [f"  {i:3d} {s}" for i, s in enumerate(seg)]
        return "\n".join(lines[:limit])


class _Market:
    """The generator's own view of one instrument: a mid that walks, and the book it shows."""

    def __init__(self, rng: random.Random, mid: float) -> None:
        self.rng, self.mid = rng, mid
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        half = round(self.rng.uniform(0.05, 1.0), 2)
        bid, ask = round(self.mid - half, 2), round(self.mid + half, 2)
        depth = [round(self.rng.uniform(20, 120)) for _ in range(3)]
        return ([(round(bid - k, 2), depth[k]) for k in range(3)],
                [(round(ask + k, 2), depth[k]) for k in range(3)])


def make_plan(seed: int, *, steps: int = 40, sigkill: bool | None = None) -> Plan:
    """Draw seed ``seed``'s plan (``sigkill``: force one segment to end in a SIGKILL, or
    none; default: drawn)."""
    rng = random.Random(seed)
    mode = rng.choice(["paper", "live"])
    drawdown = rng.choice([None, "0.01", "0.02", "0.04"])
    markets = {X: _Market(rng, 100.0), Y: _Market(rng, 50.0)}
    t = 1
    n_seg = rng.choice([1, 2, 2, 3, 3])
    killed = rng.random() < 0.3 if sigkill is None else sigkill
    kill_seg = rng.randrange(n_seg - 1) if killed and n_seg > 1 else -1
    if killed and n_seg == 1:
        n_seg, kill_seg = 2, 0
    settled = False
    segments: list[tuple[Step, ...]] = []
    for k in range(n_seg):
        seg: list[Step] = []
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
            t += rng.choice([1, 1, 1, 1, 2, 0]) if rng.random() > 0.04 else rng.randint(6, 12)
            iid = rng.choice(TRADED)
            m = markets[iid]
            m.mid = max(1.0, round(m.mid * (1 + rng.gauss(0, 0.01)), 2))
            if rng.random() < 0.04:  # a jump: what trips the drawdown switch
                m.mid = max(1.0, round(m.mid * rng.uniform(0.8, 1.08), 2))
            seg.append(Step("ev", _event(rng, m, iid, t, settled)))
            if isinstance(seg[-1].event, Settlement):
                settled = True
        if k == kill_seg:
            seg.insert(rng.randrange(1, len(seg) + 1), Step("sigkill"))
        if k == n_seg - 1:  # the tail: live two-sided books that can take a flatten
            seg.append(Step("check", arg="allow"))  # a check vetoing every exit may hold it
            for _ in range(4):
                for iid in TRADED:
                    t += 1
                    bids, asks = markets[iid].levels()
                    seg.append(Step("ev", OrderBook(iid, t * S, bids=bids, asks=asks)))
        segments.append(tuple(seg))
    return Plan(seed, mode, drawdown, rng.random() < 0.5, tuple(segments))


def _event(rng: random.Random, m: _Market, iid: str, t: int, settled: bool) -> MarketEvent:
    """One random market event of ``iid`` at second ``t``."""
    ts = t * S
    kind = rng.choices(["book", "delta", "one_sided", "crossed", "empty", "trade", "bad_print",
                        "bar", "dead", "unknown", "backwards", "settle"],
                       [30, 14, 3, 3, 2, 12, 2, 16, 2, 2, 2, 0 if settled else 0.6])[0]
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
    if kind in ("delta", "crossed"):
        side = rng.choice([Side.BUY, Side.SELL])
        if kind == "crossed":  # a bid at or above the best ask (a feed that missed updates)
            side, price = Side.BUY, round(min(m.asks, default=m.mid) + rng.choice([0, 0.5]), 2)
        else:
            price = round(m.mid + (-1 if side is Side.BUY else 1) * rng.uniform(0.05, 2), 2)
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
        return Bar(iid, ts, o, max(o, c) + 0.5, max(0.01, min(o, c) - 0.5), c,
                   rng.choice([1000.0, 1000.0, 0.0]))
    if kind == "dead":
        return BookStatus(iid, ts, False, "checksum mismatch")
    if kind == "unknown":
        return Trade(Z, ts, Decimal("7"), Decimal(1))
    if kind == "backwards":  # a print stamped before the clock (a late packet)
        return Trade(iid, max(S, ts - 3 * S), Decimal(str(m.mid)), Decimal(1))
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
        self.check_mode = "allow"
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.sigkill_pipe: int | None = None  # the child's end: written, then it waits
        self.problems: list[str] = []
        self.owed: dict[str, int] = {}  # instrument -> market time a flatten became owed

    def problem(self, text: str) -> None:
        """An invariant broke (kept with the seed's trace)."""
        self.problems.append(text)


class CampaignVenue(Venue):
    """Streams the current segment; live orders fill against the book it last streamed
    (IOC/market at once at the touch, GTC when a later book crosses its limit)."""

    name = VENUE
    supports_live_orders = True
    default_stale_after_s = 5.0

    def __init__(self, settings: object) -> None:
        c = Campaign.current
        assert c is not None
        self.c = c
        self._queue: asyncio.Queue[Fill | OrderUpdate] = asyncio.Queue()
        self.books: dict[str, tuple[dict[float, float], dict[float, float], bool]] = {}
        self.now = 0
        # The venue's memory, rebuilt from its record: what a restarted client finds.
        self.orders: dict[str, dict[str, Any]] = {}
        self.n_fills = 0
        for e in c.record.read():
            if e["kind"] == "accept":
                self.orders[e["coid"]] = {"order": e["order"], "left": Decimal(e["qty"]),
                                          "done": None}
            elif e["kind"] == "vfill":
                self.orders[e["coid"]]["left"] -= Decimal(e["quantity"])
                self.n_fills += 1
            elif e["kind"] == "vdone":
                self.orders[e["coid"]]["done"] = e["status"]

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument(VENUE, "X/USD"), Instrument(VENUE, "Y/USD")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        c = self.c
        for i, step in enumerate(c.segment):
            if step.kind == "ev":
                ev = step.event
                self.now = max(self.now, ev.ts_ns)
                self._see(ev)
                yield ev
                if c.plan.mode == "live":
                    self._match(ev)
            elif step.kind == "sigkill":
                assert c.sigkill_pipe is not None, "a SIGKILL step outside a child"
                os.write(c.sigkill_pipe, b"k")
                time.sleep(30)  # the parent SIGKILLs us here
            elif step.kind == "check":
                c.check_mode = step.arg
            else:
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
            probe(c)

    def _see(self, ev: object) -> None:
        iid = getattr(ev, "instrument_id", None)
        if isinstance(ev, OrderBook):
            self.books[iid] = ({float(p): float(q) for p, q in ev.bids if q > 0},
                               {float(p): float(q) for p, q in ev.asks if q > 0}, True)
        elif isinstance(ev, BookDelta):
            bids, asks, live = self.books.get(iid, ({}, {}, False))
            ladder = bids if ev.side is Side.BUY else asks
            if ev.size_f > 0:
                ladder[ev.price_f] = ev.size_f
            else:
                ladder.pop(ev.price_f, None)
            self.books[iid] = (bids, asks, live)
        elif isinstance(ev, BookStatus):
            bids, asks, _ = self.books.get(iid, ({}, {}, False))
            self.books[iid] = (bids, asks, False)

    def _touch(self, iid: str, side: Side) -> float | None:
        """The best price ``side`` would take now (None: no sane two-sided book)."""
        bids, asks, live = self.books.get(iid, ({}, {}, False))
        if not live or not bids or not asks or max(bids) >= min(asks):
            return None
        return min(asks) if side is Side.BUY else max(bids)

    def _fill(self, coid: str, price: Decimal, qty: Decimal, liq: Liquidity) -> None:
        o = self.orders[coid]
        self.n_fills += 1
        od = o["order"]
        fill = Fill(f"VF{self.n_fills}-{os.getpid()}-{coid}", coid, VENUE, od["instrument_id"],
                    Side(od["side"]), price, qty, Decimal(0), liq, self.now)
        o["left"] -= qty
        self.c.record.write("vfill", coid=coid, fill_id=fill.fill_id, quantity=str(qty),
                            price=str(price), side=od["side"], iid=od["instrument_id"])
        self._queue.put_nowait(fill)

    def _done(self, coid: str, status: OrderStatus, reason: str) -> None:
        self.orders[coid]["done"] = status.value
        self.c.record.write("vdone", coid=coid, status=status.value)
        self._queue.put_nowait(OrderUpdate(coid, status, self.now, reason=reason))

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
            if (side is Side.BUY and Decimal(repr(touch)) <= limit) or \
                    (side is Side.SELL and Decimal(repr(touch)) >= limit):
                self._fill(coid, limit, o["left"], Liquidity.MAKER)

    async def submit(self, order: Order) -> list[Fill]:
        c = self.c
        _record_send(c, order, committed=_committed(c.run_dir, order.client_order_id))
        r = c.rng.random()
        if r < 0.04:  # refused before acting
            raise VenueError("503 Service Unavailable (refused, nothing done)")
        od = converter.unstructure(order)
        self.orders[order.client_order_id] = {"order": od, "left": order.quantity,
                                              "done": None}
        c.record.write("accept", coid=order.client_order_id, order=od, qty=str(order.quantity))
        self._queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, self.now,
                                           f"V-{order.client_order_id}"))
        if order.time_in_force is not TimeInForce.GTC:
            touch = self._touch(order.instrument_id, order.side)
            ok = touch is not None and (order.limit_price is None or (
                Decimal(repr(touch)) <= order.limit_price if order.side is Side.BUY
                else Decimal(repr(touch)) >= order.limit_price))
            if ok and touch is not None:
                self._fill(order.client_order_id, Decimal(repr(touch)), order.quantity,
                           Liquidity.TAKER)
            else:
                self._done(order.client_order_id, OrderStatus.CANCELLED, "IOC: nothing to take")
        else:
            self._match(order)
        if r < 0.08:  # acted, then the answer was lost
            raise OrderUnknown("timeout reading the answer", [order.client_order_id])
        return []

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
            return OrderUpdate(order.client_order_id, OrderStatus.OPEN, self.now,
                               f"V-{order.client_order_id}")
        return OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, self.now,
                           reason="never received")

    def resume(self, known: VenueResume) -> None:
        """Report what the ledger missed (fills and ends of orders while nobody listened)."""
        booked = set(known.fill_ids)
        for e in self.c.record.read():
            if e["kind"] == "vfill" and e["fill_id"] not in booked:
                od = self.orders[e["coid"]]["order"]
                self._queue.put_nowait(Fill(e["fill_id"], e["coid"], VENUE, od["instrument_id"],
                                            Side(od["side"]), Decimal(e["price"]),
                                            Decimal(e["quantity"]), Decimal(0),
                                            Liquidity.TAKER, self.now))
            elif e["kind"] == "vdone":
                self._queue.put_nowait(OrderUpdate(e["coid"], OrderStatus(e["status"]),
                                                   self.now, reason="while disconnected"))

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        while True:
            yield await self._queue.get()


def _committed(run_dir: Path, coid: str) -> bool:
    """Whether ``coid``'s order row is committed (read by another connection)."""
    return bool(kill9_support.ledger_rows(
        run_dir, "select 1 from orders where client_order_id = ?", (coid,)))


def _record_send(c: Campaign, order: Order, *, committed: bool) -> None:
    runner = c.runner
    assert runner is not None
    pos = runner.account.positions.get(order.instrument_id)
    c.record.write("send", coid=order.client_order_id, iid=order.instrument_id,
                   side=order.side.value, qty=str(order.quantity),
                   reduce_only=order.reduce_only, strategy=order.strategy,
                   state=runner.risk.ctx.trading_state, committed=committed,
                   held=str(pos.quantity if pos is not None else 0), ts=runner.market.now_ns)


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
        if r > 0.45:
            return ()
        held = ctx.portfolio.position(iid).quantity
        side = rng.choice([Side.BUY, Side.SELL])
        qty = Decimal(rng.choice([1, 1, 2, 3, 5, 8, 20]))
        ref = _price(ctx, iid, side)
        kind = rng.choice(["market", "ioc", "ioc", "gtc", "post", "exit", "exit", "cancel",
                           "basket", "sized"])
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
                           limit_price=_away(ref, out, -2) if ref else None,
                           reason="exit"),)
        if ref is None:
            return ()
        if kind == "ioc":
            return (Intent(self.name, iid, side, quantity=qty, order_type=OrderType.LIMIT,
                           limit_price=_away(ref, side, rng.choice([-1, 0, 1])),
                           time_in_force=TimeInForce.IOC),)
        if kind in ("gtc", "post"):
            return (Intent(self.name, iid, side, quantity=qty, order_type=OrderType.LIMIT,
                           limit_price=_away(ref, side, rng.choice([-1, 1, 2, 3])),
                           time_in_force=TimeInForce.GTC if kind == "gtc"
                           else TimeInForce.POST_ONLY),)
        other = Y if iid == X else X
        oref = _price(ctx, other, side)
        if oref is None:
            return ()
        basket = f"b{self.seed}-{event.ts_ns}-{iid[-5]}"  # type: ignore[union-attr]
        return tuple(Intent(self.name, i, side, quantity=qty, order_type=OrderType.LIMIT,
                            limit_price=_away(p, side, -1), basket_id=basket)
                     for i, p in ((iid, ref), (other, oref)))


def _price(ctx: StrategyContext, iid: str, side: Side) -> Decimal | None:
    book = ctx.market.books.get(iid)
    if book is not None:
        best = book.best_ask() if side is Side.BUY else book.best_bid()
        if best is not None:
            return Decimal(repr(best))
    bar = ctx.market.bars.get(iid)
    return Decimal(repr(bar.close)) if bar is not None else None


def _away(price: Decimal, side: Side, ticks: int) -> Decimal:
    """``ticks`` of 0.5 away from ``price`` against ``side`` (negative: through it)."""
    move = Decimal("0.5") * ticks
    out = price - move if side is Side.BUY else price + move
    return max(out, Decimal("0.01"))


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
        since = c.owed.setdefault(iid, now)
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
    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register(VENUE, CampaignVenue))
    monkeypatch.setitem(sys.modules, "argus_test_campaign_venue", module)
    monkeypatch.setattr(core_plugins, "BUILTINS", (*core_plugins.BUILTINS,
                                                   (VENUE, "argus_test_campaign_venue")))


def _runner(c: Campaign) -> Runner:
    plan = c.plan
    checks = ["max_drawdown"] if plan.drawdown else []
    raw: dict[str, Any] = {"argus": {"plugins": [], "mode": plan.mode, "seed": plan.seed},
                           "run": {"venue": VENUE, "strategies": [], "risk_checks": checks,
                                   "starting_cash": str(STARTING_CASH)}}
    if plan.drawdown:
        raw["plugins"] = {"risk": {"max_drawdown_fraction": plan.drawdown}}
    config = parse_config(raw, c.run_dir.parent / "campaign.toml")
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
    c.segment, c.owed = seg, {}
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
    * live: every ledger order the venue never received is final unfilled or pending;
      every fill the venue reported is booked exactly once, and nothing else is;
    * each position row == the sum of its booked fills, each order's filled quantity ==
      its fills (never more than its quantity), the cash of every equity row == starting
      cash less the fills booked by then;
    * every equity row == cash + sum(qty x a mark the market justified by then: the mid
      of a live two-sided book, else the last print or bar close, or the price of a fill
      since);
    * a run HALTED with a flatten ends flat (the tail streams books that can take it).
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
    if plan.mode == "live":
        for coid, row in orders.items():
            if row["strategy"] == "settlement" or coid in seen:
                continue
            if row["status"] not in ("cancelled", "rejected", "pending") or \
                    Decimal(row["filled_quantity"]):
                out.append(f"order {coid} never reached the venue but is {row['status']} "
                           f"filled {row['filled_quantity']}")
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
        if coid in by_order and by_order[coid] != filled and not any(
                f["fill_id"].endswith(":bust") for f in fills if f["client_order_id"] == coid):
            out.append(f"order {coid}: filled_quantity {filled} != its fills {by_order[coid]}")
        if filled > qty:
            out.append(f"order {coid} filled {filled} of {qty}")
    out += _check_equity(plan, fills, equity)
    # -- the kill switch -----------------------------------------------------------------
    if latch.get("state") == "halted" and latch.get("flatten"):
        for iid, q in positions.items():
            if q:
                out.append(f"HALTED with flatten ({latch.get('reason')}) yet {iid} is held: "
                           f"{q} at the end, after the tail's books")
    return out


def _observations(plan: Plan) -> list[tuple[int, str, Decimal, bool]]:
    """(market time, instrument, price, uncertain) of every price the streamed market
    justified, in stream order; ``uncertain``: seen by a SIGKILLed process, which may
    have lost it with its uncommitted work."""
    out: list[tuple[int, str, Decimal, bool]] = []
    now = 0
    for seg in plan.segments:
        books: dict[str, tuple[dict[float, float], dict[float, float], bool]] = {}
        killed = any(s.kind == "sigkill" for s in seg)
        if killed:  # its marks may all be lost: the checkpoint's (the last before) stands
            last = {iid: (t, p) for t, iid, p, _ in out}
            out += [(now, iid, p, True) for iid, (_, p) in last.items()]
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
            if isinstance(ev, OrderBook | BookDelta):
                price = mid
            elif isinstance(ev, Trade):
                price = ev.price if mid is None else None
            elif isinstance(ev, Bar):
                price = Decimal(repr(ev.close)) if mid is None else None
            else:
                price = None
            if price is not None:
                out.append((now, iid, price, killed))
    return out


def _check_equity(plan: Plan, fills: list[dict[str, Any]],
                  equity: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    obs = _observations(plan)
    for row in equity:
        ts = row["ts_ns"]
        cash, held = STARTING_CASH, {i: Decimal(0) for i in TRADED}
        fill_prices: dict[str, list[tuple[int, Decimal]]] = {i: [] for i in TRADED}
        for f in fills:
            if f["ts_ns"] > ts:
                continue
            q, p = Decimal(f["quantity"]), Decimal(f["price"])
            sign = 1 if f["side"] == "buy" else -1
            cash -= sign * q * p + Decimal(f["fee"])
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
            mine = [(t, p, u) for t, i, p, u in obs if i == iid and t <= ts]
            ok: set[Decimal] = set()
            last_t = 0
            if mine:
                last_t = mine[-1][0]
                ok.add(mine[-1][1])
                ok |= {p for _, p, u in mine if u}  # a SIGKILL may have lost the newest
                # A row at T may be written before T's last events (at a commit, or before
                # a late print stamped at the clock): any price seen at T, or the last
                # one before it, is one the market made by then.
                ok |= {p for t, p, _ in mine if t == ts}
                before = [p for t, p, _ in mine if t < ts]
                if before:
                    ok.add(before[-1])
                    last_t = min(last_t, next(t for t, _, _ in reversed(mine) if t < ts))
            ok |= {p for t, p in fill_prices[iid] if t >= last_t}
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
