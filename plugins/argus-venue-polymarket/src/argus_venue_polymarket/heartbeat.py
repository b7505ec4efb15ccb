"""Polymarket's dead-man's switch: :class:`HeartbeatKeeper` posts ``POST /v1/heartbeats``
while orders rest, so the venue does not cancel them; a failing heartbeat makes the
execution refuse new resting orders (fail closed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class HeartbeatKeeper:
    """Keeps Polymarket's dead-man's switch alive while orders rest.

    Without heartbeats the venue cancels all of the account's open orders
    (docs: "Send heartbeat").  The keeper posts one every ``interval_s``
    while ``resting`` is non-empty; a failure flips ``healthy`` to False so
    the execution refuses new resting orders until a heartbeat succeeds
    (:meth:`recovered` sends that heartbeat when no order rests any more).
    """

    def __init__(self, send: Callable[[str], dict[str, Any]], interval_s: float) -> None:
        self._send = send
        self.interval_s = interval_s
        self.healthy = True
        self.heartbeat_id = ""
        self.sent = 0
        self.resting: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._probed_at = -math.inf  # monotonic time of recovered()'s last heartbeat

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

    async def recovered(self) -> bool:
        """Whether heartbeats work, asking the venue when they had failed: one heartbeat
        now (at most one per ``interval_s``), its outcome the answer.  Without it, a
        failure while the last order rested was final: the orders ended (the venue
        cancels them without heartbeats), no order rested, so none was sent, and every
        resting order was refused for the rest of the run (a maker went silent after a
        short CLOB outage)."""
        if self.healthy:
            return True
        now = time.monotonic()
        if now - self._probed_at >= self.interval_s:
            self._probed_at = now
            await self.beat()
            if self.healthy:
                log.warning("polymarket: heartbeats work again; resting orders are taken")
        return self.healthy

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
