"""Deterministic replays of what the fault campaign (``test_fault_campaign.py``) found,
each the shrunk scenario of a failing seed.

Seed 1 (shrunk to: one ``GET /portfolio/fills`` poll answered 500 with the JSON body
``{"error": "internal server error"}``, as a proxy or load balancer writes it): the
executions consumer died with ``AttributeError: 'str' object has no attribute 'get'``
(the REST layer read every error body as Kalshi's ``{"error": {"code", "message"}}``), so
no fill was booked after it.  Now such a body is a 500 with that message, retried.

Seed 141 (shrunk to: a restart whose ``GET /portfolio/orders`` answers are cut short,
cut short, then lost): the core's start-up reconciliation (``open_orders``) died with a
bare ``httpx.ReadError('')`` — no venue, no endpoint, no word of what was sent.  Now
``open_orders`` raises ``VenueError`` naming the request and the attempts made (a
documented stop; the campaign starts a fresh process, as a supervisor would).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import FaultPlan, HttpFault
from argus_venue_kalshi.rest import KalshiHttpError
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import VenueError

FILLS = "GET /trade-api/v2/portfolio/fills"
ORDERS = "GET /trade-api/v2/portfolio/orders"


async def test_a_500_whose_error_is_text_is_retried_not_a_crash(exchange, local_settings
                                                                ) -> None:
    plan = FaultPlan(0, http_rate=0.0, forced={(FILLS, 0): HttpFault.S500_JSON})
    async with FaultProxy(exchange.rest.url, plan) as proxy:
        venue = KalshiVenue(local_settings(rest_url=proxy.url))
        try:
            answer = await venue.rest.get("/portfolio/fills", signed=True)
        finally:
            await venue.close()
    assert isinstance(answer, dict) and answer.get("fills") == []
    assert proxy.seen.count(FILLS) == 2  # the 500, then the retry


async def test_a_text_error_is_a_kalshi_http_error(exchange, local_settings: Callable[
        ..., Any]) -> None:
    """The refusal is a ``KalshiHttpError`` carrying the text as its message."""
    plan = FaultPlan(0, http_rate=0.0, forced={(FILLS, 0): HttpFault.S500_JSON})
    async with FaultProxy(exchange.rest.url, plan) as proxy:
        venue = KalshiVenue(local_settings(rest_url=proxy.url))
        try:
            with pytest.raises(KalshiHttpError) as raised:
                await venue.rest.send("GET", "/portfolio/fills", signed=True)
        finally:
            await venue.close()
    assert raised.value.status == 500 and "internal server error" in str(raised.value)


async def test_open_orders_that_cannot_be_read_is_a_venue_error_naming_the_request(
        exchange, local_settings: Callable[..., Any]) -> None:
    plan = FaultPlan(0, http_rate=0.0, forced={(ORDERS, 0): HttpFault.TRUNCATED,
                                               (ORDERS, 1): HttpFault.TRUNCATED,
                                               (ORDERS, 2): HttpFault.LOST})
    async with FaultProxy(exchange.rest.url, plan) as proxy:
        venue = KalshiVenue(local_settings(rest_url=proxy.url, max_retries=2))
        try:
            with pytest.raises(VenueError, match=r"GET /portfolio/orders failed after 3 "
                                                 r"attempts.*ReadError"):
                await venue.open_orders()
        finally:
            await venue.close()
    assert proxy.seen.count(ORDERS) == 3
