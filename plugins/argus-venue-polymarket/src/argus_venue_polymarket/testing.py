"""Helpers for tests of code built on this plugin: constructed CLOB book payloads and a
local CLOB for live mode.

``make_book`` builds a book payload exactly as the venue serves it (levels
worst to best, string values) with the hash the venue would compute, so a
local server can serve constructed books that pass the client's checks.
:class:`LocalClob` serves the CLOB's private endpoints (orders, open orders,
trades, heartbeats) with L2-header and order-signature checks and a small
matching engine, so the live path runs end to end without a network.
:func:`stream_frames` runs a :class:`~argus_venue_polymarket.data.MarketStream` against a
local market websocket that sends given frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from py_clob_client_v2.clob_types import OrderBookSummary, OrderSummary
from py_clob_client_v2.utilities import generate_orderbook_summary_hash
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from argus_core import MarketEvent
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream, PolymarketRest
from argus_venue_polymarket.replay_server import Headed, Reset

#: The public Hardhat/Anvil account #0 key (throwaway; used by upstream tests too).
HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def make_book(token: str, market: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
              *, tick: str = "0.01", min_size: str = "5", neg_risk: bool = True,
              timestamp: str = "1786875382652", last: str = "0.5") -> dict[str, Any]:
    """A constructed book payload; ``bids``/``asks`` are given best first."""
    raw: dict[str, Any] = {
        "market": market, "asset_id": token, "timestamp": timestamp, "hash": "",
        "bids": [{"price": p, "size": s} for p, s in reversed(bids)],
        "asks": [{"price": p, "size": s} for p, s in reversed(asks)],
        "min_order_size": min_size, "tick_size": tick, "neg_risk": neg_risk,
        "last_trade_price": last}
    summary = OrderBookSummary(
        market=market, asset_id=token, timestamp=timestamp,
        bids=[OrderSummary(price=b["price"], size=b["size"]) for b in raw["bids"]],
        asks=[OrderSummary(price=a["price"], size=a["size"]) for a in raw["asks"]],
        min_order_size=min_size, tick_size=tick, neg_risk=neg_risk, last_trade_price=last)
    raw["hash"] = generate_orderbook_summary_hash(summary)
    return raw


def tokens_of(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(condition id, YES token, NO token) per market of a Gamma event payload."""
    out = []
    for m in event["markets"]:
        yes, no = json.loads(m["clobTokenIds"])
        out.append((m["conditionId"], yes, no))
    return out


# --- a local CLOB for live-mode tests ---------------------------------------------------------

_MICRO = Decimal(10) ** 6
_ORDER_STRUCT = [  # CTF Exchange V2 ``Order`` (docs: "Order structure"), declared independently
    {"name": "salt", "type": "uint256"}, {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"}, {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"}, {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"}, {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"}, {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"}]
_DOMAIN_STRUCT = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                  {"name": "chainId", "type": "uint256"},
                  {"name": "verifyingContract", "type": "address"}]
OTHER_ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # Hardhat account #1


def order_typed_data(order: Mapping[str, Any], exchange: str, chain_id: int) -> dict[str, Any]:
    """EIP-712 typed data of a posted V2 order (the JSON ``order`` object of ``POST /order``)."""
    def b32(value: str) -> bytes:
        return bytes.fromhex(str(value).removeprefix("0x").zfill(64))

    return {
        "types": {"EIP712Domain": _DOMAIN_STRUCT, "Order": _ORDER_STRUCT},
        "primaryType": "Order",
        "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": chain_id,
                   "verifyingContract": exchange},
        "message": {"salt": int(order["salt"]), "maker": order["maker"],
                    "signer": order["signer"], "tokenId": int(order["tokenId"]),
                    "makerAmount": int(order["makerAmount"]),
                    "takerAmount": int(order["takerAmount"]),
                    "side": 0 if order["side"] == "BUY" else 1,
                    "signatureType": int(order["signatureType"]),
                    "timestamp": int(order["timestamp"]), "metadata": b32(order["metadata"]),
                    "builder": b32(order["builder"])}}


def recover_order_signer(order: Mapping[str, Any], exchange: str, chain_id: int) -> tuple[str, str]:
    """(signer recovered from the order's signature, order hash = the venue's order id)."""
    signable = encode_typed_data(full_message=order_typed_data(order, exchange, chain_id))
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return Account.recover_message(signable, signature=order["signature"]), "0x" + digest.hex()


def l2_signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The L2 ``POLY_SIGNATURE`` the CLOB expects: URL-safe base64 of HMAC-SHA256 (key: the
    URL-safe base64-decoded API secret) over ``timestamp + method + path + body``."""
    message = f"{timestamp}{method}{path}".encode() + body
    digest = hmac.new(base64.urlsafe_b64decode(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


@attrs.frozen
class Fault:
    """What :class:`LocalClob` does with one order post instead of answering it plainly.

    ``act``: the venue executes the order(s) (False: it never sees them); ``act_after_s``:
    it waits this long before acting (the client may have given up by then); ``delay_s``:
    the answer waits this long after acting; then one of ``reset`` (the connection is
    reset: mid-body after acting, before any answer otherwise), ``status`` (that HTTP
    status instead of the answer: 502, 503, 504, 429...), ``malformed`` (a 200 whose body
    is not the venue's shape), or the plain answer.  ``down_after``: from then on every
    private endpoint answers 503 (the venue cannot be asked) until ``clob.down = False``.
    ``delayed`` / ``delay_match_s``: those tokens' orders are answered ``"delayed"`` and
    matched later (the venue's matching delay).  ``patch``: keys replaced in each order's
    answer (None removes the key): a 200 of the wrong shape after acting.
    """

    act: bool = True
    act_after_s: float = 0.0
    delay_s: float = 0.0
    reset: bool = False
    status: int | None = None
    malformed: bool = False
    down_after: bool = False
    #: Tokens whose orders in this post meet the market's matching delay: answered
    #: ``"delayed"`` at once, matched (or killed) ``delay_match_s`` later.
    delayed: tuple[str, ...] = ()
    delay_match_s: float = 0.0
    patch: tuple[tuple[str, Any], ...] = ()


class LocalClob:
    """The CLOB V2's private endpoints on 127.0.0.1, matching signed orders against books.

    Attach to a :class:`~argus_venue_polymarket.replay_server.SnapshotServer` (``clob=``).
    It serves, in the documented payload shapes: ``POST /order``, ``POST /orders``,
    ``DELETE /order``, ``GET /data/orders``, ``GET /data/order/<id>``, ``GET /data/trades``
    and ``POST /v1/heartbeats``.  Every request must carry valid L2 headers (API key,
    passphrase, address and the HMAC over timestamp, method, path and body), and every
    order a signature that recovers (EIP-712, CTF Exchange V2 domain of the market's
    exchange, negRisk or not) to its signer and maker; failures are answered 401 / refused
    and recorded in ``auth_failures`` / ``bad_signatures``.

    Matching walks this server's own copy of each book (depth is consumed; the other
    side of each match is another account): FOK fills completely or is killed, FAK fills
    what crosses, GTC/GTD cross and then rest (open orders, ``metadata`` kept).  A resting
    order's later maker fill is scripted with :meth:`fill_resting`.  With ``hold_posts``
    an order post is executed, then its answer is held until :meth:`release_all` (a
    client killed meanwhile never hears it).  ``faults`` scripts what happens to the next
    order posts (:class:`Fault`: lost, late or malformed answers, 5xx, 429, resets, the
    venue acting after the client gave up); ``accepted`` counts how often each order hash
    was acted on, ``attempts`` every post received; a post of an order it holds already is
    refused ``Duplicated`` as the venue does (counted in ``duplicates``).  The websocket
    user channel (:meth:`serve_user_channel`, served by the ``SnapshotServer``'s websocket port at
    ``/ws/user``) pushes this account's ``trade`` and ``order`` events, through scripted
    ``user_faults``.  Not thread-safe beyond one lock around the state (and one around the
    user sockets), which is all a test server needs.
    """

    def __init__(self, books: Mapping[str, Mapping[str, Any]], *, api_key: str, api_secret: str,
                 api_passphrase: str, address: str = HARDHAT_ADDRESS, chain_id: int = 137
                 ) -> None:
        from py_clob_client_v2.config import get_contract_config

        self.api_key, self.api_secret, self.api_passphrase = api_key, api_secret, api_passphrase
        self.address = address
        self.chain_id = chain_id
        cfg = get_contract_config(chain_id)
        self._exchanges = {True: cfg.neg_risk_exchange_v2, False: cfg.exchange_v2}
        self.asks: dict[str, dict[Decimal, Decimal]] = {}
        self.bids: dict[str, dict[Decimal, Decimal]] = {}
        self.markets: dict[str, tuple[str, bool]] = {}  # token -> (condition id, negRisk)
        for token, book in books.items():
            self.asks[token] = {Decimal(lv["price"]): Decimal(lv["size"]) for lv in book["asks"]}
            self.bids[token] = {Decimal(lv["price"]): Decimal(lv["size"]) for lv in book["bids"]}
            self.markets[token] = (str(book.get("market", "")), bool(book.get("neg_risk", False)))
        self.orders: dict[str, dict[str, Any]] = {}  # venue order id -> OpenOrder-shaped record
        self.trades: list[dict[str, Any]] = []
        self.posts: list[tuple[str, list[dict[str, Any]]]] = []  # (path, order payloads)
        self.signers: list[str] = []  # signer recovered from each posted order
        self.requests: list[tuple[str, str]] = []  # authenticated (method, path)
        self.auth_failures: list[str] = []
        self.bad_signatures: list[str] = []
        self.heartbeats = 0
        #: Scripted faults, one per order post in order (see :class:`Fault`).
        self.faults: deque[Fault] = deque()
        self.attempts: list[tuple[str, list[dict[str, Any]]]] = []  # every post received
        #: How many times each order (by hash) was acted on: exactly once means 1 each.
        self.accepted: Counter[str] = Counter()
        #: Posts of an order the venue held already, refused ``Duplicated`` (by hash).
        self.duplicates: Counter[str] = Counter()
        #: Every private endpoint answers 503 while set (a venue that cannot be asked).
        self.down = False
        #: Scripted answers of the read and cancel endpoints, per route (``"GET
        #: /data/order"`` for every ``/data/order/<id>``, ``"GET /data/orders"``, ``"GET
        #: /data/trades"``, ``"DELETE /order"``), each used once, in order: ``("status",
        #: code)`` answers that status without acting; ``("rate_limited", seconds)`` a
        #: 429 with that ``Retry-After`` (text, as sent), without acting; ``("garbled",
        #: None)`` a 200 whose body is cut short; ``("json", payload)`` a 200 with ``payload``;
        #: ``("late", seconds)``: wait that long (the client may give up), then act and
        #: answer plainly;
        #: ``("act_status", code)`` / ``("act_garbled", None)`` / ``("act_reset", None)``:
        #: act (a cancel), then answer that.
        self.read_faults: dict[str, deque[tuple[str, Any]]] = {}
        #: Eventual consistency: an order (and the trades it took) shows in the read
        #: endpoints only this many seconds after it was placed.
        self.visible_after_s = 0.0
        #: A taker match of several levels is several trades, one a level (the answer
        #: lists every trade id): the venue settling a sweep in several transactions.
        self.split_taker_trades = False
        self._born: dict[str, float] = {}  # venue order id -> monotonic time placed
        self.hold_posts = False
        self.post_received = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # --- the websocket user channel (``serve_user_channel``) ---
        self._user_conns: dict[ServerConnection, set[str]] = {}  # connection -> markets
        self._user_lock = threading.Lock()  # around every send: one writer per socket
        #: The credentials the user channel accepts (None: the REST ones); set others and
        #: ours are wrong for the socket only.
        self.ws_auth: tuple[str, str, str] | None = None
        #: Every subscription received (its ``auth`` left out) and how many were refused.
        self.user_subscriptions: list[dict[str, Any]] = []
        self.user_refused = 0
        #: While set, the user channel's handshake is answered 503 (the channel is down).
        self.user_down = False
        #: What happens to the next user-channel events, one per event in order: ``"drop"``
        #: (never sent), ``"repeat"`` (sent twice), ``"malformed"`` (a frame that is not
        #: JSON first, then the event), ``"garbled"`` (the event cut short instead of it),
        #: ``"close"`` (sent, then every user socket closed).
        self.user_faults: deque[str] = deque()
        #: Every user-channel event produced, sent or not.
        self.user_events: list[dict[str, Any]] = []

    # --- test controls ------------------------------------------------------------------

    def release_all(self) -> None:
        """Answer every held order post (and stop holding)."""
        self.hold_posts = False
        self._release.set()

    def drain(self, token: str, side: str) -> None:
        """Remove one side (``"asks"`` / ``"bids"``) of a book: nobody to trade with there."""
        (self.asks if side == "asks" else self.bids)[token] = {}

    def count(self, method: str, path: str) -> int:
        """How many authenticated requests ``method path`` were served."""
        return sum(1 for r in self.requests if r == (method, path))

    def fill_resting(self, order_id: str, quantity: str | Decimal) -> str:
        """Another account takes ``quantity`` of our resting order; returns the trade id."""
        qty = Decimal(quantity)
        with self._lock:
            rec = self.orders[order_id]
            rec["size_matched"] = str(Decimal(rec["size_matched"]) + qty)
            if Decimal(rec["size_matched"]) >= Decimal(rec["original_size"]):
                rec["status"] = "MATCHED"
            tid = f"trade-{next(self._ids)}"
            rec["associate_trades"].append(tid)
            taker_side = "SELL" if rec["side"] == "BUY" else "BUY"
            self.trades.append(self._trade(
                tid, f"0x{next(self._ids):064x}", rec["asset_id"], taker_side, qty,
                Decimal(rec["price"]), "MAKER", owner="other-account",
                makers=[self._maker(order_id, self.api_key, self.address, rec["asset_id"],
                                    rec["side"], Decimal(rec["price"]), qty)]))
            self._user_event(self._trade_event(self.trades[-1]))
            self._user_event(self._order_event(rec, "UPDATE"))
            return tid

    def set_trade_status(self, trade_id: str, status: str) -> None:
        """Move a trade on (``MINED``, ``CONFIRMED``, ``FAILED``): reported again, same id
        (by ``GET /data/trades`` and as a user-channel ``trade`` event)."""
        with self._lock:
            for t in self.trades:
                if t["id"] == trade_id:
                    t["status"], t["last_update"] = status, str(int(time.time()))
                    self._user_event(self._trade_event(t))

    # --- the websocket user channel ---------------------------------------------------------

    def serve_user_channel(self, conn: ServerConnection) -> None:
        """One user-channel connection (``SnapshotServer`` routes ``/ws/user`` here): the
        first message must be ``{"auth": {apiKey, secret, passphrase}, "markets": [...],
        "type": "user"}`` with this account's credentials, else the socket is closed (1008
        ``INVALID AUTH``; the venue closes it too, documenting no error message); then
        this account's ``trade`` / ``order`` events of those markets (all when empty), and
        ``PONG`` for each ``PING``."""
        try:
            sub = json.loads(conn.recv(timeout=10))
            auth = sub.get("auth") if isinstance(sub, dict) else None
            got = (auth.get("apiKey"), auth.get("secret"), auth.get("passphrase")) \
                if isinstance(auth, dict) else None
            want = self.ws_auth or (self.api_key, self.api_secret, self.api_passphrase)
            if isinstance(sub, dict):
                self.user_subscriptions.append({k: v for k, v in sub.items() if k != "auth"})
            if not isinstance(sub, dict) or str(sub.get("type", "")).lower() != "user" or \
                    got != want:
                self.user_refused += 1
                conn.close(1008, "INVALID AUTH")
                return
            with self._user_lock:
                self._user_conns[conn] = {str(m) for m in sub.get("markets") or []}
            for msg in conn:
                if msg == "PING":
                    with self._user_lock:
                        conn.send("PONG")
        except (ConnectionClosed, ValueError, TimeoutError):
            return
        finally:
            with self._user_lock:
                self._user_conns.pop(conn, None)

    def drop_user_sockets(self) -> int:
        """Close every user-channel socket (1001, going away); returns how many.  Each close
        runs in a thread of its own: its handshake needs the client's loop, which may be
        the caller's."""
        with self._user_lock:
            conns = list(self._user_conns)
            self._user_conns.clear()
        for conn in conns:
            threading.Thread(target=conn.close, args=(1001, "going away (test)"),
                             daemon=True).start()
        return len(conns)

    @property
    def user_sockets(self) -> int:
        """How many user-channel sockets are subscribed."""
        with self._user_lock:
            return len(self._user_conns)

    def _user_event(self, event: dict[str, Any]) -> None:
        """Send one event to the subscribed user sockets of its market, through the next
        ``user_faults`` entry."""
        event = dict(event, timestamp=str(int(time.time() * 1000)))
        with self._user_lock:
            self.user_events.append(event)
            fault = self.user_faults.popleft() if self.user_faults else None
            if fault == "drop":
                return
            text = json.dumps(event)
            frames = {"repeat": [text, text], "malformed": ['{"event_type": "trade", "id": ', text],
                      "garbled": [text[: len(text) // 2]]}.get(fault or "", [text])
            for conn, markets in list(self._user_conns.items()):
                if markets and event.get("market") not in markets:
                    continue
                try:
                    for frame in frames:
                        conn.send(frame)
                except ConnectionClosed:
                    self._user_conns.pop(conn, None)
        if fault == "close":
            self.drop_user_sockets()

    def _trade_event(self, trade: Mapping[str, Any]) -> dict[str, Any]:
        """A ``trade`` event of the user channel: the trade's fields (``owner``: the API key
        of the event's owner, ours; ``trade_owner``: the trade's)."""
        return dict(trade, event_type="trade", type="TRADE", owner=self.api_key,
                    trade_owner=trade["owner"], maker_orders=[dict(m) for m in
                                                              trade["maker_orders"]])

    def _order_event(self, rec: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """An ``order`` event (``kind``: PLACEMENT, UPDATE, CANCELLATION) of one order."""
        return {"event_type": "order", "type": kind, "id": rec["id"], "owner": self.api_key,
                "order_owner": self.api_key, "market": rec.get("market", ""),
                "asset_id": rec["asset_id"], "side": rec["side"],
                "original_size": rec["original_size"], "size_matched": rec["size_matched"],
                "price": rec["price"], "associate_trades": list(rec["associate_trades"]) or None,
                "outcome": rec.get("outcome", "Yes"), "created_at": str(rec.get("created_at", "")),
                "expiration": rec.get("expiration", "0"), "order_type": rec["order_type"],
                "status": rec["status"], "maker_address": rec.get("maker_address", self.address)}

    # --- request routing ------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str], raw_body: bytes) -> tuple[int, Any] | None:
        """Answer a CLOB private endpoint (None for anything else)."""
        private = path in ("/order", "/orders", "/data/orders", "/data/trades",
                           "/v1/heartbeats") or path.startswith("/data/order/")
        if not private:
            return None
        if self.down:
            return 503, {"error": "local CLOB unavailable (test fault: down)"}
        problem = self._auth_problem(method, path, headers, raw_body)
        if problem:
            self.auth_failures.append(f"{method} {path}: {problem}")
            return 401, {"error": f"Unauthorized/Invalid api key ({problem})"}
        self.requests.append((method, path))
        if method == "POST" and path in ("/order", "/orders"):
            return self._post(path, body if path == "/orders" else [body])
        route = f"{method} {'/data/order' if path.startswith('/data/order/') else path}"
        with self._lock:
            scripted = self.read_faults.get(route)
            fault = scripted.popleft() if scripted else None
        if fault is not None:
            kind, value = fault
            if kind == "status":
                return int(value), {"error": f"test fault: HTTP {value}"}
            if kind == "rate_limited":
                return 429, Headed({"error": "test fault: HTTP 429 Too Many Requests"},
                                   {"Retry-After": str(value)})
            if kind == "garbled":
                return 200, b'{"data": [{"id": "0x'
            if kind == "json":
                return 200, value
            if kind == "late":
                time.sleep(float(value))  # a server thread: the venue acts late
        with self._lock:
            answer = self._route(method, path, query, body)
        if fault is not None:
            kind, value = fault
            if kind == "act_status":
                return int(value), {"error": f"test fault: HTTP {value}"}
            if kind == "act_garbled":
                return 200, json.dumps(answer[1]).encode()[:10]
            if kind == "act_reset":
                return 200, Reset(json.dumps(answer[1]).encode()[:8])
        return answer

    def _hidden(self, vid: str) -> bool:
        """Whether the read endpoints do not show order ``vid`` yet (``visible_after_s``)."""
        born = self._born.get(vid)
        return born is not None and time.monotonic() - born < self.visible_after_s

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any
               ) -> tuple[int, Any]:
        """The plain answer of a read or cancel endpoint (call with the lock held)."""
        if method == "DELETE" and path == "/order":
            return 200, self._cancel(str(body.get("orderID", "")))
        if method == "GET" and path == "/data/orders":
            rows = [dict(r) for r in self.orders.values()
                    if r["status"] == "LIVE" and not self._hidden(r["id"])]
            return 200, {"data": rows, "next_cursor": "LTE=", "limit": 500,
                         "count": len(rows)}
        if method == "GET" and path.startswith("/data/order/"):
            rec = self.orders.get(path.rsplit("/", 1)[1])
            if rec is None or self._hidden(rec["id"]):
                return 404, {"error": "order not found"}
            return 200, dict(rec)
        if method == "GET" and path == "/data/trades":
            return 200, self._trades(query)
        if method == "POST" and path == "/v1/heartbeats":
            self.heartbeats += 1
            return 200, {"heartbeat_id": f"hb-{self.heartbeats}"}
        return 404, {"error": f"no route {method} {path}"}

    def _post(self, path: str, items: list[dict[str, Any]]) -> tuple[int, Any]:
        """One order post, through the next scripted :class:`Fault` if any."""
        fault = self.faults.popleft() if self.faults else None
        self.attempts.append((path, items))
        if fault is not None and fault.act_after_s:
            time.sleep(fault.act_after_s)  # the venue acts late (the client may have gone)
        answers: list[dict[str, Any]] = []
        if fault is None or fault.act:
            with self._lock:
                self.posts.append((path, items))
                answers = [self._duplicate(item) or (
                    self._delay_one(item, fault.delay_match_s)
                    if fault is not None and str(item["order"]["tokenId"]) in fault.delayed
                    else self._post_one(item)) for item in items]
        if fault is not None and fault.down_after:
            self.down = True
        if self.hold_posts:
            self.post_received.set()
            self._release.wait(60)
        if fault is not None and fault.patch:
            for one in answers:
                for key, value in fault.patch:
                    if value is None:
                        one.pop(key, None)
                    else:
                        one[key] = value
        answer: Any = answers if path == "/orders" else (answers[0] if answers else None)
        if fault is None:
            return 200, answer
        if fault.delay_s:
            time.sleep(fault.delay_s)  # the answer comes late (maybe after the client's timeout)
        if fault.reset:
            partial = json.dumps(answer).encode()[:12] if fault.act else b""
            return 200, Reset(partial)
        if fault.status:
            return fault.status, {"error": f"test fault: HTTP {fault.status}"}
        if fault.malformed:
            return 200, b"<html>upstream sent something that is not JSON</html>"
        return 200, answer

    def _duplicate(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """The venue's refusal of an order it holds already (same signed order, same hash;
        docs "Error codes": ``INVALID_ORDER_DUPLICATED``), None for a new one.  Counted in
        ``duplicates``, never in ``accepted``: the venue does not act on it again."""
        order = item.get("order") or {}
        market = self.markets.get(str(order.get("tokenId")))
        if market is None:
            return None
        _signer, vid = recover_order_signer(order, self._exchanges[market[1]], self.chain_id)
        if vid not in self.orders:
            return None
        self.duplicates[vid] += 1
        return {"success": False, "orderID": "", "status": "unmatched",
                "errorMsg": f"order {vid} is invalid. Duplicated. Same order has already "
                            f"been placed, can't be placed again"}

    def _delay_one(self, item: dict[str, Any], delay_s: float) -> dict[str, Any]:
        """Answer ``"delayed"`` now (the order listed as DELAYED) and match it in
        ``delay_s`` (the venue's matching delay for marketable orders)."""
        order = item["order"]
        _cond, neg_risk = self.markets[str(order["tokenId"])]
        _signer, vid = recover_order_signer(order, self._exchanges[neg_risk], self.chain_id)
        self.orders[vid] = {"id": vid, "status": "DELAYED", "owner": self.api_key,
                            "asset_id": str(order["tokenId"]), "side": str(order["side"]),
                            "original_size": "0", "size_matched": "0", "price": "0",
                            "order_type": str(item.get("orderType", "GTC")),
                            "associate_trades": [], "metadata": order["metadata"]}

        def match() -> None:
            with self._lock:
                self._post_one(item)

        timer = threading.Timer(delay_s, match)
        timer.daemon = True
        timer.start()
        return {"success": True, "errorMsg": "", "orderID": vid, "status": "delayed",
                "transactionsHashes": [], "tradeIDs": []}

    def _auth_problem(self, method: str, path: str, headers: Mapping[str, str],
                      raw_body: bytes) -> str:
        h = {k.upper(): v for k, v in headers.items()}
        missing = [k for k in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP",
                               "POLY_API_KEY", "POLY_PASSPHRASE") if not h.get(k)]
        if missing:
            return "missing " + ", ".join(missing)
        if h["POLY_API_KEY"] != self.api_key or h["POLY_PASSPHRASE"] != self.api_passphrase:
            return "unknown api key or passphrase"
        if h["POLY_ADDRESS"].lower() != self.address.lower():
            return "address is not the key's"
        if abs(int(h["POLY_TIMESTAMP"]) - time.time()) > 300:
            return "stale timestamp"
        want = l2_signature(self.api_secret, h["POLY_TIMESTAMP"], method, path, raw_body)
        if not hmac.compare_digest(want, h["POLY_SIGNATURE"]):
            return "bad HMAC signature"
        return ""

    # --- orders and matching --------------------------------------------------------------

    def _post_one(self, item: Mapping[str, Any]) -> dict[str, Any]:
        order = item["order"]
        token = str(order["tokenId"])
        if token not in self.markets:
            return {"success": False, "errorMsg": f"market for token {token} not found",
                    "orderID": "", "status": "unmatched"}
        cond, neg_risk = self.markets[token]
        signer, vid = recover_order_signer(order, self._exchanges[neg_risk], self.chain_id)
        self.signers.append(signer)
        self.accepted[vid] += 1
        self._born[vid] = time.monotonic()
        if signer.lower() != str(order["signer"]).lower() or \
                signer.lower() != str(order["maker"]).lower() or item.get("owner") != self.api_key:
            self.bad_signatures.append(vid)
            return {"success": False, "errorMsg": "invalid order signature", "orderID": vid,
                    "status": "unmatched"}
        side = str(order["side"])
        maker, taker = Decimal(order["makerAmount"]), Decimal(order["takerAmount"])
        shares, cash = (taker, maker) if side == "BUY" else (maker, taker)
        size, price = shares / _MICRO, cash / shares
        order_type = str(item.get("orderType", "GTC"))
        levels = self._crossing(token, side, price, size)
        got = sum((q for _, q in levels), Decimal(0))
        record = {  # the OpenOrder shape of GET /data/order(s), plus the signed metadata
            "id": vid, "status": "LIVE", "owner": self.api_key, "maker_address": self.address,
            "market": cond, "asset_id": token, "side": side, "original_size": str(size),
            "size_matched": "0", "price": str(price), "outcome": "Yes",
            "expiration": str(order.get("expiration", "0")), "order_type": order_type,
            "associate_trades": [], "created_at": int(time.time()),
            "metadata": order["metadata"]}
        self.orders[vid] = record
        if (order_type == "FOK" and got < size) or (order_type == "FAK" and got == 0):
            record["status"] = "CANCELED"
            return {"success": False, "orderID": vid, "status": "unmatched",
                    "errorMsg": "order couldn't be fully filled. FOK orders are fully filled "
                                "or killed." if order_type == "FOK" else
                                "no orders found to match with FAK order. FAK orders are "
                                "partially filled or killed if no match is found."}
        answer: dict[str, Any] = {"success": True, "errorMsg": "", "orderID": vid,
                                  "status": "live", "transactionsHashes": [], "tradeIDs": []}
        tids: list[str] = []
        if got > 0:
            book = self.asks[token] if side == "BUY" else self.bids[token]
            for px, q in levels:
                book[px] -= q
                if book[px] <= 0:
                    del book[px]
            paid = sum((px * q for px, q in levels), Decimal(0))
            # One trade for the match, or one per level taken (``split_taker_trades``: the
            # venue settles a sweep in several trades, each its own transaction).
            groups = [[lv] for lv in levels] if self.split_taker_trades else [levels]
            txs = []
            for group in groups:
                tid, tx = f"trade-{next(self._ids)}", f"0x{next(self._ids):064x}"
                makers = [self._maker(f"0x{next(self._ids):064x}", "other-account",
                                      OTHER_ACCOUNT, token, "SELL" if side == "BUY" else "BUY",
                                      px, q) for px, q in group]
                size_g = sum((q for _, q in group), Decimal(0))
                paid_g = sum((px * q for px, q in group), Decimal(0))
                self.trades.append(self._trade(tid, vid, token, side, size_g, paid_g / size_g,
                                               "TAKER", owner=self.api_key, makers=makers,
                                               tx=tx))
                tids.append(tid)
                txs.append(tx)
            making, taking = (paid, got) if side == "BUY" else (got, paid)
            answer.update(status="matched", makingAmount=str(making), takingAmount=str(taking),
                          transactionsHashes=txs, tradeIDs=tids)
            record.update(size_matched=str(got), associate_trades=tids)
        if got >= size:
            record["status"] = "MATCHED"
        elif order_type not in ("GTC", "GTD"):
            record["status"] = "CANCELED"  # a FAK's unfilled rest
        for trade in self.trades[len(self.trades) - len(tids):] if tids else ():
            self._user_event(self._trade_event(trade))
        if record["status"] == "LIVE":
            self._user_event(self._order_event(record, "PLACEMENT"))
        return answer

    def _crossing(self, token: str, side: str, price: Decimal, size: Decimal
                  ) -> list[tuple[Decimal, Decimal]]:
        """Levels (price, quantity) an order of ``size`` at ``price`` would take, best first."""
        if side == "BUY":
            book = sorted((p, q) for p, q in self.asks[token].items() if p <= price)
        else:
            book = sorted(((p, q) for p, q in self.bids[token].items() if p >= price),
                          reverse=True)
        out, left = [], size
        for px, q in book:
            if left <= 0:
                break
            take = min(q, left)
            out.append((px, take))
            left -= take
        return out

    def _cancel(self, order_id: str) -> dict[str, Any]:
        rec = self.orders.get(order_id)
        if rec is None or rec["status"] != "LIVE":
            return {"canceled": [], "not_canceled": {order_id: "order not found or not open"}}
        rec["status"] = "CANCELED"
        self._user_event(self._order_event(rec, "CANCELLATION"))
        return {"canceled": [order_id], "not_canceled": {}}

    def _trades(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        after = int((query.get("after") or ["0"])[0])
        ids = query.get("id")
        wanted = ids[0] if ids else None
        rows = [dict(t) for t in self.trades
                if int(t["match_time"]) >= after and (wanted is None or t["id"] == wanted)
                and not self._hidden(t["taker_order_id"])]
        return {"data": rows, "next_cursor": "LTE=", "limit": 100, "count": len(rows)}

    def _trade(self, tid: str, taker_order: str, token: str, side: str, size: Decimal,
               price: Decimal, trader_side: str, *, owner: str,
               makers: list[dict[str, Any]], tx: str = "") -> dict[str, Any]:
        now = str(int(time.time()))
        return {"id": tid, "taker_order_id": taker_order, "market": self.markets[token][0],
                "asset_id": token, "side": side, "size": str(size), "fee_rate_bps": "0",
                "price": str(price), "status": "MATCHED", "match_time": now,
                "last_update": now, "outcome": "Yes", "bucket_index": 0, "owner": owner,
                "maker_address": self.address if trader_side == "TAKER" else OTHER_ACCOUNT,
                "transaction_hash": tx or f"0x{next(self._ids):064x}",
                "trader_side": trader_side, "maker_orders": makers}

    @staticmethod
    def _maker(order_id: str, owner: str, address: str, token: str, side: str, price: Decimal,
               qty: Decimal) -> dict[str, Any]:
        return {"order_id": order_id, "owner": owner, "maker_address": address,
                "asset_id": token, "matched_amount": str(qty), "price": str(price),
                "fee_rate_bps": "0", "outcome": "Yes", "side": side}


async def stream_frames(tokens: list[str], frames: list[Any],
                        until: Callable[[list[MarketEvent]], bool]) -> list[MarketEvent]:
    """The events a :class:`MarketStream` over ``tokens`` yields, until ``until`` holds of
    them (10 s at most), while a local market websocket sends ``frames`` after the
    subscription (and keeps the connection open, answering nothing)."""

    async def handler(ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()  # the subscription
            for frame in frames:
                await ws.send(json.dumps(frame))
            async for _ in ws:  # PINGs; stay open
                pass

    out: list[MarketEvent] = []
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        s = PolymarketSettings(ws_url=f"ws://127.0.0.1:{port}", clob_url="http://127.0.0.1:9",
                               reconnect_min_s=0.01, reconnect_max_s=0.02)
        stream = MarketStream(s, tokens, PolymarketRest(s), seed=1)

        async def read() -> None:
            async for ev in stream:
                out.append(ev)
                if until(out):
                    return

        await asyncio.wait_for(read(), timeout=10)
    return out
