"""A seeded random campaign against replay honesty (``tests/test_replay_campaign*.py``).

One seed draws a :class:`Plan`: one to three instruments, each with one kind of market data
(bars only, books with deltas and prints, or prints only), gaps, zero-volume bars, bars
that gap through a limit, one-sided, crossed, stale and dead books, prints sharing a
stamp; the venue's fees, ticks and lots; ``[paper]`` latency, slippage, synthetic spread,
depth share, fee overrides and ``cost_multiplier``.  The data is written as the replay
venue reads it (an NDJSON recording with its header, or a bars CSV for one instrument)
and replayed by the real :class:`~argus_core.Runner` (replay or paper mode) with a
random, stateless strategy that sends every kind of intent: market, IOC / FOK / GTC /
post-only limits at random distances from the touch, cancels and reduce-only exits.

The broker's ``submit`` / ``on_event`` / ``cancel`` and the market's ``apply`` are
wrapped only to *record* which event each fill came from.  :func:`check` then judges
every fill against :class:`Reference`, written from the rules in
:mod:`argus_core.paper`'s docstring with its own book, bar and print model (nothing of
the broker is imported), and every equity row against the marks the data justifies.
:func:`run_seed` also replays the plan a second time (determinism) and once stopped
half-way and resumed (a resumed replay gives the ledger of one run straight through).
Nothing here is timed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import attrs

from argus_core import (
    Bar,
    BookDelta,
    BookStatus,
    CancelIntent,
    Fill,
    Intent,
    Ledger,
    MarketEvent,
    Order,
    OrderBook,
    OrderType,
    Runner,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
    Trade,
    dump_event,
)
from argus_core.config import parse_config

S = 10**9
MS = 10**6
T0 = 1_000 * S  # the first event's time: an order is never "sent before any market data"
BAR_S = 60
VENUE = "rp"
STARTING_CASH = Decimal(10_000_000)
FEE_UNIT = Decimal("1e-8")
_EQ_TOL = Decimal("2e-8")  # equity rows are kept to 1e-8

#: (price level, tick) pairs an instrument draws from: the tick sets the grid the data uses.
PRICE_TICKS = ((100, "0.01"), (100, "0.5"), (2.5, "0.001"), (5000, "1"), (0.5, "0.01"),
               (162.9811, "0.0001"))
LOTS = ("1", "0.1", "0.001", "0.00000001")


# -- the plan -------------------------------------------------------------------------------
@attrs.frozen
class Spec:
    """One instrument of a plan: its data kind, grid and venue fees."""

    symbol: str
    kind: str  # "bars" | "book" | "prints"
    tick: Decimal
    lot: Decimal
    maker_bps: Decimal
    taker_bps: Decimal
    fixed: Decimal

    @property
    def iid(self) -> str:
        """The instrument id as the venue serves it."""
        return f"{VENUE}:{self.symbol}"


@attrs.frozen
class Plan:
    """Everything one seed replays: instruments, events, ``[paper]`` and run settings."""

    seed: int
    specs: tuple[Spec, ...]
    events: tuple[MarketEvent, ...]
    paper: dict[str, str]
    mode: str  # "replay" | "paper"
    csv: bool  # one bars instrument written as a bars CSV (else an NDJSON recording)
    stale_s: int  # [run] stale_after_s (0: never stale)
    stop_at: int  # the resumed run stops after this many events, then a new Runner resumes

    def keep(self, indices: Iterable[int]) -> Plan:
        """The plan with only the events at ``indices`` (shrinking keeps the strategy's
        decisions: they depend on each event alone)."""
        wanted = sorted(set(indices))
        before = sum(1 for i in wanted if i < self.stop_at)  # the stop keeps its place
        return attrs.evolve(self, events=tuple(self.events[i] for i in wanted),
                            stop_at=max(1, min(before, len(wanted) - 1)))

    def trace(self, limit: int = 80) -> str:
        """The plan as text: settings, then the events (cut to ``limit`` lines)."""
        lines = [f"seed {self.seed}: mode {self.mode}, csv {self.csv}, stale {self.stale_s}s, "
                 f"stop at {self.stop_at}, paper {self.paper}"]
        lines += [f"  {s.iid} {s.kind} tick {s.tick} lot {s.lot} fees {s.maker_bps}/"
                  f"{s.taker_bps} bps + {s.fixed}" for s in self.specs]
        lines += [f"  {i:3d} {describe(e)}" for i, e in enumerate(self.events)]
        return "\n".join(lines[:limit])


def describe(e: MarketEvent) -> str:
    """One event as a short line."""
    iid = getattr(e, "instrument_id", "?").split(":")[-1]
    t = (getattr(e, "ts_ns", 0) - T0) / S
    if isinstance(e, OrderBook):
        return f"book {iid}@{t:g} {e.bids.tolist()} / {e.asks.tolist()}"
    if isinstance(e, BookDelta):
        return f"delta {iid}@{t:g} {e.side.value} {e.price} x {e.size}"
    if isinstance(e, Trade):
        return f"print {iid}@{t:g} {e.price} x {e.size}"
    if isinstance(e, Bar):
        return f"bar {iid}@{t:g} o{e.open} h{e.high} l{e.low} c{e.close} v{e.volume}"
    if isinstance(e, BookStatus):
        return f"status {iid}@{t:g} live={e.live}"
    return f"{type(e).__name__} {iid}@{t:g}"


def _on(price: float, tick: Decimal) -> Decimal:
    """``price`` on the tick grid, at least one tick."""
    return max(tick, (Decimal(repr(price)) / tick).to_integral_value() * tick)


def _bars(rng: random.Random, spec: Spec, mid: float, t_end: int) -> list[Bar]:
    out: list[Bar] = []
    t = T0 + BAR_S * S
    close = mid
    while t <= t_end:
        if rng.random() < 0.15:  # a gap: hours without trades are simply missing
            t += BAR_S * S * rng.randint(1, 4)
        jump = rng.gauss(0, 0.06) if rng.random() < 0.12 else rng.gauss(0, 0.004)
        o = float(_on(close * (1 + jump), spec.tick))
        c = float(_on(o * (1 + rng.gauss(0, 0.006)), spec.tick))
        h = float(_on(max(o, c) * (1 + abs(rng.gauss(0, 0.004))), spec.tick))
        lo = float(max(spec.tick, _on(min(o, c) * (1 - abs(rng.gauss(0, 0.004))), spec.tick)))
        h, lo = max(h, o, c), min(lo, o, c)
        vol = 0.0 if rng.random() < 0.12 else round(rng.choice([0.3, 2, 10, 60]) *
                                                   rng.random() + 0.01, 4)
        out.append(Bar(spec.iid, t, o, h, lo, c, vol))
        close = c
        t += BAR_S * S
    return out


def _size(rng: random.Random, spec: Spec) -> Decimal:
    units = Decimal(rng.choice(["0.5", "1", "2", "3", "7", "20"]))
    return max(spec.lot, (units / spec.lot).to_integral_value(ROUND_FLOOR) * spec.lot)


def _book_events(rng: random.Random, spec: Spec, mid: float, t_end: int
                 ) -> list[MarketEvent]:
    """A snapshot, then deltas (sizes, new and removed levels, crossed touches, one side
    emptied), prints at and through the touch, dead books and fresh snapshots."""
    out: list[MarketEvent] = []
    tick = spec.tick
    t = T0 + rng.randint(0, 3000) * MS
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}

    def snapshot() -> None:
        nonlocal bids, asks
        m = _on(mid, tick)
        gap = tick * rng.choice([1, 1, 2, 5])
        bids = {m - gap * 0 - tick * k - tick: _size(rng, spec)
                for k in range(rng.randint(1, 4)) if m - tick * k - tick > 0}
        asks = {m + gap + tick * k: _size(rng, spec) for k in range(rng.randint(0 if
                                                                          rng.random() < 0.1
                                                                          else 1, 4))}
        out.append(OrderBook(spec.iid, t, sorted(((float(p), float(q)) for p, q in
                                                   bids.items()), reverse=True),
                             sorted((float(p), float(q)) for p, q in asks.items())))

    snapshot()
    while t < t_end:
        t += rng.choice([0, 0, 2000, 9000, 25_000, 60_000]) * MS
        if rng.random() < 0.03:
            t += rng.choice([90, 400]) * S  # long enough to go stale under a 60 or 300 s rule
        mid *= 1 + rng.gauss(0, 0.001)
        r = rng.random()
        if r < 0.06:
            snapshot()
        elif r < 0.09:
            out.append(BookStatus(spec.iid, t, False, "campaign: feed lost"))
        elif r < 0.35:  # a print: at the touch, inside, or through it
            best_bid, best_ask = (max(bids) if bids else None), (min(asks) if asks else None)
            ref = _on(mid, tick)
            choices = [ref] + [p for p in (best_bid, best_ask) if p is not None]
            px = rng.choice(choices) + tick * rng.choice([-2, -1, 0, 0, 1, 2])
            out.append(Trade(spec.iid, t, max(tick, px), _size(rng, spec),
                             rng.choice([Side.BUY, Side.SELL])))
        else:
            side = rng.choice([Side.BUY, Side.SELL])
            ladder = bids if side is Side.BUY else asks
            other = asks if side is Side.BUY else bids
            kind = rng.random()
            if kind < 0.05 and other:  # a crossed touch: a feed that missed an update
                px = min(other) + tick if side is Side.BUY else max(other) - tick
            elif kind < 0.12 and ladder:  # a side emptied level by level
                for p in sorted(ladder):
                    out.append(BookDelta(spec.iid, t, side, p, 0))
                ladder.clear()
                continue
            elif ladder and kind < 0.55:
                px = rng.choice(sorted(ladder))
            else:
                m = _on(mid, tick)
                px = m - tick * rng.randint(1, 5) if side is Side.BUY else m + tick * \
                    rng.randint(1, 5)
            if px <= 0:
                continue
            size = Decimal(0) if (px in ladder and rng.random() < 0.35) else _size(rng, spec)
            if size:
                ladder[px] = size
            else:
                ladder.pop(px, None)
            out.append(BookDelta(spec.iid, t, side, px, size))
    return out


def _prints(rng: random.Random, spec: Spec, mid: float, t_end: int) -> list[Trade]:
    out: list[Trade] = []
    t = T0 + rng.randint(0, 5000) * MS
    while t < t_end:
        mid *= 1 + rng.gauss(0, 0.003)
        out.append(Trade(spec.iid, t, _on(mid, spec.tick), _size(rng, spec),
                         rng.choice([Side.BUY, Side.SELL])))
        t += rng.choice([0, 0, 1, 15_000, 40_000, 120_000]) * MS  # some share a stamp
    return out


def make_plan(seed: int, *, minutes: int = 25) -> Plan:
    """The plan of ``seed`` (about 20-250 events)."""
    rng = random.Random(seed)
    csv = rng.random() < 0.15
    n = 1 if csv else rng.choice([1, 2, 2, 3])
    specs, mids = [], []
    for k in range(n):
        mid, tick = rng.choice(PRICE_TICKS)
        mids.append(float(mid))
        kind = "bars" if csv else rng.choice(["bars", "book", "book", "prints"])
        bps = [Decimal(x) for x in ("0", "0.5", "1", "10", "25", "40")]
        specs.append(Spec(f"S{k}/USD", kind, Decimal(tick), Decimal(rng.choice(LOTS)),
                          rng.choice(bps), rng.choice(bps),
                          # a bars CSV's venue has no fixed fee setting
                          Decimal(0 if csv else rng.choice(["0", "0", "0.001"]))))
    t_end = T0 + minutes * BAR_S * S
    events: list[tuple[int, int, MarketEvent]] = []
    for spec, mid in zip(specs, mids, strict=True):
        made: Sequence[MarketEvent] = (
            _bars(rng, spec, mid, t_end) if spec.kind == "bars"
            else _book_events(rng, spec, mid, t_end) if spec.kind == "book"
            else _prints(rng, spec, mid, t_end))
        events += [(e.ts_ns, rng.random(), e) for e in made]  # type: ignore[misc]  # rng tie-break
    events.sort(key=lambda x: (x[0], x[1]))
    paper = {"latency_ms": str(rng.choice([0, 0, 0, 40, 1500, 90_000])),
             "slippage_bps": rng.choice(["0", "0", "3", "10"]),
             "bar_spread_bps": rng.choice(["0", "2", "10"]),
             "bar_depth_fraction": rng.choice(["0.1", "0.3", "1.0"]),
             "cost_multiplier": rng.choice(["1", "1", "0.5", "2", "3"])}
    if rng.random() < 0.3:
        paper["maker_bps"] = rng.choice(["0", "2"])
        paper["taker_bps"] = rng.choice(["0.1", "7"])
    if rng.random() < 0.2:
        paper["fixed_fee"] = rng.choice(["0", "0.002"])
    evs = tuple(e for _, _, e in events)
    return Plan(seed, tuple(specs), evs, paper, "paper" if rng.random() < 0.2 else "replay",
                csv, rng.choice([0, 0, 60, 300]), rng.randint(1, max(1, len(evs) - 1)))


# -- the strategy ---------------------------------------------------------------------------
class RandomStrategy(Strategy):
    """Every kind of intent, drawn from the seed and the event alone (no state, so a
    resumed run decides exactly as one run straight through)."""

    name = "rnd"

    def __init__(self, seed: int, specs: Sequence[Spec]) -> None:
        self.seed = seed
        self.specs = {s.iid: s for s in specs}

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        ev_iid = getattr(event, "instrument_id", None)
        rng = random.Random(f"{self.seed}-{getattr(event, 'ts_ns', 0)}-{ev_iid}-"
                            f"{type(event).__name__}-{describe(event)}")
        if rng.random() > 0.45:
            return ()
        iid = ev_iid if ev_iid in self.specs and rng.random() < 0.7 else \
            rng.choice(sorted(self.specs))
        spec = self.specs[iid]
        side = rng.choice([Side.BUY, Side.SELL])
        qty = _size(rng, spec) * rng.choice([1, 1, 2, 10])
        kind = rng.choice(["market", "ioc", "ioc", "fok", "gtc", "gtc", "gtc", "post", "exit",
                           "exit", "cancel"])
        if kind == "cancel":
            return (CancelIntent(self.name, rng.choice([None, iid]), "campaign",
                                 rng.choice([None, side])),)
        held = ctx.portfolio.position(iid).quantity
        ref = _reference(ctx, iid, side)
        if kind == "exit":
            if held == 0:
                return ()
            out = Side.SELL if held > 0 else Side.BUY
            q = abs(held) if rng.random() < 0.6 else qty
            limit = _away(ref, out, rng.randint(-2, 3), spec.tick) if ref and \
                rng.random() < 0.5 else None
            return (Intent(self.name, iid, out, quantity=q, reduce_only=True,
                           order_type=OrderType.LIMIT if limit else OrderType.MARKET,
                           limit_price=limit, time_in_force=rng.choice(
                               [TimeInForce.IOC, TimeInForce.GTC]) if limit
                           else TimeInForce.IOC, reason="exit"),)
        if kind == "market":
            return (Intent(self.name, iid, side, quantity=qty),)
        if ref is None:
            return ()
        tif = {"ioc": TimeInForce.IOC, "fok": TimeInForce.FOK, "gtc": TimeInForce.GTC,
               "post": TimeInForce.POST_ONLY}[kind]
        # Negative: through the touch (takes); positive: behind it (rests).
        ticks = rng.choice([-5, -2, -1, 0, 1, 2, 4, 10]) * rng.choice([1, 1, 3])
        return (Intent(self.name, iid, side, quantity=qty, order_type=OrderType.LIMIT,
                       limit_price=_away(ref, side, ticks, spec.tick), time_in_force=tif),)


def _reference(ctx: StrategyContext, iid: str, side: Side) -> Decimal | None:
    """The touch ``side`` takes on a book, else the last close, else the last print."""
    book = ctx.market.books.get(iid)
    if book is not None:
        best = book.best_ask() if side is Side.BUY else book.best_bid()
        if best is not None:
            return Decimal(repr(best))
    bar = ctx.market.bars.get(iid)
    if bar is not None:
        return Decimal(repr(bar.close))
    trade = ctx.market.trades.get(iid)
    return trade.price if trade is not None else None


def _away(price: Decimal, side: Side, ticks: int, tick: Decimal) -> Decimal:
    """``ticks`` ticks behind ``price`` for ``side`` (negative: through it), on the grid."""
    base = (price / tick).to_integral_value() * tick
    out = base - tick * ticks if side is Side.BUY else base + tick * ticks
    return max(out, tick)


# -- running ---------------------------------------------------------------------------------
@attrs.define
class Log:
    """What the wrapped broker was asked and gave, in call order, with the index of the
    market event applied last (0: none yet)."""

    cursor: int = 0
    calls: list[tuple[str, int, Any, Any]] = attrs.Factory(list)


def write_data(plan: Plan, folder: Path) -> dict[str, Any]:
    """Write the plan's data as the replay venue reads it; its ``[plugins.replay]``."""
    folder.mkdir(parents=True, exist_ok=True)
    if plan.csv:
        (spec,) = plan.specs
        path = folder / "bars.csv"
        rows = ["timestamp,open,high,low,close,volume"]
        for e in plan.events:
            assert isinstance(e, Bar)
            rows.append(f"{e.ts_ns // S - BAR_S},{e.open!r},{e.high!r},{e.low!r},{e.close!r},"
                        f"{e.volume!r}")
        path.write_text("\n".join(rows) + "\n")
        return {"bars_csv": str(path), "venue": VENUE, "symbol": spec.symbol,
                "bar_seconds": BAR_S, "tick_size": str(spec.tick), "lot_size": str(spec.lot),
                "min_size": str(spec.lot), "maker_bps": str(spec.maker_bps),
                "taker_bps": str(spec.taker_bps)}
    path = folder / "data.ndjson"
    schedules = [{"class": "argus_core.interfaces:FeeSchedule",
                  "fields": {"maker_bps": str(s.maker_bps), "taker_bps": str(s.taker_bps),
                             "fixed_per_fill": str(s.fixed), "per_unit": "0"},
                  "checks": []} for s in plan.specs]
    header = {"type": "recording", "version": 1, "venue": VENUE, "recorded_at_ns": 0,
              "instruments": [{"venue": VENUE, "symbol": s.symbol, "kind": "spot",
                               "tick_size": str(s.tick), "lot_size": str(s.lot),
                               "min_size": str(s.lot), "base": s.symbol[:2], "quote": "USD",
                               "meta": {}} for s in plan.specs],
              "fee_schedules": schedules,
              "fee_schedule_of": {s.iid: k for k, s in enumerate(plan.specs)}}
    lines = [json.dumps(header)] + [json.dumps(dump_event(e)) for e in plan.events]
    path.write_text("\n".join(lines) + "\n")
    return {"ndjson": str(path)}


def config_of(plan: Plan, folder: Path) -> Any:
    """The run's config (one object for every run of a seed: the same run id)."""
    raw = {"argus": {"plugins": [], "mode": plan.mode, "seed": plan.seed},
           "run": {"venue": "replay", "strategies": [], "risk_checks": [],
                   "starting_cash": str(STARTING_CASH), "stale_after_s": plan.stale_s},
           "paper": dict(plan.paper),
           "plugins": {"replay": write_data(plan, folder / "data")}}
    return parse_config(raw, folder / "campaign.toml")


def run_once(plan: Plan, config: Any, run_dir: Path, log: Log | None = None,
             max_events: int | None = None) -> None:
    """One Runner over the plan's data into ``run_dir`` (recording into ``log``)."""
    runner = Runner(config, run_dir, strategies={"rnd": RandomStrategy(plan.seed, plan.specs)},
                    max_events=max_events)
    if log is not None:
        _wrap(runner, log)
    runner.run_sync()


def _wrap(runner: Runner, log: Log) -> None:
    broker, market = runner.broker, runner.market
    submit, on_event, cancel, apply = (broker.submit, broker.on_event, broker.cancel,
                                       market.apply)

    def applied(event: MarketEvent) -> None:
        log.cursor += 1
        apply(event)

    def submitted(order: Order, ts_ns: int) -> list[Fill]:
        fills = submit(order, ts_ns)
        log.calls.append(("submit", log.cursor, (order, ts_ns), list(fills)))
        return fills

    def evented(event: MarketEvent) -> list[Fill]:
        fills = on_event(event)
        log.calls.append(("event", log.cursor, event, list(fills)))
        return fills

    def cancelled(coid: str, ts_ns: int | None = None) -> bool:
        done = cancel(coid, ts_ns)
        log.calls.append(("cancel", log.cursor, (coid, ts_ns), done))
        return done

    market.apply = applied  # type: ignore[method-assign]  # recording only
    broker.submit = submitted  # type: ignore[method-assign]  # recording only
    broker.on_event = evented  # type: ignore[method-assign]  # recording only
    broker.cancel = cancelled  # type: ignore[method-assign]  # recording only


def ledger_rows(run_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The tables a replay must reproduce, in a stable order."""
    with Ledger.in_dir(run_dir) as ledger:
        fills = ledger.query("select fill_id, client_order_id, instrument_id, side, price, "
                             "quantity, fee, liquidity, ts_ns from fills order by fill_id")
        orders = ledger.query("select client_order_id, instrument_id, side, quantity, "
                              "limit_price, order_type, time_in_force, ts_ns, status, "
                              "reduce_only, filled_quantity from orders "
                              "order by client_order_id")
        equity = ledger.query("select ts_ns, cash, equity from equity order by ts_ns")
    return {name: [tuple(r.values()) for r in rows] for name, rows in
            (("fills", fills), ("orders", orders), ("equity", equity))}


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
        return "\n".join(["", f"SEED {self.plan.seed} broke:", *self.problems[:12], "",
                          self.plan.trace()])


def run_seed(seed: int, workdir: Path, plan: Plan | None = None, *,
             twice: bool = True) -> Result:
    """Run ``seed`` (or ``plan``): straight through (checked against the reference), again
    (identical ledger) and stopped then resumed (identical ledger)."""
    started = time.perf_counter()
    plan = plan or make_plan(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    config = config_of(plan, workdir)
    log = Log()
    problems: list[str] = []
    try:
        run_once(plan, config, workdir / "a", log)
    except Exception as exc:  # the invariant: no crash on any data
        return Result(plan, (f"crash: the run raised {type(exc).__name__}: {exc}",), 0, 0,
                      time.perf_counter() - started)
    rows = ledger_rows(workdir / "a")
    problems += check(plan, log, rows)
    if twice:
        run_once(plan, config, workdir / "b")
        problems += _same("determinism: a second replay", rows, ledger_rows(workdir / "b"))
        run_once(plan, config, workdir / "c", max_events=plan.stop_at)
        run_once(plan, config, workdir / "c")
        problems += _same(f"resume: stopped after event {plan.stop_at} and resumed", rows,
                          ledger_rows(workdir / "c"))
    return Result(plan, tuple(problems), len(rows["orders"]), len(rows["fills"]),
                  time.perf_counter() - started)


def _same(what: str, want: dict[str, list[tuple[Any, ...]]],
          got: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    out = []
    for table in want:
        a, b = want[table], got[table]
        if a != b:
            extra = sorted(set(b) - set(a))[:2]
            missing = sorted(set(a) - set(b))[:2]
            out.append(f"{what}: {table} differ ({len(a)} vs {len(b)} rows; only straight: "
                       f"{missing}; only this run: {extra})")
    return out


# -- the reference ----------------------------------------------------------------------------
def adverse(price: Decimal, side: Side, tick: Decimal) -> set[Decimal]:
    """``price`` rounded against the trader onto ``tick`` (buys up, sells down); a price
    within 1e-6 of a tick may also be that tick (the broker's float noise)."""
    steps = price / tick
    nearest = steps.to_integral_value() * tick
    mode = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    out = {steps.to_integral_value(rounding=mode) * tick}
    if abs(steps - steps.to_integral_value()) <= Decimal("1e-6"):
        out.add(nearest)
    return out


def within(side: Side, price: Decimal, limit: Decimal | None) -> bool:
    """``price`` is no worse than ``limit`` for ``side``."""
    return limit is None or (price <= limit if side is Side.BUY else price >= limit)


@attrs.define
class RefOrder:
    """The reference's view of one order."""

    order: Order
    sent_ns: int
    activate_ns: int
    active: bool = False  # its taker moment has passed (it rests, or it is done)
    filled: Decimal = Decimal(0)
    #: when its cancel reaches the market (sent with latency: the order can fill until
    #: then); None: no cancel sent
    cancel_ns: int | None = None
    fills_at: dict[int, Decimal] = attrs.Factory(dict)  # event index -> taker qty there


class Reference:
    """The market the plan streamed, event by event, and what the paper docstring's rules
    let a fill be at each point.  Independent of the broker: its own books, bars, prints,
    liquidity bookkeeping and fee arithmetic."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.specs = {s.iid: s for s in plan.specs}
        p = plan.paper
        self.latency = int(p["latency_ms"]) * MS
        mult = Decimal(p["cost_multiplier"])
        self.mult = mult
        self.slip = Decimal(p["slippage_bps"]) * mult / 10_000
        self.hs = Decimal(p["bar_spread_bps"]) / 10_000
        self.depth_frac = Decimal(p["bar_depth_fraction"])
        self.bids: dict[str, dict[Decimal, Decimal]] = {}
        self.asks: dict[str, dict[Decimal, Decimal]] = {}
        self.live: dict[str, bool] = {}
        self.book_ts: dict[str, int] = {}
        self.has_book: set[str] = set()
        self.last_bar: dict[str, Bar] = {}
        self.prev_bar_close: dict[str, int | None] = {}  # the bar before the current one
        self.now = 0
        self.index = 0
        self.event: MarketEvent | None = None
        #: (instrument, the asks?, price) -> what paper takers took of it since it changed
        self.consumed: dict[tuple[str, bool, Decimal], Decimal] = {}
        self.used: dict[int, Decimal] = {}  # event index -> quantity every order took there
        self.orders: dict[str, RefOrder] = {}
        self.position: dict[str, Decimal] = {}
        self.cash = STARTING_CASH
        self.marks: list[tuple[int, int, str, Decimal]] = []  # (index, ts, iid, price)
        #: (index, ts, iid, best price, "le" / "ge") of each live one-sided book: its one
        #: side bounds the mark held then (never above the asks, never below the bids)
        self.bounds: list[tuple[int, int, str, Decimal, str]] = []
        #: fills given on a book with no live mid (one-sided, crossed, not live)
        self.no_mid_fills: set[str] = set()

    # -- the market -------------------------------------------------------------------------
    def advance(self, index: int) -> None:
        """Apply events up to ``index`` (1-based: the count applied)."""
        while self.index < index:
            e = self.plan.events[self.index]
            self.index += 1
            self.event = e
            self._apply(e)

    def _apply(self, e: MarketEvent) -> None:
        iid = e.instrument_id  # type: ignore[union-attr]
        self.now = max(self.now, e.ts_ns)  # type: ignore[union-attr]
        bids, asks = self.bids.setdefault(iid, {}), self.asks.setdefault(iid, {})
        if isinstance(e, OrderBook):
            self.has_book.add(iid)
            bids.clear()
            asks.clear()
            bids.update({_dec(p): _dec(q) for p, q in e.bids if q > 0})
            asks.update({_dec(p): _dec(q) for p, q in e.asks if q > 0})
            self.live[iid], self.book_ts[iid] = True, e.ts_ns
            for key in [k for k in self.consumed if k[0] == iid]:
                del self.consumed[key]
        elif isinstance(e, BookDelta):
            self.has_book.add(iid)
            ladder = bids if e.side is Side.BUY else asks
            if e.size > 0:
                ladder[e.price] = e.size
            else:
                ladder.pop(e.price, None)
            self.book_ts[iid] = e.ts_ns
            self.consumed.pop((iid, e.side is Side.SELL, e.price), None)
        elif isinstance(e, BookStatus):
            self.has_book.add(iid)
            self.live[iid] = self.live.get(iid, False) and e.live
        elif isinstance(e, Bar):
            last = self.last_bar.get(iid)
            self.prev_bar_close[iid] = last.ts_ns if last is not None else None
            self.last_bar[iid] = e
        mark = self.market_price(e)
        if mark is not None:
            self.marks.append((self.index, e.ts_ns, iid, mark))  # type: ignore[union-attr]
        elif isinstance(e, OrderBook | BookDelta) and self.live.get(iid) \
                and bool(bids) != bool(asks):
            self.bounds.append((self.index, e.ts_ns, iid, min(asks) if asks else max(bids),
                                "le" if asks else "ge"))

    def mid(self, iid: str) -> Decimal | None:
        """The mid of a live, two-sided, uncrossed book."""
        bids, asks = self.bids.get(iid, {}), self.asks.get(iid, {})
        if not self.live.get(iid) or not bids or not asks or max(bids) >= min(asks):
            return None
        return (max(bids) + min(asks)) / 2

    def market_price(self, e: MarketEvent) -> Decimal | None:
        """The price ``e`` justifies as a mark: a live book's mid; a print or a bar's close
        where there is no live mid."""
        iid = e.instrument_id  # type: ignore[union-attr]
        mid = self.mid(iid)
        if isinstance(e, OrderBook | BookDelta):
            return mid
        if isinstance(e, Trade):
            return e.price if mid is None else None
        if isinstance(e, Bar):
            return Decimal(repr(e.close)) if mid is None else None
        return None

    def tradeable(self, iid: str) -> bool:
        """A live, fresh, uncrossed book."""
        if not self.live.get(iid):
            return False
        stale = self.plan.stale_s * S
        if stale and self.now - self.book_ts.get(iid, 0) > stale:
            return False
        bids, asks = self.bids.get(iid, {}), self.asks.get(iid, {})
        return not (bids and asks and max(bids) >= min(asks))

    # -- what a fill may be ---------------------------------------------------------------
    def fee(self, iid: str, price: Decimal, qty: Decimal, maker: bool) -> Decimal:
        """The fee the rules charge: the venue's bps (or ``[paper]``'s), the fixed fee,
        times ``cost_multiplier``, kept to 1e-8 and never rounded to zero."""
        spec, p = self.specs[iid], self.plan.paper
        maker_bps = Decimal(p.get("maker_bps", spec.maker_bps))
        taker_bps = Decimal(p.get("taker_bps", spec.taker_bps))
        fixed = Decimal(p.get("fixed_fee", spec.fixed))
        raw = (price * qty * (maker_bps if maker else taker_bps) / 10_000 + fixed) * self.mult
        if raw <= 0:
            return Decimal(0)
        return max(raw.quantize(FEE_UNIT, rounding=ROUND_HALF_EVEN), FEE_UNIT)

    def taker_prices(self, iid: str, side: Side, base: Decimal, from_data: bool
                     ) -> set[Decimal]:
        """Prices a taker may fill at against level ``base``: slippage against the trader,
        rounded against the trader onto the tick (a book level without slippage: itself)."""
        if not self.slip and not from_data:
            return {base}
        moved = base * (1 + self.slip) if side is Side.BUY else base * (1 - self.slip)
        return adverse(moved, side, self.specs[iid].tick)

    def bar_levels(self, bar: Bar, side: Side) -> list[Decimal]:
        """The five synthetic levels around a bar's open, each a half-spread worse."""
        sign = 1 if side is Side.BUY else -1
        o = Decimal(repr(bar.open))
        return [o * (1 + sign * self.hs * (2 * k + 1)) for k in range(5)]


def check(plan: Plan, log: Log, rows: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Every fill the broker gave against :class:`Reference`; the ledger's fills against
    the broker's; every equity row against the marks the data justifies."""
    ref = Reference(plan)
    out: list[str] = []
    given: list[Fill] = []
    for kind, cursor, what, result in log.calls:
        ref.advance(cursor)
        if kind == "submit":
            order, ts = what
            out += _on_submit(ref, cursor, order, ts, result)
        elif kind == "event":
            out += _on_event(ref, cursor, what, result)
        if kind in ("submit", "event"):
            out += _reduce_only(ref, result, f"event {cursor - 1}")
            given += result
            ref.no_mid_fills.update(f.fill_id for f in result if f.instrument_id in
                                    ref.has_book and ref.mid(f.instrument_id) is None)
        elif kind == "cancel" and what[0] in ref.orders:
            coid, ts = what
            at = -1 if ts is None else ts + ref.latency  # without latency: at once
            w = ref.orders[coid]
            w.cancel_ns = at if w.cancel_ns is None else min(w.cancel_ns, at)
    ref.advance(len(plan.events))
    booked = sorted((f[0], f[4], f[5], f[6], f[8]) for f in rows["fills"])
    mine = sorted((f.fill_id, str(f.price), str(f.quantity), str(f.fee), f.ts_ns)
                  for f in given)
    if booked != mine:
        out.append(f"ledger: the fills table ({len(booked)}) is not what the broker gave "
                   f"({len(mine)})")
    out += _check_equity(ref, given, rows["equity"])
    return out


def _reduce_only(ref: Reference, fills: list[Fill], where: str) -> list[str]:
    """A reduce-only order's fill never opens or flips a position (in booking order)."""
    out = []
    for f in fills:
        w = ref.orders.get(f.client_order_id)
        held = ref.position.get(f.instrument_id, Decimal(0))
        signed = f.quantity if f.side is Side.BUY else -f.quantity
        if w is not None and w.order.reduce_only and (
                held == 0 or (held > 0) == (signed > 0) or abs(signed) > abs(held)):
            out.append(f"{where}: reduce-only fill {f.fill_id} ({f.side.value} {f.quantity}) "
                       f"against a position of {held}: it opens exposure")
        ref.position[f.instrument_id] = held + signed
    return out


def _fill_common(ref: Reference, fill: Fill, where: str) -> list[str]:
    """Lot grid, side, quantity, fees: what every fill must satisfy."""
    out = []
    w = ref.orders.get(fill.client_order_id)
    if w is None:
        return [f"{where}: fill {fill.fill_id} of an order never sent"]
    spec = ref.specs[fill.instrument_id]
    o = w.order
    if w.cancel_ns is not None and fill.ts_ns >= w.cancel_ns:
        out.append(f"{where}: fill {fill.fill_id} after its order's cancel reached the market")
    if fill.side is not o.side or fill.instrument_id != o.instrument_id:
        out.append(f"{where}: fill {fill.fill_id} side/instrument is not its order's")
    if fill.quantity <= 0 or fill.quantity % spec.lot:
        out.append(f"{where}: fill {fill.fill_id} quantity {fill.quantity} off the lot grid "
                   f"{spec.lot}")
    if o.limit_price is not None and not within(o.side, fill.price, o.limit_price):
        out.append(f"{where}: fill {fill.fill_id} at {fill.price} is past its limit "
                   f"{o.limit_price}")
    w.filled += fill.quantity
    if w.filled > o.quantity:
        out.append(f"{where}: order {o.client_order_id} filled {w.filled} > its {o.quantity}")
    want = ref.fee(fill.instrument_id, fill.price, fill.quantity,
                   fill.liquidity.value == "maker")
    if fill.fee != want:
        out.append(f"{where}: fill {fill.fill_id} fee {fill.fee} != the rules' {want} "
                   f"({fill.liquidity.value}, {fill.quantity} @ {fill.price}, paper "
                   f"{ref.plan.paper})")
    if fill.price <= 0 or (fill.liquidity.value == "taker" and fill.price % spec.tick):
        out.append(f"{where}: taker fill {fill.fill_id} price {fill.price} off the tick "
                   f"{spec.tick}")
    return out


def _on_submit(ref: Reference, cursor: int, order: Order, ts: int, fills: list[Fill]
               ) -> list[str]:
    out = []
    where = f"event {cursor - 1} (send of {order.client_order_id})"
    iid = order.instrument_id
    if ref.event is None or ts != ref.event.ts_ns:  # type: ignore[union-attr]
        out.append(f"{where}: sent at {ts}, not at the clock of the event decided on")
    w = RefOrder(order, ts, ts + ref.latency)
    ref.orders[order.client_order_id] = w
    if iid in ref.has_book and ts >= w.activate_ns and (
            ref.tradeable(iid) or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)):
        w.active = True  # its taker moment is now: the book as the decision saw it
    if not fills:
        return out
    if iid not in ref.has_book:
        return [*out, f"{where}: filled at the send on an instrument without a book"]
    if ts < w.activate_ns:
        out.append(f"{where}: filled at the send within its latency")
    return out + _book_taker(ref, w, cursor, fills, where)


def _book_taker(ref: Reference, w: RefOrder, cursor: int, fills: list[Fill], where: str
                ) -> list[str]:
    """Taker fills of ``w`` on the book as it stands after event ``cursor``."""
    out = []
    o = w.order
    iid = o.instrument_id
    w.active = True
    if not ref.tradeable(iid):
        out.append(f"{where}: filled on a book that is not tradeable (dead, stale, crossed)")
    if o.time_in_force is TimeInForce.POST_ONLY:
        out.append(f"{where}: a post-only order took liquidity")
    ladder = ref.asks[iid] if o.side is Side.BUY else ref.bids[iid]
    mid = ref.mid(iid)
    total = Decimal(0)
    for f in fills:
        if f.liquidity.value != "taker":
            out.append(f"{where}: fill {f.fill_id} at activation is not a taker fill")
            continue
        total += f.quantity
        fits = [p for p in ladder if within(o.side, p, o.limit_price)
                and f.price in ref.taker_prices(iid, o.side, p, from_data=False)]
        if not fits:
            out.append(f"{where}: taker fill {f.fill_id} at {f.price} is no level of the "
                       f"{'asks' if o.side is Side.BUY else 'bids'} within the limit "
                       f"{o.limit_price} (book {sorted(ladder.items())[:5]}, slip {ref.slip})")
            continue
        if mid is not None and f.price == mid:
            out.append(f"{where}: taker fill {f.fill_id} at the mid {mid}")
        # Slippage and the tick can map two levels onto one price: the walk takes the best
        # level first, so the fill is the best fitting level's that still has room.
        fits.sort(reverse=o.side is Side.SELL)
        level = next((p for p in fits if ref.consumed.get((iid, o.side is Side.BUY, p),
                                                          Decimal(0)) < ladder[p]), fits[0])
        key = (iid, o.side is Side.BUY, level)
        ref.consumed[key] = ref.consumed.get(key, Decimal(0)) + f.quantity
        if ref.consumed[key] > ladder[level]:
            out.append(f"{where}: paper takers took {ref.consumed[key]} of the level "
                       f"{level} x {ladder[level]} (more than the data's liquidity)")
        if f.ts_ns != ref.event.ts_ns:  # type: ignore[union-attr]
            out.append(f"{where}: fill {f.fill_id} stamped {f.ts_ns}, not at its book's time")
        out += _fill_common(ref, f, where)
    if o.time_in_force is TimeInForce.FOK and fills and total != o.quantity:
        out.append(f"{where}: a FOK order filled {total} of {o.quantity}")
    return out


def _on_event(ref: Reference, cursor: int, event: MarketEvent, fills: list[Fill]
              ) -> list[str]:
    """Fills the broker gave on ``event`` (the ``cursor``-th event), and every waiting
    order's taker moment: the first event that may fill it."""
    out: list[str] = []
    iid = event.instrument_id  # type: ignore[union-attr]
    where = f"event {cursor - 1} ({describe(event)})"
    by: dict[str, list[Fill]] = {}
    for f in fills:
        by.setdefault(f.client_order_id, []).append(f)
    for coid, w in ref.orders.items():
        o = w.order
        if o.instrument_id != iid or w.active:
            continue
        mine = by.get(coid, [])
        if iid in ref.has_book:
            if event.ts_ns >= w.activate_ns:  # type: ignore[union-attr]
                if ref.tradeable(iid) or o.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                    w.active = True
                if mine:
                    out += _book_taker(ref, w, cursor, mine, where)
                    by.pop(coid)
        elif isinstance(event, Bar):
            # The bar before it closed at or after the send: it opened after the order
            # (an instrument's first bar may have opened before it: never).
            prev = ref.prev_bar_close.get(iid)
            if prev is not None and prev >= w.sent_ns and event.ts_ns > w.sent_ns \
                    and event.ts_ns >= w.activate_ns:
                w.active = True
                out += _data_taker(ref, w, cursor, event, by.pop(coid, []), where)
        elif isinstance(event, Trade) and event.ts_ns > w.sent_ns \
                and event.ts_ns >= w.activate_ns:
            w.active = True
            out += _data_taker(ref, w, cursor, event, by.pop(coid, []), where)
    for coid, mine in by.items():  # maker fills of resting orders
        w = ref.orders.get(coid)  # type: ignore[assignment]
        if w is None:
            out.append(f"{where}: fills of an unknown order {coid}")
            continue
        if not w.active:
            out.append(f"{where}: order {coid} filled before its first price after the send "
                       f"(sent {(w.sent_ns - T0) / S:g}s, latency {ref.latency / MS:g} ms)")
            out += [p for f in mine for p in _fill_common(ref, f, where)]
            continue
        out += _maker(ref, w, cursor, event, mine, where)
    return out


def _data_taker(ref: Reference, w: RefOrder, cursor: int, event: Bar | Trade,
                mine: list[Fill], where: str) -> list[str]:
    """The taker moment of an order on bars or prints, then the rest of that bar/print."""
    out = []
    o = w.order
    iid = o.instrument_id
    if isinstance(event, Bar):
        levels = ref.bar_levels(event, o.side)
        depth = Decimal(repr(event.volume)) * ref.depth_frac
    else:
        sign = 1 if o.side is Side.BUY else -1
        levels = [event.price * (1 + sign * ref.hs)]
        depth = event.size
    takers = [f for f in mine if f.liquidity.value == "taker"]
    makers = [f for f in mine if f.liquidity.value != "taker"]
    if takers and o.time_in_force is TimeInForce.POST_ONLY:
        out.append(f"{where}: a post-only order took liquidity")
    taken = Decimal(0)
    for f in takers:
        fits = [lv for lv in levels if within(o.side, lv, o.limit_price)
                and f.price in ref.taker_prices(iid, o.side, lv, from_data=True)]
        if not fits:
            out.append(f"{where}: taker fill {f.fill_id} at {f.price} is not a level of the "
                       f"{'bar open' if isinstance(event, Bar) else 'print'} "
                       f"({[str(lv) for lv in levels[:3]]}...) within the limit "
                       f"{o.limit_price}, moved against the trader onto the tick")
        if f.quantity > depth:
            out.append(f"{where}: taker fill {f.fill_id} of {f.quantity} > a level's depth "
                       f"{depth}")
        taken += f.quantity
        if f.ts_ns != event.ts_ns:
            out.append(f"{where}: fill {f.fill_id} not stamped at its bar/print")
        out += _fill_common(ref, f, where)
    if o.time_in_force is TimeInForce.FOK and takers and taken != o.quantity:
        out.append(f"{where}: a FOK order filled {taken} of {o.quantity}")
    w.fills_at[cursor] = taken
    _use(ref, cursor, event, taken, where, out)
    if makers:
        out += _maker(ref, w, cursor, event, makers, where)
    return out


def _use(ref: Reference, cursor: int, event: MarketEvent, qty: Decimal, where: str,
         out: list[str]) -> None:
    """Every order's fills on one bar or print together: never more than it traded."""
    ref.used[cursor] = ref.used.get(cursor, Decimal(0)) + qty
    if isinstance(event, Bar):
        cap = Decimal(repr(event.volume))
    elif isinstance(event, Trade):
        cap = event.size
    else:
        return
    if ref.used[cursor] > cap:
        out.append(f"{where}: the orders filled {ref.used[cursor]} on a "
                   f"{type(event).__name__.lower()} that traded {cap} (more than the "
                   f"data's liquidity)")


def _maker(ref: Reference, w: RefOrder, cursor: int, event: MarketEvent, mine: list[Fill],
           where: str) -> list[str]:
    """Maker fills of a resting limit: only when ``event`` trades through it, at it."""
    out = []
    o = w.order
    limit = o.limit_price
    total = sum((f.quantity for f in mine), Decimal(0))
    if isinstance(event, Trade):
        through = limit is not None and (event.price < limit if o.side is Side.BUY
                                         else event.price > limit)
        cap = event.size - w.fills_at.get(cursor, Decimal(0))
    elif isinstance(event, Bar):
        through = limit is not None and event.volume > 0 and (
            Decimal(repr(event.low)) < limit if o.side is Side.BUY
            else Decimal(repr(event.high)) > limit)
        cap = Decimal(repr(event.volume)) * ref.depth_frac - w.fills_at.get(cursor, Decimal(0))
    else:
        through, cap = False, Decimal(0)
    for f in mine:
        if f.liquidity.value != "maker" or f.price != limit:
            out.append(f"{where}: resting fill {f.fill_id} at {f.price} ({f.liquidity.value})"
                       f", not a maker fill at its limit {limit}")
        if f.ts_ns != getattr(event, "ts_ns", None):
            out.append(f"{where}: fill {f.fill_id} not stamped at the event that filled it")
        out += _fill_common(ref, f, where)
    if not through:
        out.append(f"{where}: resting {o.side.value} limit {limit} filled by an event that "
                   f"did not trade through it")
    if total > cap:
        out.append(f"{where}: resting order {o.client_order_id} filled {total} > what the "
                   f"event left it ({cap})")
    _use(ref, cursor, event, total, where, out)
    return out


def _check_equity(ref: Reference, fills: list[Fill], equity: list[tuple[Any, ...]]
                  ) -> list[str]:
    """Each row: cash == starting cash less the fills booked by then; equity == cash +
    sum(quantity x a mark the data justifies then): the last market price at or before the
    row (any one stamped at the row's time), never a fill's own price, except where a fill
    opened the position from flat on a book with no live mid (one-sided, crossed, stale)
    and no market price came after it: the account's documented fallback (a mid the book
    had before it lost a side is not kept, and an older print would be a stale mark)."""
    out: list[str] = []
    for ts, cash_text, equity_text in equity:
        cash, held = STARTING_CASH, {}
        opened: dict[str, Fill] = {}  # the fill that opened each position from flat
        for f in fills:
            if f.ts_ns > ts:
                continue
            sign = 1 if f.side is Side.BUY else -1
            cash -= sign * f.quantity * f.price + f.fee
            if not held.get(f.instrument_id):
                opened[f.instrument_id] = f
            held[f.instrument_id] = held.get(f.instrument_id, Decimal(0)) + sign * f.quantity
        if Decimal(cash_text) != cash:
            out.append(f"equity row {(ts - T0) / S:g}s: cash {cash_text} != {cash}")
            continue
        sums = {cash}
        for iid, q in held.items():
            if not q:
                continue
            seen = [(t, p, k) for k, t, i, p in ref.marks if i == iid and t <= ts]
            bounds = [(k, t, v, kind) for k, t, i, v, kind in ref.bounds
                      if i == iid and t <= ts]
            ok: set[Decimal] = set()
            for p, k in [(p, k) for t, p, k in seen if t == ts] + \
                    [(p, k) for t, p, k in seen if t < ts][-1:]:
                ok |= _bounded(p, [(t, v, kind) for j, t, v, kind in bounds if j > k], ts)
            first = opened.get(iid)
            if first is not None and first.fill_id in ref.no_mid_fills \
                    and not any(t > first.ts_ns for t, _, _ in seen):
                ok |= _bounded(first.price, [(t, v, kind) for _, t, v, kind in bounds
                                             if t >= first.ts_ns], ts, first.ts_ns)
            if not ok:
                out.append(f"equity row {(ts - T0) / S:g}s: {iid} held with no market price "
                           f"yet")
                ok = {Decimal(0)}
            sums = {s + q * p for s in sums for p in ok}
        want = Decimal(equity_text)
        if not any(abs(want - s) <= _EQ_TOL for s in sums):
            near = min(sums, key=lambda s: abs(want - s))
            fillp = {f.instrument_id: f.price for f in fills if f.ts_ns <= ts}
            out.append(f"marks: equity row {(ts - T0) / S:g}s is {want}, the data justifies "
                       f"{near} (holding { {i: str(q) for i, q in held.items() if q} }; last "
                       f"fill prices {fillp})")
    return out


def _bounded(value: Decimal, bounds: list[tuple[int, Decimal, str]], ts: int,
             since: int | None = None) -> set[Decimal]:
    """``value`` as the live one-sided books after it (``(time, best price, "le"/"ge")``,
    in stream order) left the mark by row time ``ts``; a bound stamped at the row's time
    (or at the fill's own, ``since``) may come after the row or before the fill: applied
    and skipped both."""
    out = {value}
    for t, bound, kind in bounds:
        moved = {min(v, bound) if kind == "le" else max(v, bound) for v in out}
        out = out | moved if t in (ts, since) else moved
    return out


def kind_of(problem: str) -> str:
    """A problem's class, for shrinking (the text after the location, up to digits)."""
    text = problem.split(": ", 1)[-1] if problem.startswith("event ") else problem
    words = [w for w in text.replace(",", " ").split() if not any(c.isdigit() for c in w)]
    return " ".join(words[:6])


def shrink(plan: Plan, workdir: Path, kind: str, *, twice: bool = True,
           budget: int = 200) -> tuple[Plan, list[int]]:
    """Greedily drop chunks of events while a problem containing ``kind`` stays; the
    smaller plan and the indices of the events it kept (for a regression test)."""
    indices = list(range(len(plan.events)))
    n = 0

    def fails(keep: list[int]) -> bool:
        nonlocal n
        n += 1
        result = run_seed(plan.seed, workdir / f"s{n}", plan.keep(keep), twice=twice)
        return any(kind in p for p in result.problems)

    chunk = max(1, len(indices) // 2)
    while chunk >= 1 and n < budget:
        k = 0
        while k < len(indices) and n < budget:
            trial = indices[:k] + indices[k + chunk:]
            if trial and fails(trial):
                indices = trial
            else:
                k += chunk
        chunk //= 2
    return plan.keep(indices), indices


def sweep(seeds: Iterable[int], workdir: Path, known: Callable[[str], bool] = lambda _p: False
          ) -> list[Result]:
    """Run ``seeds``; the results with a problem ``known`` does not excuse."""
    bad = []
    for seed in seeds:
        r = run_seed(seed, workdir / str(seed))
        if any(not known(p) for p in r.problems):
            bad.append(r)
    return bad


def _dec(x: Any) -> Decimal:
    """A float (numpy's too) as the Decimal its shortest repr reads."""
    return Decimal(repr(float(x)))
