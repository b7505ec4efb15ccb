"""This account's fills over the websocket's private ``fill`` channel.

:class:`FillStream` keeps one signed websocket session open (reconnecting with
jittered backoff, like the book stream), subscribes ``fill`` and hands every fill
message to a callback.  It only speeds fills up: Kalshi does not replay fills missed
while a socket was down, so ``executions()`` keeps polling ``GET /portfolio/fills``
beside it and books each fill once, by its id, whichever path saw it first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import connect

from argus_core import loads_frame
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.rest import KalshiRest

log = logging.getLogger(__name__)

FillCallback = Callable[[dict[str, Any]], None]


class FillStream:
    """Websocket sessions subscribed to ``fill``; ``on_fill(msg)`` per fill, until
    cancelled.  ``sessions`` counts the sessions that subscribed."""

    def __init__(self, settings: KalshiSettings, rest: KalshiRest, on_fill: FillCallback
                 ) -> None:
        self.settings, self.rest, self.on_fill = settings, rest, on_fill
        self._ids = itertools.count(1)
        self.sessions = 0

    async def run(self) -> None:
        """Sessions one after another, forever (cancel to stop)."""
        attempt = 0
        while True:
            try:
                headers = self.rest.signer().headers("GET", C.WS_PATH)
                async with connect(self.settings.ws_url, additional_headers=headers,
                                   open_timeout=self.settings.request_timeout_s,
                                   ping_interval=None) as ws:
                    await ws.send(json.dumps({"id": next(self._ids), "cmd": "subscribe",
                                              "params": {"channels": ["fill"]}}))
                    attempt = 0
                    while True:
                        # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel
                        # that lands as a frame arrives (the socket task never stops).
                        async with asyncio.timeout(self.settings.heartbeat_timeout_s):
                            raw = await ws.recv()
                        self._frame(raw)
            except (OSError, TimeoutError, websockets.ConnectionClosed,
                    websockets.InvalidHandshake) as exc:
                log.warning("kalshi fill websocket: %s: %s; reconnecting (fills meanwhile "
                            "come from the REST poll)", type(exc).__name__, exc)
            s = self.settings
            await asyncio.sleep(random.uniform(0, min(s.reconnect_max_s,
                                                      s.reconnect_base_s * 2 ** attempt)))
            attempt += 1

    def _frame(self, raw: str | bytes) -> None:
        try:
            # depth checked first: json.loads of a frame nested 100,000 deep raised
            # RecursionError (ending the session's task), or crashed the process where an
            # import had raised the recursion limit (py_ecc sets 100,000)
            frame = loads_frame(raw)
        except ValueError:
            log.warning("kalshi fill websocket: malformed frame ignored")
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "subscribed":
            self.sessions += 1
        elif kind == "error":
            log.warning("kalshi fill websocket error: %s", frame.get("msg"))
        elif kind == "fill" and isinstance(frame.get("msg"), dict):
            self.on_fill(frame["msg"])
