"""Fills over the websocket's private ``fill`` channel, beside the REST poll: a fill
arrives over the socket before the next poll, a fill seen on both paths is reported
once, and fills made while the socket is down are recovered by the poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
from argus_testkit import eventually
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Fill, Order, OrderType, Side, TimeInForce

YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"


def take(coid: str, qty: int = 2) -> Order:
    # YES asks 42 (20 contracts), 43, 45: an IOC buy at 45 fills at once
    return Order(coid, "kalshi", YES, Side.BUY, D(qty), D("0.45"), OrderType.LIMIT,
                 TimeInForce.IOC, "t")


class Feed:
    """``venue.executions()`` consumed into ``items`` by a task."""

    def __init__(self, venue: KalshiVenue) -> None:
        self.venue, self.items = venue, []
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        async for item in self.venue.executions():
            self.items.append(item)

    def fills(self, coid: str | None = None) -> list[Fill]:
        return [i for i in self.items if isinstance(i, Fill)
                and (coid is None or i.client_order_id == coid)]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=5)
        assert self.task.done(), "executions() kept running after its consumer was cancelled"


@pytest.fixture
async def slow_poll(exchange, local_settings) -> AsyncIterator[tuple[KalshiVenue, Feed]]:
    """A venue whose REST poll runs once at start and then every 60 s: within a test,
    only the websocket can deliver a new fill."""
    venue = KalshiVenue(local_settings(poll_interval_s=60.0))
    feed = Feed(venue)
    try:
        await eventually(lambda: exchange.ws.fill_subscriptions() == 1, 5,
                         "the fill subscription")
        await eventually(lambda: any(r.path.endswith("/portfolio/fills")
                                     for r in exchange.rest.requests), 5, "the first poll")
        yield venue, feed
    finally:
        await feed.stop()
        await venue.close()


async def test_a_fill_arrives_over_the_websocket_before_any_poll(exchange, slow_poll) -> None:
    venue, feed = slow_poll
    polls = sum(1 for r in exchange.rest.requests if r.path.endswith("/portfolio/fills"))
    await venue.submit(take("ws-1"))
    await eventually(lambda: len(feed.fills("ws-1")) == 1, 5, "the fill over the websocket")
    fill = feed.fills("ws-1")[0]
    assert fill.fill_id in venue.execution.ws_fill_ids
    assert (fill.price, fill.quantity, fill.fee) == (D("0.42"), D(2), D("0.04"))
    assert sum(1 for r in exchange.rest.requests
               if r.path.endswith("/portfolio/fills")) == polls  # no poll delivered it


async def test_a_fill_seen_on_both_paths_is_reported_once(exchange, slow_poll) -> None:
    venue, feed = slow_poll
    await venue.submit(take("both-1"))
    await eventually(lambda: len(feed.fills("both-1")) == 1, 5, "the websocket fill")
    # the poll now sees the same trade: it must not be reported again
    polled = await venue.execution._poll()
    assert not [i for i in polled if isinstance(i, Fill)]
    # and the other way round: a fill the poll reported first is not repeated by the socket
    raw = exchange.engine.fills[-1]
    venue.execution._on_ws_fill(dict(raw))
    await asyncio.sleep(0.05)
    assert len(feed.fills("both-1")) == 1
    assert len({f.fill_id for f in feed.fills()}) == len(feed.fills())


async def test_fills_during_a_disconnect_are_recovered_by_the_poll(exchange, local_settings
                                                                   ) -> None:
    venue = KalshiVenue(local_settings(poll_interval_s=0.05))
    feed = Feed(venue)
    try:
        await eventually(lambda: exchange.ws.fill_subscriptions() == 1, 5, "subscription")
        exchange.ws.accepting = False
        exchange.ws.drop()
        await eventually(lambda: exchange.ws.fill_subscriptions() == 0, 5, "the drop")
        await venue.submit(take("gap-1"))
        await eventually(lambda: len(feed.fills("gap-1")) == 1, 5, "the fill by the poll")
        assert not venue.execution.ws_fill_ids  # the socket was down: the poll found it
        exchange.ws.accepting = True
        await eventually(lambda: exchange.ws.fill_subscriptions() == 1, 5, "the reconnect")
        assert exchange.ws.refused_handshakes >= 1
        await venue.submit(take("after-1"))
        await eventually(lambda: len(feed.fills("after-1")) == 1, 5, "the next fill")
        await asyncio.sleep(0.2)  # a few more polls: nothing is reported twice
        assert [len(feed.fills(c)) for c in ("gap-1", "after-1")] == [1, 1]
    finally:
        await feed.stop()
        await venue.close()


async def test_ws_fills_can_be_turned_off(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings(ws_fills=False))
    feed = Feed(venue)
    try:
        await venue.submit(take("off-1"))
        await eventually(lambda: len(feed.fills("off-1")) == 1, 5, "the polled fill")
        assert exchange.ws.fill_subscriptions() == 0 and venue.execution.fill_stream is None
    finally:
        await feed.stop()
        await venue.close()
