"""Held-out fault audit of the fill side, through the core's ExecutionEngine in live mode
over a real ledger, against the local Kraken exchange (REST matching engine + WS v2
``executions``).

Each scenario ends with every fill booked exactly once (by ``exec_id``, which is also
TradesHistory's trade id), the account's position and cash equal to what the exchange's
trades say, and a clear record of anything odd (a risk event, a warning).  Scenarios: fills
before the AddOrder answer; a socket gap during which the order filled (reconnect snapshot
+ TradesHistory backfill + the same trade sent again); a fill of another client's order;
a partial fill whose rest fills while the cancel's answer is lost; a fill after the order
was marked cancelled; fees in another asset and a maker rebate; the process killed after
a fill arrived and before it was committed; an overfill (booked as the venue reports it, and
said: an `overfill` risk event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import CASH, EngineHarness, Harnesses, Killed, expect
from argus_venue_kraken.execution import cl_ord_id_for
from argus_venue_kraken.schemas import parse_execution
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    Disconnect,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
    Send,
    Until,
)
from argus_venue_kraken.venue import KrakenVenue

from argus_core.models import (
    Instrument,
    OrderStatus,
    Side,
    TimeInForce,
)

IID = "kraken:BTC/USD"


def venue_truth(exchange: LocalKrakenRest) -> tuple[D, D]:
    """(BTC position, cash) from the exchange's own trades (TradesHistory)."""
    pos, cash = D(0), CASH
    for t in exchange.trades_history.values():
        sign = 1 if t["type"] == "buy" else -1
        pos += sign * D(t["vol"])
        cash -= sign * D(t["price"]) * D(t["vol"]) + D(t["fee"])
    return pos, cash


def assert_matches_venue(h: EngineHarness, exchange: LocalKrakenRest) -> None:
    ids = [f["fill_id"] for f in h.fills()]
    assert sorted(ids) == sorted(exchange.trades_history), "each trade booked exactly once"
    pos, cash = venue_truth(exchange)
    assert h.account.positions[IID].quantity == pos
    assert h.account.cash == cash


@pytest.fixture
async def harness(exchange: LocalKrakenRest, make_settings: Callable[..., Any],
                  tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await harness(ws)``: an engine on a venue whose private socket is ``ws``."""
    pool = Harnesses(tmp_path / "run")
    instrument: list[Instrument] = []

    async def make(ws: LocalKrakenWs, **overrides: Any) -> EngineHarness:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True, **overrides))
        if not instrument:
            instrument.extend(await venue.instruments())
        return await pool.start(venue, instrument[0], D("37500.0"))

    yield make
    await pool.close()



def session(exchange: LocalKrakenRest) -> list[Any]:
    return [AwaitSubscribe("executions"), ForwardExecutions(exchange)]


def trades_frame(exchange: LocalKrakenRest) -> dict[str, Any]:
    """The exchange's trades so far, sent again as one ``update`` frame."""
    return {"channel": "executions", "type": "update", "sequence": 99,
            "data": [i for i in exchange.executions if i["exec_type"] == "trade"]}


async def test_fills_before_the_add_order_answer_are_booked_once(exchange, harness):
    exchange.inject("AddOrder", ("late", 1.0))  # Kraken acts; the answer comes a second late
    async with LocalKrakenWs([session(exchange)], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.75")
        await expect(lambda: len(h.fills()) == 2)
        assert h.status(coid) == (OrderStatus.FILLED, D("0.75"))  # before the answer
        await h.settle()  # the late answer moves nothing back
        assert h.status(coid) == (OrderStatus.FILLED, D("0.75"))
        assert_matches_venue(h, exchange)


async def test_a_socket_gap_with_fills_is_reconciled_once(exchange, harness):
    """The order fills while the socket is down; the reconnect brings the trades back by
    TradesHistory, the snapshot and a repeated update frame: each booked once."""
    exchange.hold_executions = True  # the socket that is about to die hears nothing
    gap = [AwaitSubscribe("executions"), Until(lambda: bool(exchange.closed)),
           Disconnect(abort=True)]
    again = [AwaitSubscribe("executions"), Send(lambda: trades_frame(exchange)),
             ForwardExecutions(exchange)]
    async with LocalKrakenWs([gap, again], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.75")
        await expect(lambda: len(h.fills()) == 2)
        await h.settle()
        await asyncio.sleep(0.3)  # the snapshot and the repeated frame are in by now
        assert ws.connections == 2
        assert h.venue.executions_feed is not None and h.venue.executions_feed.backfilled == 2
        assert h.status(coid) == (OrderStatus.FILLED, D("0.75"))
        assert_matches_venue(h, exchange)


async def test_a_fill_of_another_clients_order_is_recorded_not_booked(exchange, harness,
                                                                      caplog):
    foreign = {"channel": "executions", "type": "update", "sequence": 5, "data": [
        {"exec_type": "trade", "order_id": "OMANUAL-00001", "cl_ord_id": "by-hand-1",
         "exec_id": "TMANUAL-00001", "trade_id": 901, "symbol": "BTC/USD", "side": "buy",
         "last_qty": 0.2, "last_price": 37000.0, "liquidity_ind": "m",
         "fees": [{"asset": "USD", "qty": 1.2}], "order_status": "filled",
         "timestamp": "2024-01-02T03:04:05.123000Z"}]}
    caplog.set_level(logging.WARNING)
    async with LocalKrakenWs([[AwaitSubscribe("executions"), Send(foreign),
                               ForwardExecutions(exchange)]], token="local-ws-token") as ws:
        h = await harness(ws)
        await expect(lambda: bool(h.events("unknown_fill")))
        (event,) = h.events("unknown_fill")
        assert "TMANUAL-00001" in event["reason"] and "unknown order" in event["reason"]
        assert h.fills() == [] and IID not in h.account.positions
        assert h.venue.foreign_fills == 1
        assert "belongs to an order this run did not place" in caplog.text


async def test_rest_fills_while_the_cancel_answer_is_lost(exchange, harness):
    """A GTC order fills 0.4 at once and rests 0.2; the rest fills (maker) just before our
    cancel, whose answer is lost: the cancel fails with what Kraken shows (closed), the
    order ends FILLED, every fill once."""
    async with LocalKrakenWs([session(exchange)], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.6", "37500.0", TimeInForce.GTC)
        await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D("0.4")))
        await h.settle()
        (txid,) = exchange.orders
        exchange.fill_resting(txid, D("0.2"))
        exchange.inject("CancelOrder", ("lost", None))
        await h.cancel(coid)
        await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D("0.6")))
        (failed,) = h.events("cancel_failed")
        assert coid in failed["reason"] and "closed" in failed["reason"]
        assert_matches_venue(h, exchange)


async def test_a_cancel_kraken_answers_already_closed_says_so(exchange, harness):
    """The order filled at Kraken before our cancel arrived, and the fill has not reached
    us yet (the socket is dying): the cancel fails naming what Kraken shows (closed), the
    order stays working until the fill arrives on reconnect, then FILLED, booked once."""
    cancelled = asyncio.Event()
    dies = [AwaitSubscribe("executions"), Until(cancelled.is_set), Disconnect(abort=True)]
    async with LocalKrakenWs([dies, session(exchange)], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.5", "37000.0", TimeInForce.GTC)
        await h.settle()
        (txid,) = exchange.orders
        exchange.fill_resting(txid, D("0.5"))
        await h.cancel(coid)  # the strategy's cancel crossed the fill
        (failed,) = h.events("cancel_failed")
        assert "Kraken shows the order closed" in failed["reason"]
        assert h.status(coid) == (OrderStatus.OPEN, D(0))  # never marked on a guess
        cancelled.set()
        await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D("0.5")))
        await asyncio.sleep(0.3)  # the snapshot's repeat is in by now
        assert_matches_venue(h, exchange)


async def test_a_fill_after_the_order_was_marked_cancelled_is_booked(exchange, harness):
    """Kraken reports a trade of an order our ledger already calls CANCELLED (its cancel
    was confirmed first, the trade was in flight and the socket died): the money moved,
    so it is booked on reconnect (backfill, snapshot, the frame again: once); the order
    stays CANCELLED with its filled quantity."""
    late: dict[str, Any] = {}
    dies = [AwaitSubscribe("executions"), Until(lambda: bool(late)), Disconnect(abort=True)]
    again = [AwaitSubscribe("executions"), Send(lambda: late), ForwardExecutions(exchange)]
    async with LocalKrakenWs([dies, again], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.5", "37000.0", TimeInForce.GTC)
        await h.settle()
        assert h.status(coid)[0] is OrderStatus.OPEN  # acknowledged by the answer
        (txid,) = exchange.orders
        item = exchange.fill_resting(txid, D("0.2"))
        with h.between_events():
            h.ledger.set_order_status(coid, OrderStatus.CANCELLED, reason="cancel confirmed")
        late.update({"channel": "executions", "type": "update", "sequence": 7,
                     "data": [item]})
        await expect(lambda: len(h.fills()) == 1)
        await asyncio.sleep(0.3)  # the repeated frame is in by now
        assert h.status(coid) == (OrderStatus.CANCELLED, D("0.2"))
        assert_matches_venue(h, exchange)


async def test_fee_in_another_asset_and_a_maker_rebate_keep_the_fill(exchange, harness,
                                                                     caplog):
    """A maker rebate (negative fee) is a credit; a fee charged in KFEE credits is valued
    by ``fee_usd_equiv`` (it dropped the whole fill before: the position was wrong); one
    with no USD value is booked without the fee, with a warning."""
    caplog.set_level(logging.WARNING)
    async with LocalKrakenWs([session(exchange)], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.5", "37000.0", TimeInForce.GTC)
        await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
        (txid,) = exchange.orders
        rebate = exchange.fill_resting(txid, D("0.2"), maker_bps=D(-2))
        kfee = exchange.fill_resting(txid, D("0.3"), fee_asset="KFEE")
        await expect(lambda: len(h.fills()) == 2)
        booked = {f["fill_id"]: D(f["fee"]) for f in h.fills()}
        assert booked == {rebate["exec_id"]: D("-1.48"), kfee["exec_id"]: D("27.75")}
        assert h.status(coid) == (OrderStatus.FILLED, D("0.5"))
        assert_matches_venue(h, exchange)
    odd = {k: v for k, v in kfee.items() if k != "fee_usd_equiv"}
    fill = parse_execution(odd, IID, "executions[0]")
    assert fill is not None and (fill.quantity, fill.fee) == (D("0.3"), D(0))
    assert "KFEE" in caplog.text and "booked without it" in caplog.text


async def test_killed_after_the_fill_arrived_before_the_commit_books_it_once_on_restart(
        exchange, harness):
    async with LocalKrakenWs([session(exchange), session(exchange)],
                             token="local-ws-token") as ws:
        first = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        first.kill_before_commit = True
        coid = first.order(1, Side.BUY, "0.75")
        assert first.consumer is not None
        with pytest.raises(Killed):
            async with asyncio.timeout(10):
                await first.consumer
        await first.settle()
        assert first.fills() == []  # nothing of the fill's transaction survived
        await first.close()

        second = await harness(ws)
        await expect(lambda: len(second.fills()) == 2)
        await asyncio.sleep(0.3)  # any repeat (snapshot, backfill) is in by now
        assert second.status(coid) == (OrderStatus.FILLED, D("0.75"))
        assert_matches_venue(second, exchange)
        assert cl_ord_id_for(coid) != coid  # mapped back through the ledger


async def test_an_overfill_is_booked_as_the_venue_reports_it_and_said(exchange, harness):
    async with LocalKrakenWs([session(exchange)], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.5", "37000.0", TimeInForce.GTC)
        await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
        (txid,) = exchange.orders
        exchange.orders[txid]["vol"] = "0.7"  # the venue fills 0.7 of our 0.5
        exchange.fill_resting(txid, D("0.7"))
        await expect(lambda: len(h.fills()) == 1)
        assert h.account.positions[IID].quantity == D("0.7")  # what the venue says
        assert_matches_venue(h, exchange)
        assert h.events("overfill"), "an overfill must be said"


async def test_fills_out_of_order_and_repeated_are_booked_once_in_full(exchange, harness):
    """Kraken (or a backfill) reports an order's second trade before its first, then both
    again: each booked once, the order FILLED only once both are in."""
    orders: list[str] = []

    def frame(*numbers: int) -> dict[str, Any]:
        txid = orders[0]
        items = []
        for n, qty, ts in ((1, 0.2, "2024-01-02T03:04:05Z"), (2, 0.3, "2024-01-02T03:04:06Z")):
            if n in numbers:
                items.append({"exec_type": "trade", "order_id": txid,
                              "exec_id": f"TOOO-{n:05d}", "trade_id": 700 + n,
                              "symbol": "BTC/USD", "side": "buy", "last_qty": qty,
                              "last_price": 37000.0, "liquidity_ind": "m",
                              "fees": [{"asset": "USD", "qty": 1.0}], "timestamp": ts})
        return {"channel": "executions", "type": "update", "sequence": 50, "data": items}

    placed = asyncio.Event()
    script = [AwaitSubscribe("executions"), Until(placed.is_set), Send(lambda: frame(2)),
              Send(lambda: frame(2, 1)), Send(lambda: frame(1, 2))]
    async with LocalKrakenWs([script], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.5", "37000.0", TimeInForce.GTC)
        await h.settle()
        orders.extend(exchange.orders)
        placed.set()
        await expect(lambda: len(h.fills()) == 2)
        await asyncio.sleep(0.2)  # the repeats are in by now
        assert sorted(f["fill_id"] for f in h.fills()) == ["TOOO-00001", "TOOO-00002"]
        assert h.status(coid) == (OrderStatus.FILLED, D("0.5"))
        assert h.account.positions[IID].quantity == D("0.5")
        assert h.account.cash == CASH - D("0.5") * D(37000) - D(2)
