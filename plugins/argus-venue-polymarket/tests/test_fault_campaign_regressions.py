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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from argus_venue_polymarket import user_channel as uc
from argus_venue_polymarket.config import PolymarketSettings
from py_clob_client_v2.clob_types import ApiCreds


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
