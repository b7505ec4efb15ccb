"""Throughput of the Argus loop: book deltas into market state, and events through a backtest.

Usage::

    python benchmarks/loop/bench_loop.py                       # everything (~1 min)
    python benchmarks/loop/bench_loop.py --deltas 500000 --skip-nautilus
    python benchmarks/loop/bench_loop.py --profile             # + cProfile of the Argus loop
    python benchmarks/loop/bench_loop.py --skip-deltas --what-if   # + ledger what-if rows

Part 1, book deltas/s into market state.  ``--deltas`` seeded level updates
(BTC/USD-like: 0.1 ticks around 30,000, level distance from mid exponential
with mean 50 ticks, capped at 1,000; 25% deletions) are applied to

* ``L2Book.apply_many`` in batches of 10 (a venue message) and of 1,000,
* ``MarketState.apply(BookDelta)`` one event at a time (events pre-built:
  the venue adapter builds them, not market state),
* plain-Python baseline: a dict-of-dicts book that re-sorts the touched side
  into a price-ordered list after every update (the straightforward way to
  keep a ladder readable at all times),
* ``sortedcontainers.SortedDict`` (a maintained sorted map, for reference).

Every path's final book is checked against the others.

Part 2, events/s through the whole loop.  All 70,253 hourly Kraken XBT/USD
bars bundled in ``examples/data`` (2013-10 onward), an SMA(10)/SMA(40)
long-only crossover buying 50% of equity, 40 bps taker fee, $100,000 cash:

* Argus: the real ``Runner`` (strategy ``ma_cross`` -> ``fixed_fraction``
  sizer -> every builtin risk check -> paper broker -> apsw ledger with
  checkpoints, ``synchronous=FULL``), once reading the CSV itself and once
  from pre-parsed bars (the like-for-like row: the others also start from
  bars in memory), and once more from pre-parsed bars with every bar through
  the event path (``Runner.bar_stretches = False``: what the quiet stretches
  save, in the same run; the same fills),
* plain-Python baseline: one loop of floats doing the same crossover, sizing,
  next-open fills with tick rounding, and fees,
* backtrader (``pip install backtrader``): ``bt.ind.SMA`` on a ``PandasData``
  feed, market orders filled at the next open, 0.4% commission,
* NautilusTrader (``pip install nautilus_trader``): ``BacktestEngine`` with a
  ``CurrencyPair`` on a cash account, ``SimpleMovingAverage`` indicators
  registered for the bar type, market orders (filled at the bar's close, the
  engine's current price), 0.4% taker fee.

Timing covers each engine's run from bars in memory (pandas frame for
backtrader, wrangled ``Bar`` objects for Nautilus) to the end of the backtest;
engine construction and data loading are outside the timer except in the
"Argus (reads the CSV)" row.  Trade counts and final equity are printed so the
runs can be seen to do the same work.  The process pins itself to one CPU.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import io
import logging
import math
import pstats
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from argus_core.config import Config, parse_config
from argus_core.market_state import L2Book, MarketState
from argus_core.models import Bar, BookDelta, Side
from argus_core.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import load_average, machine_line, pin_to_one_core, timed, versions

ROOT = Path(__file__).resolve().parents[2]
BARS_CSV = ROOT / "examples/data/kraken_XBTUSD_60.csv"
FAST, SLOW = 10, 40
FRACTION = 0.5  # share of equity per entry
TAKER_BPS = 40  # Kraken base tier
CASH = 100_000.0
TICK = 0.1
LOT = 1e-8
MIN_SIZE = 1e-4


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest of ``repeat`` timed runs (the shared machine only ever adds time)."""
    runs = [timed(fn) for _ in range(max(1, repeat))]
    return min(runs, key=lambda r: r[0])


# -- part 1: book deltas ---------------------------------------------------------------

def make_deltas(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` seeded level updates: (is_bid, price, size); size 0 deletes the level."""
    rng = np.random.default_rng(seed)
    is_bid = rng.random(n) < 0.5
    dist = np.minimum(1 + np.floor(rng.exponential(50.0, n)), 1000).astype(np.int64)
    mid_ticks = 300_000
    ticks = np.where(is_bid, mid_ticks - dist, mid_ticks + dist)
    prices = ticks / 10.0  # nearest double to the 0.1-tick price, identical in every path
    sizes = np.round(rng.lognormal(-1.0, 1.0, n), 8)
    sizes[rng.random(n) < 0.25] = 0.0
    return is_bid, prices, sizes


def book_argus_batches(is_bid: np.ndarray, prices: np.ndarray, sizes: np.ndarray,
                       batch: int) -> Callable[[], L2Book]:
    """A function applying the deltas with ``L2Book.apply_many``, ``batch`` at a time."""
    chunks = [(is_bid[i:i + batch], prices[i:i + batch], sizes[i:i + batch])
              for i in range(0, len(prices), batch)]

    def run() -> L2Book:
        book = L2Book("BTC/USD")
        apply_many = book.apply_many
        for ts, (b, p, s) in enumerate(chunks):
            apply_many(b, p, s, ts)
        return book

    return run


def book_deltas_events(is_bid: np.ndarray, prices: np.ndarray, sizes: np.ndarray
                       ) -> list[BookDelta]:
    """Pre-built ``BookDelta`` events (what a venue adapter hands the loop)."""
    out = []
    for ts, (b, p, s) in enumerate(zip(is_bid.tolist(), prices.tolist(), sizes.tolist(),
                                       strict=True)):
        out.append(BookDelta("BTC/USD", ts, Side.BUY if b else Side.SELL, p, s))
    return out


def naive_book(is_bid: list[bool], prices: list[float], sizes: list[float]
               ) -> dict[str, dict[float, float]]:
    """Plain-Python baseline: dict-of-dicts, re-sorting the touched side after every update."""
    book: dict[str, dict[float, float]] = {"bids": {}, "asks": {}}
    ladders: dict[str, list[tuple[float, float]]] = {"bids": [], "asks": []}
    for bid, price, size in zip(is_bid, prices, sizes, strict=True):
        side = "bids" if bid else "asks"
        levels = book[side]
        if size > 0:
            levels[price] = size
        else:
            levels.pop(price, None)
        ladders[side] = sorted(levels.items(), reverse=bid)
    return book


def sorted_book(is_bid: list[bool], prices: list[float], sizes: list[float]
                ) -> tuple[Any, Any]:
    """Reference: a ``sortedcontainers.SortedDict`` per side (ordered at all times)."""
    from sortedcontainers import SortedDict

    bids, asks = SortedDict(), SortedDict()
    for bid, price, size in zip(is_bid, prices, sizes, strict=True):
        side = bids if bid else asks
        if size > 0:
            side[price] = size
        else:
            side.pop(price, None)
    return bids, asks


def bench_deltas(n: int, event_n: int, naive_n: int, seed: int, repeat: int
                 ) -> list[tuple[str, int, float]]:
    """Part 1: returns (label, deltas, seconds) rows."""
    is_bid, prices, sizes = make_deltas(n, seed)
    rows: list[tuple[str, int, float]] = []

    secs, ref = best_of(repeat, book_argus_batches(is_bid, prices, sizes, 1000))
    rows.append(("Argus L2Book.apply_many, batches of 1,000", n, secs))
    secs, book10 = best_of(repeat, book_argus_batches(is_bid, prices, sizes, 10))
    rows.append(("Argus L2Book.apply_many, batches of 10", n, secs))
    assert book10.bids == ref.bids and book10.asks == ref.asks

    # Per-event path on a prefix (2M frozen attrs events would not fit the shared box well).
    event_n = min(event_n, n)
    events = book_deltas_events(is_bid[:event_n], prices[:event_n], sizes[:event_n])
    prefix = book_argus_batches(is_bid[:event_n], prices[:event_n], sizes[:event_n], 1000)()

    def per_event() -> MarketState:
        market = MarketState()
        apply = market.apply
        for ev in events:
            apply(ev)
        return market

    secs, market = best_of(repeat, per_event)
    rows.append(("Argus MarketState.apply(BookDelta), one by one", event_n, secs))
    got = market.books["BTC/USD"]
    assert got.bids == prefix.bids and got.asks == prefix.asks
    events.clear()  # free ~0.5M objects before the next rows

    lists = is_bid.tolist(), prices.tolist(), sizes.tolist()
    try:
        secs, (sb, sa) = best_of(repeat, lambda: sorted_book(*lists))
        rows.append(("sortedcontainers.SortedDict per side", n, secs))
        assert dict(sb) == ref.bids and dict(sa) == ref.asks
    except ImportError:
        print("sortedcontainers not installed: its row is skipped")

    naive_n = min(naive_n, n)
    secs, naive = timed(lambda: naive_book(*(x[:naive_n] for x in lists)))
    rows.append(("plain Python: dict + re-sort per update", naive_n, secs))
    nprefix = book_argus_batches(is_bid[:naive_n], prices[:naive_n], sizes[:naive_n], 1000)()
    assert naive["bids"] == nprefix.bids and naive["asks"] == nprefix.asks
    print(f"book after {n:,} deltas: {len(ref.bids)} bid and {len(ref.asks)} ask levels; "
          f"every path's final book verified equal")
    return rows


# -- part 2: the whole loop ------------------------------------------------------------

def read_bars() -> list[tuple[int, float, float, float, float, float]]:
    """The bundled bars: (open time s, open, high, low, close, volume)."""
    with open(BARS_CSV, newline="") as fh:
        return [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
                for r in csv.reader(fh) if r]


def argus_config() -> Config:
    """The Argus side of the comparison, as a config (risk limits opened up so every
    crossover trades, like in the other engines; the checks still run on every order)."""
    return parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 7},
        "run": {"venue": "replay", "strategies": ["ma_cross"], "sizer": "fixed_fraction",
                "starting_cash": str(int(CASH)), "checkpoint_every_events": 1000},
        "paper": {"latency_ms": 0, "slippage_bps": "0", "bar_spread_bps": "0"},
        "plugins": {
            "replay": {"bars_csv": str(BARS_CSV), "symbol": "BTC/USD", "bar_seconds": 3600,
                       "tick_size": str(TICK), "maker_bps": "25", "taker_bps": str(TAKER_BPS)},
            "example": {"fast": FAST, "slow": SLOW},
            "sizing": {"fraction": str(FRACTION)},
            "risk": {"per_play_fraction": "1", "max_consecutive_losses": 10**9,
                     "daily_loss_fraction": "1", "max_drawdown_fraction": "1",
                     "max_orders_per_minute": 10**9},
        },
    })


def run_argus(preparsed: list[Bar] | None, keep: list[Path],
              tweak: Callable[[Runner], None] | None = None) -> dict[str, Any]:
    """One full Argus backtest (Runner construction and ledger setup included in the time);
    ``tweak`` alters the runner first (the --what-if rows only)."""
    run_dir = Path(tempfile.mkdtemp(prefix="argus-bench-loop-"))
    keep.append(run_dir)
    runner = Runner(argus_config(), run_dir)
    # Fills whole at the next open, like the other engines (they ignore volume; the
    # config's bar_depth_fraction is capped at 1 of a bar's volume per level).
    runner.broker._synthetic_book = lambda bar, side: [(bar.open, 1e18)]  # type: ignore[method-assign]
    runner.broker._room = lambda order, from_event: None  # type: ignore[method-assign]  # nor the bar's volume
    if preparsed is not None:
        runner.asm.venue.events = lambda: iter(preparsed)  # type: ignore[method-assign]
    if tweak is not None:
        tweak(runner)
    summary = runner.run_sync()
    return {"events": summary.events, "orders": summary.orders, "fills": summary.fills,
            "final_equity": float(summary.final_equity)}


def seeded_bars(n_symbols: int, n_bars: int, seed: int) -> list[Bar]:
    """``n_bars`` hourly bars per symbol (seeded, BTC-like prices on a 0.1
    tick), interleaved per timestamp: what a multi-symbol replay hands the loop."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, (n_bars, n_symbols))
    # Log prices mean-revert slowly (AR(1), phi 0.9999: stationary sd ~0.7) so that a long
    # single-symbol row stays in a BTC-like range; a plain random walk of 320k steps drifts
    # to a price of zero and the bar is rejected.
    log_moves = lfilter([1.0], [1.0, -0.9999], steps, axis=0)
    closes = np.round(30_000.0 * np.exp(log_moves), 1)
    opens = np.vstack([closes[:1], closes[:-1]])
    out = []
    for t in range(n_bars):
        ts = (1_600_000_000 + 3600 * (t + 1)) * 10**9
        for k in range(n_symbols):
            o, c = float(opens[t, k]), float(closes[t, k])
            out.append(Bar(f"bench:S{k}/USD", ts, o, max(o, c) + 5.0, min(o, c) - 5.0, c, 10.0))
    return out


class EachSymbolCross:
    """One strategy slot trading every symbol: an independent ``ma_cross`` per symbol
    behind it (what a multi-instrument strategy with one book looks like to the loop)."""

    name = "ma_cross_all"
    listens_to = None  # every symbol's events

    def __init__(self, n_symbols: int) -> None:
        from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross

        self.inner = {f"bench:S{k}/USD": MovingAverageCross(
            ExampleSettings(FAST, SLOW, f"bench:S{k}/USD")) for k in range(n_symbols)}

    def on_event(self, event: Any, ctx: Any) -> Any:
        inner = self.inner.get(getattr(event, "instrument_id", None))
        return inner.on_event(event, ctx) if inner is not None else ()

    def get_state(self) -> dict[str, Any]:
        return {iid: s.get_state() for iid, s in self.inner.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        for iid, s in self.inner.items():
            s.set_state(state[iid])


def run_symbols(bars: list[Bar], n_symbols: int, keep: list[Path], books: str = "slot"
                ) -> dict[str, Any]:
    """The Argus job on ``n_symbols`` symbols, everything else as in :func:`argus_config`:
    ``books="slot"``: one ``ma_cross`` slot per symbol (each its own book and an equal
    share of the cash, so the ledger also keeps each book's equity: a row per book and
    timestamp where the book moved); ``books="one"``: one slot trading every symbol
    (:class:`EachSymbolCross`, one book; each entry sized at ``FRACTION / n_symbols`` of
    the equity, the same money per entry as a slot's ``FRACTION`` of its share)."""
    from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross

    run_dir = Path(tempfile.mkdtemp(prefix="argus-bench-symbols-"))
    keep.append(run_dir)
    slots: dict[str, Any]
    if books == "one":
        slots, fraction = {"ma_all": EachSymbolCross(n_symbols)}, FRACTION / n_symbols
    else:
        slots = {f"ma_{k}": MovingAverageCross(ExampleSettings(FAST, SLOW, f"bench:S{k}/USD"))
                 for k in range(n_symbols)}
        fraction = FRACTION
    raw = {"argus": {"plugins": [], "mode": "replay", "seed": 7},
           "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                   "starting_cash": str(int(CASH) * n_symbols),
                   "checkpoint_every_events": 1000},  # per event as with one symbol
           "paper": {"latency_ms": 0, "slippage_bps": "0", "bar_spread_bps": "0"},
           "plugins": {"replay": {"bars_csv": str(BARS_CSV), "tick_size": str(TICK),
                                  "lot_size": "0.00000001", "taker_bps": str(TAKER_BPS)},
                       "sizing": {"fraction": str(fraction)},
                       "risk": {"per_play_fraction": "1", "max_consecutive_losses": 10**9,
                                "daily_loss_fraction": "1", "max_drawdown_fraction": "1",
                                "max_orders_per_minute": 10**9}}}
    config = parse_config(raw)
    # The loop reports every 1,000 events: the clock between the first and the last report
    # inside the loop times events only (no start-up, no closing fsyncs), checkpoints incl.
    stamps: list[tuple[int, float, float]] = []
    runner = Runner(config, run_dir, strategies=slots,
                    progress=lambda seq: stamps.append((seq, time.perf_counter(),
                                                        time.process_time())))
    runner.broker._synthetic_book = lambda bar, side: [(bar.open, 1e18)]  # type: ignore[method-assign]
    runner.broker._room = lambda order, from_event: None  # type: ignore[method-assign]  # nor the bar's volume
    runner.asm.venue.events = lambda: iter(bars)  # type: ignore[method-assign]
    gc.collect()
    gc.disable()  # as in timed()
    try:
        summary = runner.run_sync()
    finally:
        gc.enable()
    (seq0, t0, c0), (seq1, t1, c1) = stamps[0], stamps[-2]  # the last: after closing
    return {"events": summary.events, "orders": summary.orders, "fills": summary.fills,
            "final_equity": float(summary.final_equity),
            "us_per_event": (t1 - t0) / (seq1 - seq0) * 1e6,
            "cpu_us_per_event": (c1 - c0) / (seq1 - seq0) * 1e6}


#: The symbols table's rows: (symbols, books) -- one symbol has one book either way.
SymbolRow = tuple[int, str]


def bench_symbols(n_bars: int, counts: tuple[int, ...], repeat: int
                  ) -> list[tuple[SymbolRow, dict[str, Any], float]]:
    """Cost per event against the number of symbols: every row replays the same number of
    events (``n_bars`` seeded bars per symbol at the most symbols; fewer symbols get more
    bars each), the same crossover per symbol, once with one book for every symbol and
    once with a slot (and book) per symbol, the rows' runs interleaved (1, 16 one book,
    16 books, 1, ...) so a slow spell of a shared machine hits each; returns (row, result,
    median microseconds per event), timed inside the loop (start-up and closing are per
    run, not per event)."""
    keep: list[Path] = []
    events = n_bars * max(counts)
    plan: list[SymbolRow] = [(n, books) for n in counts
                             for books in (("one",) if n == 1 else ("one", "slot"))]
    runs: dict[SymbolRow, list[dict[str, Any]]] = {row: [] for row in plan}
    try:
        bars = {n: seeded_bars(n, events // n, seed=20240601) for n in counts}
        for n, books in plan:
            run_symbols(bars[n][:3000 * n], n, keep, books)  # warm-up
        for _ in range(max(1, repeat)):
            for n, books in plan:
                runs[(n, books)].append(run_symbols(bars[n], n, keep, books))
    finally:
        for path in keep:
            shutil.rmtree(path, ignore_errors=True)
    rows = []
    for row in plan:
        us = sorted(r["us_per_event"] for r in runs[row])[len(runs[row]) // 2]
        cpu = sorted(r["cpu_us_per_event"] for r in runs[row])[len(runs[row]) // 2]
        rows.append((row, {**runs[row][0], "cpu_us_per_event": cpu}, us))
    return rows


def run_baseline(bars: list[tuple[int, float, float, float, float, float]]) -> dict[str, Any]:
    """Plain Python: the same crossover, sizing, next-open fills and fees, all floats."""
    closes: deque[float] = deque(maxlen=SLOW)
    cash, qty, long = CASH, 0.0, False
    pending: float = 0.0  # signed quantity to fill at the next bar's open
    orders = fills = 0
    fee_rate = TAKER_BPS / 10_000
    equity_curve = []
    for _ts, o, _h, _l, c, _v in bars:
        if pending:
            # Fill at the open, rounded onto the tick against the trader.
            px = (math.ceil(round(o / TICK, 6)) if pending > 0 else
                  math.floor(round(o / TICK, 6))) * TICK
            cash -= pending * px + abs(pending) * px * fee_rate
            qty += pending
            pending = 0.0
            fills += 1
        equity_curve.append(cash + qty * c)
        closes.append(c)
        if len(closes) < SLOW:
            continue
        fast = sum(list(closes)[-FAST:]) / FAST
        slow = sum(closes) / SLOW
        want = fast > slow
        if want == long:
            continue
        long = want
        if want:
            size = math.floor((cash + qty * c) * FRACTION / c / LOT) * LOT
            if size >= MIN_SIZE:
                pending = size
                orders += 1
        elif qty > 0:
            pending = -qty
            orders += 1
    return {"events": len(bars), "orders": orders, "fills": fills,
            "final_equity": cash + qty * bars[-1][4]}


def run_backtrader(frame: Any) -> Callable[[], dict[str, Any]]:
    """backtrader on a ``PandasData`` feed (its preloaded, vectorised default mode)."""
    import backtrader as bt

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.fast = bt.ind.SMA(self.data.close, period=FAST)
            self.slow = bt.ind.SMA(self.data.close, period=SLOW)
            self.long = False
            self.n_orders = 0

        def next(self) -> None:
            want = self.fast[0] > self.slow[0]
            if want == self.long:
                return
            self.long = want
            if want:
                close = self.data.close[0]
                size = math.floor(self.broker.getvalue() * FRACTION / close / LOT) * LOT
                if size >= MIN_SIZE:
                    self.buy(size=size)
                    self.n_orders += 1
            elif self.position.size > 0:
                self.close()
                self.n_orders += 1

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills = getattr(self, "fills", 0) + 1

    def run() -> dict[str, Any]:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame))
        cerebro.addstrategy(SmaCross)
        cerebro.broker.setcash(CASH)
        cerebro.broker.setcommission(commission=TAKER_BPS / 10_000)
        strat = cerebro.run()[0]
        return {"events": len(frame), "orders": strat.n_orders,
                "fills": getattr(strat, "fills", 0), "final_equity": cerebro.broker.getvalue()}

    return run


def nautilus_engine(frame: Any) -> tuple[Any, Callable[[Any], dict[str, Any]]]:
    """A ready NautilusTrader ``BacktestEngine`` and a function reading its results."""
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.indicators import SimpleMovingAverage
    from nautilus_trader.model.currencies import BTC, USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, TimeInForce
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.trading.strategy import Strategy

    venue = Venue("KRAKEN")
    inst_id = InstrumentId(Symbol("XBT/USD"), venue)
    # The CSV's early prices carry 5 decimals: keep them rather than round the data.
    instrument = CurrencyPair(
        instrument_id=inst_id, raw_symbol=Symbol("XBT/USD"), base_currency=BTC,
        quote_currency=USD, price_precision=5, size_precision=8,
        price_increment=Price.from_str("0.00001"), size_increment=Quantity.from_str("0.00000001"),
        lot_size=None, max_quantity=None, min_quantity=Quantity.from_str("0.0001"),
        max_notional=None, min_notional=None, max_price=None, min_price=None,
        margin_init=Decimal(0), margin_maint=Decimal(0),
        maker_fee=Decimal("0.0025"), taker_fee=Decimal(TAKER_BPS) / 10_000,
        ts_event=0, ts_init=0)
    bar_type = BarType.from_str("XBT/USD.KRAKEN-60-MINUTE-LAST-EXTERNAL")
    # Without a volume column every bar shows 1e6 units of depth, so market orders fill whole
    # as in the other engines (with the CSV's volumes, 2013's thin bars fill only partly).
    bars = BarDataWrangler(bar_type, instrument).process(frame.drop(columns=["volume"]))

    class SmaCrossConfig(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        bar_type: BarType

    class SmaCross(Strategy):  # type: ignore[misc]
        def __init__(self, config: SmaCrossConfig) -> None:
            super().__init__(config)
            self.fast = SimpleMovingAverage(FAST)
            self.slow = SimpleMovingAverage(SLOW)
            self.long = False
            self.n_orders = 0

        def on_start(self) -> None:
            self.instrument = self.cache.instrument(self.config.instrument_id)
            self.register_indicator_for_bars(self.config.bar_type, self.fast)
            self.register_indicator_for_bars(self.config.bar_type, self.slow)
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar: Any) -> None:
            if not self.slow.initialized:
                return
            want = self.fast.value > self.slow.value
            if want == self.long:
                return
            self.long = want
            iid = self.config.instrument_id
            if want:
                close = bar.close.as_double()
                equity = self.portfolio.account(venue).balance_total(USD).as_double()
                size = math.floor(equity * FRACTION / close / LOT) * LOT
                if size >= MIN_SIZE:
                    self.submit_order(self.order_factory.market(
                        iid, OrderSide.BUY, self.instrument.make_qty(size),
                        time_in_force=TimeInForce.IOC))
                    self.n_orders += 1
            elif self.portfolio.is_net_long(iid):
                self.close_all_positions(iid)
                self.n_orders += 1

    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("BENCH-001"),
        logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_venue(venue, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                     starting_balances=[Money(CASH, USD), Money(0, BTC)])
    engine.add_instrument(instrument)
    engine.add_data(bars)
    strategy = SmaCross(SmaCrossConfig(instrument_id=inst_id, bar_type=bar_type))
    engine.add_strategy(strategy)

    def result(_: Any) -> dict[str, Any]:
        account = engine.portfolio.account(venue)
        last = bars[-1].close.as_double()
        equity = (account.balance_total(USD).as_double()
                  + account.balance_total(BTC).as_double() * last)
        return {"events": len(bars), "orders": strategy.n_orders,
                "fills": len(engine.cache.orders_closed()), "final_equity": equity}

    return engine, result


def bars_frame(bars: list[tuple[int, float, float, float, float, float]]) -> Any:
    """The bars as a pandas frame indexed by close time (when each bar is knowable)."""
    import pandas as pd

    arr = np.array(bars, dtype=np.float64)
    index = pd.to_datetime((arr[:, 0].astype(np.int64) + 3600) * 10**9, utc=True)
    frame = pd.DataFrame(arr[:, 1:6], index=index,
                         columns=["open", "high", "low", "close", "volume"])
    frame.index.name = "timestamp"
    return frame


def bench_loop(repeat: int, skip_bt: bool, skip_nt: bool, profile: bool, what_if: bool
               ) -> list[tuple[str, dict[str, Any] | None, float, str]]:
    """Part 2: returns (system, result, seconds, note) rows."""
    keep: list[Path] = []
    rows: list[tuple[str, dict[str, Any] | None, float, str]] = []
    logging.getLogger("argus_core.builtins.replay_venue").setLevel(logging.ERROR)
    try:
        from argus_core.builtins.replay_venue import read_bars_csv

        parsed = read_bars_csv(BARS_CSV, "replay:BTC/USD", 3600)
        run_argus(parsed[:2000], keep)  # warm-up: plugin discovery and imports happen once
        secs, res = best_of(repeat, lambda: run_argus(parsed, keep))
        rows.append(("Argus (pre-parsed bars)", res, secs, "reference"))
        secs, res = best_of(repeat, lambda: run_argus(None, keep))
        rows.append(("Argus (reads the CSV)", res, secs, "incl. CSV parse"))

        def events_only(r: Runner) -> None:
            r.bar_stretches = False

        secs, res = best_of(repeat, lambda: run_argus(parsed, keep, events_only))
        rows.append(("Argus, no quiet stretches", res, secs, "every bar one by one"))
        if what_if:
            # Not product settings: what the ledger's durability and per-bar equity rows cost.
            def sync(level: str) -> Callable[[Runner], None]:
                return lambda r: r.ledger.conn.execute(f"pragma synchronous={level}")

            def off_no_equity(r: Runner) -> None:
                sync("off")(r)
                # Rows still made (the quiet stretches copy the last one), never inserted.
                r.ledger.append_equity = lambda rows: None  # type: ignore[method-assign]

            for label, tweak in (("what-if: synchronous=NORMAL", sync("normal")),
                                 ("what-if: synchronous=OFF", sync("off")),
                                 ("what-if: OFF + equity unwritten", off_no_equity)):
                secs, res = best_of(repeat, lambda t=tweak: run_argus(parsed, keep, t))
                rows.append((label, res, secs, "not a product setting"))
        if profile:
            prof = cProfile.Profile()
            prof.runcall(run_argus, parsed, keep)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
            print(out.getvalue())
    finally:
        for path in keep:
            shutil.rmtree(path, ignore_errors=True)

    raw = read_bars()
    secs, res = best_of(repeat, lambda: run_baseline(raw))
    rows.append(("plain-Python loop (floats)", res, secs, "baseline"))

    frame = bars_frame(raw)
    if skip_bt:
        rows.append(("backtrader", None, 0.0, "skipped (--skip-backtrader)"))
    else:
        try:
            import backtrader as bt

            secs, res = best_of(repeat, run_backtrader(frame))
            rows.append((f"backtrader {bt.__version__}", res, secs, "runonce/preload"))
        except ImportError:
            rows.append(("backtrader", None, 0.0, "not installed: pip install backtrader"))
    if skip_nt:
        rows.append(("NautilusTrader", None, 0.0, "skipped (--skip-nautilus)"))
    else:
        try:
            import nautilus_trader

            best: tuple[float, Any] | None = None
            for _ in range(max(1, repeat)):
                engine, result = nautilus_engine(frame)
                secs, _ = timed(engine.run)
                res = result(None)
                engine.dispose()
                if best is None or secs < best[0]:
                    best = (secs, res)
            assert best is not None
            rows.append((f"NautilusTrader {nautilus_trader.__version__}", best[1], best[0],
                         "engine.run() only"))
        except ImportError:
            rows.append(("NautilusTrader", None, 0.0,
                         "not installed: pip install nautilus_trader"))
    return rows


def main() -> int:
    """Run both parts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deltas", type=int, default=2_000_000)
    parser.add_argument("--event-deltas", type=int, default=500_000,
                        help="deltas for the per-event MarketState.apply path")
    parser.add_argument("--naive-deltas", type=int, default=100_000,
                        help="deltas for the slow re-sorting baseline")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per row")
    parser.add_argument("--skip-deltas", action="store_true")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--symbols", type=int, nargs="*", default=[1, 16],
                        help="symbol counts of the cost-per-event table (none: skip it)")
    parser.add_argument("--symbol-bars", type=int, default=20_000,
                        help="seeded bars per symbol at the most symbols of the "
                             "cost-per-event table (every row replays as many events)")
    parser.add_argument("--skip-backtrader", action="store_true")
    parser.add_argument("--skip-nautilus", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile one Argus run")
    parser.add_argument("--what-if", action="store_true",
                        help="also time Argus with a lighter ledger (synchronous=NORMAL/OFF, "
                             "no per-bar equity rows) to show where its time goes")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        pin_to_one_core()
    print(machine_line(f"pinned to 1 core: {not args.no_pin} | best of {args.repeat} "
                       f"(the symbols table: median)"))
    print(f"under the peers: {versions('numpy', 'pandas')}")

    if not args.skip_deltas:
        rows = bench_deltas(args.deltas, args.event_deltas, args.naive_deltas, args.seed,
                            args.repeat)
        base = next(r for r in rows if r[0].startswith("plain"))
        base_rate = base[1] / base[2]
        print()
        print(f"{'book deltas -> market state':<50} {'deltas':>10} {'seconds':>8} "
              f"{'deltas/s':>12} {'x baseline':>11}")
        for label, n, secs in rows:
            rate = n / secs
            print(f"{label:<50} {n:>10,} {secs:>8.2f} {rate:>12,.0f} "
                  f"{rate / base_rate:>10.1f}x")
        one = next(r for r in rows if "one by one" in r[0])
        print(f"\ntarget >= 2,000,000 events/s through MarketState.apply one at a time: "
              f"{'MET' if one[1] / one[2] >= 2_000_000 else 'NOT MET'} ({one[1] / one[2]:,.0f})")
        top = rows[0][1] / rows[0][2]
        print(f"\ntarget >= 1,000,000 deltas/s into market state (batch path): "
              f"{'MET' if top >= 1_000_000 else 'NOT MET'} ({top:,.0f})")

    if not args.skip_loop:
        rows2 = bench_loop(args.repeat, args.skip_backtrader, args.skip_nautilus, args.profile,
                           args.what_if)
        ref = rows2[0]
        assert ref[1] is not None
        ref_rate = ref[1]["events"] / ref[2]
        print()
        print(f"{'whole loop, SMA(10/40) on 70k bars':<30} {'events':>7} {'seconds':>8} "
              f"{'events/s':>10} {'x Argus':>8} {'orders':>7} {'fills':>6} "
              f"{'final equity':>13}  note")
        for label, res, secs, note in rows2:
            if res is None:
                print(f"{label:<30} {'-':>7} {'-':>8} {'-':>10} {'-':>8} {'-':>7} {'-':>6} "
                      f"{'-':>13}  {note}")
                continue
            rate = res["events"] / secs
            print(f"{label:<30} {res['events']:>7,} {secs:>8.3f} {rate:>10,.0f} "
                  f"{rate / ref_rate:>7.2f}x {res['orders']:>7,} {res['fills']:>6,} "
                  f"{res['final_equity']:>13,.2f}  {note}")
        print(f"\ntarget >= 250,000 events/s through the whole loop (pre-parsed): "
              f"{'MET' if ref_rate >= 250_000 else 'NOT MET'} ({ref_rate:,.0f})")
        csv_rate = rows2[1][1]["events"] / rows2[1][2] if rows2[1][1] else 0.0
        print(f"target >= 150,000 events/s reading the CSV: "
              f"{'MET' if csv_rate >= 150_000 else 'NOT MET'} ({csv_rate:,.0f})")
        by = {r[0].split()[0]: r for r in rows2 if r[1] is not None}
        if "backtrader" in by:
            bt_rate = by["backtrader"][1]["events"] / by["backtrader"][2]
            print(f"target >= 20x backtrader: {'MET' if ref_rate >= 20 * bt_rate else 'NOT MET'}"
                  f" ({ref_rate / bt_rate:.1f}x)")
        if "NautilusTrader" in by:
            nt_rate = by["NautilusTrader"][1]["events"] / by["NautilusTrader"][2]
            print(f"target >= 8x NautilusTrader: "
                  f"{'MET' if ref_rate >= 8 * nt_rate else 'NOT MET'} ({ref_rate / nt_rate:.2f}x)")
    if args.symbols:
        print(f"\nload average now: {load_average()}")
        rows3 = bench_symbols(args.symbol_bars, tuple(args.symbols), args.repeat)
        print()
        print(f"{'symbols (ma_cross each)':<24} {'events':>9} {'us/event':>9} {'events/s':>10} "
              f"{'x 1 symbol':>11} {'cpu us/event':>13} {'x 1 symbol':>11} {'orders':>7}")
        base_us, base_cpu = rows3[0][2], rows3[0][1]["cpu_us_per_event"]
        for (n, books), res, us in rows3:
            cpu = res["cpu_us_per_event"]
            label = f"{n}, " + ("one book" if books == "one" or n == 1 else "a book each")
            print(f"{label:<24} {res['events']:>9,} {us:>9.2f} {1e6 / us:>10,.0f} "
                  f"{us / base_us:>10.2f}x {cpu:>13.2f} {cpu / base_cpu:>10.2f}x "
                  f"{res['orders']:>7,}")
        # The complaint was a cost that rose with the symbols (34% from 1 to 16);
        # a row cheaper than one symbol (several symbols share a timestamp's equity row)
        # does not rise.  Judged on wall and CPU time both: the dearer of the two.
        for books, what in (("one", "one book"), ("slot", "a book per symbol")):
            chosen = [(us, res["cpu_us_per_event"]) for (n, b), res, us in rows3
                      if b == books or n == rows3[0][0][0]]
            if len(chosen) < 2:
                continue
            worst = max(max(us / base_us, cpu / base_cpu) for us, cpu in chosen) - 1
            low = min(min(us / base_us, cpu / base_cpu) for us, cpu in chosen) - 1
            print(f"target cost per event flat (at most 10% dearer) from {rows3[0][0][0]} "
                  f"to {rows3[-1][0][0]} symbols, {what}: "
                  f"{'MET' if worst <= 0.10 else 'NOT MET'} (at most {worst:+.0%}; "
                  f"cheapest {low:+.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
