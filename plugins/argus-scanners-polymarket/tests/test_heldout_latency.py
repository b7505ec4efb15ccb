"""Held-out scenarios for the latency scanner (issue 15): the spot moved but the market
already repriced, the window expired, the spot missing, stale (an old bar or trade, a spot
book gone dead or past the stale guard) and an opening price the scanner could only have
guessed (first sample long after the window opened).  Both paths, every case."""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_scanners_polymarket.config import LatencySettings
from argus_scanners_polymarket.fixtures import MarketBuilder, updown_pair
from argus_scanners_polymarket.latency import LatencyScanner

from argus_core import Bar, BookStatus, Opportunity, OrderBook

D = Decimal
S = 10**9
T0 = 1_700_000_000 * S
PAIR = "kraken:BTC/USD"
BTC = LatencySettings(pairs={"BTC": PAIR})


def _bar(ts: int, close: float) -> Bar:
    return Bar(PAIR, ts, close, close, close, close, 1.0)


def _scan(b: MarketBuilder, *times: int, settings: LatencySettings = BTC
          ) -> tuple[list[Opportunity], list[Opportunity]]:
    """Both paths, scanned at each of ``times``; the last scan's findings."""
    inc, ref = LatencyScanner(settings), LatencyScanner(settings, incremental=False)
    for ts in times:
        got = inc.scan(b.market, ts), ref.scan(b.market, ts)
    return got


def _market(up_ask: float, down_ask: float, *, open_price: float | None = 100.0,
            book_ts: int = T0 + 300 * S) -> tuple[MarketBuilder, str, str]:
    b = MarketBuilder()
    up, down = updown_pair(b, "w", "BTC", T0, T0 + 900 * S, open_price=open_price)
    b.book(up, [(round(up_ask - 0.02, 2), 100)], [(up_ask, 100)], ts_ns=book_ts)
    b.book(down, [(round(down_ask - 0.02, 2), 100)], [(down_ask, 100)], ts_ns=book_ts)
    return b, up, down


def test_the_lagging_control_is_found() -> None:
    b, up, _ = _market(0.50, 0.52)
    b.market.apply(_bar(T0 + 290 * S, 101.0))
    inc, ref = _scan(b, T0 + 300 * S)
    assert [o.legs[0].instrument_id for o in inc] == [o.legs[0].instrument_id for o in ref] \
        == [up]


def test_spot_moved_and_market_already_repriced() -> None:
    b, _, _ = _market(0.99, 0.03)  # fair 0.99993 / 0.00007: no ask 0.03 below either
    b.market.apply(_bar(T0 + 290 * S, 101.0))
    assert _scan(b, T0 + 300 * S) == ([], [])


@pytest.mark.parametrize("at", [T0 + 900 * S, T0 + 901 * S, T0 + 3600 * S])
def test_an_expired_window_gives_nothing(at: int) -> None:
    b, _, _ = _market(0.50, 0.52, book_ts=at)
    b.market.apply(_bar(at, 101.0))
    assert _scan(b, at) == ([], [])


def test_no_spot_at_all_gives_nothing() -> None:
    b, _, _ = _market(0.50, 0.52)
    assert _scan(b, T0 + 300 * S) == ([], [])


def test_a_stale_spot_gives_nothing() -> None:
    """The only spot is a bar of 590 s ago (the default ``max_spot_age_s`` is 120): its move
    says nothing about now.  With the limit raised to 600 s it counts again."""
    b, up, _ = _market(0.50, 0.52, book_ts=T0 + 600 * S)
    b.market.apply(_bar(T0 + 10 * S, 101.0))
    assert _scan(b, T0 + 600 * S) == ([], [])
    loose = LatencySettings(pairs={"BTC": PAIR}, max_spot_age_s=600)
    inc, ref = _scan(b, T0 + 600 * S, settings=loose)
    assert [o.legs[0].instrument_id for o in inc] == [o.legs[0].instrument_id for o in ref] \
        == [up]


@pytest.mark.parametrize("how", ["dead", "stale_guard"])
def test_a_spot_book_that_is_not_tradeable_is_not_a_spot(how: str) -> None:
    b, _, _ = _market(0.50, 0.52)
    b.market.apply(OrderBook(PAIR, T0 + 200 * S, [[100.9, 1.0]], [[101.1, 1.0]]))
    if how == "dead":
        b.market.apply(BookStatus(PAIR, T0 + 250 * S, False, "websocket disconnected"))
    else:
        b.market.stale_after_ns = 60 * S  # the spot book is 100 s old at the scan
    assert b.market.now_ns == T0 + 300 * S  # the tokens' books are fresh
    assert _scan(b, T0 + 300 * S) == ([], [])


def test_an_opening_price_guessed_long_after_the_window_opened_gives_nothing() -> None:
    """No ``open_price`` and no spot sample near the window's start: the first sample the
    scanner sees, 10 minutes in, is not the price to beat (BTC had already risen from
    100 to 101, and the market, down at 0.05, knew it).  Taking 101 as the open made the
    down token look like a 0.5 asked at 0.05."""
    b, _, _ = _market(0.98, 0.05, open_price=None, book_ts=T0 + 600 * S)
    b.market.apply(_bar(T0 + 600 * S, 101.0))
    assert _scan(b, T0 + 600 * S) == ([], [])
    # a sample at the start (the bar closing at T0) fixes the open at 100: nothing lags
    b = MarketBuilder()
    up, down = updown_pair(b, "w", "BTC", T0, T0 + 900 * S)
    b.market.apply(_bar(T0, 100.0))
    inc, ref = LatencyScanner(BTC), LatencyScanner(BTC, incremental=False)
    assert inc.scan(b.market, T0) == ref.scan(b.market, T0) == []  # no books yet: sampled
    b.book(up, [(0.96, 100)], [(0.98, 100)], ts_ns=T0 + 600 * S)
    b.book(down, [(0.03, 100)], [(0.05, 100)], ts_ns=T0 + 600 * S)
    b.market.apply(_bar(T0 + 600 * S, 101.0))
    assert inc.scan(b.market, T0 + 600 * S) == ref.scan(b.market, T0 + 600 * S) == []
    assert inc.get_state()["open"][down] == 100.0
