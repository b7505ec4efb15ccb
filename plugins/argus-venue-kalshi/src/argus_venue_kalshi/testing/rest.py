"""The local exchange's Trade API v2 REST server: a small HTTP/1.1 server on 127.0.0.1
(one request per connection) that verifies RSA-PSS signatures on ``/portfolio`` paths,
routes to the :class:`~.engine.LocalEngine` and applies scripted :class:`Fault` s."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import json
import math
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from argus_venue_kalshi import constants as C
from argus_venue_kalshi import signing
from argus_venue_kalshi.ratelimit import DEFAULT_COST, EndpointCosts
from argus_venue_kalshi.testing.engine import LocalEngine, Rejected


@attrs.frozen
class Fault:
    """What happens to the next matching request.

    ``kind``: ``"refuse"`` (answer ``status`` without acting: a 502 before the exchange,
    a 429), ``"reset"`` (drop the connection without acting), ``"lost"`` (act, then drop
    the connection: the answer is lost), ``"late"`` (act, answer after ``delay_s``),
    ``"after"`` (act, then answer ``status``: a 5xx after acting), ``"truncated"`` (act,
    then answer ``status`` with the first half of the body: a framing that is complete
    but JSON that is not), ``"shape"`` (act, then answer ``status`` with JSON of the
    wrong shape), ``"other"`` (act, then answer ``status`` naming another order: the
    exchange's newest order this request did not create, else a made-up one; on a
    batch, every leg's answer names it), ``"garbled"`` (act, then answer ``status``
    with the real body labelled ``Content-Encoding: gzip`` though it is not: a proxy
    that mislabels, a body no client can decode), ``"refuse_garbled"`` (the same
    without acting: answer ``status``).  ``legs``: on a batch, act on only its first
    ``legs`` orders (the exchange stopped part-way).  ``retry_after``: the
    ``Retry-After`` header (seconds) of a ``"refuse"``.
    """

    kind: str
    status: int = 500
    delay_s: float = 0.0
    legs: int | None = None
    retry_after: float | None = None

@attrs.frozen
class RateLimit:
    """The exchange's limits, in requests at the default cost: at most ``reads * 10``
    read tokens and ``writes * 10`` write tokens (each request costs its endpoint's
    tokens, a batch its per-order cost per order: :attr:`LocalRest.costs`) in any
    ``window_s`` seconds; over that, 429 (with ``Retry-After`` in whole seconds when
    ``retry_after``)."""

    reads: int | None = None
    writes: int | None = None
    window_s: float = 1.0
    retry_after: bool = True


@attrs.define
class Received:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

Reply = tuple[int, Any]

class LocalRest:
    """REST server over ``engine``; ``public_key`` verifies signed requests."""

    def __init__(self, engine: LocalEngine, key_id: str,
                 public_key: rsa.RSAPublicKey | None) -> None:
        self.engine = engine
        self.key_id = key_id
        self.public_key = public_key
        self.requests: list[Received] = []
        self.faults: dict[str, list[Fault]] = {}
        #: Most items per page of every paged list (a request's ``limit`` may ask fewer).
        self.page_size = 100
        #: Fault: every paged list answers the first page's cursor again and again.
        self.repeat_cursor = False
        #: Called with each paged request once its page is cut (before it is answered):
        #: what it does (orders placed, say) shows from the next page read on, as on a
        #: live list that moves while it is read (see :meth:`place_between_pages`).
        self.after_page: Callable[[Received], None] | None = None
        #: Which time of an order ``min_ts`` / ``max_ts`` of ``GET /portfolio/orders``
        #: compare (the documentation does not say): ``"created_time"`` or
        #: ``"last_update_time"``.
        self.orders_ts_field = "created_time"
        #: Rate limits (None: unlimited); requests let through, as (monotonic s, "read" |
        #: "write", weight); how many were answered 429.
        self.limits: RateLimit | None = None
        self.admitted: list[tuple[float, str, int]] = []
        self.limited = 0
        #: What each request costs (``GET /account/endpoint_costs`` serves it).
        self.costs = EndpointCosts()
        #: Eventual consistency: an order shows in ``GET /portfolio/orders`` (and ``GET
        #: /portfolio/orders/{id}``) only this many seconds after it was created.
        self.visible_after_s = 0.0
        self._created: dict[str, float] = {}  # order id -> monotonic time it was created
        #: The historical tier (docs getting_started/historical_data): orders canceled or
        #: executed before this unix time (``last_update_time``) are served only by ``GET
        #: /historical/orders`` (``GET /portfolio/orders/{id}`` answers 404); ``GET
        #: /historical/cutoff`` states it as ``orders_updated_ts``.  None: the epoch.
        self.orders_cutoff_s: float | None = None
        #: Fills created before this unix time are served only by ``GET
        #: /historical/fills`` (``ticker``, ``max_ts``); ``GET /historical/cutoff`` states
        #: it as ``trades_created_ts``.  None: the epoch.
        self.trades_cutoff_s: float | None = None
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the venue's ``rest_url``)."""
        return f"http://127.0.0.1:{self.port}"

    def place_between_pages(self, bodies: list[dict[str, Any]], *, after: int = 1,
                            route: str = "/portfolio/orders") -> None:
        """Place the orders ``bodies`` (``POST /portfolio/orders`` bodies) at the engine
        right after the ``after``-th page read of ``route`` is cut: the next page read
        sees them (a newest-first list shifts by as many)."""
        reads = 0

        def hook(req: Received) -> None:
            nonlocal reads
            if req.path.removeprefix(C.API_PREFIX) != route:
                return
            reads += 1
            if reads == after:
                for body in bodies:
                    self._created[self.engine.create(body)["order_id"]] = time.monotonic()

        self.after_page = hook

    def inject(self, route: str, fault: Fault) -> None:
        """Apply ``fault`` to the next request of ``route`` (``"POST /portfolio/orders"``)."""
        self.faults.setdefault(route, []).append(fault)

    def most_tokens_in_window(self, kind: str) -> int:
        """The most tokens of ``kind`` requests let through in any ``window_s``."""
        window = self.limits.window_s if self.limits else 1.0
        times = [(t, w) for t, k, w in self.admitted if k == kind]
        return max((sum(w for u, w in times if t <= u < t + window) for t, _ in times),
                   default=0)

    def most_in_window(self, kind: str) -> float:
        """:meth:`most_tokens_in_window` in requests at the default cost."""
        return self.most_tokens_in_window(kind) / DEFAULT_COST

    def _over_limit(self, req: Received) -> float | None:
        """None when ``req`` fits the limits (and is counted), else seconds to wait."""
        kind = "read" if req.method == "GET" else "write"
        body = req.body if isinstance(req.body, dict) else {}
        items = len(body.get("orders") or body.get("ids") or [1])
        weight = self.costs.cost(req.method, req.path.removeprefix(C.API_PREFIX), items)
        limits = self.limits
        limit = None if limits is None else (limits.reads if kind == "read" else limits.writes)
        limit = None if limit is None else limit * DEFAULT_COST
        now = time.monotonic()
        if limits is not None and limit is not None:
            recent = sorted(t for t, k, w in self.admitted
                            if k == kind and t > now - limits.window_s for _ in range(w))
            if len(recent) + weight > limit:
                return recent[len(recent) + weight - limit - 1] + limits.window_s - now
        self.admitted.append((now, kind, weight))
        return None

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    # -- HTTP ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await self._read(reader)
            if req is None:
                return
            await self._handle(req, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Received | None:
        line = (await reader.readline()).decode()
        if not line.strip():
            return None
        method, target, _ = line.split(" ", 2)
        headers: dict[str, str] = {}
        while (h := (await reader.readline()).decode()) not in ("\r\n", "\n", ""):
            name, _, value = h.partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        url = urllib.parse.urlsplit(target)
        body = json.loads(raw) if raw else None
        return Received(method, url.path, dict(urllib.parse.parse_qsl(url.query)), headers,
                        body)

    async def _handle(self, req: Received, writer: asyncio.StreamWriter) -> None:
        self.requests.append(req)
        route = f"{req.method} {req.path.removeprefix(C.API_PREFIX)}"
        wait = self._over_limit(req)
        if wait is not None:
            self.limited += 1
            headers = {"Retry-After": str(max(1, math.ceil(wait)))} \
                if self.limits and self.limits.retry_after else {}
            await _write(writer, 429, {"error": {"code": "too_many_requests",
                                                 "message": "rate limit exceeded"}}, headers,
                         clock_offset_s=self.engine.clock_offset_s)
            return
        fault = next((self.faults[key].pop(0) for key in list(self.faults)
                      if self.faults[key] and route.startswith(key)), None)
        if fault is not None and fault.kind == "reset":
            writer.transport.abort()
            return
        if fault is not None and fault.kind == "refuse":
            await _write(writer, fault.status, {"error": {"code": "fault", "message":
                                                          "scripted refusal"}},
                         {"Retry-After": f"{fault.retry_after:g}"}
                         if fault.retry_after is not None else None,
                         clock_offset_s=self.engine.clock_offset_s)
            return
        if fault is not None and fault.kind == "refuse_garbled":
            await _write(writer, fault.status, {"error": {"code": "fault"}},
                         {"Content-Encoding": "gzip", "Retry-After": "0"},
                         clock_offset_s=self.engine.clock_offset_s)
            return
        if fault is not None and fault.legs is not None and isinstance(req.body, dict):
            req.body = {**req.body, "orders": (req.body.get("orders") or [])[:fault.legs]}
        before = set(self.engine.orders)
        status, payload = self._route(req)
        for order_id in self.engine.orders.keys() - before:
            self._created[order_id] = time.monotonic()
        if fault is not None and fault.kind == "lost":
            writer.transport.abort()
            return
        if fault is not None and fault.kind == "late":
            await asyncio.sleep(fault.delay_s)
        if fault is not None and fault.kind == "after":
            status, payload = fault.status, {"error": {"code": "internal_server_error",
                                                       "message": "scripted 5xx"}}
        if fault is not None and fault.kind == "truncated":
            body = json.dumps(payload).encode()
            await _write(writer, fault.status, body[:len(body) // 2],
                         clock_offset_s=self.engine.clock_offset_s)
            return
        if fault is not None and fault.kind == "garbled":
            await _write(writer, fault.status, payload, {"Content-Encoding": "gzip"},
                         clock_offset_s=self.engine.clock_offset_s)
            return
        if fault is not None and fault.kind == "shape":
            status, payload = fault.status, {"result": "ok", "orders": "none"}
        if fault is not None and fault.kind == "other":
            status, payload = fault.status, self._other(payload, before)
        await _write(writer, status, payload, clock_offset_s=self.engine.clock_offset_s)

    def _other(self, payload: Any, before: set[str]) -> dict[str, Any]:
        """``payload`` (an order's or a batch's answer) rewritten to name another order:
        the newest one in ``before`` (orders that existed before the request), else a
        made-up one (a mixed-up answer: a proxy's, a cache's)."""
        other = next((self.engine.orders[o] for o in reversed(list(self.engine.orders))
                      if o in before), None) or {
            "order_id": "ord-elsewhere", "client_order_id": "someone-else",
            "ticker": "KXHIGHNY-24JAN01-T60", "side": "yes", "action": "buy",
            "status": "resting", "fill_count": 0, "remaining_count": 1}
        if isinstance(payload, dict) and isinstance(payload.get("orders"), list):
            return {"orders": [{"client_order_id": other["client_order_id"],
                                "order": dict(other), "error": None}
                               for _ in payload["orders"]]}
        return {"order": dict(other)}

    def _authorised(self, req: Received) -> bool:
        if self.public_key is None:
            return True
        h = req.headers
        return (h.get(C.HEADER_KEY.lower()) == self.key_id
                and signing.verify(self.public_key, h.get(C.HEADER_SIGNATURE.lower(), ""),
                                   h.get(C.HEADER_TIMESTAMP.lower(), ""), req.method, req.path))

    def _route(self, req: Received) -> Reply:
        path = req.path.removeprefix(C.API_PREFIX)
        parts = [p for p in path.split("/") if p]
        private = parts[:1] in (["portfolio"], ["account"]) or parts[:2] in (
            ["historical", "orders"], ["historical", "fills"])
        if private and not self._authorised(req):
            return 401, {"error": {"code": "authentication_error",
                                   "message": "invalid signature"}}
        try:
            handler = self._handler(req.method, parts)
            return handler(req, parts) if handler else (404, {"error": {"code": "not_found"}})
        except Rejected as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}

    def _handler(self, method: str, parts: list[str]
                 ) -> Callable[[Received, list[str]], Reply] | None:
        table: dict[tuple[str, str, int], Callable[[Received, list[str]], Reply]] = {
            ("GET", "markets", 1): self._markets, ("GET", "markets", 2): self._market,
            ("GET", "markets", 3): self._orderbook, ("GET", "events", 2): self._event,
            ("POST", "portfolio", 2): self._create, ("POST", "portfolio", 3): self._batch,
            ("GET", "portfolio", 2): self._list,
            ("GET", "portfolio", 3): self._order, ("DELETE", "portfolio", 3): self._cancel,
            ("GET", "account", 2): self._endpoint_costs,
            ("GET", "historical", 2): self._historical,
        }
        if not parts:
            return None
        return table.get((method, parts[0], len(parts)))

    # -- routes ----------------------------------------------------------------------
    def _markets(self, req: Received, parts: list[str]) -> Reply:
        markets = list(self.engine.markets.values())
        if "event_ticker" in req.query:
            markets = [m for m in markets if m["event_ticker"] == req.query["event_ticker"]]
        if "tickers" in req.query:
            wanted = req.query["tickers"].split(",")
            markets = [m for m in markets if m["ticker"] in wanted]
        return 200, self._page(req, "markets", markets)

    def _market(self, req: Received, parts: list[str]) -> Reply:
        market = self.engine.markets.get(parts[1])
        return (200, {"market": market}) if market else (404, {"error": {"code": "not_found"}})

    def _orderbook(self, req: Received, parts: list[str]) -> Reply:
        if parts[2] != "orderbook" or parts[1] not in self.engine.books:
            return 404, {"error": {"code": "not_found"}}
        return 200, self.engine.orderbook_fp(parts[1])

    def _event(self, req: Received, parts: list[str]) -> Reply:
        event = self.engine.events.get(parts[1])
        if event is None:
            return 404, {"error": {"code": "not_found"}}
        markets = [m for m in self.engine.markets.values() if m["event_ticker"] == parts[1]]
        return 200, {"event": event, "markets": markets}

    def _create(self, req: Received, parts: list[str]) -> Reply:
        if parts[1] != "orders":
            return 404, {"error": {"code": "not_found"}}
        return 201, {"order": self.engine.create(req.body or {})}

    def _batch(self, req: Received, parts: list[str]) -> Reply:
        """``POST /portfolio/orders/batched``: each order created alone; per-leg answers."""
        if parts[1:] != ["orders", "batched"]:
            return 404, {"error": {"code": "not_found"}}
        orders = (req.body or {}).get("orders")
        if not isinstance(orders, list) or not 1 <= len(orders) <= C.BATCH_MAX_ORDERS:
            return 400, {"error": {"code": "invalid_parameters", "message":
                                   f"orders must hold 1..{C.BATCH_MAX_ORDERS} orders"}}
        answers = []
        for body in orders:
            coid = body.get("client_order_id") if isinstance(body, dict) else None
            try:
                answers.append({"client_order_id": coid, "order": self.engine.create(body),
                                "error": None})
            except Rejected as exc:
                answers.append({"client_order_id": coid, "order": None, "error": {
                    "code": exc.code, "message": exc.message, "details": ""}})
        return 201, {"orders": answers}

    def _list(self, req: Received, parts: list[str]) -> Reply:
        if parts[1] == "fills":
            # docs api-reference/portfolio/get-fills: ticker, order_id, min_ts, max_ts
            fills = [f for f in self.engine.fills if not self._archived_fill(f)]
            if "min_ts" in req.query:
                fills = [f for f in fills if f["ts"] >= int(req.query["min_ts"])]
            if "max_ts" in req.query:
                fills = [f for f in fills if f["ts"] <= int(req.query["max_ts"])]
            for key in ("order_id", "ticker"):
                if key in req.query:
                    fills = [f for f in fills if f[key] == req.query[key]]
            return 200, self._page(req, "fills", list(reversed(fills)))
        if parts[1] == "positions":
            held = self.engine.positions()
            if "ticker" in req.query:
                held = [x for x in held if x["ticker"] == req.query["ticker"]]
            return 200, {**self._page(req, "market_positions", held), "event_positions": []}
        if parts[1] == "settlements":
            settled = list(reversed(self.engine.settlements))
            if "ticker" in req.query:
                settled = [x for x in settled if x["ticker"] == req.query["ticker"]]
            # docs api-reference/portfolio/get-settlements: min_ts / max_ts (settled_time)
            for key, keep in (("min_ts", float.__ge__), ("max_ts", float.__le__)):
                if key in req.query:
                    settled = [x for x in settled if keep(_unix(x["settled_time"]),
                                                          float(req.query[key]))]
            return 200, self._page(req, "settlements", settled)
        if parts[1] != "orders":
            return 404, {"error": {"code": "not_found"}}
        # docs api-reference/portfolio/get-orders: ticker, event_ticker, min_ts ("orders
        # after a timestamp"), max_ts ("before"), status, cursor, limit; newest first
        orders = [o for o in self.engine.orders.values()
                  if self._visible(o) and not self._archived(o)]
        for key in ("status", "ticker"):
            if key in req.query:
                orders = [o for o in orders if o[key] == req.query[key]]
        if "event_ticker" in req.query:
            orders = [o for o in orders if self.engine.markets.get(o["ticker"], {}).get(
                "event_ticker") == req.query["event_ticker"]]
        if "min_ts" in req.query:
            orders = [o for o in orders
                      if _unix(o[self.orders_ts_field]) > int(req.query["min_ts"])]
        if "max_ts" in req.query:
            orders = [o for o in orders
                      if _unix(o[self.orders_ts_field]) < int(req.query["max_ts"])]
        return 200, self._page(req, "orders", list(reversed(orders)))

    def _page(self, req: Received, key: str, items: list[Any]) -> dict[str, Any]:
        """One page of ``items`` after the request's ``cursor`` (an opaque offset), at
        most ``limit`` (<= ``page_size``) long; the cursor is "" after the last page."""
        cursor = req.query.get("cursor", "")
        start = int(base64.urlsafe_b64decode(cursor).decode().split(":")[1]) if cursor else 0
        size = min(int(req.query.get("limit", 100)), self.page_size)
        end = start + size
        if self.repeat_cursor:
            end = size  # always "the second page next"
        after = "" if end >= len(items) else \
            base64.urlsafe_b64encode(f"offset:{end}".encode()).decode()
        page = {key: items[start:start + size], "cursor": after}
        if self.after_page is not None:
            self.after_page(req)
        return page

    def _order(self, req: Received, parts: list[str]) -> Reply:
        order = self.engine.orders.get(parts[2])
        if order is None or not self._visible(order) or self._archived(order):
            return 404, {"error": {"code": "not_found"}}
        return 200, {"order": order}

    def _archived(self, order: dict[str, Any]) -> bool:
        """Whether ``order`` is in the historical tier (see :attr:`orders_cutoff_s`)."""
        return self.orders_cutoff_s is not None and order["status"] != "resting" and \
            _unix(order["last_update_time"]) < self.orders_cutoff_s

    def _archived_fill(self, fill: dict[str, Any]) -> bool:
        """Whether ``fill`` is in the historical tier (see :attr:`trades_cutoff_s`)."""
        return self.trades_cutoff_s is not None and fill["ts"] < self.trades_cutoff_s

    def _historical(self, req: Received, parts: list[str]) -> Reply:
        """``GET /historical/cutoff`` (the three cutoffs, ISO-8601) and ``GET
        /historical/orders`` (docs api-reference/historical: ``ticker``, ``max_ts``,
        ``cursor`` / ``limit``; no ``min_ts``; newest first)."""
        cutoff = datetime.fromtimestamp(self.orders_cutoff_s or 0, UTC).isoformat()
        trades = datetime.fromtimestamp(self.trades_cutoff_s or 0, UTC).isoformat()
        if parts[1] == "cutoff":
            return 200, {"market_settled_ts": cutoff, "trades_created_ts": trades,
                         "orders_updated_ts": cutoff.replace("+00:00", "Z")}
        if parts[1] == "fills":  # ticker, max_ts, cursor / limit; no min_ts; newest first
            fills = [f for f in self.engine.fills if self._archived_fill(f)]
            if "ticker" in req.query:
                fills = [f for f in fills if f["ticker"] == req.query["ticker"]]
            if "max_ts" in req.query:
                fills = [f for f in fills if f["ts"] <= int(req.query["max_ts"])]
            return 200, self._page(req, "fills", list(reversed(fills)))
        if parts[1] != "orders":
            return 404, {"error": {"code": "not_found"}}
        orders = [o for o in self.engine.orders.values() if self._archived(o)]
        if "ticker" in req.query:
            orders = [o for o in orders if o["ticker"] == req.query["ticker"]]
        if "max_ts" in req.query:
            orders = [o for o in orders
                      if _unix(o["last_update_time"]) < int(req.query["max_ts"])]
        return 200, self._page(req, "orders", list(reversed(orders)))

    def _visible(self, order: dict[str, Any]) -> bool:
        """Whether reads show ``order`` yet (see :attr:`visible_after_s`)."""
        born = self._created.get(order["order_id"])
        return born is None or time.monotonic() - born >= self.visible_after_s

    def _cancel(self, req: Received, parts: list[str]) -> Reply:
        if parts[2] != "batched":
            return 200, self.engine.cancel(parts[2])
        # DELETE /portfolio/orders/batched: {"orders": [{"order_id"}]} (or the deprecated
        # {"ids": [...]}); one answer per order, an error for those that cannot be
        body = req.body if isinstance(req.body, dict) else {}
        ids = [o.get("order_id") for o in body.get("orders") or [] if isinstance(o, dict)] \
            or list(body.get("ids") or [])
        if not ids:
            return 400, {"error": {"code": "invalid_parameters",
                                   "message": "orders must name at least one order"}}
        answers = []
        for order_id in ids:
            try:
                done = self.engine.cancel(str(order_id))
                answers.append({"order_id": order_id, "order": done["order"],
                                "reduced_by_fp": f"{done['reduced_by']}.00", "error": None})
            except Rejected as exc:
                answers.append({"order_id": order_id, "order": None, "reduced_by_fp": "0.00",
                                "error": {"code": exc.code, "message": exc.message}})
        return 200, {"orders": answers}

    def _endpoint_costs(self, req: Received, parts: list[str]) -> Reply:
        """``GET /account/endpoint_costs``: the non-default costs of :attr:`costs`."""
        if parts[1] != "endpoint_costs":
            return 404, {"error": {"code": "not_found"}}
        listed = [{"method": m, "path": C.API_PREFIX + p, "cost": c}
                  for (m, p), c in self.costs.exact.items() if c != self.costs.default]
        return 200, {"default_cost": self.costs.default, "endpoint_costs": listed}

def _unix(iso: str) -> float:
    """An order's ``created_time`` / ``last_update_time`` as unix seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _write(writer: asyncio.StreamWriter, status: int, payload: Any,
                 headers: dict[str, str] | None = None, *, clock_offset_s: float = 0.0
                 ) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    # Date: the exchange's clock, as every HTTP server with a clock sends it (RFC 9110)
    date = email.utils.formatdate(time.time() + clock_offset_s, usegmt=True)
    extra = "".join(f"{k}: {v}\r\n" for k, v in {"Date": date, **(headers or {})}.items())
    head = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()

