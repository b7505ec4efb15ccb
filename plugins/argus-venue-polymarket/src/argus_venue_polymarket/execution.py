"""Orders: core ``Order`` -> a locally built and signed CLOB V2 order via py-clob-client-v2.

Where an order goes
-------------------
``PolymarketVenue.submit(order)`` -> :meth:`PolymarketExecution.submit`:

1. :meth:`PolymarketExecution.build` turns the core order into
   ``OrderArgsV2`` and signs it *locally* with py-clob-client-v2's
   ``OrderBuilder`` (EIP-712, exchange V2 domain, the negRisk exchange for
   negRisk markets).  Tick size and negRisk come from discovery, so building
   needs no network.  Before anything leaves the process,
   :func:`verify_signed_order` re-derives what was signed (token, side,
   amounts = price x size, signer recovered from the signature) and refuses
   an order whose signature does not say what we meant.  It also computes the
   order's EIP-712 hash: the venue order id the CLOB will give it, known
   *before* sending.
2. ``ClobClient.post_order`` / ``post_orders`` (L2 HMAC headers) sends it,
   exactly once (below).  Time in force: GTC, GTD (``expiration`` = now +
   ``gtd_lifetime_s``), IOC -> FAK, FOK -> FOK.
3. Resting orders keep the venue's dead-man's switch alive
   (:class:`HeartbeatKeeper`, ``POST /v1/heartbeats``); if heartbeats fail,
   new resting orders are refused (fail closed) and the venue cancels what
   rests.

Exactly once
------------
Polymarket's docs promise no de-duplication of order posts, so an order is
never sent again unless the venue provably never saw it.  Every post ends in
one of three ways (:class:`PostOutcome`):

* **answered** (a well-formed ``200`` body, or a ``4xx`` refusal): that is the
  outcome;
* **ambiguous, ended**: a lost or malformed answer, a reset connection, ``502``
  / ``503``, ``429`` — the HTTP exchange is over, but the venue may have acted;
* **ambiguous, still running**: the client's timeout or a ``504`` — the venue
  may still act on the request after we stopped waiting.

After an ambiguous outcome the venue is asked for the order for up to
``order_settle_s`` (every ``order_lookup_interval_s``): ``GET
/data/order/<hash>``, then ``GET /data/orders`` for the token (by id or the
signed ``metadata``), then ``GET /data/trades`` for the token since the post
(an order that executed and left the book).  Found: the venue's record and
trades become the answer (fills under the trades' ids, the order watched until
it ends).  Not found after an *ended* exchange: the venue never took it, so the
**same signed order** (same salt, same hash) is sent again, at most
``order_max_attempts`` sends in all (``429``: after ``Retry-After``).  Not found
while the request may still be running, or the venue could not be asked at
all: :class:`argus_core.errors.OrderUnknown` — never a blind re-send;
``executions()`` keeps looking for the order by its hash and reports what
became of it (or CANCELLED, never placed, after ``order_give_up_s``).  The
library's own ``retry_on_error`` (a blind re-post after a 5xx) stays off.

Baskets
-------
:meth:`PolymarketExecution.submit_basket` sends every leg as **FOK at the
scanner's walked limit price** in one ``POST /orders`` batch, exactly once
(the same rules per leg).  All legs filled: their fills.  Some legs executed
and others were killed: ``BasketIncomplete`` carrying the executed legs' fills
(under the legs' own client order ids); the killed legs are reported CANCELLED
through ``executions()``.  A leg answered ``"delayed"`` (a market's matching delay) is
waited for, up to ``order_settle_s``, before the basket is judged.  The venue never
unwinds anything itself: the core flattens the excess with ordinary ledgered orders
(LIMIT IOC -> FAK, ``reduce_only``) that come through
:meth:`PolymarketExecution.submit` like any other order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs
import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import (
    ApiCreds,
    CreateOrderOptions,
    OpenOrderParams,
    OrderArgsV2,
    OrderPayload,
    OrderType,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2
from py_clob_client_v2.order_utils.model.side import Side as ClobSide

from argus_core import (
    BasketIncomplete,
    ConfigError,
    DataError,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderUnknown,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
    VenueResume,
)
from argus_core import (
    OrderType as CoreOrderType,
)
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.instruments import fee_of, token_of
from argus_venue_polymarket.schemas import TRADE_BOOKED_STATUSES, ClobTrade

log = logging.getLogger(__name__)

_TIF = {TimeInForce.GTC: OrderType.GTC, TimeInForce.GTD: OrderType.GTD,
        TimeInForce.IOC: OrderType.FAK, TimeInForce.FOK: OrderType.FOK}
_UNIT = Decimal(10) ** C.TOKEN_DECIMALS
_SEEN_TRADES_MAX = 100_000
#: How the CLOB words a FOK/FAK order it killed (its ``errorMsg``): "order couldn't be fully
#: filled. FOK orders are fully filled or killed." / "no orders found to match with FAK
#: order. FAK orders are partially filled or killed if no match is found." (docs: "Error
#: codes"; FOK_ORDER_NOT_FILLED_ERROR).  Any other refusal is a rejection.
_KILL_WORDS = ("killed", "fok_order_not_filled", "no orders found to match")
#: Why an order the venue no longer holds open ended, by its ``GET /data/order`` status.
_ENDED = {"CANCELED": "cancelled at the venue",
          "CANCELED_MARKET_RESOLVED": "cancelled at the venue: the market resolved",
          "INVALID": "invalidated by the venue"}
#: Seconds of clock skew allowed when asking ``GET /data/trades?after=`` about a post.
_SKEW_S = 60
#: The longest ``Retry-After`` honoured before re-sending an order the venue did not take.
_MAX_RETRY_AFTER_S = 10.0
#: How long a post waits for the core to record its hash (see ``_announce``).
_ANNOUNCE_S = 5.0


def killed_by_venue(order_type: str, resp: Mapping[str, Any]) -> bool:
    """True when a refused post (``success: false``) is the venue killing a FOK/FAK order
    that could not (fully) match — the order's defined outcome, not a rejection."""
    msg = str(resp.get("errorMsg") or "").lower()
    return order_type in (OrderType.FOK, OrderType.FAK) and any(w in msg for w in _KILL_WORDS)


def client_order_metadata(client_order_id: str) -> str:
    """bytes32 ``metadata`` carried by the signed order: keccak of the client order id, so
    open orders can be matched to ledger orders after a restart."""
    return "0x" + keccak(text=client_order_id).hex()


def verify_signed_order(signed: SignedOrderV2, *, exchange: str, chain_id: int, token_id: str,
                        side: Side, price: Decimal, size: Decimal, signer: str) -> str:
    """Check that ``signed`` says what we meant (``VenueError`` otherwise); returns the
    order's EIP-712 hash, which is the venue order id the CLOB will give it.

    Re-derives the EIP-712 digest over the V2 struct, recovers the signer
    from the signature and compares token, side and the 6-decimal maker /
    taker amounts with ``price`` x ``size``.
    """
    builder = ExchangeOrderBuilderV2(exchange, chain_id, None)  # type: ignore[arg-type]
    typed = builder.build_order_typed_data(signed)
    recovered = Account.recover_message(encode_typed_data(full_message=typed),
                                        signature=signed.signature)
    problems = []
    if recovered.lower() != signer.lower():
        problems.append(f"signature recovers to {recovered}, not {signer}")
    if str(signed.tokenId) != token_id:
        problems.append(f"tokenId {signed.tokenId} != {token_id}")
    want_side = ClobSide.BUY if side is Side.BUY else ClobSide.SELL
    if int(signed.side) != int(want_side):
        problems.append(f"side {signed.side} != {want_side}")
    shares = int(size * _UNIT)
    cash = int((price * size * _UNIT).to_integral_value(ROUND_DOWN))
    maker, taker = int(signed.makerAmount), int(signed.takerAmount)
    want = (cash, shares) if side is Side.BUY else (shares, cash)
    # The client rounds cash to the tick's amount precision; allow one unit of rounding.
    if abs(maker - want[0]) > 1 or abs(taker - want[1]) > 1:
        problems.append(f"amounts maker={maker} taker={taker}, expected about {want}")
    if problems:
        raise VenueError("polymarket: refusing to send an order whose signature does not match "
                         "the intent: " + "; ".join(problems))
    return builder.build_order_hash(typed)


@attrs.frozen
class SentOrder:
    """An order as the venue knows it: the core order, its CLOB order type and its hash
    (the venue order id, known before it is sent)."""

    order: Order
    order_type: str
    order_hash: str

    @property
    def client_order_id(self) -> str:
        """The core client order id."""
        return self.order.client_order_id


@attrs.frozen
class SignedPost(SentOrder):
    """One order ready to send: a :class:`SentOrder` and what was signed."""

    signed: SignedOrderV2


@attrs.frozen
class PostOutcome:
    """How one order post (single or batch) ended, as far as this process can tell.

    ``answer`` is the venue's decoded answer (a ``200`` body, or a ``4xx`` refusal turned
    into ``{"success": false, "errorMsg": ...}``); without one the outcome is ambiguous
    and ``problem`` says why.  ``ended`` is False when the venue may still be acting on
    the request (our timeout, a ``504``); ``refused`` when the venue said it took nothing
    (``429``, ``503``, no connection) — one clean look-up then suffices.
    """

    answer: Any = None
    problem: str = ""
    ended: bool = True
    refused: bool = False
    retry_after_s: float = 0.0


class ClobTransportError(PolyApiException):
    """An exchange with the CLOB that failed below HTTP (no connection, timeout, reset,
    broken framing); ``cause`` is httpx's exception, so "never sent" can be told from
    "may have been acted on"."""

    def __init__(self, cause: httpx.RequestError) -> None:
        super().__init__(error_msg=f"{type(cause).__name__}: {cause}")
        self.cause = cause


class ClobStatusError(PolyApiException):
    """A non-200 answer of the CLOB, with the ``Retry-After`` it carried (seconds, 0 when
    none: a ``429`` says when to come back)."""

    def __init__(self, resp: httpx.Response) -> None:
        super().__init__(resp)
        self.retry_after_s = 0.0
        with contextlib.suppress(TypeError, ValueError):
            self.retry_after_s = float(resp.headers.get("Retry-After"))


class ClobHttpClient(ClobClient):
    """py-clob-client-v2's ``ClobClient`` over an httpx client of its own.

    The library sends through one module-wide httpx client (httpx's default 5 s
    timeout) and turns every transport failure into "Request exception!"; exactly-once
    submission needs a configured timeout and to know *which* failure happened.  The
    request shape (headers, JSON body, status handling) is the library's.
    """

    def __init__(self, host: str, chain_id: int, *, timeout_s: float, **kwargs: Any) -> None:
        # retry_on_error stays False: the library would re-post an order blind after a 5xx.
        super().__init__(host, chain_id, retry_on_error=False, **kwargs)
        self.http = httpx.Client(http2=True, timeout=timeout_s)

    def _request(self, method: str, endpoint: str, headers: dict[str, str] | None,
                 data: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = dict(headers or {})
        headers.update({"User-Agent": "py_clob_client_v2", "Accept": "*/*",
                        "Connection": "keep-alive", "Content-Type": "application/json"})
        if method == "GET":
            headers["Accept-Encoding"] = "gzip"
        try:
            if isinstance(data, str):
                resp = self.http.request(method, endpoint, headers=headers,
                                         content=data.encode("utf-8"), params=params)
            else:
                resp = self.http.request(method, endpoint, headers=headers, json=data,
                                         params=params)
        except httpx.RequestError as exc:
            raise ClobTransportError(exc) from exc
        if resp.status_code != 200:
            raise ClobStatusError(resp)
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def _resolve_transactions_hashes(self, response: Any) -> Any:
        # The library polls the trades for up to 30 s after a match to fill in settlement
        # transaction hashes; fills are booked from the answer's amounts and the trades
        # feed, so that wait would only delay the answer (and the basket's judgement).
        return response

    def _get(self, endpoint: str, headers: Any = None, params: dict[str, Any] | None = None
             ) -> Any:
        return self._request("GET", endpoint, headers, None, params)

    def _post(self, endpoint: str, headers: Any = None, data: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        return self._request("POST", endpoint, headers, data, params)

    def _delete(self, endpoint: str, headers: Any = None, data: Any = None,
                params: dict[str, Any] | None = None) -> Any:
        return self._request("DELETE", endpoint, headers, data, params)


def post_outcome(exc: Exception) -> PostOutcome:
    """What a failed order post means (see :class:`PostOutcome`)."""
    if isinstance(exc, ClobTransportError):
        cause = exc.cause
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return PostOutcome(problem=f"not sent ({exc.error_msg})", refused=True)
        if isinstance(cause, httpx.TimeoutException):
            return PostOutcome(problem=f"no answer in time ({exc.error_msg})", ended=False)
        return PostOutcome(problem=f"the connection failed mid-exchange ({exc.error_msg})")
    if isinstance(exc, PolyApiException) and exc.status_code is not None:
        code, msg = exc.status_code, exc.error_msg
        if code == 429:
            return PostOutcome(problem=f"rate limited (429: {msg})", refused=True,
                               retry_after_s=exc.retry_after_s
                               if isinstance(exc, ClobStatusError) else 0.0)
        if code == 503:
            return PostOutcome(problem=f"venue unavailable (503: {msg})", refused=True)
        if code == 504:
            return PostOutcome(problem=f"gateway timeout (504: {msg})", ended=False)
        if code >= 500:
            return PostOutcome(problem=f"venue error ({code}: {msg})")
        text = msg.get("error", msg) if isinstance(msg, dict) else msg
        return PostOutcome(answer={"success": False, "errorMsg": str(text), "orderID": "",
                                   "status": f"http {code}"})
    return PostOutcome(problem=f"{type(exc).__name__}: {exc}")


class _Unreachable(Exception):
    """The venue could not be asked about an order (transport failure, 5xx, 429)."""


@attrs.frozen
class _Found:
    """What the venue holds of an order we sent: its record and/or its trades."""

    venue_order_id: str
    row: Mapping[str, Any] | None = None
    trades: tuple[ClobTrade, ...] = ()


@attrs.frozen
class _Unknown:
    """An order whose post stayed ambiguous: ``executions()`` keeps looking for it."""

    post: SentOrder
    since_s: int
    problem: str
    give_up_at_s: float


@attrs.define
class SendResult:
    """What one exactly-once send decided, per client order id."""

    fills: dict[str, list[Fill]] = attrs.Factory(dict)
    unknown: dict[str, str] = attrs.Factory(dict)  # undecidable -> why
    unplaced: dict[str, str] = attrs.Factory(dict)  # provably never placed -> why


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


class PolymarketExecution:
    """Live order entry for one account through py-clob-client-v2."""

    def __init__(self, settings: PolymarketSettings,
                 instruments: Callable[[str], Instrument | None], *,
                 gtd_lifetime_s: int = 300, client: ClobClient | None = None) -> None:
        self.settings = settings
        self._instrument = instruments
        self.gtd_lifetime_s = gtd_lifetime_s
        self._client = client
        self.venue_ids: dict[str, str] = {}  # client order id -> venue order id
        self._orders: dict[str, Order] = {}
        self.heartbeat: HeartbeatKeeper | None = None
        #: Venue order ids whose taker matches the post response already reported as fills.
        self.taker_reported: set[str] = set()
        #: Core orders of this run known from the ledger (``resume``): how open orders and
        #: trades of a previous process map back to core client order ids.
        self.known_orders: dict[str, Order] = {}
        #: Order posts sent whose response has not been processed yet: a trade of an
        #: order id we do not know may be one of them, so it waits for the next poll.
        self.posts_in_flight = 0
        #: Venue order ids (hashes) whose post or look-up is under way: their trades wait,
        #: so a match is booked under one fill id only (the answer's or the trade's).
        self._in_flight: set[str] = set()
        #: Orders whose post stayed ambiguous (``OrderUnknown``), or that were pending when
        #: the previous process stopped: looked for by hash until found or given up.
        self.unknown: dict[str, _Unknown] = {}
        #: Orders pending at a restart with no venue order id recorded: when to give up.
        self.unidentified: dict[str, float] = {}
        #: Announced order hashes (PENDING updates) -> set once ``executions()``'s consumer
        #: has taken the update (the core has recorded the hash) — before the post goes out.
        self._durable: dict[int, asyncio.Event] = {}
        self._consuming = False  # an executions() consumer is running
        self._looked_up: set[str] = set()  # venue order ids already asked about (GET order)
        self._seen_trades: dict[str, int] = {}  # fill id -> match time (s), for de-duplication
        #: Where the first trades poll starts after a restart (newest booked fill, seconds).
        self.resume_after_s: int | None = None
        #: What ``executions()`` reports next (fills and ``OrderUpdate``s, in venue order).
        self._reports: deque[Fill | OrderUpdate] = deque()
        self._wake = asyncio.Event()
        #: Orders that may still trade (resting, or answered "delayed"): client order id ->
        #: venue order id, watched until they leave the venue's open orders.
        self.watched: dict[str, str] = {}
        #: Watched orders we know have ended (our cancel, confirmed) -> why.
        self._ending: dict[str, str] = {}
        self._lookup_failures: dict[str, int] = {}  # venue order id -> failed GET order count
        #: Own-side quantity reported per client order id (responses, trades, the ledger).
        self.reported: dict[str, Decimal] = {}

    # --- client ---------------------------------------------------------------------------

    @property
    def client(self) -> ClobClient:
        """The py-clob-client-v2 client (built on first use; needs ``private_key``)."""
        if self._client is None:
            s = self.settings
            if s.private_key is None:
                raise ConfigError("[plugins.polymarket] private_key is not set: live orders need "
                                  "a signer key reference like '$env:POLY_PRIVATE_KEY'")
            creds = None
            if s.api_key and s.api_secret and s.api_passphrase:
                creds = ApiCreds(s.api_key.reveal(), s.api_secret.reveal(),
                                 s.api_passphrase.reveal())
            self._client = ClobHttpClient(s.clob_url.rstrip("/"), s.chain_id,
                                          timeout_s=s.request_timeout_s,
                                          key=s.private_key.reveal(), creds=creds,
                                          signature_type=s.signature_type, funder=s.funder)
        return self._client

    async def ensure_api_creds(self) -> None:
        """Derive (or create) L2 API credentials from the signer when none are configured."""
        client = self.client
        if client.creds is None:
            creds = await asyncio.to_thread(client.create_or_derive_api_key)
            client.set_api_creds(creds)

    def _heartbeat(self) -> HeartbeatKeeper:
        if self.heartbeat is None:
            self.heartbeat = HeartbeatKeeper(self.client.post_heartbeat,
                                             self.settings.heartbeat_interval_s)
        return self.heartbeat

    # --- building -------------------------------------------------------------------------

    def exchange_address(self, neg_risk: bool) -> str:
        """The V2 exchange that verifies our signatures (negRisk exchange for negRisk markets)."""
        cfg = get_contract_config(self.settings.chain_id)
        return cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2

    def build(self, order: Order) -> SignedPost:
        """Build, sign and verify ``order``: the signed order, its CLOB order type and its
        hash (the venue order id it will have)."""
        inst = self._instrument(order.instrument_id)
        if inst is None:
            raise VenueError(f"polymarket: unknown instrument {order.instrument_id}; run discovery "
                             f"(snapshot/instruments) before sending orders")
        token = token_of(order.instrument_id)
        if order.limit_price is None:
            raise VenueError(f"polymarket: order {order.client_order_id} has no limit price; the "
                             f"CLOB only takes limit orders (use FOK/FAK at a marketable price)")
        tick = inst.tick_size
        tick_str = format(tick.normalize(), "f")
        if tick_str not in ROUNDING_CONFIG:
            raise VenueError(f"polymarket: tick size {tick_str} of {order.instrument_id} is not "
                             f"one py-clob-client-v2 can round for")
        price = order.limit_price
        if price % tick != 0 or not tick <= price <= 1 - tick:
            raise VenueError(f"polymarket: price {price} of {order.client_order_id} is off the "
                             f"{tick} tick grid or outside [{tick}, {1 - tick}]")
        size = order.quantity.quantize(C.LOT_SIZE, rounding=ROUND_DOWN)
        if size != order.quantity:
            raise VenueError(f"polymarket: size {order.quantity} has more than "
                             f"{C.SIZE_DECIMALS} decimals")
        if size < inst.min_size:
            raise VenueError(f"polymarket: size {size} is below the market's minimum order size "
                             f"{inst.min_size}")
        if order.order_type is CoreOrderType.MARKET and order.time_in_force not in (
                TimeInForce.FOK, TimeInForce.IOC):
            raise VenueError("polymarket: a MARKET order must be FOK or IOC (FAK)")
        order_type = _TIF[order.time_in_force]
        expiration = (int(time.time()) + 60 + self.gtd_lifetime_s
                      if order_type == OrderType.GTD else 0)
        neg_risk = bool(inst.meta.get("neg_risk", False))
        args = OrderArgsV2(token_id=token, price=float(price), size=float(size),
                           side="BUY" if order.side is Side.BUY else "SELL",
                           expiration=expiration,
                           metadata=client_order_metadata(order.client_order_id))
        signed = self.client.builder.build_order(
            args, CreateOrderOptions(tick_size=tick_str, neg_risk=neg_risk), version=2)
        order_hash = verify_signed_order(
            signed, exchange=self.exchange_address(neg_risk), chain_id=self.settings.chain_id,
            token_id=token, side=order.side, price=price, size=size,
            signer=self.client.builder._v2_order_signer())
        return SignedPost(order, order_type, order_hash, signed)

    # --- reporting (what ``executions()`` yields) -------------------------------------------

    def _report(self, items: Sequence[Fill | OrderUpdate]) -> None:
        """Queue fills and order updates for ``executions()``, in this order."""
        for item in items:
            if isinstance(item, Fill):
                self._count(item)
            self._reports.append(item)
        if items:
            self._wake.set()

    def _count(self, fill: Fill) -> None:
        """Add ``fill`` to its order's reported quantity."""
        coid = fill.client_order_id
        order = self._orders.get(coid) or self.known_orders.get(coid)
        if order is not None and order.side is fill.side:
            self.reported[coid] = self.reported.get(coid, Decimal(0)) + fill.quantity

    def _forget(self, client_order_id: str) -> None:
        self.watched.pop(client_order_id, None)
        self._ending.pop(client_order_id, None)
        if self.heartbeat is not None:
            self.heartbeat.resting.discard(client_order_id)

    def _post_reports(self, order: Order, order_type: str, resp: Mapping[str, Any],
                      fills: Sequence[Fill]) -> list[Fill | OrderUpdate]:
        """What one order's post answer tells the core: acknowledged (OPEN with the venue
        order id), the matches it reports, and — for a FOK/FAK order not fully matched —
        CANCELLED for the rest (a killed order: CANCELLED; any other refusal: REJECTED).
        An order that may still trade (resting, or "delayed") is watched instead."""
        coid, now = order.client_order_id, time.time_ns()
        vid = str(resp.get("orderID") or "") or None
        msg = str(resp.get("errorMsg") or "")
        if not resp.get("success", True):
            if killed_by_venue(order_type, resp):
                return [OrderUpdate(coid, OrderStatus.CANCELLED, now, vid,
                                    f"{order_type} order killed: {msg}")]
            return [OrderUpdate(coid, OrderStatus.REJECTED, now, vid, msg or "refused")]
        out: list[Fill | OrderUpdate] = []
        if vid:
            out.append(OrderUpdate(coid, OrderStatus.OPEN, now, vid))
        out.extend(fills)
        filled = sum((f.quantity for f in fills), Decimal(0))
        status = str(resp.get("status", "")).lower()
        if filled >= order.quantity:
            return out
        if vid and (order_type in (OrderType.GTC, OrderType.GTD) or status != "matched"):
            self.watched[coid] = vid  # rests (or the match is delayed): its end comes later
        else:
            out.append(OrderUpdate(coid, OrderStatus.CANCELLED, now, vid, msg or (
                f"{order_type} order matched {filled} of {order.quantity}; the venue killed "
                f"the rest")))
        return out

    # --- sending, exactly once --------------------------------------------------------------

    def _fills_from(self, order: Order, resp: dict[str, Any]) -> list[Fill]:
        """Fills the post response reports (``status == "matched"``, making/taking amounts)."""
        if not isinstance(resp, dict) or str(resp.get("status", "")).lower() != "matched":
            return []
        making = Decimal(str(resp.get("makingAmount") or "0"))
        taking = Decimal(str(resp.get("takingAmount") or "0"))
        shares, cash = (taking, making) if order.side is Side.BUY else (making, taking)
        if shares <= 0 or cash <= 0:
            return []
        inst = self._instrument(order.instrument_id)
        price = cash / shares
        fee = fee_of(inst).fee(shares, price) if inst else Decimal(0)
        vid = str(resp.get("orderID") or "")
        return [Fill(f"{vid or order.client_order_id}:0", order.client_order_id, C.VENUE,
                     order.instrument_id, order.side, price, shares, fee, Liquidity.TAKER,
                     time.time_ns())]

    @staticmethod
    def _well_formed(answer: Any, count: int, batch: bool) -> list[dict[str, Any]] | None:
        """The per-order answers of a post, or None when the body is not the venue's shape
        (then the outcome is ambiguous: the venue may have acted)."""
        items = answer if batch else [answer]
        if not isinstance(items, list) or len(items) != count:
            return None
        if not all(isinstance(a, dict) and "success" in a for a in items):
            return None
        return items

    def _accept(self, post: SignedPost, resp: dict[str, Any]) -> list[Fill]:
        """Book one order's answer: its venue id, the fills it reports and the updates
        ``executions()`` will send (OPEN, fills, CANCELLED / REJECTED); returns the fills."""
        order, coid = post.order, post.client_order_id
        vid = str(resp.get("orderID") or "")
        if vid:
            if vid.lower() != post.order_hash.lower():
                log.warning("polymarket: order %s answered id %s, not its hash %s", coid, vid,
                            post.order_hash)
            self.venue_ids[coid] = vid
        fills = self._fills_from(order, resp)
        if fills:
            # The post response already reported this order's immediate (taker) matches;
            # the trades feed must not report them again under the trades' ids.
            self.taker_reported.add(self.venue_ids.get(coid, ""))
        self._report(self._post_reports(order, post.order_type, resp, fills))
        if not resp.get("success", True):
            log.warning("polymarket: order %s not placed: %s", coid,
                        resp.get("errorMsg") or resp)
            return []
        if post.order_type in (OrderType.GTC, OrderType.GTD) and coid in self.watched:
            hb = self._heartbeat()
            hb.resting.add(coid)
            hb.ensure_running()
        return fills

    async def _post(self, posts: Sequence[SignedPost], batch: bool) -> PostOutcome:
        """One ``POST /order`` (or ``/orders``) of ``posts``, classified."""
        client = self.client
        if batch:
            args = [PostOrdersV2Args(order=p.signed, orderType=p.order_type) for p in posts]
            call: Callable[[], Any] = lambda: client.post_orders(args)  # noqa: E731
        else:
            call = lambda: client.post_order(posts[0].signed, posts[0].order_type)  # noqa: E731
        try:
            answer = await asyncio.to_thread(call)
        except Exception as exc:  # the client raises its own exception types
            return post_outcome(exc)
        if self._well_formed(answer, len(posts), batch) is None:
            return PostOutcome(problem=f"malformed answer {answer!r:.200}")
        return PostOutcome(answer=answer)

    async def _find(self, post: SentOrder, since_s: int) -> _Found | None:
        """Does the venue hold ``post``?  ``GET /data/order/<hash>``; the token's open orders
        (by id or signed ``metadata``); the token's trades since the post (an order that
        executed and left the book).  ``_Unreachable`` when it could not be asked."""
        client, vid = self.client, post.order_hash
        token = token_of(post.order.instrument_id)

        async def ask(call: Callable[[], Any]) -> Any:
            try:
                return await asyncio.to_thread(call)
            except PolyApiException as exc:
                code = exc.status_code
                if code is None or code >= 500 or code == 429:
                    raise _Unreachable(str(exc)) from exc
                return None  # 4xx: the venue answered that it has no such thing

        async def trades_of(order_id: str) -> tuple[ClobTrade, ...]:
            raw = await ask(lambda: client.get_trades(TradeParams(asset_id=token,
                                                                  after=since_s)))
            out = []
            for i, item in enumerate(raw or []):
                with contextlib.suppress(DataError):
                    t = ClobTrade.parse(item, where=f"GET /data/trades item {i}:")
                    if t.taker_order_id == order_id or any(m.order_id == order_id
                                                           for m in t.maker_orders):
                        out.append(t)
            return tuple(out)

        def matched(r: Mapping[str, Any]) -> bool:
            with contextlib.suppress(ArithmeticError):
                return Decimal(str(r.get("size_matched") or "0")) > 0
            return True

        row = await ask(lambda: client.get_order(vid))
        row = row.get("order", row) if isinstance(row, dict) else None
        if not (row and row.get("id")):
            meta = client_order_metadata(post.client_order_id)
            rows = await ask(lambda: client.get_open_orders(OpenOrderParams(asset_id=token)))
            row = next((r for r in rows or [] if isinstance(r, dict) and (
                str(r.get("id")) == vid or r.get("metadata") == meta)), None)
        if row:
            found_id = str(row.get("id") or vid)
            return _Found(found_id, row, await trades_of(found_id) if matched(row) else ())
        trades = await trades_of(vid)
        return _Found(vid, None, trades) if trades else None

    async def _settle(self, posts: Sequence[SignedPost], outcome: PostOutcome, since_s: int
                      ) -> dict[str, _Found | None] | None:
        """Ask the venue about ``posts`` after an ambiguous post, for up to
        ``order_settle_s`` (one clean answer is enough when the venue refused the request).
        Returns hash -> what it holds (None: nothing), or None if it could not be asked."""
        s = self.settings
        loop = asyncio.get_running_loop()
        start = loop.time()
        found: dict[str, _Found | None] | None = None
        while True:
            try:
                found = {p.order_hash: await self._find(p, since_s) for p in posts}
            except _Unreachable as exc:
                log.warning("polymarket: could not ask the venue about %s: %s",
                            ", ".join(p.client_order_id for p in posts), exc)
                found = None
            elapsed = loop.time() - start
            if found is not None and (all(found.values()) or outcome.refused):
                return found
            if elapsed >= s.order_settle_s:
                return found
            await asyncio.sleep(min(s.order_lookup_interval_s, s.order_settle_s - elapsed))

    def _adopt_found(self, post: SentOrder, found: _Found) -> list[Fill]:
        """The venue holds an order whose answer we never had: its record and trades become
        the answer (OPEN, fills under the trades' ids, watched until it ends)."""
        order, coid, vid = post.order, post.client_order_id, found.venue_order_id
        self.venue_ids[coid] = vid
        fills = []
        for trade in found.trades:
            if trade.status not in TRADE_BOOKED_STATUSES:
                continue
            for fill in self.fills_of_trade(trade):
                if fill.client_order_id == coid and fill.fill_id not in self._seen_trades:
                    self._seen_trades[fill.fill_id] = trade.match_time_s
                    fills.append(fill)
        self._report([OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(), vid), *fills])
        got = sum((f.quantity for f in fills), Decimal(0))
        status = str((found.row or {}).get("status", "")).upper()
        log.warning("polymarket: order %s is at the venue as %s (status %s, %s matched so far)",
                    coid, vid, status or "traded", got)
        if got >= order.quantity:
            return fills
        # Not (yet) fully filled: watched, so its remaining fills come from the trades feed
        # and its end (rest cancelled, FOK/FAK killed) follows them.
        self.watched[coid] = vid
        if post.order_type in (OrderType.FOK, OrderType.FAK) and status not in ("LIVE",
                                                                                 "DELAYED"):
            self._ending[coid] = f"{post.order_type} order killed by the venue"
        if post.order_type in (OrderType.GTC, OrderType.GTD) and status in ("LIVE", ""):
            hb = self._heartbeat()
            hb.resting.add(coid)
            hb.ensure_running()
        self._wake.set()
        return fills

    async def _announce(self, posts: Sequence[SignedPost]) -> None:
        """Tell the core each order's hash before it is sent (a PENDING update with the
        venue order id), and wait until ``executions()``'s consumer has taken it: after a
        crash mid-post the ledger then holds the hash, and a restarted venue asks the
        exchange for exactly that order.  Without a consumer (or if it stalls) the post
        goes out anyway; a restart then searches by ``metadata`` instead."""
        if not self._consuming:
            return
        now, events = time.time_ns(), []
        for p in posts:
            update = OrderUpdate(p.client_order_id, OrderStatus.PENDING, now, p.order_hash,
                                 "signed; being sent")
            events.append(self._durable.setdefault(id(update), asyncio.Event()))
            self._report([update])
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), _ANNOUNCE_S)
        except TimeoutError:
            log.warning("polymarket: the executions consumer did not take the hashes of %s "
                        "within %gs; sending anyway", ", ".join(p.client_order_id
                                                                for p in posts), _ANNOUNCE_S)

    def _delivered(self, item: Fill | OrderUpdate) -> None:
        """``executions()``'s consumer is done with ``item`` (it asked for the next one)."""
        event = self._durable.pop(id(item), None)
        if event is not None:
            event.set()

    async def _send(self, posts: Sequence[SignedPost], batch: bool) -> SendResult:
        """Send ``posts`` (one order, or one batch) exactly once: see the module docstring.

        The hashes are known before sending: the core records them first
        (:meth:`_announce`), and trades of these orders map to their client ids at once
        (they wait in the trades feed while the post is undecided)."""
        s = self.settings
        for p in posts:
            self._orders[p.client_order_id] = p.order
            self.venue_ids[p.client_order_id] = p.order_hash
        await self._announce(posts)
        hashes = {p.order_hash for p in posts}
        self._in_flight |= hashes
        self.posts_in_flight += 1
        since_s = int(time.time()) - _SKEW_S
        result = SendResult()
        pending = list(posts)
        try:
            for attempt in range(1, s.order_max_attempts + 1):
                outcome = await self._post(pending, batch)
                if outcome.answer is not None:
                    answers = self._well_formed(outcome.answer, len(pending), batch)
                    if answers is None:  # a 4xx refusal of the whole batch
                        answers = [outcome.answer] * len(pending)
                    for p, resp in zip(pending, answers, strict=True):
                        result.fills[p.client_order_id] = self._accept(p, resp)
                    return result
                ids = ", ".join(p.client_order_id for p in pending)
                log.warning("polymarket: post %d of %s ambiguous: %s; asking the venue",
                            attempt, ids, outcome.problem)
                found = await self._settle(pending, outcome, since_s)
                if found is None:  # could not ask: never re-send blind
                    for p in pending:
                        result.unknown[p.client_order_id] = (
                            f"{outcome.problem}; the venue could not be asked whether it "
                            f"holds the order")
                    break
                for p in pending:
                    hit = found.get(p.order_hash)
                    if hit is not None:
                        result.fills[p.client_order_id] = self._adopt_found(p, hit)
                pending = [p for p in pending if found.get(p.order_hash) is None]
                if not pending:
                    return result
                if not outcome.ended:  # the venue may still act on it: no proof it never will
                    for p in pending:
                        result.unknown[p.client_order_id] = (
                            f"{outcome.problem}; not found at the venue within "
                            f"{s.order_settle_s:g}s, and the request may still be acted on")
                    break
                if attempt == s.order_max_attempts:
                    for p in pending:
                        result.unplaced[p.client_order_id] = (
                            f"not placed after {attempt} sends: {outcome.problem}")
                    break
                # Provably never seen: the same signed order (same salt, same hash) again.
                log.warning("polymarket: %s not at the venue after '%s'; sending it again",
                            ids, outcome.problem)
                # Back off (429: as told, within reason: the caller is waiting on us).
                await asyncio.sleep(max(min(outcome.retry_after_s, _MAX_RETRY_AFTER_S),
                                        s.order_lookup_interval_s * 2 ** (attempt - 1)))
        finally:
            self.posts_in_flight -= 1
            self._in_flight -= hashes
        now = time.time()
        for p in posts:
            problem = result.unknown.get(p.client_order_id)
            if problem is not None:  # executions() keeps looking for it
                self.unknown[p.client_order_id] = _Unknown(p, since_s, problem,
                                                           now + s.order_give_up_s)
        self._wake.set()
        return result

    async def _await_delayed(self, posts: Sequence[SignedPost], result: SendResult) -> None:
        """Legs answered ``"delayed"`` (a market's matching delay) are matched or killed
        seconds later: wait for that, up to ``order_settle_s``, before the basket is judged,
        so the core never unwinds legs while another may still fill.  A leg still delayed
        then counts as unfilled (logged); its fills, if any, come through ``executions()``."""
        s = self.settings
        waiting = [p for p in posts if p.client_order_id in self.watched
                   and p.client_order_id not in self._ending
                   and not result.fills.get(p.client_order_id)]
        if not waiting:
            return
        hashes = {self.venue_ids.get(p.client_order_id, p.order_hash) for p in waiting}
        self._in_flight |= hashes  # their trades are booked here, not by the feed meanwhile
        since_s = int(time.time()) - _SKEW_S
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.order_settle_s
        try:
            while waiting and loop.time() < deadline:
                await asyncio.sleep(s.order_lookup_interval_s)
                for p in list(waiting):
                    try:
                        found = await self._find(p, since_s)
                    except _Unreachable:
                        continue
                    status = str((found.row or {}).get("status", "")).upper() if found else ""
                    if found is None or status in ("LIVE", "DELAYED"):
                        continue
                    result.fills[p.client_order_id] = [*result.fills.get(p.client_order_id, []),
                                                       *self._adopt_found(p, found)]
                    waiting.remove(p)
        finally:
            self._in_flight -= hashes
        for p in waiting:
            log.error("polymarket: basket leg %s still delayed after %gs; counted as unfilled",
                      p.client_order_id, s.order_settle_s)

    async def submit(self, order: Order) -> list[Fill]:
        """Sign and send one order exactly once; returns the fills known at once.

        The answer is also queued for ``executions()``: OPEN with the venue order id, the
        fills, and CANCELLED for a FOK/FAK order's unmatched rest; a killed order
        (CANCELLED) or a refused one (REJECTED with the venue's ``errorMsg``) returns no
        fills.  ``OrderUnknown`` when the venue could not say whether it holds the order;
        ``VenueError`` when it provably never took it after ``order_max_attempts`` sends.
        """
        post = self.build(order)
        resting = post.order_type in (OrderType.GTC, OrderType.GTD)
        if resting and self.heartbeat is not None and not self.heartbeat.healthy:
            raise VenueError("polymarket: heartbeats are failing; refusing a resting order "
                             "(the venue would cancel it)")
        await self.ensure_api_creds()
        result = await self._send([post], batch=False)
        coid = order.client_order_id
        if coid in result.unknown:
            raise OrderUnknown(f"polymarket: order {coid} ({post.order_hash}): "
                               f"{result.unknown[coid]}", [coid])
        if coid in result.unplaced:
            raise VenueError(f"polymarket: order {coid} {result.unplaced[coid]}")
        return result.fills.get(coid, [])

    async def submit_basket(self, legs: Sequence[Order]) -> list[Fill]:
        """Send every leg FOK in one batch, exactly once; the legs' fills when complete.

        Legs executed and others killed: ``BasketIncomplete`` with the executed legs'
        fills (the core unwinds them with ordinary orders; nothing is unwound here).  No
        leg executed: no fills (each leg CANCELLED / REJECTED through ``executions()``).
        ``OrderUnknown`` naming the legs the venue could not be asked about.
        """
        if not legs:
            raise VenueError("polymarket: empty basket")
        basket_id = legs[0].basket_id or legs[0].client_order_id
        posts = [self.build(attrs.evolve(o, time_in_force=TimeInForce.FOK,
                                         order_type=CoreOrderType.LIMIT)) for o in legs]
        await self.ensure_api_creds()
        result = await self._send(posts, batch=True)
        if result.unknown:
            raise OrderUnknown(f"polymarket: basket {basket_id}: " + "; ".join(
                f"leg {c}: {why}" for c, why in result.unknown.items()), list(result.unknown))
        now = time.time_ns()
        for coid, why in result.unplaced.items():
            self._report([OrderUpdate(coid, OrderStatus.REJECTED, now, None, why)])
        await self._await_delayed(posts, result)
        fills = [f for p in posts for f in result.fills.get(p.client_order_id, [])]
        filled = {p.client_order_id: sum((f.quantity for f in result.fills.get(
            p.client_order_id, [])), Decimal(0)) for p in posts}
        if all(filled[p.client_order_id] >= p.order.quantity for p in posts):
            return fills
        if not fills:
            log.warning("polymarket: basket %s: no leg executed", basket_id)
            return []
        short = [f"leg {p.client_order_id} filled {filled[p.client_order_id]}/"
                 f"{p.order.quantity}" for p in posts if filled[p.client_order_id] <
                 p.order.quantity]
        log.error("polymarket: basket %s incomplete (%s)", basket_id, "; ".join(short))
        raise BasketIncomplete(f"polymarket: basket {basket_id} incomplete: "
                               + "; ".join(short), fills)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel one order by our client order id."""
        vid = self.venue_ids.get(client_order_id)
        if vid is None:
            raise VenueError(f"polymarket: no venue order id known for {client_order_id}")
        await self.ensure_api_creds()
        resp = await asyncio.to_thread(self.client.cancel_order, OrderPayload(orderID=vid))
        not_canceled = (resp or {}).get("not_canceled") if isinstance(resp, dict) else None
        canceled = (resp or {}).get("canceled") if isinstance(resp, dict) else None
        if not_canceled or (isinstance(canceled, list) and vid not in canceled):
            raise VenueError(f"polymarket: cancel {client_order_id} refused: "
                             f"{not_canceled or resp}")
        # Confirmed: CANCELLED goes out once the order's fills are all reported (the
        # watch compares them with the venue's size_matched), never before them.
        self.watched[client_order_id] = vid
        self._ending[client_order_id] = "cancelled at our request"
        self._wake.set()
        if self.heartbeat is not None:
            self.heartbeat.resting.discard(client_order_id)

    def resume(self, known: VenueResume) -> int:
        """Know this run's orders and booked fills (the ledger's, handed over by the core):
        the way back after a restart.  Returns how many orders it knows.

        Open orders map back to these client ids by venue order id or the signed
        ``metadata`` (keccak of the client order id); booked fill ids are not reported
        again (``<venue order id>:0``: the post answer already reported that order's taker
        matches); each order's filled quantity is what was reported already, so an order
        that leaves the book is ended only after any fills still missing; orders still
        open are watched again (resting ones kept alive by the heartbeat); the first
        trades poll starts at the newest booked fill.  Orders still pending (the previous
        process stopped mid-post) are looked for by the hash recorded before their post
        (``executions()``: found -> reported like an answer; no trace after
        ``order_give_up_s`` -> CANCELLED, never placed); one with no hash recorded was
        never sent (its hash is recorded first), and is CANCELLED after ``order_give_up_s``
        unless the venue's open orders or trades name it by ``metadata`` meanwhile.
        """
        now = time.time()
        since_s = int(now) - self.settings.trades_lookback_s
        if known.newest_fill_ts_ns is not None:
            self.resume_after_s = int(known.newest_fill_ts_ns // 1_000_000_000) - _SKEW_S
            since_s = min(since_s, self.resume_after_s)
        give_up = now + self.settings.order_give_up_s
        for k in known.orders:
            order, coid = k.order, k.order.client_order_id
            self.known_orders[coid] = order
            self.reported[coid] = max(self.reported.get(coid, Decimal(0)), k.filled_quantity)
            pending = order.status is OrderStatus.PENDING
            if not k.venue_order_id:
                if pending:
                    self.unidentified[coid] = give_up
                continue
            if pending:
                order_type = OrderType.FOK if order.basket_id else _TIF[order.time_in_force]
                self.unknown[coid] = _Unknown(SentOrder(order, order_type, k.venue_order_id),
                                              since_s, "pending when the previous process "
                                              "stopped", give_up)
            self.venue_ids.setdefault(coid, k.venue_order_id)
            if order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                self.watched[coid] = k.venue_order_id
                if order.time_in_force in (TimeInForce.GTC, TimeInForce.GTD):
                    self._heartbeat().resting.add(coid)
        for fill_id, coid in known.fill_ids.items():
            head, _, tail = fill_id.partition(":")
            if head.startswith("0x") and tail == "0":
                self.taker_reported.add(head)
                self.venue_ids.setdefault(coid, head)
            elif tail.startswith("0x") and ":" not in tail:
                self._seen_trades.setdefault(fill_id, 0)  # a trades-feed fill id
                self.venue_ids.setdefault(coid, tail)
        return len(known.orders)

    def _client_id_of_open(self, row: Mapping[str, Any], by_vid: Mapping[str, str],
                           by_meta: Mapping[str, str]) -> str | None:
        """The core client order id of one ``GET /data/orders`` row, or None."""
        vid = str(row.get("id", ""))
        if vid in by_vid:
            return by_vid[vid]
        meta = str(row.get("metadata") or "")
        if meta in by_meta:
            return by_meta[meta]
        # No metadata in the row: a known (ledger) order still pending whose token, side, price
        # and size all agree is it, if exactly one does (never guess between two).
        token, side = str(row.get("asset_id", "")), str(row.get("side", "")).upper()
        try:
            price = Decimal(str(row.get("price")))
            size = Decimal(str(row.get("original_size") or "0"))
        except ArithmeticError:
            return None
        known = set(by_vid.values())
        candidates = [o.client_order_id for o in self.known_orders.values()
                      if o.client_order_id not in known and token_of(o.instrument_id) == token
                      and o.side.value.upper() == side and o.limit_price == price
                      and o.quantity == size]
        return candidates[0] if len(candidates) == 1 else None

    async def open_orders(self) -> list[Order]:
        """Open orders on the venue as core orders.

        Client ids come back from the venue order id (orders this process sent), or the
        signed ``metadata`` of an order this run placed before a restart (see
        :meth:`resume`); what neither explains is reported as ``pm:<venue order id>``.
        Resting orders found here are covered by the heartbeat again (after a restart
        nothing else would keep the dead-man's switch alive).
        """
        await self.ensure_api_creds()
        rows = await asyncio.to_thread(self.client.get_open_orders, OpenOrderParams())
        by_meta = {client_order_metadata(c): c for c in (*self._orders, *self.known_orders)}
        by_vid = {v: c for c, v in self.venue_ids.items()}
        out = []
        for row in rows:
            vid = str(row.get("id", ""))
            cid = self._client_id_of_open(row, by_vid, by_meta)
            if cid is None:
                cid = f"pm:{vid}"
            else:
                if self.venue_ids.get(cid) != vid or cid in self.unknown:  # after a restart
                    self._report([OrderUpdate(cid, OrderStatus.OPEN, time.time_ns(), vid)])
                self.unknown.pop(cid, None)  # found: nothing left to look for
                self.unidentified.pop(cid, None)
                self.venue_ids[cid] = vid
                by_vid[vid] = cid
                self.watched[cid] = vid
            size = Decimal(str(row.get("original_size") or row.get("size") or "0"))
            matched = Decimal(str(row.get("size_matched") or "0"))
            if size <= 0:
                continue
            out.append(Order(cid, C.VENUE, f"{C.VENUE}:{row.get('asset_id')}",
                             Side.BUY if str(row.get("side", "")).upper() == "BUY" else Side.SELL,
                             size, Decimal(str(row.get("price"))), CoreOrderType.LIMIT,
                             TimeInForce.GTD if str(row.get("order_type")) == "GTD"
                             else TimeInForce.GTC,
                             status=(OrderStatus.PARTIALLY_FILLED if matched > 0
                                     else OrderStatus.OPEN)))
        ours = {o.client_order_id for o in out if not o.client_order_id.startswith("pm:")}
        if ours or self.heartbeat is not None:
            hb = self._heartbeat()
            hb.resting = ours
            hb.ensure_running()
        return out

    # --- executions of resting orders -----------------------------------------------------

    def fills_of_trade(self, trade: ClobTrade) -> list[Fill]:
        """Core fills for one ``GET /data/trades`` item: ours as taker, or each of our
        resting orders it matched as maker.  Fill ids are ``<trade id>:<venue order id>``,
        stable across polls, so a trade seen twice is one fill."""
        by_vid = {v: c for c, v in self.venue_ids.items()}
        our_key = self.client.creds.api_key if self.client.creds is not None else ""
        ts = trade.match_time_s * 1_000_000_000 or time.time_ns()
        out = []
        if trade.trader_side == "TAKER":
            vid = trade.taker_order_id
            coid = by_vid.get(vid, f"pm:{vid}")
            if vid not in self.taker_reported:
                out.append(self._trade_fill(f"{trade.trade_id}:{trade.taker_order_id}", coid,
                                            trade.asset_id, trade.side, trade.price,
                                            trade.size, Liquidity.TAKER, ts))
        for m in trade.maker_orders:
            if m.order_id not in by_vid and not (our_key and m.owner == our_key):
                continue  # another account's order on the other side of our trade
            coid = by_vid.get(m.order_id, f"pm:{m.order_id}")
            out.append(self._trade_fill(f"{trade.trade_id}:{m.order_id}", coid, m.asset_id,
                                        m.side, m.price, m.matched_amount, Liquidity.MAKER, ts))
        return out

    def _trade_fill(self, fill_id: str, coid: str, asset_id: str, side: str, price: Decimal,
                    qty: Decimal, liquidity: Liquidity, ts_ns: int) -> Fill:
        iid = f"{C.VENUE}:{asset_id}"
        inst = self._instrument(iid)
        fee = fee_of(inst).fee(qty, price, maker=liquidity is Liquidity.MAKER) if inst else \
            Decimal(0)
        return Fill(fill_id, coid, C.VENUE, iid, Side.BUY if side == "BUY" else Side.SELL,
                    price, qty, fee, liquidity, ts_ns)

    async def _identify(self, trades: Sequence[ClobTrade]) -> None:
        """Map venue order ids of our trades that this process never sent back to core ids.

        After a restart an order the previous process sent (say a FOK leg executed while
        it was down) is known only by its venue id.  ``GET /data/order/<id>`` returns the
        order with the ``metadata`` it was signed with (keccak of the core client order
        id): matched against the ledger's orders (``resume``), that names it.  Each id is asked
        about once; one that matches nothing stays unknown (the core flags its fills).
        """
        if not self.known_orders or self.posts_in_flight:
            return
        our_key = self.client.creds.api_key if self.client.creds is not None else ""
        known = set(self.venue_ids.values())
        wanted = []
        for trade in trades:
            if trade.trader_side == "TAKER":
                wanted.append(trade.taker_order_id)
            wanted.extend(m.order_id for m in trade.maker_orders if our_key and m.owner == our_key)
        by_meta = {client_order_metadata(c): c for c in self.known_orders
                   if c not in self.venue_ids}
        for vid in dict.fromkeys(wanted):
            if not vid or vid in known or vid in self._looked_up or not by_meta:
                continue
            self._looked_up.add(vid)
            try:
                row = await asyncio.to_thread(self.client.get_order, vid)
            except Exception as exc:  # the client raises its own exception types
                log.warning("polymarket: GET order %s failed (%s); its fills stay unmapped",
                            vid, type(exc).__name__)
                continue
            row = row.get("order", row) if isinstance(row, dict) else {}
            coid = by_meta.pop(str(row.get("metadata") or ""), None)
            if coid is not None:
                self.unidentified.pop(coid, None)
                self.venue_ids[coid] = vid
                # the venue order id, for the ledger (the order is no longer open: the
                # runner only records the id)
                self._report([OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(), vid)])
                log.info("polymarket: venue order %s is %s (placed before a restart)", vid, coid)

    async def poll_trades(self, after_s: int) -> list[Fill]:
        """One ``GET /data/trades?after=`` (py-clob-client-v2 ``get_trades``: L2 headers,
        ``next_cursor`` paging): new fills only, each fill id reported once."""
        await self.ensure_api_creds()
        rows = await asyncio.to_thread(self.client.get_trades, TradeParams(after=after_s))
        trades = []
        for i, raw in enumerate(rows):
            try:
                trades.append(ClobTrade.parse(raw, where=f"GET /data/trades item {i}:"))
            except DataError as exc:
                log.warning("polymarket: skipping malformed trade: %s", exc)
        await self._identify(trades)
        # Trades of orders whose post is undecided (in flight, or unknown) wait: the answer
        # or the look-up reports them, after the order's OPEN, under the same fill ids.
        held = self._in_flight | {u.post.order_hash for u in self.unknown.values()}
        out = []
        for trade in trades:
            if trade.status not in TRADE_BOOKED_STATUSES:
                if trade.status == "FAILED" and any(k.startswith(trade.trade_id + ":")
                                                    for k in self._seen_trades):
                    log.error("polymarket: trade %s FAILED on chain after it was booked; "
                              "check positions", trade.trade_id)
                continue
            for fill in self.fills_of_trade(trade):
                if fill.fill_id in self._seen_trades:
                    continue
                if fill.fill_id.rpartition(":")[2] in held:
                    continue  # its post is undecided: the answer or the look-up books it
                if fill.client_order_id.startswith("pm:") and self.posts_in_flight:
                    # Possibly an order whose post response has not arrived yet (the trade
                    # can be listed first): decide on a later poll, once its id is known.
                    continue
                self._seen_trades[fill.fill_id] = trade.match_time_s
                self._count(fill)
                out.append(fill)
        return out

    async def poll_ended(self) -> list[OrderUpdate]:
        """CANCELLED for each watched order that has left the book without filling fully.

        An order we cancelled (confirmed), or one ``GET /data/orders`` no longer lists, is
        looked up (``GET /data/order/<id>``): still LIVE/DELAYED -> watched on; fully
        matched -> its fills say FILLED, nothing to add; otherwise CANCELLED with why
        (our cancel, the venue's status, a GTD's expiry) — but only once the fills of its
        ``size_matched`` have all been reported, so the update follows them.
        """
        if not self.watched:
            return []
        ended = {c: r for c, r in self._ending.items() if c in self.watched}
        unexplained = [c for c in self.watched if c not in ended]
        if unexplained:
            try:
                rows = await asyncio.to_thread(self.client.get_open_orders, OpenOrderParams())
            except Exception as exc:  # the client raises its own exception types
                log.warning("polymarket: open orders poll failed (%s); retrying",
                            type(exc).__name__)
                rows = None
            if rows is not None:
                listed = {str(r.get("id", "")) for r in rows if isinstance(r, dict)}
                ended.update({c: "" for c in unexplained if self.watched[c] not in listed})
        out = []
        for coid, reason in ended.items():
            update = await self._ended_update(coid, self.watched[coid], reason)
            if update is not None:
                out.append(update)
        return out

    async def _ended_update(self, coid: str, vid: str, reason: str) -> OrderUpdate | None:
        """The CANCELLED update of one order that left the book, None while undecided or
        when it filled (see :meth:`poll_ended`)."""
        try:
            row = await asyncio.to_thread(self.client.get_order, vid)
            row = row.get("order", row) if isinstance(row, dict) else {}
            matched = Decimal(str(row.get("size_matched") or "0"))
            size = Decimal(str(row.get("original_size") or "0"))
        except Exception as exc:  # the client raises its own exception types
            failures = self._lookup_failures[vid] = self._lookup_failures.get(vid, 0) + 1
            if failures < 5:
                log.warning("polymarket: GET order %s failed (%s); retrying", vid,
                            type(exc).__name__)
                return None
            self._forget(coid)  # the venue cannot tell: say so rather than wait forever
            return OrderUpdate(coid, OrderStatus.CANCELLED, time.time_ns(), vid,
                               (reason or "no longer open at the venue") +
                               f"; its final state could not be read ({type(exc).__name__})")
        status = str(row.get("status", "")).upper()
        if status in ("LIVE", "DELAYED") or self.reported.get(coid, Decimal(0)) < matched:
            return None  # still open, or its fills are not all reported yet
        self._forget(coid)
        if size > 0 and matched >= size:
            return None
        if not reason:
            expiry = int(str(row.get("expiration") or "0") or 0)
            if row.get("order_type") == "GTD" and 0 < expiry <= time.time():
                reason = f"GTD order expired at {expiry}"
            else:
                reason = _ENDED.get(status, f"no longer open at the venue (status {status!r})")
        return OrderUpdate(coid, OrderStatus.CANCELLED, time.time_ns(), vid,
                           f"{reason}; {matched} of {size} matched")

    async def poll_unknown(self) -> None:
        """Look again for each order whose post stayed ambiguous (``OrderUnknown``) or that
        was pending at a restart: found -> reported like an answer (OPEN, fills, then its
        end); after ``order_give_up_s`` with no trace -> CANCELLED, never placed (its hash
        stays mapped, so a fill that still turns up is booked to it).  A pending order
        with no hash recorded is CANCELLED then unless it was identified meanwhile."""
        now = time.time()
        for coid, give_up_at in list(self.unidentified.items()):
            if coid in self.venue_ids:
                del self.unidentified[coid]  # named by open orders or trades meanwhile
            elif now >= give_up_at:
                del self.unidentified[coid]
                self._report([OrderUpdate(
                    coid, OrderStatus.CANCELLED, time.time_ns(), None,
                    "never placed: pending at a restart with no venue order id recorded (a "
                    "hash is recorded before every post), and no open order or trade of "
                    f"the venue names it after {self.settings.order_give_up_s:g}s")])
        for coid, u in list(self.unknown.items()):
            try:
                found = await self._find(u.post, u.since_s)
            except _Unreachable as exc:
                log.warning("polymarket: still cannot ask about order %s: %s", coid, exc)
                continue
            if found is not None:
                del self.unknown[coid]
                self._adopt_found(u.post, found)
            elif time.time() >= u.give_up_at_s:
                del self.unknown[coid]
                self._report([OrderUpdate(
                    coid, OrderStatus.CANCELLED, time.time_ns(), None,
                    f"never placed: no trace at the venue {self.settings.order_give_up_s:g}s "
                    f"after an ambiguous post ({u.problem})")])

    async def executions(self, poll_s: float, lookback_s: int
                         ) -> AsyncIterator[Fill | OrderUpdate]:
        """This account's fills and order updates as they happen, in venue order: what
        order answers reported (at once), ``GET /data/trades`` every ``poll_s`` (re-reading
        a minute of overlap each time: trades can appear late; de-duplicated by fill id),
        then :meth:`poll_ended` for orders that left the book and :meth:`poll_unknown`
        for orders whose post stayed ambiguous.  After a restart the first poll starts at
        the newest booked fill when that is older than ``lookback_s``."""
        after = int(time.time()) - lookback_s
        if self.resume_after_s is not None:
            after = min(after, self.resume_after_s)
        if self.heartbeat is not None:
            self.heartbeat.ensure_running()  # orders resting since before a restart
        self._consuming = True
        try:
            async with contextlib.aclosing(self._executions(poll_s, after)) as items:
                async for item in items:
                    yield item
                    self._delivered(item)  # the consumer has recorded it
        finally:
            self._consuming = False
            for event in self._durable.values():
                event.set()  # nobody will record them now: let the posts go
            self._durable.clear()

    async def _executions(self, poll_s: float, after: int
                          ) -> AsyncIterator[Fill | OrderUpdate]:
        """The loop of :meth:`executions` (which marks each item taken by its consumer)."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while True:
            self._wake.clear()
            while self._reports:
                yield self._reports.popleft()
            if loop.time() >= next_poll:
                try:
                    fills = await self.poll_trades(after)
                except (VenueError, DataError, PolyApiException) as exc:
                    log.warning("polymarket: trades poll failed: %s", exc)
                    fills = []
                for fill in fills:
                    yield fill
                while self._reports:  # e.g. venue ids learnt while mapping the trades
                    yield self._reports.popleft()
                for update in await self.poll_ended():
                    yield update
                await self.poll_unknown()
                if self._seen_trades:
                    after = max(after, max(self._seen_trades.values()) - 60)
                    # Remember a bounded number of fill ids (oldest forgotten first); the
                    # runner de-duplicates against the ledger as well.
                    excess = len(self._seen_trades) - _SEEN_TRADES_MAX
                    for key in list(itertools.islice(self._seen_trades, max(excess, 0))):
                        del self._seen_trades[key]
                next_poll = loop.time() + poll_s
            if not self._reports:
                # asyncio.timeout, not wait_for inside suppress(TimeoutError): on Python 3.11
                # wait_for can turn the consumer's cancel into a TimeoutError, which the
                # suppress then swallowed, so the stream outlived its cancel.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(next_poll - loop.time(), 0)):
                        await self._wake.wait()

    async def close(self) -> None:
        """Stop the heartbeat task and close the HTTP connections."""
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if isinstance(self._client, ClobHttpClient):
            self._client.http.close()

