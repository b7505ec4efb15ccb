"""Polymarket's dead-man's switch: :class:`HeartbeatKeeper` posts ``POST /v1/heartbeats``
while orders rest, so the venue does not cancel them; a failing heartbeat makes the
execution refuse new resting orders (fail closed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class HeartbeatKeeper:
    """Keeps Polymarket's dead-man's switch alive while orders rest.

    Without heartbeats the venue cancels all of the account's open orders
    (docs: "Send heartbeat").  The keeper posts one every ``interval_s``
    while ``resting`` is non-empty; a failure flips ``healthy`` to False so
    the execution refuses new resting orders until a heartbeat succeeds.
    """

    def __init__(self, send: Callable[[str], dict[str, Any]], interval_s: float) -> None:
        self._send = send
        self.interval_s = interval_s
        self.healthy = True
        self.heartbeat_id = ""
        self.sent = 0
        self.resting: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        """Send one heartbeat now (chaining the venue's heartbeat id)."""
        try:
            resp = await asyncio.to_thread(self._send, self.heartbeat_id)
        except Exception as exc:  # the client raises its own exception types
            self.healthy = False
            log.error("polymarket: heartbeat failed (%s); refusing new resting orders",
                      type(exc).__name__)
            return
        self.sent += 1
        self.healthy = True
        if isinstance(resp, dict) and resp.get("heartbeat_id"):
            self.heartbeat_id = str(resp["heartbeat_id"])

    def ensure_running(self) -> None:
        """Start the periodic task if orders rest and it is not running."""
        if self.resting and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.resting:
            await self.beat()
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        """Stop the periodic task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
