"""A Kraken-protocol REST server on 127.0.0.1: recorded public payloads, a private API
that verifies API-Sign and nonces, a small matching engine, scripted faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from argus_venue_kraken.testing.book import _parse_rfc3339_ns, _rfc3339

# -- REST server ---------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, codes: list[str]) -> None:
        super().__init__(codes)
        self.codes = codes


@attrs.define
class RecordedRequest:
    """One request the local REST server received."""

    method: str  # Kraken method, e.g. AddOrder
    http_method: str
    params: dict[str, str]
    headers: dict[str, str]
    body: str


class LocalKrakenRest:
    """A Kraken-protocol REST server on 127.0.0.1 (runs in a thread).

    ``public`` maps public method names to the JSON body to serve.  Private
    calls must carry ``API-Key`` and a valid ``API-Sign`` for ``api_secret``
    and a nonce above the last one seen, else Kraken's errors come back.
    """

    def __init__(self, public: dict[str, Any] | None = None, *, api_key: str = "",
                 api_secret: str = "", taker_bps: Decimal = Decimal(40),
                 clock_ns: Callable[[], int] | None = None) -> None:
        self.public = dict(public or {})
        self.api_key = api_key
        self.api_secret = api_secret
        #: Fee charged on local fills (Kraken Pro base tier taker: 0.40 %), in the quote asset.
        self.taker_bps = taker_bps
        self.clock_ns = clock_ns or time.time_ns
        #: Real time, for AddOrder deadlines (``clock_ns`` may replay a market's past).
        self.wall_ns: Callable[[], int] = time.time_ns
        #: Book per WS v2 symbol that marketable orders walk: (bids best first, asks best first).
        self.books: dict[str, tuple[list[tuple[Decimal, Decimal]],
                                    list[tuple[Decimal, Decimal]]]] = {}
        #: Every ``executions`` item published, in order.
        self.executions: list[dict[str, Any]] = []
        #: Orders that are no longer open (filled / cancelled), by txid.
        self.closed: dict[str, dict[str, Any]] = {}
        #: Every trade in private REST ``TradesHistory`` shape, by trade id (= exec_id).
        self.trades_history: dict[str, dict[str, Any]] = {}
        self._listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        #: While True, new executions reach only later snapshots, not connected feeds
        #: (a private socket that lags or died with the process that owned it).
        self.hold_executions = False
        self._exec_ids = itertools.count(1)
        self.requests: list[RecordedRequest] = []
        #: AddOrders the engine refused because they reached it after their ``deadline``.
        self.deadline_refusals = 0
        self.injected: dict[str, list[tuple[str, Any]]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.last_nonce = 0
        #: Eventual consistency: an order shows in OpenOrders / ClosedOrders / QueryOrders
        #: only this many seconds (of ``wall_ns``) after Kraken placed it.
        self.visible_after_s = 0.0
        self._placed_ns: dict[str, int] = {}  # txid -> wall_ns when placed
        self.dead_man: list[int] = []
        self.balance = {"ZUSD": "10000.0000", "XXBT": "0.5000000000"}
        self._txids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    # -- lifecycle --
    @property
    def url(self) -> str:
        """Base URL to put in ``rest_url``."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):  # typeshed allows it (AF_UNIX); an AF_INET server has str
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> LocalKrakenRest:
        """Listen on an ephemeral 127.0.0.1 port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._handle(self, "GET")

            def do_POST(self) -> None:
                owner._handle(self, "POST")

        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalKrakenRest:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting --
    def inject(self, method: str, *responses: tuple[str, Any]) -> None:
        """Queue scripted answers for ``method``; each is used once, in order.

        Without acting: ``("error", [codes])``: Kraken's error array;
        ``("status", 503)``: an HTTP error; ``("raw", text)``: a non-JSON body;
        ``("json", payload)``; ``("reset", None)``: half a body, then the
        connection is reset.

        Acting (the request is processed, then the answer goes wrong):
        ``("lost", None)``: answer 503; ``("lost_reset", None)``: half a body,
        then a reset; ``("lost_raw", text)``: a non-JSON body; ``("late", s)``:
        answer only ``s`` seconds later (after the client's timeout).

        ``("lost_result", value)``: act, then answer ``{"error": [], "result": value}``
        (a 200 of the wrong shape); ``value`` ``"txid-as-text"`` answers the real result
        with its ``txid`` list flattened to a string.

        ``("lost_gzip", None)``: act, then answer the real body labelled
        ``Content-Encoding: gzip`` though it is not (a proxy that mislabels: no client can
        decode it); ``("gzip", status)``: the same label over an error body, without
        acting; ``("lost_status", status)``: act, then answer ``status`` (a 500, 502,
        504 after acting; ``"lost"`` is the 503).

        ``("retry_after", text)``: without acting, HTTP 429 with ``Retry-After: text``
        (an edge's rate limit).

        ``("act_late", s)``: authenticate at once, act ``s`` seconds later (the
        client has given up by then), then answer; an AddOrder whose
        ``deadline`` has passed by then is refused with ``EService:Deadline
        elapsed``, as Kraken's engine does.
        """
        with self._lock:
            self.injected.setdefault(method, []).extend(responses)

    def calls(self, method: str) -> list[RecordedRequest]:
        """Requests received for ``method``."""
        with self._lock:
            return [r for r in self.requests if r.method == method]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (event-driven, no polling sleeps) until ``predicate()`` holds."""
        assert self._changed is not None, "start() the server inside the event loop"
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

    # -- request handling --
    def _handle(self, handler: BaseHTTPRequestHandler, http_method: str) -> None:
        split = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        query = dict(urllib.parse.parse_qsl(split.query))
        form = dict(urllib.parse.parse_qsl(body))
        method = split.path.rsplit("/", 1)[-1]
        params = {**query, **form}
        headers = dict(handler.headers.items())
        arrived_ns = self.wall_ns()
        with self._lock:
            self.requests.append(RecordedRequest(method, http_method, params, headers, body))
            scripted = self.injected.get(method)
            response = scripted.pop(0) if scripted else None
        value: Any  # a scripted fault's argument (a delay, a raw body...)
        kind, value = response if response is not None else ("", None)
        status, payload = 200, None
        try:
            if kind in ("lost", "lost_reset", "lost_raw", "late", "lost_result",
                        "lost_gzip", "lost_status"):
                # Kraken acts; what goes wrong is the answer.
                status, payload = self._private(method, split.path, body, form, headers,
                                                arrived_ns)
                if kind == "lost":
                    status, payload = 503, {"error": ["EService:Unavailable"]}
                elif kind == "lost_status":
                    status, payload = int(value), {"error": ["EService:Unavailable"]}
                elif kind == "lost_raw":
                    status, payload = 200, str(value)
                elif kind == "lost_result":
                    result = payload.get("result") if isinstance(payload, dict) else None
                    if value == "txid-as-text" and isinstance(result, dict):
                        value = {**result, "txid": ",".join(result.get("txid") or [])}
                    status, payload = 200, {"error": [], "result": value}
                elif kind == "late":
                    time.sleep(float(value))
            elif kind == "act_late":
                refused = self._authenticate(split.path, body, form, headers)
                if refused is None:
                    time.sleep(float(value))  # queued: the client gives up meanwhile
                    status, payload = self._act(method, form, arrived_ns)
                else:
                    status, payload = refused
            elif kind == "reset":
                pass
            elif kind == "gzip":
                status, payload = int(value), {"error": ["EService:Unavailable"]}
            elif kind == "retry_after":
                status, payload = 429, {"error": ["EAPI:Rate limit exceeded"]}
            elif response is not None:
                status, payload = self._scripted(response)
            elif split.path.startswith("/0/public/"):
                status, payload = self._public(method)
            elif split.path.startswith("/0/private/") and http_method == "POST":
                status, payload = self._private(method, split.path, body, form, headers,
                                                arrived_ns)
            else:
                status, payload = 404, {"error": ["EGeneral:Unknown method"]}
        except Exception as exc:  # a bug in the fake must not hang the client
            status, payload = 500, {"error": [f"EGeneral:Internal error {exc}"]}
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        try:
            if kind in ("reset", "lost_reset"):
                self._reset_mid_body(handler, data)
            else:
                handler.send_response(status)
                handler.send_header("Content-Type", "application/json")
                if kind in ("gzip", "lost_gzip"):  # labelled gzip, sent as it is
                    handler.send_header("Content-Encoding", "gzip")
                if kind == "retry_after":
                    handler.send_header("Retry-After", str(value))
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)
        except OSError:
            handler.close_connection = True  # the client went away (e.g. after its timeout)
        if self._loop is not None and self._changed is not None:
            with contextlib.suppress(RuntimeError):  # the test's loop may be gone
                self._loop.call_soon_threadsafe(self._changed.set)

    @staticmethod
    def _reset_mid_body(handler: BaseHTTPRequestHandler, data: bytes) -> None:
        """Announce the whole body, send half of it, then reset the connection (RST)."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data) + 64))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
        handler.close_connection = True
        handler.connection.close()  # the fd closes (with RST) once the handler's files do

    @staticmethod
    def _scripted(response: tuple[str, Any]) -> tuple[int, Any]:
        kind, value = response
        if kind == "error":
            return 200, {"error": list(value)}
        if kind == "status":
            return int(value), {"error": ["EService:Unavailable"]}
        if kind == "raw":
            return 200, str(value)
        return 200, value

    def _public(self, method: str) -> tuple[int, Any]:
        if method not in self.public:
            return 200, {"error": ["EGeneral:Unknown method"]}
        return 200, self.public[method]

    def _authenticate(self, path: str, body: str, form: dict[str, str],
                      headers: dict[str, str]) -> tuple[int, Any] | None:
        """Kraken's key, signature and nonce checks: the refusal, or None when they pass."""
        if headers.get("API-Key") != self.api_key:
            return 200, {"error": ["EAPI:Invalid key"]}
        nonce_text = form.get("nonce", "")
        # Kraken's rule, written out independently of the client's signer.
        digest = hashlib.sha256((nonce_text + body).encode()).digest()
        expected = base64.b64encode(hmac.new(base64.b64decode(self.api_secret),
                                             path.encode() + digest, hashlib.sha512).digest())
        if headers.get("API-Sign", "").encode() != expected:
            return 200, {"error": ["EAPI:Invalid signature"]}
        with self._lock:
            if not nonce_text.isdigit() or int(nonce_text) <= self.last_nonce:
                return 200, {"error": ["EAPI:Invalid nonce"]}
            self.last_nonce = int(nonce_text)
        return None

    def _private(self, method: str, path: str, body: str, form: dict[str, str],
                 headers: dict[str, str], arrived_ns: int) -> tuple[int, Any]:
        refused = self._authenticate(path, body, form, headers)
        if refused is not None:
            return refused
        return self._act(method, form, arrived_ns)

    def _act(self, method: str, form: dict[str, str], arrived_ns: int) -> tuple[int, Any]:
        try:
            return 200, {"error": [], "result": self._private_result(method, form, arrived_ns)}
        except _Refused as exc:
            return 200, {"error": exc.codes}

    def _check_deadline(self, form: dict[str, str], arrived_ns: int) -> None:
        """AddOrder's ``deadline``: RFC 3339, 2 to 60 s after the request arrives (a second's
        slack each way), and the engine refuses an order that reaches it later."""
        text = form.get("deadline")
        if not text:
            return
        try:
            deadline_ns = _parse_rfc3339_ns(text)
        except ValueError:
            raise _Refused(["EGeneral:Invalid arguments:deadline"]) from None
        if not arrived_ns + 1 * 10**9 <= deadline_ns <= arrived_ns + 61 * 10**9:
            raise _Refused(["EGeneral:Invalid arguments:deadline"])
        if self.wall_ns() > deadline_ns:
            self.deadline_refusals += 1
            raise _Refused(["EService:Deadline elapsed"])

    def _private_result(self, method: str, form: dict[str, str], arrived_ns: int) -> Any:
        with self._lock:
            if method == "Balance":
                return self.balance
            if method == "GetWebSocketsToken":
                return {"token": "local-ws-token", "expires": 900}
            if method == "AddOrder":
                missing = [k for k in ("ordertype", "type", "volume", "pair") if k not in form]
                if missing:
                    raise _Refused(["EGeneral:Invalid arguments"])
                self._check_deadline(form, arrived_ns)
                cl = form.get("cl_ord_id")
                if cl and any(o.get("cl_ord_id") == cl for o in self.orders.values()):
                    raise _Refused(["EOrder:Duplicate order"])
                txid = f"O{next(self._txids):05d}-LOCAL-KRKN"
                self._placed_ns[txid] = self.wall_ns()
                self.orders[txid] = {
                    "cl_ord_id": cl, "status": "open",
                    "opentm": float(Decimal(self.clock_ns()) / 10**9),
                    "vol": form["volume"], "vol_exec": "0.00000000",
                    "descr": {"pair": form["pair"], "type": form["type"],
                              "ordertype": form["ordertype"], "price": form.get("price", "0")},
                }
                if form.get("validate") not in ("true", "1"):
                    self._match(txid, form)
                else:
                    del self.orders[txid]
                descr = f"{form['type']} {form['volume']} {form['pair']} @ {form['ordertype']}"
                return {"descr": {"order": descr}, "txid": [txid]}
            if method == "CancelOrder":
                key = form.get("txid") or form.get("cl_ord_id")
                hit = [t for t, o in self.orders.items() if key in (t, o.get("cl_ord_id"))]
                for txid in hit:
                    self._close_order(txid, "canceled", "User requested")
                return {"count": len(hit)}
            if method == "CancelAll":
                count = len(self.orders)
                for txid in list(self.orders):
                    self._close_order(txid, "canceled", "User requested")
                return {"count": count}
            if method == "CancelAllOrdersAfter":
                self.dead_man.append(int(form.get("timeout", "0")))
                return {"currentTime": "2023-01-01T00:00:00Z",
                        "triggerTime": "2023-01-01T00:01:00Z"}
            if method == "OpenOrders":
                cl = form.get("cl_ord_id")
                return {"open": {t: o for t, o in self.orders.items()
                                 if (cl is None or o.get("cl_ord_id") == cl)
                                 and self._visible(t)}}
            if method == "ClosedOrders":
                cl = form.get("cl_ord_id")
                closed = {t: o for t, o in self.closed.items()
                          if (cl is None or o.get("cl_ord_id") == cl) and self._visible(t)}
                newest = sorted(closed, key=lambda t: closed[t]["closetm"], reverse=True)
                return {"closed": {t: closed[t] for t in newest[:50]}, "count": len(closed)}
            if method == "QueryOrders":
                known = {**self.closed, **self.orders}
                return {t: known[t] for t in form.get("txid", "").split(",")
                        if t in known and self._visible(t)}
            if method == "TradesHistory":
                return self._trades_history_page(form)
        raise ValueError(f"unknown private method {method}")


    def _visible(self, txid: str) -> bool:
        """Whether the order lists show ``txid`` yet (see ``visible_after_s``)."""
        placed = self._placed_ns.get(txid)
        return placed is None or self.wall_ns() - placed >= self.visible_after_s * 1e9

    # -- matching engine and the executions feed (call with self._lock held) --
    def set_book(self, symbol: str, bids: list[tuple[Decimal, Decimal]],
                 asks: list[tuple[Decimal, Decimal]]) -> None:
        """The book (best first) that marketable orders on ``symbol`` walk from now on."""
        with self._lock:
            self.books[symbol] = (list(bids), list(asks))

    def subscribe_executions(self, listener: Callable[[list[dict[str, Any]]], None]
                             ) -> list[dict[str, Any]]:
        """Register ``listener`` for new executions items (called from the HTTP thread);
        returns the snapshot Kraken sends first: open orders and the last 50 trades."""
        with self._lock:
            self._listeners.append(listener)
            open_items = [self._order_item(t, o, "new", "new") for t, o in self.orders.items()]
            trades = [i for i in self.executions if i["exec_type"] == "trade"][-50:]
            return open_items + trades

    def unsubscribe_executions(self, listener: Callable[[list[dict[str, Any]]], None]) -> None:
        """Stop publishing to ``listener``."""
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _pair_info(self, altname: str) -> dict[str, Any]:
        result = self.public.get("AssetPairs", {}).get("result", {})
        for key, entry in result.items():
            if altname in (key, entry.get("altname"), entry.get("wsname")):
                base, _, quote = str(entry["wsname"]).partition("/")
                aliases = {"XBT": "BTC", "XDG": "DOGE"}
                base, quote = aliases.get(base, base), aliases.get(quote, quote)
                return {"symbol": f"{base}/{quote}", "base": base, "quote": quote,
                        "lot_decimals": int(entry["lot_decimals"]), "key": key}
        raise _Refused(["EQuery:Unknown asset pair"])

    def _order_item(self, txid: str, order: dict[str, Any], exec_type: str, status: str
                    ) -> dict[str, Any]:
        descr = order["descr"]
        info = self._pair_info(descr["pair"])
        item: dict[str, Any] = {
            "order_id": txid, "symbol": info["symbol"], "side": descr["type"],
            "order_type": descr["ordertype"], "order_qty": _jnum(Decimal(order["vol"])),
            "exec_type": exec_type, "order_status": status,
            "cum_qty": _jnum(Decimal(order["vol_exec"])),
            "cum_cost": _jnum(Decimal(order.get("cost", "0"))),
            "timestamp": _rfc3339(self.clock_ns()),
        }
        if order.get("cl_ord_id"):
            item["cl_ord_id"] = order["cl_ord_id"]
        if descr["ordertype"] == "limit":
            item["limit_price"] = _jnum(Decimal(descr["price"]))
        return item

    def _publish(self, items: list[dict[str, Any]]) -> None:
        self.executions.extend(items)
        if self.hold_executions:
            return
        for listener in list(self._listeners):
            listener(items)

    def _close_order(self, txid: str, status: str, reason: str = "") -> None:
        order = self.orders.pop(txid)
        order["status"] = "closed" if status == "filled" else status
        order["closetm"] = float(Decimal(self.clock_ns()) / 10**9)
        if reason:
            order["reason"] = reason  # QueryOrders' "additional info on status"
        self.closed[txid] = order
        item = self._order_item(txid, order, status, status)
        if reason:
            item["reason"] = reason
        self._publish([item])

    def expire(self, txid: str) -> None:
        """Kraken expires a resting order (a GTD order's ``expire_time`` passed)."""
        with self._lock:
            self._close_order(txid, "expired", "Order expired")

    def fill_resting(self, txid: str, qty: Decimal, *, maker_bps: Decimal = Decimal(25),
                     fee_asset: str | None = None) -> dict[str, Any]:
        """Another trader takes ``qty`` of a resting order at its limit (a maker fill; a
        negative ``maker_bps`` is a rebate).  The fee is charged in the quote asset, or in
        ``fee_asset`` (e.g. ``KFEE`` credits, 100 a USD) with ``fee_usd_equiv`` beside it.
        The trade is published on executions and kept in TradesHistory (fee in USD); the
        order closes when filled.  Returns the trade's executions item."""
        with self._lock:
            order = self.orders[txid]
            info = self._pair_info(order["descr"]["pair"])
            price = Decimal(order["descr"]["price"])
            cum_qty = Decimal(order["vol_exec"]) + qty
            cum_cost = Decimal(order.get("cost", "0")) + price * qty
            order["vol_exec"], order["cost"] = format(cum_qty, "f"), format(cum_cost, "f")
            fee = (price * qty * maker_bps / 10_000).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            trade_no = next(self._exec_ids)
            done = cum_qty >= Decimal(order["vol"])
            item = self._order_item(txid, order, "trade",
                                    "filled" if done else "partially_filled")
            item.update(exec_id=f"T{trade_no:05d}-LOCAL-EXEC", trade_id=trade_no,
                        last_qty=_jnum(qty), last_price=_jnum(price), liquidity_ind="m",
                        cost=_jnum(price * qty), fee_usd_equiv=_jnum(fee),
                        fees=[{"asset": info["quote"], "qty": _jnum(fee)} if fee_asset is None
                              else {"asset": fee_asset, "qty": _jnum(fee * 100)}])
            self.trades_history[item["exec_id"]] = {
                "ordertxid": txid, "pair": info["key"],
                "time": float((Decimal(self.clock_ns()) / 10**9).quantize(Decimal("0.0001"))),
                "type": order["descr"]["type"], "ordertype": order["descr"]["ordertype"],
                "price": format(price, "f"), "cost": format(price * qty, "f"),
                "fee": format(fee, "f"), "vol": format(qty, "f"), "trade_id": trade_no,
                "maker": True}
            self._publish([item])
            if done:
                self._close_order(txid, "filled")
            return item

    def _trades_history_page(self, form: dict[str, str]) -> dict[str, Any]:
        """Kraken's TradesHistory: newest first, ``start``/``end`` exclusive Unix seconds,
        50 per page from ``ofs``, ``count`` of every match."""
        start = Decimal(form["start"]) if form.get("start") else None
        end = Decimal(form["end"]) if form.get("end") else None
        rows = [(k, t) for k, t in self.trades_history.items()
                if (start is None or Decimal(str(t["time"])) > start)
                and (end is None or Decimal(str(t["time"])) < end)]
        rows.sort(key=lambda kv: (Decimal(str(kv[1]["time"])), kv[1]["trade_id"]), reverse=True)
        ofs = int(form.get("ofs") or 0)
        return {"trades": dict(rows[ofs:ofs + 50]), "count": len(rows)}

    def _match(self, txid: str, form: dict[str, str]) -> None:
        """Kraken's life of an order: pending_new, new, trades against the book, filled."""
        order = self.orders[txid]
        info = self._pair_info(form["pair"])
        self._publish([self._order_item(txid, order, "pending_new", "pending_new"),
                       self._order_item(txid, order, "new", "new")])
        book = self.books.get(info["symbol"])
        if book is None:
            return
        buy = form["type"] == "buy"
        levels = book[1] if buy else book[0]
        limit = Decimal(form["price"]) if form["ordertype"] == "limit" else None
        if "post" in form.get("oflags", "").split(",") and limit is not None and any(
                price <= limit if buy else price >= limit for price, _ in levels):
            # Kraken accepts a post-only order and cancels it when it would take liquidity.
            self._close_order(txid, "canceled", "Post only order")
            return
        remaining = Decimal(form["volume"])
        cum_qty, cum_cost = Decimal(0), Decimal(0)
        left: list[tuple[Decimal, Decimal]] = []
        trades = []
        for price, size in levels:
            crosses = limit is None or (price <= limit if buy else price >= limit)
            if remaining <= 0 or not crosses:
                left.append((price, size))
                continue
            qty = min(size, remaining)
            remaining -= qty
            if size > qty:
                left.append((price, size - qty))
            cost = price * qty
            # Kraken charges the fee in the quote currency, rounded to 4 decimals (USD).
            fee = (cost * self.taker_bps / 10_000).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            cum_qty += qty
            cum_cost += cost
            trade_no = next(self._exec_ids)
            item = self._order_item(txid, order, "trade",
                                    "filled" if remaining <= 0 else "partially_filled")
            item.update(exec_id=f"T{trade_no:05d}-LOCAL-EXEC", trade_id=trade_no,
                        last_qty=_jnum(qty), last_price=_jnum(price), liquidity_ind="t",
                        cost=_jnum(cost), cum_qty=_jnum(cum_qty), cum_cost=_jnum(cum_cost),
                        avg_price=_jnum(cum_cost / cum_qty), fee_usd_equiv=_jnum(fee),
                        fees=[{"asset": info["quote"], "qty": _jnum(fee)}])
            trades.append(item)
            now_ns = self.clock_ns()
            self.trades_history[item["exec_id"]] = {
                "ordertxid": txid, "postxid": f"P{trade_no:05d}-LOCAL-POS", "pair": info["key"],
                "time": float((Decimal(now_ns) / 10**9).quantize(Decimal("0.0001"))),
                "type": form["type"], "ordertype": form["ordertype"], "price": format(price, "f"),
                "cost": format(cost, "f"), "fee": format(fee, "f"), "vol": format(qty, "f"),
                "margin": "0.00000", "leverage": "0", "misc": "", "trade_id": trade_no,
                "maker": False, "ledgers": [f"L{trade_no:05d}-LOCAL-A", f"L{trade_no:05d}-LOCAL-B"],
            }
        self.books[info["symbol"]] = (left, book[1]) if not buy else (book[0], left)
        order["vol_exec"] = format(cum_qty, "f")
        order["cost"] = format(cum_cost, "f")
        if trades:
            self._publish(trades)
        if remaining <= 0:
            self._close_order(txid, "filled")
        elif form["ordertype"] == "market" or form.get("timeinforce") == "IOC":
            self._close_order(txid, "canceled", "Unfilled remainder of IOC order")


def _jnum(value: Decimal) -> float:
    # Kraken sends JSON numbers; a float prints its shortest round-trip text, which is the
    # exact decimal for the <= 15 significant digits used here.
    return float(value)
