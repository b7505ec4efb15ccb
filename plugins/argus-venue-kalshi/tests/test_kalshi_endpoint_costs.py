"""Per-endpoint token costs: the limiter charges each request what Kalshi bills it
(``GET /account/endpoint_costs``, else the documented costs), and cancels asked for
together go out as one ``DELETE /portfolio/orders/batched`` billed per order."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest
from argus_venue_kalshi.ratelimit import DOCUMENTED_COSTS, EndpointCosts
from argus_venue_kalshi.testing import Fault, RateLimit
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import DataError, Order, OrderStatus, OrderType, Side, TimeInForce, VenueError

TICKER = "KXHIGHNY-24JAN01-T60"
JITTER_WINDOW_S = 0.7  # as in test_kalshi_rate_limits: the venue spaces by 1 s


def order(coid: str) -> Order:
    return Order(coid, "kalshi", f"kalshi:{TICKER}/YES", Side.BUY, D(1), D("0.30"),
                 OrderType.LIMIT, TimeInForce.GTC, "t")


def test_costs_by_endpoint_template_and_batch_size() -> None:
    costs = EndpointCosts(10, {("POST", "/trade-api/v2/portfolio/orders"): 100,
                               ("DELETE", "/trade-api/v2/portfolio/orders/{order_id}"): 20,
                               ("DELETE", "/portfolio/orders/batched"): 2})
    assert costs.cost("POST", "/portfolio/orders") == 100
    assert costs.cost("DELETE", "/portfolio/orders/ord-000001") == 20
    assert costs.cost("DELETE", "/portfolio/orders/batched", 25) == 50  # the docs' example
    assert costs.cost("POST", "/portfolio/orders/batched", 3) == 30     # default, per order
    assert costs.cost("GET", "/markets") == 10
    assert EndpointCosts().cost("DELETE", "/portfolio/orders/batched", 5) == \
        5 * DOCUMENTED_COSTS[("DELETE", "/portfolio/orders/batched")]
    parsed = EndpointCosts.from_payload({"default_cost": 10, "endpoint_costs": [
        {"method": "GET", "path": "/trade-api/v2/portfolio/orders/{order_id}", "cost": 5}]})
    assert parsed.cost("GET", "/portfolio/orders/x") == 5
    with pytest.raises(DataError, match="endpoint_costs answered an unusable body"):
        EndpointCosts.from_payload({"endpoint_costs": []})


async def test_the_venue_reads_its_costs_and_paces_writes_by_them(exchange, local_settings
                                                                  ) -> None:
    exchange.rest.costs = EndpointCosts(10, {("POST", "/portfolio/orders"): 20,
                                             ("DELETE", "/portfolio/orders/batched"): 2})
    exchange.rest.limits = RateLimit(writes=2, window_s=JITTER_WINDOW_S)  # 20 tokens
    venue = KalshiVenue(local_settings(writes_per_s=2))
    try:
        await venue.instruments()
        assert venue.rest.cost("POST", "/portfolio/orders") == 20
        assert any(r.path.endswith("/account/endpoint_costs") for r in exchange.rest.requests)
        await asyncio.gather(*(venue.submit(order(f"c-{k}")) for k in range(3)))
        # at the default cost two orders would fit a window; at 20 tokens only one does
        assert exchange.rest.limited == 0
        assert exchange.rest.most_tokens_in_window("write") == 20
        assert all(len(exchange.engine.by_client_id(f"c-{k}")) == 1 for k in range(3))
    finally:
        await venue.close()


async def test_unreadable_costs_fall_back_to_the_documented_ones(exchange, local_settings,
                                                                caplog) -> None:
    for _ in range(3):  # the read and its two retries
        exchange.rest.inject("GET /account/endpoint_costs", Fault("refuse", 500))
    venue = KalshiVenue(local_settings())
    try:
        with caplog.at_level("WARNING"):
            await venue.instruments()
        assert venue.rest.cost("DELETE", "/portfolio/orders/batched", 5) == 10
        assert any("endpoint costs unavailable" in r.getMessage() for r in caplog.records)
    finally:
        await venue.close()


async def test_cancels_together_go_out_as_one_batch_billed_per_order(exchange,
                                                                     local_settings) -> None:
    venue = KalshiVenue(local_settings(writes_per_s=5))
    coids = [f"rest-{k}" for k in range(5)]
    try:
        for coid in coids:
            await venue.submit(order(coid))
        while not venue.execution._queue.empty():
            venue.execution._queue.get_nowait()
        # one write (10 tokens) a window from here: 5 single cancels would need 5 windows,
        # the batch bills 5 x 2 = 10 tokens and fits one
        exchange.rest.limits = RateLimit(writes=1, window_s=30)
        exchange.rest.admitted = []
        await asyncio.wait_for(asyncio.gather(*(venue.execution.cancel(c) for c in coids)), 5)
        deletes = [r for r in exchange.rest.requests if r.method == "DELETE"]
        assert [r.path.rsplit("/", 1)[-1] for r in deletes] == ["batched"]
        assert len(deletes[0].body["orders"]) == 5 and exchange.rest.limited == 0
        assert exchange.rest.most_tokens_in_window("write") == 10
        assert all(exchange.engine.by_client_id(c)[0]["status"] == "canceled" for c in coids)
        updates = []
        while not venue.execution._queue.empty():
            updates.append(venue.execution._queue.get_nowait())
        assert sorted(u.client_order_id for u in updates
                      if u.status is OrderStatus.CANCELLED) == coids
    finally:
        await venue.close()


async def test_a_batch_reports_each_refused_cancel_and_a_lone_cancel_goes_alone(
        exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        for coid in ("a", "b", "c"):
            await venue.submit(order(coid))
        exchange.engine.cancel(venue.execution.venue_ids["b"])  # gone before we ask
        results = await asyncio.gather(*(venue.execution.cancel(c) for c in ("a", "b")),
                                       return_exceptions=True)
        assert results[0] is None and isinstance(results[1], VenueError)
        assert "order_not_resting" in str(results[1]) and "b" in str(results[1])
        await venue.cancel("c")
        last = [r for r in exchange.rest.requests if r.method == "DELETE"][-1]
        assert last.path.endswith(venue.execution.venue_ids["c"])
    finally:
        await venue.close()


async def test_batches_of_cancels_fit_the_write_budget_and_a_request_never_can(
        exchange, local_settings) -> None:
    costly = {("DELETE", "/portfolio/orders/batched"): 20, ("POST", "/portfolio/orders"): 10}
    exchange.rest.costs = EndpointCosts(10, costly)
    venue = KalshiVenue(local_settings(writes_per_s=5))  # 50 tokens: 2 cancels a batch
    coids = [f"chunk-{k}" for k in range(5)]
    try:
        await venue.instruments()
        for coid in coids:
            await venue.submit(order(coid))
        await asyncio.wait_for(asyncio.gather(*(venue.execution.cancel(c) for c in coids)), 10)
        deletes = [r for r in exchange.rest.requests if r.method == "DELETE"]
        assert [len(r.body["orders"]) if r.body else 1 for r in deletes] == [2, 2, 1]
        assert all(exchange.engine.by_client_id(c)[0]["status"] == "canceled" for c in coids)
        # an order costing more than the whole budget is refused here, never sent
        venue.rest.costs = EndpointCosts(10, {("POST", "/portfolio/orders"): 60})
        posts = len([r for r in exchange.rest.requests if r.method == "POST"])
        with pytest.raises(VenueError, match="costs 60 tokens, more than the 50-token"):
            await venue.submit(order("too-dear"))
        assert len([r for r in exchange.rest.requests if r.method == "POST"]) == posts
    finally:
        await venue.close()
