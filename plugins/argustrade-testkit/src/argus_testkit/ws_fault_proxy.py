"""A 127.0.0.1 websocket proxy in front of a local exchange's socket that applies a
:class:`FaultPlan`'s draw to every frame the exchange sends: delivered, delivered twice
(a duplicate fill), or the connection drops instead.

The client's handshake headers (an API key, a signature over the path) and its messages
are forwarded unchanged; each client connection gets its own upstream connection.  Needs
``websockets`` (every venue plugin that has a socket depends on it).
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from argus_testkit.faults import FaultPlan, WsFault

#: Handshake headers the proxy sets itself (or the library does).
_HOP = {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
        "sec-websocket-extensions", "sec-websocket-accept", "content-length", "user-agent"}


class WsFaultProxy:
    """Proxy the websocket server at ``upstream`` (``ws://127.0.0.1:PORT``).

    Frames on the i-th connection draw from the key ``"ws <name> <i>"``; ``connections``
    counts the client connections, ``disconnects`` the drops the plan caused."""

    def __init__(self, upstream: str, plan: FaultPlan, *, name: str = "") -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.name = name
        self.connections = 0
        self.disconnects = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` of the proxy."""
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> WsFaultProxy:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _handle(self, client: ServerConnection) -> None:
        conn = self.connections
        self.connections += 1
        request = client.request
        assert request is not None
        headers = [(k, v) for k, v in request.headers.raw_items() if k.lower() not in _HOP]
        try:
            upstream = await connect(self.upstream + request.path, additional_headers=headers,
                                     compression=None, open_timeout=5)
        except (OSError, InvalidStatus, TimeoutError):
            await client.close(1011, "upstream refused")
            return
        key = f"ws {self.name} {conn}".replace("  ", " ")
        up = asyncio.ensure_future(self._upstream_to_client(upstream, client, key))
        down = asyncio.ensure_future(self._client_to_upstream(client, upstream))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Exception):
                    await task
            client.transport.abort()
            await upstream.close()

    async def _upstream_to_client(self, upstream: ClientConnection, client: ServerConnection,
                                  key: str) -> None:
        async for frame in upstream:
            fault = self.plan.ws(key)
            if fault is WsFault.DISCONNECT:
                self.disconnects += 1
                return
            await client.send(frame)
            if fault is WsFault.DUPLICATE:
                await client.send(frame)

    @staticmethod
    async def _client_to_upstream(client: ServerConnection, upstream: ClientConnection) -> None:
        async for message in client:
            await upstream.send(message)
