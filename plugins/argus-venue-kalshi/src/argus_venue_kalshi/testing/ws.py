"""The local exchange's websocket server: Kalshi's command protocol (``subscribe`` /
``unsubscribe`` with ``id``; ``subscribed`` answers with a ``sid``), the
``orderbook_delta`` channel (an ``orderbook_snapshot`` per market, then
``orderbook_delta`` frames, ``seq`` counting up by one per subscription), the
``market_lifecycle_v2`` channel (every market's ``determined`` / ``settled`` events) and
the private ``fill`` channel (every fill of the account, as it happens; nothing replayed).

A handshake carrying the key must be signed over ``GET /trade-api/ws/v2`` (401
otherwise); one without any auth header is an unauthenticated connection, whose subscribes
to the private ``orderbook_delta`` and ``fill`` channels are refused with error 9
("Authentication required"), as Kalshi documents (an exchange made without a public key
takes every subscribe: the offline examples').  Faults:
:meth:`LocalWs.skip_seq` (a sequence gap), :meth:`LocalWs.send_malformed` (a frame
that is not JSON), :meth:`LocalWs.drop` (every socket dies), :attr:`LocalWs.accepting` (False:
handshakes are refused with 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from argus_venue_kalshi import constants as C
from argus_venue_kalshi import signing
from argus_venue_kalshi.testing.engine import LocalEngine

#: Channels Kalshi serves only on an authenticated connection.
PRIVATE_CHANNELS = frozenset({"orderbook_delta", "fill"})


class _Sub:
    def __init__(self, sid: int, tickers: list[str]) -> None:
        self.sid, self.tickers, self.seq = sid, tickers, 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class _Conn:
    def __init__(self, ws: ServerConnection, authenticated: bool) -> None:
        self.ws = ws
        #: signed handshake (or an exchange without a key): private channels allowed
        self.authenticated = authenticated
        self.subs: dict[int, _Sub] = {}
        self.fill_sids: list[int] = []  # subscriptions to the private ``fill`` channel
        self.lifecycle_sids: list[int] = []  # subscriptions to ``market_lifecycle_v2``
        self.out: asyncio.Queue[str] = asyncio.Queue()


class LocalWs:
    """Websocket server over ``engine``; ``public_key`` verifies the handshake."""

    def __init__(self, engine: LocalEngine, key_id: str,
                 public_key: rsa.RSAPublicKey | None) -> None:
        self.engine, self.key_id, self.public_key = engine, key_id, public_key
        self.port = 0
        self.connections: list[_Conn] = []
        self.commands: list[dict[str, Any]] = []
        self.refused_handshakes = 0
        self._sids = itertools.count(1)
        self._skip = 0
        self._server: Server | None = None
        #: Fault: refuse every handshake (503) while False, as an exchange that is down.
        self.accepting = True
        #: True: an unsigned handshake is refused with 401 too (some of Kalshi's pages say
        #: every connection must be signed); False: it is an unauthenticated connection.
        self.unsigned_refused = False
        engine.listeners.append(self._on_book)
        engine.fill_listeners.append(self._on_fill)
        engine.lifecycle_listeners.append(self._on_lifecycle)

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/trade-api/ws/v2`` (the venue's ``ws_url``)."""
        return f"ws://127.0.0.1:{self.port}{C.WS_PATH}"

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        self._server = await serve(self._handle, "127.0.0.1", 0,
                                   process_request=self._check_signature)
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- faults ----------------------------------------------------------------------
    def skip_seq(self, n: int = 1) -> None:
        """The next delta frame's ``seq`` jumps ``n`` ahead: a gap."""
        self._skip += n

    def send_malformed(self, text: str = '{"type": "orderbook_delta", "msg": ') -> None:
        """Send every connection a frame that is not JSON."""
        for conn in self.connections:
            conn.out.put_nowait(text)

    def drop(self) -> None:
        """Every connection dies at once (no close frame)."""
        for conn in list(self.connections):
            conn.ws.transport.abort()

    def subscriptions(self) -> int:
        """Live ``orderbook_delta`` subscriptions across connections."""
        return sum(len(c.subs) for c in self.connections)

    # -- protocol --------------------------------------------------------------------
    def _check_signature(self, connection: ServerConnection, request: Request
                         ) -> Response | None:
        if not self.accepting:
            self.refused_handshakes += 1
            return connection.respond(503, "unavailable\n")
        if self.public_key is None:
            return None
        h: Headers = request.headers
        if C.HEADER_KEY not in h and not self.unsigned_refused:
            return None  # unauthenticated: public channels only (error 9 for the others)
        ok = (h.get(C.HEADER_KEY) == self.key_id
              and signing.verify(self.public_key, h.get(C.HEADER_SIGNATURE, ""),
                                 h.get(C.HEADER_TIMESTAMP, ""), "GET", request.path))
        if ok:
            return None
        self.refused_handshakes += 1
        return connection.respond(401, "invalid signature\n")

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn(ws, self.public_key is None or (
            ws.request is not None and C.HEADER_KEY in ws.request.headers))
        self.connections.append(conn)
        sender = asyncio.get_running_loop().create_task(self._send_loop(conn))
        try:
            async for raw in ws:
                self._command(conn, json.loads(raw))
        except Exception:  # a dropped socket ends the session
            pass
        finally:
            sender.cancel()
            self.connections.remove(conn)

    async def _send_loop(self, conn: _Conn) -> None:
        while True:
            text = await conn.out.get()
            await conn.ws.send(text)

    def _command(self, conn: _Conn, cmd: dict[str, Any]) -> None:
        self.commands.append(cmd)
        params = cmd.get("params") or {}
        channels = params.get("channels") or []
        if cmd.get("cmd") == "subscribe" and not conn.authenticated and \
                set(channels) & PRIVATE_CHANNELS:
            _put(conn, {"id": cmd.get("id"), "type": "error",
                        "msg": {"code": C.WS_ERROR_AUTH_REQUIRED,
                                "msg": "Authentication required"}})
        elif cmd.get("cmd") == "subscribe" and "fill" in channels:
            sid = next(self._sids)
            conn.fill_sids.append(sid)
            _put(conn, {"id": cmd.get("id"), "type": "subscribed",
                        "msg": {"channel": "fill", "sid": sid}})
        elif cmd.get("cmd") == "subscribe" and \
                C.WS_LIFECYCLE_CHANNEL in (params.get("channels") or []):
            sid = next(self._sids)
            conn.lifecycle_sids.append(sid)
            _put(conn, {"id": cmd.get("id"), "type": "subscribed",
                        "msg": {"channel": C.WS_LIFECYCLE_CHANNEL, "sid": sid}})
        elif cmd.get("cmd") == "subscribe":
            tickers = params.get("market_tickers") or [params.get("market_ticker")]
            sub = _Sub(next(self._sids), [t for t in tickers if t in self.engine.books])
            conn.subs[sub.sid] = sub
            _put(conn, {"id": cmd.get("id"), "type": "subscribed",
                        "msg": {"channel": "orderbook_delta", "sid": sub.sid}})
            for ticker in sub.tickers:
                _put(conn, self._snapshot(sub, ticker))
        elif cmd.get("cmd") == "unsubscribe":
            for sid in params.get("sids", []):
                if conn.subs.pop(sid, None) is not None:
                    _put(conn, {"id": cmd.get("id"), "sid": sid, "type": "unsubscribed"})
        else:
            _put(conn, {"id": cmd.get("id"), "type": "error",
                        "msg": {"code": 5, "msg": "Unknown command"}})

    def _snapshot(self, sub: _Sub, ticker: str) -> dict[str, Any]:
        book = self.engine.orderbook_fp(ticker)["orderbook_fp"]
        return {"type": "orderbook_snapshot", "sid": sub.sid, "seq": sub.next_seq(),
                "msg": {"market_ticker": ticker, "yes_dollars_fp": book["yes_dollars"],
                        "no_dollars_fp": book["no_dollars"]}}

    def _on_book(self, ticker: str, side: str, cents: int | Decimal, delta: int) -> None:
        for conn in self.connections:
            for sub in conn.subs.values():
                if ticker not in sub.tickers:
                    continue
                sub.seq += self._skip
                self._skip = 0
                _put(conn, {"type": "orderbook_delta", "sid": sub.sid, "seq": sub.next_seq(),
                            "msg": {"market_ticker": ticker, "side": side,
                                    "price_dollars": f"{Decimal(cents) / 100:.4f}",
                                    "delta_fp": f"{delta}.00"}})


    def fill_subscriptions(self) -> int:
        """Live ``fill`` subscriptions across connections."""
        return sum(len(c.fill_sids) for c in self.connections)

    def _on_fill(self, fill: dict[str, Any]) -> None:
        msg = {key: fill[key] for key in (
            "trade_id", "order_id", "client_order_id", "market_ticker", "is_taker", "side",
            "action", "count", "count_fp", "yes_price", "no_price", "yes_price_dollars",
            "no_price_dollars", "ts")}
        for conn in self.connections:
            for sid in conn.fill_sids:
                _put(conn, {"type": "fill", "sid": sid, "msg": msg})


    def send_lifecycle(self, msg: dict[str, Any]) -> None:
        """Send every lifecycle subscriber a ``market_lifecycle_v2`` frame carrying ``msg``."""
        self._on_lifecycle(msg)

    def _on_lifecycle(self, msg: dict[str, Any]) -> None:
        for conn in self.connections:
            for sid in conn.lifecycle_sids:
                _put(conn, {"type": C.WS_LIFECYCLE_CHANNEL, "sid": sid, "msg": msg})


def _put(conn: _Conn, frame: dict[str, Any]) -> None:
    conn.out.put_nowait(json.dumps(frame))
