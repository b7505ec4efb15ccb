"""A local Gamma + CLOB server (REST and the websocket market channel) replaying a
recorded snapshot directory.

The offline example and the tests point the *real* venue clients at it::

    python -m argus_venue_polymarket.replay_server --dir examples/polymarket/snapshot \
        --port 8765 --ws-port 8766 --resolve-after-books

prints ``gamma_url=... clob_url=... ws_url=...`` and serves until interrupted.
A snapshot directory holds:

* ``events.json`` -- a list of Gamma ``/events`` items (served with the real
  ``limit``/``offset``/``active``/``closed``/``id`` semantics); their markets are also
  served by ``GET /markets?condition_ids=...&closed=...``;
* ``books.json`` -- a list of CLOB book summaries (``GET /book?token_id=``,
  ``POST /books``, and the websocket's ``book`` snapshot on subscribe, also on a
  connection's later ``"operation": "subscribe"`` message);
* ``resolutions.json`` (optional) -- ``{"timestamp": "<ms>", "outcome_prices":
  {"<gamma market id>": ["1", "0"], ...}}``: how markets resolve.  After
  :meth:`SnapshotServer.resolve` (or, with ``resolve_after_books``, right after
  the websocket sent its book snapshots) those markets are served by Gamma as
  closed with final ``outcomePrices``, ``umaResolutionStatus: "resolved"`` and (when
  ``timestamp`` is given) that time as ``closedTime``, and the websocket sends a
  ``market_resolved`` frame for each (the venue's payload shape).  An event whose
  markets are all closed is served closed (``GET /events?closed=false`` leaves it out);
  ``GET /markets`` filters by ``condition_ids`` or ``clob_token_ids`` (repeated).

:meth:`SnapshotServer.list_event` lists an event mid-run (Gamma serves it from then on,
and the market channel announces each of its markets with a ``new_market`` frame).

It binds 127.0.0.1 only.  The HTTP side is the standard library's threading
server and the websocket side ``websockets``' threaded server, because this is
a fixture server, not product code with throughput needs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

Handler = Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any] | None]


class Reset:
    """An answer payload meaning "no (complete) answer": the connection is reset (RST),
    after ``partial`` bytes of the body when given (a reset mid-body)."""

    def __init__(self, partial: bytes = b"") -> None:
        self.partial = partial


class Headed:
    """An answer payload with extra response headers (a 429's ``Retry-After``, say):
    ``payload`` is served as any other, with ``headers`` added."""

    def __init__(self, payload: Any, headers: dict[str, str]) -> None:
        self.payload = payload
        self.headers = headers


class RequestHandler(Protocol):
    """A handler that also sees the request's headers and raw body (auth checks)."""

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str], raw_body: bytes) -> tuple[int, Any] | None:
        """Answer the request, or None to let the snapshot endpoints answer it."""


class SnapshotServer:
    """Serves a snapshot's events and books over HTTP on 127.0.0.1.

    ``extra`` handlers run first and may answer any request (tests use them to
    inject errors, record order posts, or serve CLOB order endpoints); ``clob``
    (e.g. :class:`argus_venue_polymarket.testing.LocalClob`) runs before them and
    also sees headers and the raw body.  A handler answering a :class:`Reset` payload
    gets the connection reset instead of an answer (fault injection); a :class:`Headed`
    one is served with its extra headers.  :meth:`push` sends a
    frame to every market-channel client.  The websocket port also serves ``/ws/user``
    (the user channel) when ``clob`` has ``serve_user_channel``; otherwise that path is
    closed with 1008.
    """

    def __init__(self, events: list[dict[str, Any]], books: list[dict[str, Any]],
                 port: int = 0, extra: Handler | None = None, *,
                 resolutions: dict[str, Any] | None = None, ws_port: int | None = None,
                 resolve_after_books: bool = False, clob: RequestHandler | None = None
                 ) -> None:
        self.events = events
        self.books = {str(b["asset_id"]): b for b in books if isinstance(b, dict)
                      and "asset_id" in b}
        self.extra = extra
        self.clob = clob
        self.requests: list[tuple[str, str, Any]] = []
        self._ws_conns: set[ServerConnection] = set()
        self._subscribed: dict[ServerConnection, set[str]] = {}  # market channel, per client
        self.resolutions = resolutions or {}
        self.resolved = False
        self.resolve_after_books = resolve_after_books
        self.ws_messages: list[str] = []  # what websocket clients sent (subscriptions, PINGs)
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body_raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(body_raw) if body_raw else None
                except ValueError:
                    body = body_raw.decode("utf-8", "replace")
                query = parse_qs(parts.query)
                server.requests.append((method, parts.path, body if body is not None else query))
                status, payload = server.handle(method, parts.path, query, body,
                                                dict(self.headers), body_raw)
                if isinstance(payload, Reset):
                    self._reset(status, payload)
                    return
                extra: dict[str, str] = {}
                if isinstance(payload, Headed):
                    payload, extra = payload.payload, payload.headers
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client went away (a test killed it) before the answer

            def _reset(self, status: int, reset: Reset) -> None:
                """Send ``reset.partial`` bytes of an answer (if any), then an RST."""
                self.close_connection = True
                try:
                    if reset.partial:
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(reset.partial) + 64))
                        self.end_headers()
                        self.wfile.write(reset.partial)
                        self.wfile.flush()
                    # linger 0: close() sends RST, not FIN — the client sees a reset
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._thread: threading.Thread | None = None
        self.headers_seen: list[dict[str, str]] = []
        self._ws = (serve(self._ws_handler, "127.0.0.1", ws_port, ping_interval=None,
                          process_request=self._ws_admit)
                    if ws_port is not None else None)
        self._ws_thread: threading.Thread | None = None

    @classmethod
    def from_dir(cls, path: str | Path, port: int = 0, extra: Handler | None = None, *,
                 ws_port: int | None = None, resolve_after_books: bool = False
                 ) -> SnapshotServer:
        """Load ``events.json``, ``books.json`` and (if present) ``resolutions.json``."""
        root = Path(path)
        events = json.loads((root / "events.json").read_text())
        books = json.loads((root / "books.json").read_text())
        res_file = root / "resolutions.json"
        resolutions = json.loads(res_file.read_text()) if res_file.exists() else None
        return cls(events, books, port, extra, resolutions=resolutions, ws_port=ws_port,
                   resolve_after_books=resolve_after_books)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # bound AF_INET socket: getsockname() gives (str, int)
        return f"http://{host}:{port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/market`` (needs ``ws_port``)."""
        if self._ws is None:
            raise RuntimeError("this server was started without a websocket (ws_port=None)")
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/ws/market"

    @property
    def user_ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/user``: the user channel (needs ``ws_port``)."""
        return self.ws_url.removesuffix("/ws/market") + "/ws/user"

    # --- resolution ---------------------------------------------------------------------

    def resolve(self) -> None:
        """From now on Gamma serves the markets in ``resolutions`` as resolved."""
        with self._lock:
            self.resolved = True

    def _market_view(self, event: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
        prices = self.resolutions.get("outcome_prices", {}).get(str(market.get("id")))
        if not self.resolved or prices is None:
            return market
        out = copy.deepcopy(market)
        out.update(closed=True, acceptingOrders=False, umaResolutionStatus="resolved",
                   outcomePrices=json.dumps([str(p) for p in prices]))
        ts = str(self.resolutions.get("timestamp", ""))
        if ts.isdigit():
            out["closedTime"] = datetime.fromtimestamp(int(ts) / 1000, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")
        return out

    def _event_view(self, event: dict[str, Any]) -> dict[str, Any]:
        if not self.resolved:
            return event
        out = dict(event, markets=[self._market_view(event, m) for m in event.get("markets", [])])
        if out["markets"] and all(m.get("closed") for m in out["markets"]):
            out["closed"] = True
        return out

    def _resolved_frames(self, tokens: set[str]) -> list[dict[str, Any]]:
        """``market_resolved`` frames (the venue's shape) for resolved markets of ``tokens``."""
        frames = []
        ts = str(self.resolutions.get("timestamp", ""))
        for event in self.events:
            for m in event.get("markets", []):
                prices = self.resolutions.get("outcome_prices", {}).get(str(m.get("id")))
                ids = json.loads(m.get("clobTokenIds") or "[]")
                if prices is None or not tokens & set(ids) or "1" not in map(str, prices):
                    continue  # unresolved, not subscribed, or a 50-50 (Gamma only)
                outcomes = json.loads(m.get("outcomes") or "[]")
                win = [str(p) for p in prices].index("1")
                frames.append({
                    "id": str(m.get("id")), "question": m.get("question", ""),
                    "market": m.get("conditionId", ""), "slug": m.get("slug", ""),
                    "assets_ids": ids, "outcomes": outcomes, "winning_asset_id": ids[win],
                    "winning_outcome": outcomes[win] if win < len(outcomes) else "",
                    "event_message": {"id": str(event.get("id")), "slug": event.get("slug", ""),
                                      "title": event.get("title", "")},
                    "timestamp": ts, "event_type": "market_resolved"})
        return frames

    # --- websocket market channel -------------------------------------------------------

    def _ws_admit(self, conn: ServerConnection, request: Request) -> Response | None:
        """Refuse the user channel's handshake (503) while the ``clob`` says it is down."""
        if urlsplit(request.path).path.rstrip("/").endswith("/ws/user") and \
                getattr(self.clob, "user_down", False):
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "user channel down (test)\n")
        return None

    def _ws_handler(self, conn: ServerConnection) -> None:
        """``/ws/user``: the ``clob``'s user channel.  Anything else is the market channel:
        subscribe -> one ``book`` frame (a JSON array) for the subscribed tokens, then
        (``resolve_after_books``) ``market_resolved`` frames; then answer ``PING``."""
        path = conn.request.path if conn.request is not None else ""
        if urlsplit(path).path.rstrip("/").endswith("/ws/user"):
            serve = getattr(self.clob, "serve_user_channel", None)
            if serve is None:
                conn.close(1008, "no user channel here")
                return
            serve(conn)
            return
        self._ws_conns.add(conn)
        try:
            raw = conn.recv()
            self.ws_messages.append(str(raw))
            sub = json.loads(raw)
            tokens = [str(t) for t in sub.get("assets_ids", [])]
            self._subscribed[conn] = set(tokens)
            self._send_books(conn, tokens)
            if self.resolve_after_books:
                self.resolve()
                for frame in self._resolved_frames(set(tokens)):
                    conn.send(json.dumps(frame))
            for msg in conn:
                self.ws_messages.append(str(msg))
                if msg == "PING":
                    conn.send("PONG")
                    continue
                # Once connected: {"assets_ids": [...], "operation": "subscribe" |
                # "unsubscribe"} (the venue's documented update message).
                update = json.loads(msg)
                ids = [str(t) for t in update.get("assets_ids", [])]
                if update.get("operation") == "subscribe":
                    self._subscribed[conn].update(ids)
                    self._send_books(conn, ids)
                elif update.get("operation") == "unsubscribe":
                    self._subscribed[conn].difference_update(ids)
        except (ConnectionClosed, ValueError, AttributeError):
            return
        finally:
            self._ws_conns.discard(conn)
            self._subscribed.pop(conn, None)

    def _send_books(self, conn: ServerConnection, tokens: list[str]) -> None:
        """One ``book`` frame (a JSON array) for the ``tokens`` this server has books of:
        what the venue sends on a subscription."""
        with self._lock:
            books = [dict(self.books[t], event_type="book") for t in tokens if t in self.books]
        if books:
            conn.send(json.dumps(books))

    def list_event(self, event: dict[str, Any], books: list[dict[str, Any]]) -> int:
        """List a Gamma event (and its markets' books) from now on, as the venue lists a
        market: Gamma serves it and every market-channel client gets a ``new_market`` frame
        per market (the venue's shape, with ``custom_feature_enabled``).  Returns how many
        clients were told."""
        with self._lock:
            self.events.append(event)
            self.books.update({str(b["asset_id"]): b for b in books})
        told = 0
        for market in event.get("markets", []):
            told = max(told, self.push({
                "id": str(market.get("id")), "question": market.get("question", ""),
                "market": market.get("conditionId", ""), "slug": market.get("slug", ""),
                "description": market.get("description", ""),
                "assets_ids": json.loads(market.get("clobTokenIds") or "[]"),
                "outcomes": json.loads(market.get("outcomes") or "[]"),
                "event_message": {"id": str(event.get("id")), "ticker": event.get("ticker", ""),
                                  "slug": event.get("slug", ""), "title": event.get("title", ""),
                                  "description": event.get("description", "")},
                "timestamp": str(int(time.time() * 1000)), "event_type": "new_market"}))
        return told

    def push(self, frame: dict[str, Any] | list[Any], token: str | None = None) -> int:
        """Send ``frame`` (JSON) to every connected websocket client (with ``token``: to
        those subscribed to it); returns how many."""
        sent = 0
        for conn in list(self._ws_conns):
            if token is not None and token not in self._subscribed.get(conn, ()):
                continue
            try:
                conn.send(json.dumps(frame))
                sent += 1
            except ConnectionClosed:
                self._ws_conns.discard(conn)
        return sent

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str], raw_body: bytes = b"") -> tuple[int, Any]:
        """Route one request (``clob``, then ``extra``, then the snapshot endpoints)."""
        self.headers_seen.append(headers)
        if self.clob is not None:
            answer = self.clob.handle(method, path, query, body, headers, raw_body)
            if answer is not None:
                return answer
        if self.extra is not None:
            answer = self.extra(method, path, query, body)
            if answer is not None:
                return answer
        if method == "GET" and path == "/events":
            return 200, self._events(query)
        if method == "GET" and path == "/book":
            token = (query.get("token_id") or [""])[0]
            book = self.books.get(token)
            return (200, book) if book else (404, {"error": "No orderbook exists for the "
                                                            "requested token id"})
        if method == "GET" and path == "/markets":
            return 200, self._markets(query)
        if method == "POST" and path == "/books":
            if not isinstance(body, list):
                return 400, {"error": "body must be a list of {token_id}"}
            return 200, [self.books[str(p.get("token_id"))] for p in body
                         if isinstance(p, dict) and str(p.get("token_id")) in self.books]
        return 404, {"error": f"no route {method} {path}"}

    def _events(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        def flag(name: str) -> bool | None:
            v = _first(query, name)
            return None if v is None else v.lower() == "true"

        limit = int((query.get("limit") or ["100"])[0])
        offset = int((query.get("offset") or ["0"])[0])
        active, closed = flag("active"), flag("closed")
        ids = set(query.get("id") or [])
        with self._lock:
            events = [self._event_view(e) for e in self.events]
        rows = [e for e in events
                if (not ids or str(e.get("id")) in ids)
                and (active is None or bool(e.get("active", True)) == active)
                and (closed is None or bool(e.get("closed", False)) == closed)]
        return rows[offset:offset + limit]

    def _markets(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """``GET /markets`` filtered by ``condition_ids`` / ``clob_token_ids`` (repeated) and
        ``closed``."""
        wanted = set(query.get("condition_ids") or [])
        tokens = set(query.get("clob_token_ids") or [])
        closed = _first(query, "closed")
        limit = int((query.get("limit") or ["500"])[0])
        with self._lock:
            markets = [self._market_view(e, m) for e in self.events for m in e.get("markets", [])]
        rows = [m for m in markets
                if (not wanted or m.get("conditionId") in wanted)
                and (not tokens or tokens & set(json.loads(m.get("clobTokenIds") or "[]")))
                and (closed is None or bool(m.get("closed", False)) == (closed == "true"))]
        return rows[:limit]

    def start(self) -> SnapshotServer:
        """Serve in daemon threads."""
        # shutdown() waits for the serve loop's next poll: at the default 0.5 s every stop
        # cost ~0.45 s (a campaign starts and stops one server per seed)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()
        if self._ws is not None:
            self._ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)
            self._ws_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the ports."""
        release = getattr(self.clob, "release_all", None)
        if release is not None:
            release()  # answer any order post a test held back
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._ws is not None:
            # A client on the caller's own event loop cannot answer the close while this
            # thread waits for it (the handler's thread then waits for ever): shut down
            # beside it, and after 5 s end the sockets that did not close.
            closer = threading.Thread(target=self._ws.shutdown, daemon=True)
            closer.start()
            closer.join(timeout=5)
            if closer.is_alive():
                for conn in list(self._ws.all_connections):
                    with contextlib.suppress(OSError):
                        conn.socket.shutdown(socket.SHUT_RDWR)
                closer.join(timeout=5)
            if self._ws_thread is not None:
                self._ws_thread.join(timeout=5)

    def __enter__(self) -> SnapshotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _first(query: dict[str, list[str]], name: str) -> str | None:
    """The first value of query parameter ``name``, or ``None`` when it is absent."""
    values = query.get(name)
    return values[0] if values else None


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve a snapshot directory until interrupted."""
    # The docstring's first paragraph: its first line alone stops mid-sentence.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="snapshot directory (events.json, books.json)")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0: any)")
    parser.add_argument("--ws-port", type=int, default=None,
                        help="websocket market channel port (omit: no websocket)")
    parser.add_argument("--resolve-after-books", action="store_true",
                        help="resolve the markets in resolutions.json right after the "
                             "websocket sent its book snapshots")
    args = parser.parse_args(argv)
    server = SnapshotServer.from_dir(args.dir, args.port, ws_port=args.ws_port,
                                     resolve_after_books=args.resolve_after_books)
    line = f"gamma_url={server.url} clob_url={server.url}"
    if args.ws_port is not None:
        line += f" ws_url={server.ws_url}"
    print(line, flush=True)
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
