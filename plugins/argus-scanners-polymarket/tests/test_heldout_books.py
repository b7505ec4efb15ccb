"""Held-out scenarios (issue 15): fair books of shapes the other tests do not build give no
finding from any scanner, markets that cannot trade (closed, not accepting orders) give
none even when mispriced, and malformed books (crossed, NaN / infinite / negative sizes,
NaN prices written past the core's validation) are skipped, never a crash, never a finding.

Every scanner runs in both paths (incremental and the reference loop) over three scans, so
the stateful ones (stale, spike) get their persistence."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest
from argus_scanners_polymarket.config import LatencySettings, PmScannersSettings
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.plugin import SCANNERS
from argus_scanners_polymarket.value import BaselineForecaster

from argus_core import (
    BookDelta,
    DataError,
    Event,
    FeeSchedule,
    MarketState,
    OrderBook,
    Scanner,
    Side,
)

D = Decimal
H = 3600 * 10**9
NOW = 1_000 * H
ONE_PCT = FeeSchedule(taker_bps=D(100))
SETTINGS = PmScannersSettings(latency=LatencySettings(pairs={"BTC": "kraken:BTC/USD"}))


def _every(settings: PmScannersSettings = SETTINGS, skip: tuple[str, ...] = ()
           ) -> list[tuple[str, Scanner]]:
    out = []
    for name, (module, cls) in SCANNERS.items():
        if name in skip:
            continue
        scanner_cls = getattr(importlib.import_module(module), cls)
        out += [(name, scanner_cls(settings)),
                (f"{name}/reference", scanner_cls(settings, incremental=False))]
    return out


def _findings(market: MarketState, *, scans: int = 3, skip: tuple[str, ...] = ()
              ) -> dict[str, list[str]]:
    """Each scanner's findings (kinds) at its last of ``scans`` scans a minute apart."""
    market.forecasters = {"baseline": BaselineForecaster()}
    out = {}
    for name, scanner in _every(skip=skip):
        found: list[Any] = []
        for k in range(scans):
            found = scanner.scan(market, NOW + k * 60 * 10**9)
        if found:
            out[name] = [o.kind for o in found]
    return out


def _fair_binary(b: MarketBuilder, eid: str, bids: list[tuple[float, float]],
                 asks: list[tuple[float, float]], tick: str = "0.01", **kw: Any
                 ) -> tuple[str, str]:
    """A binary market whose NO book mirrors the YES book (NO bid = 1 - YES ask)."""
    ((y, n),) = b.event(eid, [eid], neg_risk=False, end_ts_ns=NOW + 500 * H, tick=tick, **kw)
    b.book(y, bids, asks, ts_ns=NOW)
    b.book(n, [(round(1 - p, 6), q) for p, q in asks], [(round(1 - p, 6), q) for p, q in bids],
           ts_ns=NOW)
    return y, n


@pytest.mark.parametrize("tick", ["0.01", "0.001"])
@pytest.mark.parametrize("fees", [None, ONE_PCT], ids=["no-fees", "1pct-fees"])
def test_fair_books_of_every_shape_give_nothing(tick: str, fees: FeeSchedule | None) -> None:
    t = float(tick)
    lo, hi = t, 1 - t
    b = MarketBuilder(fees)
    _fair_binary(b, "narrow", [(0.50, 100)], [(0.50 + t, 100)], tick)
    _fair_binary(b, "deep", [(0.42, 80), (0.42 - t, 500)], [(0.42 + t, 80), (0.42 + 2 * t, 500)],
                 tick)
    ((y, n),) = b.event("one-sided", ["o"], neg_risk=False, end_ts_ns=NOW + 500 * H, tick=tick)
    b.book(y, [], [(0.60, 100)], ts_ns=NOW)
    b.book(n, [(0.40, 100)], [], ts_ns=NOW)
    ((y, n),) = b.event("empty", ["e"], neg_risk=False, end_ts_ns=NOW + 500 * H, tick=tick)
    b.book(y, [], [], ts_ns=NOW)
    b.book(n, [], [], ts_ns=NOW)
    # zero-size levels in a snapshot are dropped by the core (no level at 0.05 / 0.95)
    b.book(b.event("zero", ["z"], neg_risk=False, tick=tick)[0][0], [(0.30, 100), (0.05, 0)],
           [(0.30 + t, 100), (0.95, 0)], ts_ns=NOW)
    _fair_binary(b, "top", [(hi - t, 100)], [(hi, 100)], tick)         # at the upper bound
    _fair_binary(b, "bottom", [(lo, 100)], [(lo + t, 100)], tick)      # at the lower bound
    # a negRisk event whose YES asks sum to 1.01 (no fees) / just over 1 after 1% fees
    asks = [0.50, 0.30, 0.21] if fees is None else [0.50, 0.30, 0.20]
    ev = b.event("nr", ["x", "y", "z"], end_ts_ns=NOW + 500 * H, tick=tick)
    for (yes, no), ask in zip(ev, asks, strict=True):
        b.book(yes, [(round(ask - t, 6), 100)], [(ask, 100)], ts_ns=NOW)
        b.book(no, [(round(1 - ask, 6), 100)], [(round(1 - ask + t, 6), 100)], ts_ns=NOW)
    assert _findings(b.market) == {}


def test_wide_spreads_are_the_maker_scanners_business_only() -> None:
    """A fair but wide book (0.30/0.70) leaves a spread to quote inside: the maker (and the
    ranking of its quotes) reports it, research lane; no taker scanner does."""
    b = MarketBuilder(ONE_PCT)
    _fair_binary(b, "wide", [(0.30, 100)], [(0.70, 100)])
    found = _findings(b.market)
    assert set(found) == {"maker", "maker/reference", "ranked", "ranked/reference"}
    assert all(k.startswith("maker_") for kinds in found.values() for k in kinds)


def _mispriced(b: MarketBuilder, meta: dict[str, object] | None = None,
               end_ts_ns: int = NOW + 5 * H) -> None:
    """A near-certain binary with a YES + NO arbitrage and a two-outcome negRisk event
    whose YES asks sum to 0.90: every taker scanner has something to find."""
    ((y, n),) = b.event("bin", ["b"], neg_risk=False, end_ts_ns=end_ts_ns, meta=meta)
    b.book(y, [(0.96, 100)], [(0.97, 100)], ts_ns=NOW)
    b.book(n, [(0.01, 100)], [(0.02, 100)], ts_ns=NOW)
    for yes, no in b.event("nr", ["x", "y"], end_ts_ns=end_ts_ns, meta=meta):
        b.book(yes, [(0.40, 100)], [(0.45, 100)], ts_ns=NOW)
        b.book(no, [(0.50, 100)], [(0.52, 100)], ts_ns=NOW)


def test_the_mispriced_control_is_found() -> None:
    b = MarketBuilder(ONE_PCT)
    _mispriced(b)
    found = _findings(b.market)
    assert found["resolution"] == found["resolution/reference"] == ["near_certain"]


def _closed(market: MarketState) -> None:
    for ev in list(market.events.values()):
        market.apply(Event(ev.venue, ev.event_id, ev.title, ev.outcomes, neg_risk=ev.neg_risk,
                           exhaustive=ev.exhaustive, closed=True, end_ts_ns=ev.end_ts_ns))


@pytest.mark.parametrize("how", ["closed", "tradeable", "accepting_orders"])
def test_markets_that_cannot_trade_give_nothing(how: str) -> None:
    b = MarketBuilder(ONE_PCT)
    meta: dict[str, object] | None = None if how == "closed" else {how: False}
    _mispriced(b, meta)
    if how == "closed":
        _closed(b.market)
    assert _findings(b.market) == {}


def _basic(fees: FeeSchedule | None = ONE_PCT) -> tuple[MarketBuilder, str, str]:
    b = MarketBuilder(fees)
    y, n = _fair_binary(b, "m", [(0.50, 100)], [(0.52, 100)])
    ev = b.event("nr", ["x", "y", "z"], end_ts_ns=NOW + 500 * H)
    for (yes, no), (bid, ask) in zip(ev, [(0.40, 0.41), (0.30, 0.31), (0.29, 0.30)],
                                     strict=True):
        b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=NOW)
        b.book(no, [(round(1 - ask, 2), 100)], [(round(1 - bid, 2), 100)], ts_ns=NOW)
    return b, y, n


def test_a_book_crossed_by_deltas_is_skipped() -> None:
    """The core validates snapshots, not the book a stream of deltas leaves: a bid above the
    ask must not read as a mid above the ask (the baseline forecaster found 'value' there)."""
    b, y, _ = _basic()
    assert _findings(b.market) == {}
    b.market.apply(BookDelta(y, NOW, Side.BUY, "0.60", "50"))  # bid 0.60 over ask 0.52
    assert _findings(b.market) == {}


def test_malformed_values_are_refused_by_the_core() -> None:
    for bad in (float("nan"), -5.0, None, float("inf")):
        with pytest.raises(DataError):
            BookDelta("polymarket:t", 1, Side.SELL, "0.5", bad)  # type: ignore[arg-type]
        with pytest.raises(DataError):
            OrderBook("polymarket:t", 1, [[0.4, 1.0]], [[0.5, bad]])
    with pytest.raises(DataError):
        OrderBook("polymarket:t", 1, [[0.6, 1.0]], [[0.5, 1.0]])  # crossed snapshot


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -5.0, 0.0])
@pytest.mark.parametrize("where", ["size", "price"])
def test_malformed_levels_written_past_validation_are_skipped(bad: float, where: str) -> None:
    """A venue adapter writing ``L2Book`` dicts (or ``L2Book.apply`` with a NaN price, which
    the core stores) can leave levels no snapshot would pass: those books are skipped by
    every scanner, and the scan of everything else goes on."""
    if where == "price" and bad == 0.0:
        bad = -0.0
    b, y, _ = _basic()
    ev = list(b.market.events.values())[-1]
    for iid in (y, ev.outcomes[0].yes_instrument_id, ev.outcomes[1].no_instrument_id):
        book = b.market.book(iid)
        # a great-looking level: every taker scanner would buy it
        price, size = (0.05, bad) if where == "size" else (bad, 100.0)
        book.apply(Side.SELL, 0.05, 100.0, NOW)  # stored through the core ...
        book.asks.pop(0.05)
        book.asks[price] = size                  # ... then overwritten as an adapter might
        book.bids[0.01 if where == "size" else bad] = size
    assert _findings(b.market) == {}
