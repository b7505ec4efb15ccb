"""Markets Kalshi adds to a configured event while the venue streams: announced by the
``market_lifecycle_v2`` channel (``created``) or found by the ``discovery_poll_s`` poll,
they join the stream as instruments, then the rebuilt event, then their books."""

from __future__ import annotations

import logging
from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.testing import Fault, LocalKalshi
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Event, Instrument, OrderBook, Settlement

from .test_kalshi_data import Tape, books_of, stale_of

EVENT = "KXHIGHNY-24JAN01"
#: Not the tickers' prefix, so ``fee_schedule`` can only know it from the event.
SERIES = "KXHIGHNYTEMP"
OLD = "KXHIGHNY-24JAN01-T60"
NEW = "KXHIGHNY-24JAN01-T70"
NEW_YES, NEW_NO = f"kalshi:{NEW}/YES", f"kalshi:{NEW}/NO"
OLD_YES = f"kalshi:{OLD}/YES"


def market(ticker: str, sub: str, event: str = EVENT) -> dict[str, Any]:
    return {"ticker": ticker, "event_ticker": event, "title": "NYC high on Jan 1, 2024?",
            "yes_sub_title": sub, "status": "active", "close_time": "2024-01-02T04:59:00Z",
            "tick_size": 1, "result": ""}


@pytest.fixture
def event_exchange(exchange: LocalKalshi) -> LocalKalshi:
    """The fixture's market (T60) and T50 in a mutually exclusive event of ``SERIES``."""
    exchange.engine.events[EVENT] = {"event_ticker": EVENT, "series_ticker": SERIES,
                                     "title": "Highest temperature in NYC on Jan 1, 2024?",
                                     "mutually_exclusive": True}
    exchange.add_market(market("KXHIGHNY-24JAN01-T50", "51° to 60°"),
                        yes_bids={30: 5}, no_bids={60: 5})
    return exchange


def venue_for(local_settings: Any, **overrides: Any) -> KalshiVenue:
    base: dict[str, Any] = {"markets": [], "event_tickers": [EVENT],
                            "maker_fee_series": [SERIES], "settlement_poll_s": 0,
                            "discovery_poll_s": 0}
    base.update(overrides)
    return KalshiVenue(local_settings(**base))


def lookups(exchange: LocalKalshi, ticker: str) -> int:
    return sum(1 for r in exchange.rest.requests
               if r.method == "GET" and r.path.endswith(f"/markets/{ticker}"))


def book_subscribes(exchange: LocalKalshi) -> list[list[str]]:
    return [c["params"]["market_tickers"] for c in exchange.ws.commands
            if c.get("cmd") == "subscribe"
            and "orderbook_delta" in (c.get("params") or {}).get("channels", [])]


async def started(tape: Tape, exchange: LocalKalshi) -> None:
    """The first books came and the lifecycle channel is subscribed."""
    await tape.wait(lambda items: books_of(items, OLD_YES), "the first snapshot")
    await tape.wait(lambda items: any(c.lifecycle_sids for c in exchange.ws.connections),
                    "the lifecycle subscription")


def first(items: list[object], predicate: Any) -> int:
    return next(i for i, item in enumerate(items) if predicate(item))


def assert_followed_in_order(items: list[object]) -> None:
    """Instruments, then the rebuilt event (three outcomes), then the books."""
    new_inst = [i for i, item in enumerate(items)
                if isinstance(item, Instrument) and item.id in (NEW_YES, NEW_NO)]
    group = first(items, lambda e: isinstance(e, Event) and e.event_id == EVENT
                  and len(e.outcomes) == 3)
    binary = first(items, lambda e: isinstance(e, Event) and e.event_id == NEW)
    book = first(items, lambda b: isinstance(b, OrderBook) and b.instrument_id == NEW_YES)
    assert len(new_inst) == 2
    assert max(new_inst) < binary < book and max(new_inst) < group < book
    event = items[group]
    assert isinstance(event, Event)
    assert [o.yes_instrument_id for o in event.outcomes][-1] == NEW_YES
    inst = items[new_inst[0]]
    assert isinstance(inst, Instrument) and inst.meta["series_ticker"] == SERIES


async def test_a_created_market_is_followed_on_the_open_connection(event_exchange,
                                                                   local_settings) -> None:
    venue = venue_for(local_settings)
    tape = Tape(venue.stream())
    try:
        await started(tape, event_exchange)
        event_exchange.list_market(market(NEW, "71° or above"), yes_bids={20: 4},
                                   no_bids={75: 6})
        await tape.wait(lambda items: books_of(items, NEW_YES) and books_of(items, NEW_NO),
                        "the new market's books")
        assert_followed_in_order(tape.items)
        yes = books_of(tape.items, NEW_YES)[0]
        assert (yes.best_bid, yes.best_ask) == (0.20, pytest.approx(0.25))
        assert lookups(event_exchange, NEW) == 1
        assert book_subscribes(event_exchange)[-1] == [NEW]  # a subscribe of its own
        assert venue.book_stream is not None and venue.book_stream.reconnects == 0
        assert len(event_exchange.ws.connections) == 1
        assert not stale_of(tape.items, OLD_YES)
        # the fees are the series' (maker fees), as for a market loaded at the start
        assert venue.fee_schedule(NEW_YES) == venue.fee_schedule(OLD_YES)
        assert venue.fee_schedule(NEW_YES).maker_rate == D("0.0175")
        assert NEW in venue.tickers() and NEW in venue.execution.grids
    finally:
        await tape.stop()
        await venue.close()


async def test_a_market_added_silently_is_found_by_the_poll(event_exchange,
                                                            local_settings) -> None:
    venue = venue_for(local_settings, discovery_poll_s=0.1)
    tape = Tape(venue.stream())
    try:
        await started(tape, event_exchange)
        event_exchange.list_market(market(NEW, "71° or above"), yes_bids={20: 4},
                                   no_bids={75: 6}, announce=None)
        await tape.wait(lambda items: books_of(items, NEW_YES), "the new market's books")
        assert_followed_in_order(tape.items)
        assert lookups(event_exchange, NEW) == 0  # listed by GET /markets?event_ticker=
        assert any(r.query.get("event_ticker") == EVENT for r in event_exchange.rest.requests
                   if r.path.endswith("/markets"))
        assert book_subscribes(event_exchange)[-1] == [NEW]
        assert venue.book_stream is not None and venue.book_stream.reconnects == 0
        assert venue.fee_schedule(NEW_YES).maker_rate == D("0.0175")
        # found once: the next polls take nothing more
        n = len(tape.items)
        polls = sum(1 for r in event_exchange.rest.requests
                    if r.query.get("event_ticker") == EVENT)
        await tape.wait(lambda items: sum(1 for r in event_exchange.rest.requests
                                          if r.query.get("event_ticker") == EVENT)
                        >= polls + 2, "two more polls")
        assert not [i for i in tape.items[n:] if isinstance(i, Instrument | Event)]
    finally:
        await tape.stop()
        await venue.close()


async def test_a_created_market_of_another_event_is_not_looked_up(event_exchange,
                                                                  local_settings) -> None:
    venue = venue_for(local_settings)
    tape = Tape(venue.stream())
    try:
        await started(tape, event_exchange)
        other = "KXHIGHCHI-24JAN01-T40"
        event_exchange.list_market(market(other, "41° or above", "KXHIGHCHI-24JAN01"),
                                   yes_bids={20: 4})
        # a market of the configured event announced after it: once it is followed, the
        # other one's frame (sent before on the same socket) has been handled
        event_exchange.list_market(market(NEW, "71° or above"), yes_bids={20: 4})
        await tape.wait(lambda items: books_of(items, NEW_YES), "the new market's books")
        assert lookups(event_exchange, other) == 0
        assert not any(other in tickers for tickers in book_subscribes(event_exchange))
        assert not [i for i in tape.items if isinstance(i, Instrument) and other in i.id]
    finally:
        await tape.stop()
        await venue.close()


async def test_a_reconnect_after_the_addition_subscribes_the_new_market(
        event_exchange, local_settings) -> None:
    venue = venue_for(local_settings)
    tape = Tape(venue.stream())
    try:
        await started(tape, event_exchange)
        event_exchange.list_market(market(NEW, "71° or above"), yes_bids={20: 4})
        await tape.wait(lambda items: books_of(items, NEW_YES), "the new market's books")
        event_exchange.ws.drop()
        await tape.wait(lambda items: len(books_of(items, NEW_YES)) == 2,
                        "its snapshot after reconnecting")
        assert stale_of(tape.items, NEW_YES)[0].reason == "websocket disconnected"
        assert sorted(book_subscribes(event_exchange)[-1]) == sorted(
            [OLD, "KXHIGHNY-24JAN01-T50", NEW])
        assert venue.book_stream is not None and venue.book_stream.reconnects == 1
    finally:
        await tape.stop()
        await venue.close()


async def test_a_failed_look_up_is_logged_and_the_next_poll_takes_the_market(
        event_exchange, local_settings, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="argus_venue_kalshi")
    venue = venue_for(local_settings, discovery_poll_s=0.5)
    tape = Tape(venue.stream())
    try:
        await started(tape, event_exchange)
        for _ in range(3):  # the first try and max_retries (2) retries
            event_exchange.rest.inject(f"GET /markets/{NEW}", Fault("refuse", 500))
        event_exchange.list_market(market(NEW, "71° or above"), yes_bids={20: 4})
        await tape.wait(lambda items: lookups(event_exchange, NEW) == 3, "the look-ups")
        await tape.wait(lambda items: books_of(items, NEW_YES), "the new market's books")
        assert any(f"cannot look up new market {NEW}" in r.getMessage()
                   for r in caplog.records)
        assert lookups(event_exchange, NEW) == 3  # the poll listed it: not asked again
        assert_followed_in_order(tape.items)
        assert book_subscribes(event_exchange)[-1] == [NEW]
    finally:
        await tape.stop()
        await venue.close()


async def test_the_settlement_poll_and_the_end_rule_follow_the_new_market(
        event_exchange, local_settings) -> None:
    venue = venue_for(local_settings, settlement_poll_s=0.05, end_when_resolved=True)
    tape = Tape(venue.stream())
    try:
        await started(tape, event_exchange)
        event_exchange.list_market(market(NEW, "71° or above"), yes_bids={20: 4})
        await tape.wait(lambda items: books_of(items, NEW_YES), "the new market's books")
        for ticker in (OLD, "KXHIGHNY-24JAN01-T50"):
            event_exchange.engine.settle(ticker, "no", publish=False)
        await tape.wait(lambda items: sum(isinstance(i, Settlement) for i in items) == 4,
                        "the old markets' settlements")
        assert not tape._task.done()  # the new market is still open
        event_exchange.engine.settle(NEW, "yes", publish=False)
        await tape.wait(lambda items: tape._task.done(), "the end of the stream")
        assert [s.price for s in tape.items if isinstance(s, Settlement)
                and s.instrument_id == NEW_YES] == [D(1)]
    finally:
        await tape.stop()
        await venue.close()


def test_discovery_poll_s_is_range_checked() -> None:
    assert KalshiSettings().discovery_poll_s == 60
    assert KalshiSettings(discovery_poll_s=0).discovery_poll_s == 0
    for bad in (-1, float("nan"), 86_401):
        with pytest.raises(ValueError, match="discovery_poll_s: must be >= 0 and <= 86400"):
            KalshiSettings(discovery_poll_s=bad)
