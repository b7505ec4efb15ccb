"""Held-out red team of Kalshi's answers (a scripted REST client for the shapes, the local
exchange for the fill socket): what it found.

* a fill whose ``action`` was anything but ``"buy"`` (``"BUY"``, ``null``, ``1``) was
  booked as a SELL;
* one order in ``GET /portfolio/orders`` with a list for its client id raised TypeError
  out of the poll: ``executions()`` ended and the core halted trading, after every
  restart while Kalshi listed it;
* a cancel answer of the wrong shape (no ``order_id``, an ``error`` that is text, a list
  for an id) raised inside the cancels' task: the cancel never finished, and a HALT's
  cancel waited for ever; an answer showing the order ``resting`` counted as cancelled
  (the core marked it CANCELLED while it rested at Kalshi);
* a socket fill with ``ts: Infinity``, ``count_fp: "1e30"`` or ``created_time: 5`` raised
  past the socket's handler and ended the fill socket for the rest of the run;
* a ``fee_cost`` of 1e999999999 overflowed the account (trading halted), and fills priced
  at exactly 1, of 1e30 contracts, or of a ticker that is not text were booked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from argus_testkit import eventually
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.execution import KalshiExecution
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_kalshi.ratelimit import EndpointCosts, RateLimiter
from argus_venue_kalshi.testing import LocalKalshi
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Fill, Order, OrderType, Side, TimeInForce, VenueError

TICKER = "KXHIGHNY-24JAN01-T60"


class ScriptedRest:
    """What :class:`KalshiExecution` asks of its REST client, answered from scripts: each
    ``send`` pops the next answer for its method and path prefix (an exception is
    raised), ``get`` and ``pages`` answer by path."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[Any]] = {}
        self.gets: dict[str, Any] = {}
        self.lists: dict[str, list[Any]] = {}
        self.writes, self.reads, self.costs = RateLimiter(1000), RateLimiter(1000), \
            EndpointCosts()

    def cost(self, method: str, path: str, items: int = 1) -> int:
        return self.costs.cost(method, path.split("?", 1)[0], items)

    async def send(self, method: str, path: str, **_: Any) -> Any:
        for (m, prefix), queue in self.answers.items():
            if m == method and path.startswith(prefix) and queue:
                answer = queue.pop(0)
                if isinstance(answer, BaseException):
                    raise answer
                return answer
        raise AssertionError(f"unscripted {method} {path}")

    async def get(self, path: str, params: Any = None, **_: Any) -> Any:
        answer = self.gets.get(path, VenueError(f"no answer scripted for {path}"))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def pages(self, path: str, key: str, params: Any = None, **_: Any) -> list[Any]:
        return list(self.lists.get(path, []))


def _execution() -> tuple[KalshiExecution, ScriptedRest]:
    settings = KalshiSettings(markets=[TICKER], ws_fills=False, poll_interval_s=0.01,
                              max_retries=1)
    rest = ScriptedRest()
    ex = KalshiExecution(settings, rest, KalshiFeeSchedule())  # type: ignore[arg-type]
    ex.learn("c0", "O0")
    ex.learn("c1", "O1")
    return ex, rest


def _fill(**change: Any) -> dict[str, Any]:
    raw = {"trade_id": "t1", "order_id": "O1", "client_order_id": "c1", "ticker": TICKER,
           "side": "yes", "action": "buy", "count_fp": "2.00", "yes_price_dollars": "0.4200",
           "is_taker": True, "fee_cost": "0.0400", "created_time": "2024-01-01T00:00:00Z"}
    raw.update(change)
    return {k: v for k, v in raw.items() if v is not ...}


async def _polled_fills(raw: dict[str, Any]) -> list[Fill]:
    ex, rest = _execution()
    rest.lists["/portfolio/fills"] = [raw]
    return [o for o in await ex._poll() if isinstance(o, Fill)]


@pytest.mark.parametrize("action", ["BUY", "Buy", "weird", None, 1])
async def test_a_fill_whose_action_is_not_buy_or_sell_is_not_booked(action: Any) -> None:
    assert await _polled_fills(_fill(action=action)) == []


async def test_buy_and_sell_fills_are_booked_on_their_sides() -> None:
    (buy,) = await _polled_fills(_fill())
    (sell,) = await _polled_fills(_fill(action="sell"))
    assert (buy.side, sell.side) == (Side.BUY, Side.SELL)
    assert (buy.price, buy.quantity, buy.fee) == (Decimal("0.42"), 2, Decimal("0.04"))


@pytest.mark.parametrize("change", [
    {"yes_price_dollars": "1.0000"}, {"yes_price_dollars": "0"}, {"count_fp": "1e30"},
    {"ticker": 5}, {"ticker": ["X"]}, {"created_time": ..., "ts": float("inf")},
    {"created_time": ..., "ts": -5}, {"created_time": ..., "ts": 1e300},
], ids=["price-1", "price-0", "count-1e30", "ticker-int", "ticker-list", "ts-inf", "ts-neg",
        "ts-1e300"])
async def test_a_fill_outside_the_contract_is_not_booked(change: dict[str, Any]) -> None:
    assert await _polled_fills(_fill(**change)) == []


@pytest.mark.parametrize("fee", ["1e999999999", "1e400", "-5"])
async def test_an_absurd_fee_is_replaced_by_the_schedule_s(fee: str) -> None:
    (fill,) = await _polled_fills(_fill(fee_cost=fee))
    assert fill.fee == KalshiFeeSchedule().fee(Decimal("0.42"), Decimal(2), maker=False)


@pytest.mark.parametrize("bad", [{"client_order_id": ["x"]}, {"order_id": ["O9"]},
                                 {"order_id": {"id": 1}}])
async def test_an_order_of_the_wrong_shape_in_the_poll_is_skipped(bad: dict[str, Any]
                                                                  ) -> None:
    ex, rest = _execution()
    rest.lists["/portfolio/orders"] = [{"order_id": "O9", "client_order_id": "c0",
                                        "status": "resting"} | bad,
                                       {"order_id": "O1", "client_order_id": "c1",
                                        "status": "resting"}]
    ex.client_ids["c1"] = "c1"
    updates = await ex._poll()  # raised TypeError before, which ended executions()
    assert [u.client_order_id for u in updates] == ["c1"]


@pytest.mark.parametrize("answer", [{"order": {"status": "canceled"}},
                                    {"order": {"order_id": "O0", "status": "canceled"}}])
async def test_a_single_cancel_shown_cancelled_is_done(answer: dict[str, Any]) -> None:
    ex, rest = _execution()
    rest.answers[("DELETE", "/portfolio/orders")] = [answer]
    async with asyncio.timeout(2):
        await ex.cancel("c0")


@pytest.mark.parametrize("status", ["resting", "weird", None])
async def test_a_cancel_answer_not_showing_the_order_cancelled_is_asked_about(
        status: Any) -> None:
    ex, rest = _execution()
    rest.answers[("DELETE", "/portfolio/orders")] = [
        {"order": {"order_id": "O0", "status": status}}]
    rest.gets["/portfolio/orders/O0"] = {"order": {"order_id": "O0", "status": "resting"}}
    with pytest.raises(VenueError, match="Kalshi shows the order resting"):
        async with asyncio.timeout(2):
            await ex.cancel("c0")
    rest.answers[("DELETE", "/portfolio/orders")] = [{"order": {"order_id": "O0",
                                                                "status": status}}]
    rest.gets["/portfolio/orders/O0"] = {"order": {"order_id": "O0", "status": "canceled"}}
    async with asyncio.timeout(2):
        await ex.cancel("c0")  # asked: Kalshi shows it cancelled


@pytest.mark.parametrize("items", [
    [{"order_id": "O0", "order": None, "error": "boom"}],
    [{"order_id": ["O0"], "order": None}],
    [{"order_id": "O0", "order": {"status": "canceled"}}],
    [{"order_id": "O0", "order": {"order_id": "O0", "status": "resting"}}],
    ["junk"],
], ids=["error-text", "id-list", "order-without-id", "resting", "not-an-object"])
async def test_a_batch_cancel_answer_of_any_shape_ends_every_cancel(items: list[Any]
                                                                   ) -> None:
    ex, rest = _execution()
    rest.answers[("DELETE", "/portfolio/orders")] = [{"orders": [*items, {
        "order_id": "O1", "order": {"order_id": "O1", "status": "canceled"}}]}]
    async with asyncio.timeout(2):  # hung for ever before (the cancels' task died)
        first, second = await asyncio.gather(ex.cancel("c0"), ex.cancel("c1"),
                                             return_exceptions=True)
    assert second is None
    assert first is None or isinstance(first, VenueError)


@pytest.mark.parametrize("change", [
    {"count_fp": "1e30", "fee_cost": ...}, {"count_fp": "1e999999999"},
    {"created_time": 5}, {"created_time": ..., "ts": float("inf")},
], ids=["count-1e30", "count-overflow", "created-time-int", "ts-inf"])
def test_a_malformed_socket_fill_is_dropped_not_raised(change: dict[str, Any]) -> None:
    ex, _ = _execution()
    ex._on_ws_fill(_fill(**change))  # raised out of the socket's task before
    assert not ex.ws_fill_ids


def _take(coid: str) -> Order:
    return Order(coid, "kalshi", f"kalshi:{TICKER}/YES", Side.BUY, Decimal(1),
                 Decimal("0.45"), OrderType.LIMIT, TimeInForce.IOC, "t")


async def test_the_fill_socket_lives_on_after_a_malformed_fill(
        exchange: LocalKalshi, local_settings: Callable[..., KalshiSettings]) -> None:
    venue = KalshiVenue(local_settings(poll_interval_s=60.0))  # fills by the socket only
    items: list[Any] = []

    async def pump() -> None:
        async for item in venue.executions():
            items.append(item)

    task = asyncio.get_running_loop().create_task(pump())
    try:
        await eventually(lambda: exchange.ws.fill_subscriptions() == 1, 5, "fill channel")
        await venue.submit(_take("ws-0"))
        await eventually(lambda: any(isinstance(i, Fill) for i in items), 5, "first fill")
        oid = venue.execution.venue_ids["ws-0"]
        bad = {"trade_id": "bad-1", "order_id": oid, "client_order_id": "ws-0",
               "market_ticker": TICKER, "is_taker": True, "side": "yes", "action": "buy",
               "count_fp": "1e30", "yes_price_dollars": "0.4200", "ts": 1}
        for conn in exchange.ws.connections:
            conn.out.put_nowait(json.dumps({"type": "fill", "sid": 1, "msg": bad}))
        await venue.submit(_take("ws-2"))
        await eventually(lambda: any(isinstance(i, Fill) and i.client_order_id == "ws-2"
                                     for i in items), 5, "a later fill by the socket")
        assert exchange.ws.fill_subscriptions() == 1
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        await venue.close()
