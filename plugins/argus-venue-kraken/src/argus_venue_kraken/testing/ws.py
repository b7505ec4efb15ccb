"""A Kraken-protocol websocket server on 127.0.0.1 playing one script per connection,
and the private executions feed of a LocalKrakenRest."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from argus_venue_kraken.testing.rest import LocalKrakenRest


@attrs.frozen
class Send:
    """Send a frame: a dict (JSON-encoded) or a str (sent verbatim, e.g. malformed), or a
    callable returning one, called when the script gets here (a frame built from what
    the exchange did meanwhile)."""

    frame: Any


@attrs.frozen
class AwaitSubscribe:
    """Wait until the client has (re)subscribed ``channel`` (for ``symbol``, if given)."""

    channel: str
    symbol: str | None = None
    count: int = 1  # the n-th such subscribe on this connection


@attrs.frozen
class Disconnect:
    """Close the connection (``abort`` drops TCP without a close frame)."""

    abort: bool = False


@attrs.frozen
class Silence:
    """Stop talking (no heartbeats) so the client's heartbeat deadline fires."""


@attrs.frozen
class Call:
    """Run ``fn()`` when the script gets here (e.g. move the REST server's book)."""

    fn: Callable[[], Any]


@attrs.frozen
class Until:
    """Wait until ``predicate()`` holds, checking every ``poll_s`` (for conditions outside this
    server, e.g. a row in another process's ledger); fails after ``timeout_s``."""

    predicate: Callable[[], bool]
    timeout_s: float = 20.0
    poll_s: float = 0.01


@attrs.frozen
class ForwardExecutions:
    """Act as the private ``executions`` feed of ``rest`` once the client subscribed (with
    the right token): a snapshot frame, then every new executions item as an update frame,
    until the connection closes."""

    rest: LocalKrakenRest


Step = Send | AwaitSubscribe | Disconnect | Silence | Call | Until | ForwardExecutions


class LocalKrakenWs:
    """A Kraken WS v2 server on 127.0.0.1 playing ``sessions[i]`` on the i-th connection."""

    def __init__(self, sessions: list[list[Step]], *,
                 reject_symbols: tuple[str, ...] = (), token: str | None = None) -> None:
        self.sessions = sessions
        self.reject_symbols = reject_symbols
        #: When set, subscriptions must carry this token (the authenticated endpoint).
        self.token = token
        self.received: list[tuple[int, dict[str, Any]]] = []
        self.connections = 0
        self._server: Server | None = None
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    async def __aenter__(self) -> LocalKrakenWs:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def subscriptions(self, channel: str, conn: int | None = None) -> list[dict[str, Any]]:
        """Subscribe requests received for ``channel`` (optionally on connection ``conn``)."""
        return [m for c, m in self.received
                if m.get("method") == "subscribe" and m.get("params", {}).get("channel") == channel
                and (conn is None or c == conn)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (woken by every received message)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def _handler(self, ws: ServerConnection) -> None:
        conn = self.connections
        self.connections += 1
        steps = self.sessions[conn] if conn < len(self.sessions) else []
        reader = asyncio.create_task(self._reader(ws, conn))
        try:
            for step in steps:
                if isinstance(step, Send):
                    frame = step.frame() if callable(step.frame) else step.frame
                    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
                elif isinstance(step, AwaitSubscribe):
                    def seen(step: AwaitSubscribe = step) -> bool:
                        hits = [m for m in self.subscriptions(step.channel, conn)
                                if step.symbol is None
                                or step.symbol in m["params"].get("symbol", [])]
                        return len(hits) >= step.count
                    await self.wait_for(seen, timeout=10)
                elif isinstance(step, Disconnect):
                    if step.abort:
                        ws.transport.abort()
                    else:
                        await ws.close()
                    return
                elif isinstance(step, Silence):
                    break  # say nothing more; just read until the client goes away
                elif isinstance(step, Call):
                    step.fn()
                elif isinstance(step, Until):
                    async with asyncio.timeout(step.timeout_s):
                        while not step.predicate():
                            await asyncio.sleep(step.poll_s)
                elif isinstance(step, ForwardExecutions):
                    await self._forward_executions(ws, step.rest)
            await reader
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await reader

    async def _forward_executions(self, ws: ServerConnection, rest: LocalKrakenRest) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()

        def listener(items: list[dict[str, Any]]) -> None:  # runs in the HTTP thread
            loop.call_soon_threadsafe(queue.put_nowait, items)

        snapshot = rest.subscribe_executions(listener)
        sequence = 1
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            await ws.send(json.dumps({"channel": "executions", "type": "snapshot",
                                      "data": snapshot, "sequence": sequence}))
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # the client went away
                    getter.cancel()
                    return
                sequence += 1
                await ws.send(json.dumps({"channel": "executions", "type": "update",
                                          "data": getter.result(), "sequence": sequence}))
        finally:
            closed.cancel()
            rest.unsubscribe_executions(listener)

    async def _reader(self, ws: ServerConnection, conn: int) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            self.received.append((conn, msg))
            self._changed.set()
            method = msg.get("method")
            if method in ("subscribe", "unsubscribe"):
                params = msg.get("params", {})
                bad_token = (self.token is not None and method == "subscribe"
                             and params.get("token") != self.token)
                for symbol in params.get("symbol", []) or [None]:
                    ok = symbol not in self.reject_symbols and not bad_token
                    ack: dict[str, Any] = {"method": method, "success": ok,
                                           "result": {"channel": params.get("channel"),
                                                      **({"symbol": symbol} if symbol else
                                                         {k: v for k, v in params.items()
                                                          if k.startswith("snap_")})},
                                           "time_in": "2023-10-06T17:35:55.219022Z",
                                           "time_out": "2023-10-06T17:35:55.219067Z"}
                    if bad_token:
                        ack["error"] = "EGeneral:Invalid arguments:token"
                    elif not ok:
                        ack["error"] = f"Currency pair not supported {symbol}"
                    if "req_id" in msg:
                        ack["req_id"] = msg["req_id"]
                    await ws.send(json.dumps(ack))
