"""Held-out fault audit of the fill side, through the core's ExecutionEngine in live mode
over a real ledger, against the local Kalshi exchange (REST engine + the websocket
``fill`` channel, polled ``GET /portfolio/fills`` beside it).

Each scenario ends with every fill booked exactly once (by ``trade_id``), the account's
position and cash equal to what the exchange's fills say, and a clear record of anything
odd.  Scenarios: a fill on the socket before the order's answer (and again by the poll);
a socket dropped while the order fills; a fill of another client's order (said once,
never booked as ours); a partial fill whose rest fills while the cancel's answer is lost;
a fill after the order was marked cancelled; a maker rebate, a missing and an unreadable
``fee_cost``; a socket fill booked with the formula's fee, corrected to Kalshi's
``fee_cost`` once the poll lists it (a ``FillCorrection``; also when the process died
before the correction's commit); the process killed after a fill arrived and before it
was committed; an overfill (booked as the venue reports it, and said: an `overfill` risk
event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import CASH, RUN, EngineHarness, Harnesses, Killed, expect
from argus_venue_kalshi.testing import Fault, LocalKalshi
from argus_venue_kalshi.venue import KalshiVenue

from argus_core.models import (
    OrderStatus,
    Side,
    TimeInForce,
)

TICKER = "KXHIGHNY-24JAN01-T60"
IID = f"kalshi:{TICKER}/YES"
ROUTE = "POST /portfolio/orders"
DELETE = "DELETE /portfolio/orders/"


def venue_truth(exchange: LocalKalshi, ours: Callable[[dict[str, Any]], bool],
                fee: Callable[[dict[str, Any]], D]) -> tuple[D, D]:
    """(YES position, cash) from the exchange's fills of our orders."""
    pos, cash = D(0), CASH
    for f in exchange.engine.fills:
        if not ours(f):
            continue
        assert f["side"] == "yes"
        sign = 1 if f["action"] == "buy" else -1
        pos += sign * D(f["count"])
        cash -= sign * D(f["yes_price_dollars"]) * D(f["count"]) + fee(f)
    return pos, cash


def stated_fee(f: dict[str, Any]) -> D:
    return D(f["fee_cost"])


def assert_matches_venue(h: EngineHarness, exchange: LocalKalshi,
                         fee: Callable[[dict[str, Any]], D] = stated_fee) -> None:
    ours = {o["order_id"] for o in exchange.engine.orders.values()
            if o["client_order_id"].startswith(RUN)}
    mine = [f for f in exchange.engine.fills if f["order_id"] in ours]
    assert sorted(f["fill_id"] for f in h.fills()) == sorted(f["trade_id"] for f in mine), \
        "each fill booked exactly once"
    pos, cash = venue_truth(exchange, lambda f: f["order_id"] in ours, fee)
    assert h.account.positions[IID].quantity == pos
    assert h.account.cash == cash


@pytest.fixture
async def harness(exchange: LocalKalshi, local_settings: Callable[..., Any], tmp_path: Path
                  ) -> AsyncIterator[Callable[..., Any]]:
    """``await harness(**settings)``: an engine on a Kalshi venue of ``exchange``."""
    pool = Harnesses(tmp_path / "run")

    async def make(**overrides: Any) -> EngineHarness:
        overrides.setdefault("order_give_up_s", 5.0)
        venue = KalshiVenue(local_settings(**overrides))
        (instrument,) = [i for i in await venue.instruments() if i.id == IID]
        return await pool.start(venue, instrument, D("0.42"))

    yield make
    await pool.close()



def venue_id(exchange: LocalKalshi, h: EngineHarness, coid: str) -> str:
    return str(h.venue.execution.venue_ids[coid])  # type: ignore[attr-defined]


async def test_a_socket_fill_before_the_answer_and_again_by_the_poll_is_booked_once(
        exchange, harness):
    exchange.rest.inject(ROUTE, Fault("late", delay_s=1.0))  # acts, answers a second late
    h = await harness(poll_interval_s=0.3)
    await expect(lambda: exchange.ws.fill_subscriptions() == 1)
    coid = h.order(1, Side.BUY, "25", "0.43")  # takes 20 at 0.42 and 5 at 0.43
    await expect(lambda: len(h.fills()) == 2)
    assert h.status(coid) == (OrderStatus.FILLED, D(25))
    await h.settle()
    await asyncio.sleep(0.7)  # two more polls re-read both fills
    assert h.status(coid) == (OrderStatus.FILLED, D(25))  # whichever path was first
    assert_matches_venue(h, exchange)


async def test_fills_while_the_socket_is_down_come_from_the_poll_once(exchange, harness):
    h = await harness()
    await expect(lambda: exchange.ws.fill_subscriptions() == 1)
    coid = h.order(1, Side.BUY, "10", "0.40", TimeInForce.GTC)  # rests
    await h.settle()
    exchange.ws.accepting = False
    exchange.ws.drop()
    oid = venue_id(exchange, h, coid)
    exchange.engine.fill_resting(oid, 4)
    exchange.engine.fill_resting(oid, 6)
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(10)))
    exchange.ws.accepting = True
    await expect(lambda: exchange.ws.fill_subscriptions() == 1)
    await asyncio.sleep(0.2)
    assert not h.venue.execution.ws_fill_ids  # type: ignore[attr-defined]
    assert_matches_venue(h, exchange)


async def test_a_fill_of_another_clients_order_is_said_once_never_booked(exchange, harness,
                                                                         caplog):
    caplog.set_level(logging.WARNING)
    h = await harness()
    exchange.engine.create({"ticker": TICKER, "side": "yes", "action": "buy", "count": 3,
                            "yes_price_dollars": "0.4200", "client_order_id": "by-hand-1",
                            "time_in_force": "immediate_or_cancel"})
    await expect(lambda: bool(h.events("unknown_fill")))
    await asyncio.sleep(0.2)  # later polls read it again: said once
    (event,) = h.events("unknown_fill")
    assert "trd-000001" in event["reason"] and "kalshi-order:ord-000001" in event["reason"]
    assert h.fills() == [] and IID not in h.account.positions
    assert "which this run did not place" in caplog.text


async def test_rest_fills_while_the_cancel_answer_is_lost(exchange, harness):
    h = await harness()
    coid = h.order(1, Side.BUY, "25", "0.42", TimeInForce.GTC)  # 20 at once, 5 rest
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(20)))
    exchange.engine.fill_resting(venue_id(exchange, h, coid), 5)
    exchange.rest.inject(DELETE, Fault("lost"))
    await h.cancel(coid)
    (failed,) = h.events("cancel_failed")
    assert coid in failed["reason"] and "executed" in failed["reason"]
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(25)))
    assert_matches_venue(h, exchange)


async def test_a_fill_after_the_order_was_marked_cancelled_is_booked(exchange, harness):
    h = await harness(ws_fills=False)
    coid = h.order(1, Side.BUY, "10", "0.40", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    await h.cancel(coid)
    await expect(lambda: h.status(coid)[0] is OrderStatus.CANCELLED)
    # A trade matched just before the cancel, listed only now.
    exchange.engine.fill_resting(venue_id(exchange, h, coid), 3)
    await expect(lambda: len(h.fills()) == 1)
    assert h.status(coid) == (OrderStatus.CANCELLED, D(3))
    assert_matches_venue(h, exchange)


async def test_a_rebate_a_missing_and_an_unreadable_fee_keep_every_fill(exchange, harness,
                                                                       caplog):
    """By the poll: ``fee_cost`` -0.0100 is a credit; missing, the schedule's maker fee;
    unreadable ("n/a"), the schedule's too, said once (it kept the fill from ever being
    booked: the position went wrong)."""
    caplog.set_level(logging.WARNING)
    h = await harness(ws_fills=False)
    coid = h.order(1, Side.BUY, "9", "0.40", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    oid = venue_id(exchange, h, coid)
    rebate = exchange.engine.fill_resting(oid, 3, fee_cost="-0.0100")
    missing = exchange.engine.fill_resting(oid, 3, fee_cost=None)
    odd = exchange.engine.fill_resting(oid, 3, fee_cost="n/a")
    await expect(lambda: len(h.fills()) == 3)
    await asyncio.sleep(0.1)  # more polls read the odd fee again: said once
    maker = h.venue.fee_schedule(IID).fee(D("0.40"), D(3), maker=True)
    booked = {f["fill_id"]: D(f["fee"]) for f in h.fills()}
    assert booked == {rebate["trade_id"]: D("-0.01"), missing["trade_id"]: maker,
                      odd["trade_id"]: maker}
    assert h.status(coid) == (OrderStatus.FILLED, D(9))
    assert caplog.text.count("fee_cost 'n/a' is not a number") == 1
    assert_matches_venue(h, exchange, lambda f: {rebate["trade_id"]: D("-0.01")}.get(
        f["trade_id"], maker))


async def test_a_socket_fill_booked_with_the_formula_fee_is_corrected_to_the_rebate_once(
        exchange, harness):
    """The socket states no fee, so a fill it brings first is booked with the formula's
    fee; when the poll lists Kalshi's ``fee_cost`` (a rebate) the fill's fee becomes it,
    with one ``fill_corrections`` row, however many polls list it again."""
    h = await harness(poll_interval_s=0.5)  # the socket is first by far
    await expect(lambda: exchange.ws.fill_subscriptions() == 1)
    coid = h.order(1, Side.BUY, "3", "0.40", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    rebate = exchange.engine.fill_resting(venue_id(exchange, h, coid), 3, fee_cost="-0.0100")
    await expect(lambda: len(h.fills()) == 1)
    assert h.venue.execution.ws_fill_ids == {rebate["trade_id"]}  # type: ignore[attr-defined]
    formula = h.venue.fee_schedule(IID).fee(D("0.40"), D(3), maker=True)
    await expect(lambda: bool(h.corrections()))
    await asyncio.sleep(1.2)  # two more polls list the same fee_cost
    (fix,) = h.corrections()
    assert (fix["fill_id"], fix["kind"], D(fix["old_value"]), D(fix["new_value"])) == (
        rebate["trade_id"], "fee", formula, D("-0.01"))
    assert [D(f["fee"]) for f in h.fills()] == [D("-0.01")]
    assert h.account.positions[IID].quantity == D(3)
    assert_matches_venue(h, exchange)


async def test_a_socket_fill_ends_with_kalshis_fee_in_the_cash(exchange, harness):
    h = await harness(poll_interval_s=1.0)  # the socket is first by far
    await expect(lambda: exchange.ws.fill_subscriptions() == 1)
    coid = h.order(1, Side.BUY, "3", "0.40", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    fill = exchange.engine.fill_resting(venue_id(exchange, h, coid), 3, fee_cost="-0.0100")
    await expect(lambda: len(h.fills()) == 1)
    assert h.venue.execution.ws_fill_ids == {fill["trade_id"]}  # type: ignore[attr-defined]
    # the poll lists Kalshi's fee_cost (1 s apart; a fixed 1.5 s wait was too short on a
    # loaded machine): the cash comes to the venue's, then everything is checked
    ours = {o["order_id"] for o in exchange.engine.orders.values()
            if o["client_order_id"].startswith(RUN)}
    cash = venue_truth(exchange, lambda f: f["order_id"] in ours, stated_fee)[1]
    await expect(lambda: h.account.cash == cash)
    assert_matches_venue(h, exchange)


async def test_a_fee_correction_killed_before_its_commit_is_made_once_after_a_restart(
        exchange, harness):
    """The socket's fill is committed with the formula's fee; the process dies as the
    poll's correction is applied, before its commit.  The restarted venue learns the
    booked fee from the ledger and corrects it once."""
    first = await harness(poll_interval_s=1.0)
    await expect(lambda: exchange.ws.fill_subscriptions() == 1)
    coid = first.order(1, Side.BUY, "3", "0.40", TimeInForce.GTC)
    await expect(lambda: first.status(coid)[0] is OrderStatus.OPEN)
    exchange.engine.fill_resting(venue_id(exchange, first, coid), 3, fee_cost="-0.0100")
    await expect(lambda: len(first.fills()) == 1)
    first.kill_before_commit = True  # the next item applied (the correction) dies
    assert first.consumer is not None
    with pytest.raises(Killed, match="correcting"):
        async with asyncio.timeout(10):
            await first.consumer
    assert first.corrections() == []
    await first.close()

    second = await harness(poll_interval_s=0.2)
    await expect(lambda: bool(second.corrections()))
    await asyncio.sleep(0.6)  # more polls list the same fee_cost
    assert len(second.corrections()) == 1
    assert second.status(coid) == (OrderStatus.FILLED, D(3))
    assert_matches_venue(second, exchange)


async def test_killed_after_the_fill_arrived_before_the_commit_books_it_once_on_restart(
        exchange, harness):
    first = await harness()
    first.kill_before_commit = True
    coid = first.order(1, Side.BUY, "25", "0.43")
    assert first.consumer is not None
    with pytest.raises(Killed):
        async with asyncio.timeout(10):
            await first.consumer
    await first.settle()
    assert first.fills() == []
    await first.close()

    second = await harness()
    await expect(lambda: len(second.fills()) == 2)
    await asyncio.sleep(0.2)  # later polls read both again
    assert second.status(coid) == (OrderStatus.FILLED, D(25))
    assert_matches_venue(second, exchange)


async def test_an_overfill_is_booked_as_the_venue_reports_it_and_said(exchange, harness):
    h = await harness()
    coid = h.order(1, Side.BUY, "5", "0.40", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    exchange.engine.fill_resting(venue_id(exchange, h, coid), 5, extra=2)
    await expect(lambda: len(h.fills()) == 1)
    assert h.account.positions[IID].quantity == D(7)  # what Kalshi says
    assert_matches_venue(h, exchange)
    assert h.events("overfill"), "an overfill must be said"
