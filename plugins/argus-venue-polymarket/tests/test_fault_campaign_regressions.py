"""Deterministic replays of what the fault campaign (``test_fault_campaign.py``) found,
each the shrunk scenario of a failing seed.

Seed 6 (a restart while the user channel was receiving frames; found as a seed that never
ended): stopping the venue hung for ever.  ``executions()`` cancels the user channel's
task and waits for it; the channel read each frame with ``asyncio.wait_for(ws.recv(),
...)``, and on Python 3.11 ``wait_for`` returns the frame instead of raising when the
cancel lands just as the frame arrives: the cancel was lost, the channel reconnected and
read on, and the close never returned (nor would a runner's shutdown).  Now every
venue's socket read (and each wait on an event in a loop) uses ``asyncio.timeout``, which
keeps the cancel.  The race is reproduced exactly here: the cancel is scheduled while
``recv()`` returns.

Seed 12 (shrunk to: a restart whose ``GET /data/orders`` is answered by a gateway's 502):
the core's start-up reconciliation (``open_orders``) died on the library's bare
``PolyApiException`` at the first 5xx of a read.  Now the read is asked again (5xx, 429,
a broken connection, an unreadable answer) up to ``order_max_attempts`` times, then
``VenueError`` names what failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import FaultPlan, HttpFault
from argus_venue_polymarket import user_channel as uc
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import HARDHAT_KEY, LocalClob, make_book
from argus_venue_polymarket.venue import PolymarketVenue
from py_clob_client_v2.clob_types import ApiCreds

from argus_core import Secret, VenueError

TOKEN = "1234"
KEY, SECRET, PASSPHRASE = "rk-1", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=", "rp-1"
OPEN = "GET /data/orders"


class RacingSocket:
    """A socket whose first ``recv()`` returns a frame while the reader is cancelled in
    the same turn of the loop; later reads wait for ever."""

    def __init__(self, victim: list[asyncio.Task[None]]) -> None:
        self.victim = victim
        self.reads = 0

    async def send(self, message: str) -> None:
        pass

    async def recv(self) -> str:
        self.reads += 1
        if self.reads == 1:
            asyncio.get_running_loop().call_soon(self.victim[0].cancel)
            return json.dumps([])
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_cancel_that_lands_as_a_frame_arrives_stops_the_user_channel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    victim: list[asyncio.Task[None]] = []
    sockets: list[RacingSocket] = []

    @contextlib.asynccontextmanager
    async def connect(*args: Any, **kwargs: Any) -> AsyncIterator[RacingSocket]:
        sockets.append(RacingSocket(victim))
        yield sockets[-1]

    async def creds() -> ApiCreds:
        return ApiCreds("k", "s", "p")

    async def on_event(event: dict[str, Any]) -> None:
        pass

    monkeypatch.setattr(uc, "ws_connect", connect)
    settings = PolymarketSettings(reconnect_min_s=0.001, reconnect_max_s=0.002,
                                  ws_ping_interval_s=60)
    channel = uc.UserChannel(settings, "ws://127.0.0.1:1/ws/user", creds, on_event)
    victim.append(asyncio.get_running_loop().create_task(channel.run()))
    done, _ = await asyncio.wait(victim, timeout=2.0)
    assert done, "the cancelled user channel kept running (the cancel was lost)"
    assert victim[0].cancelled() and len(sockets) == 1


@pytest.mark.parametrize(("faults", "fails"), [
    ([HttpFault.AFTER_502], False), ([HttpFault.S429, HttpFault.TRUNCATED], False),
    ([HttpFault.S503_JSON] * 3, True)], ids=["502", "429-then-cut", "503-every-time"])
async def test_open_orders_is_asked_again_then_a_venue_error(
        monkeypatch: pytest.MonkeyPatch, faults: list[HttpFault], fails: bool) -> None:
    monkeypatch.setenv("PM_TEST_KEY", HARDHAT_KEY)
    books = [make_book(TOKEN, "0xcond-a", [("0.60", "30")], [("0.64", "40")])]
    clob = LocalClob({TOKEN: books[0]}, api_key=KEY, api_secret=SECRET,
                     api_passphrase=PASSPHRASE)
    server = SnapshotServer([], books, clob=clob).start()
    plan = FaultPlan(0, http_rate=0.0, forced={(OPEN, n): f for n, f in enumerate(faults)})
    try:
        async with FaultProxy(server.url, plan) as proxy:
            monkeypatch.setenv("PM_K", KEY)
            monkeypatch.setenv("PM_S", SECRET)
            monkeypatch.setenv("PM_P", PASSPHRASE)
            venue = PolymarketVenue(PolymarketSettings(
                clob_url=proxy.url, private_key=Secret("$env:PM_TEST_KEY"),
                api_key=Secret("$env:PM_K"), api_secret=Secret("$env:PM_S"),
                api_passphrase=Secret("$env:PM_P"), user_channel=False,
                request_timeout_s=0.5, order_lookup_interval_s=0.01))
            try:
                if fails:
                    with pytest.raises(VenueError, match=r"GET /data/orders failed 3 times"):
                        await venue.open_orders()
                else:
                    assert await venue.open_orders() == []
            finally:
                await venue.close()
    finally:
        server.stop()
    assert proxy.seen.count(OPEN) == (3 if fails else len(faults) + 1)
