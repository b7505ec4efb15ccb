"""Red-team findings on the authenticated ``executions`` feed.

Kraken's websocket answers a subscribe it could not serve right now (``EService:Unavailable``
during maintenance, ``EService:Busy``, ``EGeneral:Internal error``) with ``success: false``.
Before: any refusal but a rate limit ended the executions stream for good, so the runner
halted over a transient fault; only a refusal of the request itself (a bad token, missing
permissions) is final.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from argus_venue_kraken.execution import KrakenExecutionsFeed
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
)
from argus_venue_kraken.testing.ws import Send
from argus_venue_kraken.venue import KrakenVenue


async def _run_until(feed: KrakenExecutionsFeed, done: Any, timeout_s: float = 20.0
                     ) -> list[BaseException]:
    """Consume ``feed`` until ``done()`` or the stream ends; returns what ended it."""
    stopped: list[BaseException] = []

    async def consume() -> None:
        try:
            async for _ in feed.events():
                pass
        except Exception as exc:  # what ended the stream, if anything did
            stopped.append(exc)

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(timeout_s):
            while not (done() or stopped):
                await asyncio.sleep(0.01)
    finally:
        await feed.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return stopped


@pytest.mark.parametrize("error", ["EService:Unavailable", "EService:Busy",
                                   "EGeneral:Internal error"])
async def test_a_transient_executions_subscribe_refusal_reconnects(
        exchange: LocalKrakenRest, make_settings: Any, error: str) -> None:
    """The first subscribe answered ``error``: a failed connection, and the next one
    subscribes; the stream does not end."""
    refusal = {"method": "subscribe", "success": False, "req_id": 1, "error": error}
    sessions: list[Any] = [[AwaitSubscribe("executions"), Send(refusal)],
                           [ForwardExecutions(exchange)]]
    async with LocalKrakenWs(sessions, token="local-ws-token") as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        feed = KrakenExecutionsFeed(venue.settings, venue.rest, venue.execution)
        try:
            stopped = await _run_until(feed, lambda: feed.connects >= 2)
        finally:
            await venue.close()
    assert not stopped, f"the stream ended: {stopped[0]!r}"
    assert feed.disconnects == 1 and error in feed.last_disconnect_reason
