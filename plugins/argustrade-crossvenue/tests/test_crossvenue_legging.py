"""Legged cross-venue baskets: the composite venue over two fakes of the Venue contract
(``argus_testkit.FakeLiveVenue`` on scripted exchanges, one per venue).  The first
leg's fill sizes the second; an unfilled second leg raises ``BasketIncomplete`` with the
first leg's fills, and through the core's live loop the engine unwinds the naked leg."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.venue import CrossVenue, merge
from argus_testkit import ConfigRunner, FakeExchange, FakeLiveVenue

from argus_core import (
    BasketIncomplete,
    FeeSchedule,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    RegisterVenue,
    Side,
    TimeInForce,
    hookimpl,
)

TICKER = "KXFEDCUT-26SEP"
K_YES, K_NO = f"kalshi:{TICKER}/YES", f"kalshi:{TICKER}/NO"
P_YES, P_NO = "polymarket:111", "polymarket:222"


def kalshi_instruments() -> list[Instrument]:
    return [Instrument("kalshi", f"{TICKER}/{s}", kind="binary", lot_size=D(1),
                       min_size=D(1), meta={"ticker": TICKER}) for s in ("YES", "NO")]


def pm_instruments() -> list[Instrument]:
    return [Instrument("polymarket", t, kind="binary", lot_size=D("0.01"), min_size=D(5),
                       meta={"complement": f"polymarket:{o}", "token_outcome": n,
                             "is_yes": n == "Yes"})
            for t, o, n in (("111", "222", "Yes"), ("222", "111", "No"))]


def exchanges() -> tuple[FakeExchange, FakeExchange]:
    """Kalshi YES asks 0.42 x 50; Polymarket NO asks 0.52 x 40 (and dear other sides)."""
    k = FakeExchange(kalshi_instruments(), venue="kalshi", fee=FeeSchedule(), market=[
        OrderBook(K_YES, 1, [(0.40, 10.0)], [(0.42, 50.0)]),
        OrderBook(K_NO, 1, [(0.56, 10.0)], [(0.60, 50.0)])])
    p = FakeExchange(pm_instruments(), venue="polymarket", fee=FeeSchedule(), market=[
        OrderBook(P_YES, 2, [(0.47, 10.0)], [(0.50, 40.0)]),
        OrderBook(P_NO, 2, [(0.48, 10.0)], [(0.52, 40.0)])])
    for ex in (k, p):
        for event in ex.market:
            ex.observe(event)
    return k, p


def composite(k: FakeExchange, p: FakeExchange, **settings: Any) -> CrossVenue:
    return CrossVenue(CrossVenueSettings(**{"leg_timeout_s": 2.0, **settings}),
                      inner={"kalshi": FakeLiveVenue(exchange=k),
                             "polymarket": FakeLiveVenue(exchange=p)})


def order(coid: str, iid: str, qty: str, limit: str) -> Order:
    return Order(coid, "crossvenue", iid, Side.BUY, D(qty), D(limit), OrderType.LIMIT,
                 TimeInForce.IOC, "crossvenue", 1, basket_id="b1")


def partial(qty: str, price: str, rest: bool = True
            ) -> Callable[[Order], Sequence[Fill | OrderUpdate]]:
    """An exchange script: fill ``qty`` at ``price``, then cancel the IOC rest."""
    def on_order(o: Order) -> list[Fill | OrderUpdate]:
        items: list[Fill | OrderUpdate] = []
        if D(qty) > 0:
            items.append(Fill(f"T-{o.client_order_id}", o.client_order_id, "x",
                              o.instrument_id, o.side, D(price), D(qty), D(0),
                              Liquidity.TAKER, 5))
        if rest and D(qty) < o.quantity:
            items.append(OrderUpdate(o.client_order_id, OrderStatus.CANCELLED, 6,
                                     reason="IOC rest"))
        return items
    return on_order


async def test_the_first_legs_fill_sizes_the_second() -> None:
    k, p = exchanges()
    p.on_order = partial("30", "0.52")  # Polymarket (first, thinner) fills 30 of 40
    venue = composite(k, p)
    try:
        fills = await venue.submit_basket([order("c-1", P_NO, "40", "0.52"),
                                           order("c-2", K_YES, "40", "0.42")])
    finally:
        await venue.close()
    assert [(o.instrument_id, o.quantity) for o in p.received + k.received] == [
        (P_NO, 40), (K_YES, 30)]  # the Kalshi leg was sent for the 30 the first got
    assert sorted((f.client_order_id, f.quantity) for f in fills) == [("c-1", 30), ("c-2", 30)]
    # both legs end final: the unused 10 of the second leg is reported cancelled
    tape = []
    while venue._executions is not None and not venue._executions.empty():
        tape.append(venue._executions.get_nowait())
    cancelled = {u.client_order_id for u in tape if isinstance(u, OrderUpdate)
                 and u.status is OrderStatus.CANCELLED}
    assert cancelled == {"c-1", "c-2"}


async def test_an_unfilled_second_leg_raises_basket_incomplete_with_the_first_legs_fills(
        ) -> None:
    k, p = exchanges()
    k.on_order = partial("0", "0.42")  # the Kalshi leg (second) is killed unfilled
    venue = composite(k, p, first_leg="polymarket")
    try:
        with pytest.raises(BasketIncomplete) as caught:
            await venue.submit_basket([order("c-1", P_NO, "40", "0.52"),
                                       order("c-2", K_YES, "40", "0.42")])
    finally:
        await venue.close()
    assert [(f.client_order_id, f.instrument_id, f.quantity) for f in caught.value.fills] == [
        ("c-1", P_NO, 40)]
    assert "filled 0 of the first leg's 40" in str(caught.value)


async def test_an_unfilled_first_leg_sends_nothing_more() -> None:
    k, p = exchanges()
    p.on_order = partial("0", "0.52")
    venue = composite(k, p)
    try:
        fills = await venue.submit_basket([order("c-1", P_NO, "40", "0.52"),
                                           order("c-2", K_YES, "40", "0.42")])
    finally:
        await venue.close()
    assert fills == [] and k.received == []


async def test_a_first_leg_of_unknown_fate_sends_no_second_leg() -> None:
    k, p = exchanges()
    p.on_order = partial("10", "0.52", rest=False)  # never says what became of the rest
    venue = composite(k, p, leg_timeout_s=0.2)
    try:
        with pytest.raises(OrderUnknown):
            await venue.submit_basket([order("c-1", P_NO, "40", "0.52"),
                                       order("c-2", K_YES, "40", "0.42")])
    finally:
        await venue.close()
    assert k.received == []


async def test_a_refused_second_leg_is_an_incomplete_basket() -> None:
    k, p = exchanges()
    k.fault_next_submit("refused", "market closed")
    venue = composite(k, p)
    try:
        with pytest.raises(BasketIncomplete) as caught:
            await venue.submit_basket([order("c-1", P_NO, "40", "0.52"),
                                       order("c-2", K_YES, "40", "0.42")])
    finally:
        await venue.close()
    assert [f.quantity for f in caught.value.fills] == [40]
    assert "market closed" in str(caught.value)


async def test_orders_fees_and_instruments_route_by_venue_prefix() -> None:
    k, p = exchanges()
    k.fee = FeeSchedule(taker_bps=D(7))
    venue = composite(k, p)
    try:
        ids = {i.id for i in await venue.instruments()}
        assert ids == {K_YES, K_NO, P_YES, P_NO}
        assert venue.fee_schedule(K_YES) == FeeSchedule(taker_bps=D(7))
        assert venue.fee_schedule(P_NO) == FeeSchedule()
        await venue.submit(order("c-9", K_NO, "5", "0.60"))
        assert [o.instrument_id for o in k.received] == [K_NO] and p.received == []
        with pytest.raises(Exception, match="belongs to none of"):
            await venue.submit(order("c-10", "kraken:XBT/USD", "1", "1"))
    finally:
        await venue.close()


async def test_merge_ends_when_every_source_ends_and_raises_the_first_error() -> None:
    async def gen(items: list[Any]) -> Any:
        for item in items:
            if isinstance(item, Exception):
                raise item
            yield item
    got = [x async for x in merge({"a": gen([1, 2]), "b": gen([3])})]
    assert sorted(got) == [1, 2, 3]
    with pytest.raises(Exception, match="boom"):
        async for _ in merge({"a": gen([1, ValueError("boom")]), "b": gen([])}):
            pass


# -- through the core's live loop: the engine unwinds the naked first leg ------------------


def live_plugin(k: FakeExchange, p: FakeExchange) -> object:
    class Plugin:
        @hookimpl
        def register_venues(self, register: RegisterVenue) -> None:
            register("crossvenue_fakes", lambda settings: CrossVenue(
                settings, inner={"kalshi": FakeLiveVenue(exchange=k),
                                 "polymarket": FakeLiveVenue(exchange=p)}))
    return Plugin()


def test_live_second_leg_unfilled_is_unwound_by_the_engine(
        run_config: ConfigRunner, write_mapping: Callable[..., Path]) -> None:
    k, p = exchanges()
    k.on_order = partial("0", "0.42")  # the Kalshi leg is killed unfilled
    config = run_config({
        "argus": {"plugins": ["crossvenue"], "mode": "live"},
        "run": {"venue": "crossvenue_fakes", "scanners": ["crossvenue"],
                "stale_after_s": 0, "risk_checks": []},
        "plugins": {"crossvenue": {"mapping": str(write_mapping()), "leg_timeout_s": 2}},
    })
    result = run_config.run(config, plugins={"xvfakes": live_plugin(k, p)},
                            live_confirmed=True)
    legs = [o for o in result.orders if not o["reduce_only"]]
    assert sorted((o["instrument_id"], o["status"]) for o in legs) == [
        (K_YES, "cancelled"), (P_NO, "filled")]
    # the first leg went first (Polymarket: 40 deep vs Kalshi's 50) and filled 40
    assert [o.instrument_id for o in p.received][:1] == [P_NO]
    (unwind,) = [o for o in result.orders if o["reduce_only"]]
    assert (unwind["instrument_id"], unwind["side"], D(unwind["quantity"])) == (P_NO, "sell",
                                                                               D(40))
    assert result.risk_events_of("basket")  # the unwind and the REDUCING state, recorded
    assert result.summary.trading_state == "reducing"
