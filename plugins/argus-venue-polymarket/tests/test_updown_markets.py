"""Polymarket's recurring crypto up/down markets carry what the ``latency`` scanner reads:
the venue reads the coin, the window's length and its start from the slug
(``btc-updown-15m-1777467600``), checks them against the market's ``endDate``, and puts
``underlying``, ``window_start_s`` and ``window_end_ns`` in both tokens' ``meta``.

Before, no Polymarket instrument had them, so the scanner could only trade markets a test
had constructed: on the venue's real listings it found nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.instruments import build
from argus_venue_polymarket.schemas import GammaEvent

from argus_core import Bar, MarketState, OrderBook

START = 1_777_467_600  # 2026-04-29 13:00 UTC: "9:00AM-9:15AM ET"
S = 10**9
UP, DOWN = "1" * 20, "2" * 20


def _event(**changes: Any) -> dict[str, Any]:
    """The shape Gamma serves for one of these events (fields as documented; tokens ours)."""
    slug = f"btc-updown-15m-{START}"
    market = {"id": "1700000", "question": "Bitcoin Up or Down - April 29, 9:00AM-9:15AM ET",
              "conditionId": "0x" + "ab" * 32, "slug": slug, "endDate": "2026-04-29T13:15:00Z",
              "outcomes": json.dumps(["Up", "Down"]), "clobTokenIds": json.dumps([UP, DOWN]),
              "active": True, "closed": False, "acceptingOrders": True,
              "enableOrderBook": True, "orderPriceMinTickSize": 0.01, "orderMinSize": 5,
              "negRisk": False}
    event = {"id": "427531", "ticker": slug, "slug": slug,
             "title": "Bitcoin Up or Down - April 29, 9:00AM-9:15AM ET",
             "resolutionSource": "https://data.chain.link/streams/btc-usd",
             "startDate": "2026-04-28T13:12:15.455202Z", "endDate": "2026-04-29T13:15:00Z",
             "active": True, "closed": False, "negRisk": False, "markets": [market]}
    for key, value in changes.items():
        (market if key.startswith("m_") else event)[key.removeprefix("m_")] = value
    return event


def _instruments(raw: dict[str, Any]) -> dict[str, Any]:
    _events, instruments = build([GammaEvent.parse(copy.deepcopy(raw), where="t")],
                                 PolymarketSettings())
    return {i.symbol: i for i in instruments}


def test_the_window_and_coin_come_from_the_slug_checked_against_the_end() -> None:
    insts = _instruments(_event())
    for token, outcome in ((UP, "Up"), (DOWN, "Down")):
        meta = insts[token].meta
        assert (meta["underlying"], meta["window_start_s"], meta["window_end_ns"]) == (
            "BTC", START, (START + 900) * S)
        assert meta["token_outcome"] == outcome  # the direction the scanner reads
    # the event's slug when the market's has none; an hourly window; other coins
    assert _instruments(_event(m_slug=""))[UP].meta["underlying"] == "BTC"
    hourly = _instruments(_event(slug=f"eth-updown-1h-{START}", m_slug="",
                                 m_endDate="2026-04-29T14:00:00Z", endDate=None))
    assert (hourly[UP].meta["underlying"], hourly[UP].meta["window_end_ns"]) == (
        "ETH", (START + 3600) * S)


@pytest.mark.parametrize("changes", [
    {"m_endDate": "2026-04-29T14:15:00Z"},  # an hour off its slug: the window is not sure
    {"m_slug": f"btc-updown-15m-{START}x", "slug": "x"},  # not the pattern
    {"m_slug": "bitcoin-up-or-down-april-29-9am-et", "slug": "bitcoin-up-or-down"},
    {"m_slug": f"btc-updown-0m-{START}", "slug": ""},  # a zero-length window
    {"m_endDate": None, "endDate": None},  # no end to check against
])
def test_nothing_is_guessed(changes: dict[str, Any]) -> None:
    meta = _instruments(_event(**changes))[UP].meta
    assert not {"underlying", "window_start_s", "window_end_ns"} & meta.keys()


def test_the_latency_scanner_flags_a_lagging_listed_market() -> None:
    """The venue's own instruments, a Kraken spot that rose 1% since the window opened,
    the Up token still asked at 0.60: flagged (default volatility, as documented)."""
    latency = pytest.importorskip("argus_scanners_polymarket.latency")
    config = pytest.importorskip("argus_scanners_polymarket.config")
    events, instruments = build([GammaEvent.parse(_event(), where="t")], PolymarketSettings())
    market = MarketState()
    market.add_instruments(instruments)
    for ev in events:
        market.apply(ev)
    spot = "kraken:BTC/USD"
    scanner = latency.LatencyScanner(config.LatencySettings(pairs={"BTC": spot}))
    t0 = START * S
    market.apply(Bar(spot, t0, 100.0, 100.0, 100.0, 100.0, 1.0))
    assert scanner.scan(market, t0) == []  # the opening price is sampled; no books yet
    now = t0 + 300 * S
    market.apply(Bar(spot, now, 101.0, 101.0, 101.0, 101.0, 1.0))
    market.apply(OrderBook(f"polymarket:{UP}", now, ((0.30, 100.0),), ((0.60, 50.0),)))
    market.apply(OrderBook(f"polymarket:{DOWN}", now, ((0.30, 100.0),), ((0.40, 100.0),)))
    (found,) = scanner.scan(market, now)
    assert found.legs[0].instrument_id == f"polymarket:{UP}"
    assert str(found.legs[0].limit_price) == "0.6" and "BTC" in found.reason
