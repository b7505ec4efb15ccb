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
   an order whose signature does not say what we meant.
2. ``ClobClient.post_order`` / ``post_orders`` (L2 HMAC headers) sends it.
   Time in force: GTC, GTD (``expiration`` = now + ``gtd_lifetime_s``),
   IOC -> FAK, FOK -> FOK.
3. Resting orders keep the venue's dead-man's switch alive
   (:class:`HeartbeatKeeper`, ``POST /v1/heartbeats``); if heartbeats fail,
   new resting orders are refused (fail closed) and the venue cancels what
   rests.

Partial-basket policy (multi-leg arbitrage)
-------------------------------------------
:meth:`PolymarketExecution.submit_basket` sends every leg as **FOK at the
scanner's walked limit price** in one ``POST /orders`` batch.  A leg that
is killed leaves the others filled: a *naked* position.  We never hold it
silently: :func:`plan_unwind` turns each filled leg of an incomplete basket
into a **FAK sell of the filled quantity** at ``fill price - unwind_slippage``
(floored at one tick), sent at once; whatever the unwind could not sell is
reported in ``BasketResult.naked`` and logged as an error, and the runner
must surface it (risk halt).  Paper and backtest use the same
:func:`plan_unwind`, so a partial basket looks the same in every mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

import attrs
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
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2
from py_clob_client_v2.order_utils.model.side import Side as ClobSide

from argus_core.errors import ConfigError, DataError, VenueError
from argus_core.models import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderUpdate,
    Side,
    TimeInForce,
)
from argus_core.models import (
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
                        side: Side, price: Decimal, size: Decimal, signer: str) -> None:
    """Check that ``signed`` says what we meant; ``VenueError`` otherwise.

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


@attrs.frozen
class UnwindOrder:
    """One order that flattens a filled leg of an incomplete basket."""

    instrument_id: str
    side: Side
    quantity: Decimal
    limit_price: Decimal
    reason: str
    leg_client_order_id: str = ""  # the basket leg (core order) this unwind flattens


def plan_unwind(legs: Sequence[Order], filled: Mapping[str, Decimal],
                fill_prices: Mapping[str, Decimal], ticks: Mapping[str, Decimal],
                unwind_slippage: Decimal) -> list[UnwindOrder]:
    """Unwind orders for an incomplete basket (empty when every leg filled fully, or none).

    ``filled`` maps client order id -> filled quantity.  Each filled leg is
    reversed for its filled quantity at a marketable FAK price: ``fill price
    -/+ unwind_slippage``, kept on the tick grid and inside (0, 1).
    """
    complete = all(filled.get(o.client_order_id, Decimal(0)) >= o.quantity for o in legs)
    if complete or not any(filled.get(o.client_order_id, Decimal(0)) > 0 for o in legs):
        return []
    out = []
    for o in legs:
        qty = filled.get(o.client_order_id, Decimal(0))
        if qty <= 0:
            continue
        tick = ticks.get(o.instrument_id, Decimal("0.01"))
        px = fill_prices.get(o.client_order_id, o.limit_price or tick)
        side = o.side.opposite()
        if side is Side.SELL:
            limit = ((px - unwind_slippage) / tick).to_integral_value(ROUND_FLOOR) * tick
            limit = max(limit, tick)
        else:
            limit = ((px + unwind_slippage) / tick).to_integral_value(ROUND_CEILING) * tick
            limit = min(limit, 1 - tick)
        out.append(UnwindOrder(o.instrument_id, side, qty, limit,
                               f"unwind leg {o.client_order_id} of incomplete basket "
                               f"{o.basket_id}", o.client_order_id))
    return out


@attrs.frozen
class BasketResult:
    """What a basket execution did: fills of the legs and of the unwind, and what is left."""

    basket_id: str
    complete: bool
    fills: tuple[Fill, ...]
    unwind_fills: tuple[Fill, ...] = ()
    naked: dict[str, Decimal] = attrs.Factory(dict)  # instrument id -> residual quantity
    notes: tuple[str, ...] = ()


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
                 gtd_lifetime_s: int = 300, unwind_slippage: Decimal = Decimal("0.02"),
                 client: ClobClient | None = None) -> None:
        self.settings = settings
        self._instrument = instruments
        self.gtd_lifetime_s = gtd_lifetime_s
        self.unwind_slippage = unwind_slippage
        self._client = client
        self.venue_ids: dict[str, str] = {}  # client order id -> venue order id
        self._orders: dict[str, Order] = {}
        self.heartbeat: HeartbeatKeeper | None = None
        #: Venue order ids whose taker matches the post response already reported as fills.
        self.taker_reported: set[str] = set()
        #: Core orders of this run known from the ledger (after a restart): how open orders
        #: and trades of a previous process map back to core client order ids.
        self.adopted: dict[str, Order] = {}
        #: Order posts sent whose response has not been processed yet: a trade of an
        #: order id we do not know may be one of them, so it waits for the next poll.
        self.posts_in_flight = 0
        self._looked_up: set[str] = set()  # venue order ids already asked about (GET order)
        #: venue-originated order (a basket unwind) -> the core order its fills are booked to
        self.fill_owner: dict[str, str] = {}
        self._seen_trades: dict[str, int] = {}  # fill id -> match time (s), for de-duplication
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
            self._client = ClobClient(s.clob_url.rstrip("/"), s.chain_id,
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

    def build(self, order: Order) -> tuple[SignedOrderV2, str]:
        """Build, sign and verify ``order``; returns the signed order and the CLOB order type."""
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
        verify_signed_order(signed, exchange=self.exchange_address(neg_risk),
                            chain_id=self.settings.chain_id, token_id=token, side=order.side,
                            price=price, size=size, signer=self.client.builder._v2_order_signer())
        return signed, order_type

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
        """Add ``fill`` to its order's reported quantity (own side only: a basket unwind is
        booked against its leg on the opposite side)."""
        coid = fill.client_order_id
        order = self._orders.get(coid) or self.adopted.get(coid)
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

    # --- sending --------------------------------------------------------------------------

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

    def _check_response(self, order: Order, resp: Any) -> dict[str, Any]:
        if not isinstance(resp, dict):
            raise VenueError(f"polymarket: order {order.client_order_id}: unexpected response "
                             f"{resp!r:.200}")
        if resp.get("orderID"):
            self.venue_ids[order.client_order_id] = str(resp["orderID"])
        return resp

    async def submit(self, order: Order, *, report: bool = True) -> list[Fill]:
        """Sign and send one order; returns the fills the response reports.

        With ``report`` (not for a basket's venue-internal unwind orders) the answer is
        also queued for ``executions()``: OPEN with the venue order id, the fills, and
        CANCELLED for a FOK/FAK order's unmatched rest; a killed order (CANCELLED) or a
        refused one (REJECTED with the venue's ``errorMsg``) returns no fills.  Without
        ``report`` a refusal other than a kill raises ``VenueError``.
        """
        signed, order_type = self.build(order)
        resting = order_type in (OrderType.GTC, OrderType.GTD)
        if resting and self.heartbeat is not None and not self.heartbeat.healthy:
            raise VenueError("polymarket: heartbeats are failing; refusing a resting order "
                             "(the venue would cancel it)")
        await self.ensure_api_creds()
        self.posts_in_flight += 1
        try:
            resp = await asyncio.to_thread(self.client.post_order, signed, order_type)
            resp = self._check_response(order, resp)
            self._orders[order.client_order_id] = order
            fills = self._fills_from(order, resp)
            if fills:
                # The post response already reported this order's immediate (taker)
                # matches; trade_fills() must not report them again under the trades' ids.
                self.taker_reported.add(self.venue_ids.get(order.client_order_id, ""))
        finally:
            self.posts_in_flight -= 1
        if report:
            self._report(self._post_reports(order, order_type, resp, fills))
        if not resp.get("success", True):
            if report or killed_by_venue(order_type, resp):
                # Reported (REJECTED with the venue's reason, or CANCELLED): the runner's
                # generic refusal path would mark it final first and lose the reason.
                log.warning("polymarket: order %s not placed: %s", order.client_order_id,
                            resp.get("errorMsg") or resp)
                return []
            raise VenueError(f"polymarket: order {order.client_order_id} refused: "
                             f"{resp.get('errorMsg') or resp}")
        if resting and order.client_order_id in self.watched:
            hb = self._heartbeat()
            hb.resting.add(order.client_order_id)
            hb.ensure_running()
        return fills

    async def submit_basket(self, legs: Sequence[Order]) -> BasketResult:
        """Send every leg FOK in one batch; unwind filled legs if the basket is incomplete."""
        if not legs:
            raise VenueError("polymarket: empty basket")
        basket_id = legs[0].basket_id or legs[0].client_order_id
        fok = [attrs.evolve(o, time_in_force=TimeInForce.FOK, order_type=CoreOrderType.LIMIT)
               for o in legs]
        built = [self.build(o) for o in fok]
        await self.ensure_api_creds()
        args = [PostOrdersV2Args(order=signed, orderType=OrderType.FOK) for signed, _ in built]
        self.posts_in_flight += 1
        try:
            resp = await asyncio.to_thread(self.client.post_orders, args)
            if isinstance(resp, list) and len(resp) == len(fok):
                for order, r in zip(fok, resp, strict=True):
                    self._check_response(order, r)  # venue ids known before trades map
        finally:
            self.posts_in_flight -= 1
        if not isinstance(resp, list) or len(resp) != len(fok):
            raise VenueError(f"polymarket: basket {basket_id}: POST /orders answered "
                             f"{resp!r:.200}; check open orders and positions now")
        fills: list[Fill] = []
        filled: dict[str, Decimal] = {}
        prices: dict[str, Decimal] = {}
        notes = []
        for order, r in zip(fok, resp, strict=True):
            self._orders[order.client_order_id] = order
            got = self._fills_from(order, r)
            if got:
                self.taker_reported.add(self.venue_ids.get(order.client_order_id, ""))
            self._report(self._post_reports(order, OrderType.FOK, r, got))
            fills.extend(got)
            qty = sum((f.quantity for f in got), Decimal(0))
            filled[order.client_order_id] = qty
            if got:
                prices[order.client_order_id] = (sum((f.price * f.quantity for f in got),
                                                     Decimal(0)) / qty)
            if qty < order.quantity:
                notes.append(f"leg {order.client_order_id} filled {qty}/{order.quantity}: "
                             f"{r.get('errorMsg') or r.get('status')}")
        ticks = {o.instrument_id: (self._instrument(o.instrument_id) or _NO_INST).tick_size
                 for o in fok}
        plan = plan_unwind(fok, filled, prices, ticks, self.unwind_slippage)
        complete = not notes
        if not plan:
            return BasketResult(basket_id, complete, tuple(fills), notes=tuple(notes))
        log.error("polymarket: basket %s incomplete (%s); unwinding %d filled legs", basket_id,
                  "; ".join(notes), len(plan))
        unwind_fills: list[Fill] = []
        naked: dict[str, Decimal] = {}
        for i, u in enumerate(plan):
            uo = Order(f"{basket_id}:unwind:{i}", C.VENUE, u.instrument_id, u.side, u.quantity,
                       u.limit_price, CoreOrderType.LIMIT, TimeInForce.IOC,
                       strategy=legs[0].strategy, basket_id=basket_id, reduce_only=True)
            # Trades of the unwind order (reported later by trade_fills) belong to the leg too.
            self.fill_owner[uo.client_order_id] = u.leg_client_order_id
            try:
                got = await self.submit(uo, report=False)  # the core knows no such order
            except VenueError as exc:
                notes.append(f"unwind {uo.client_order_id} failed: {exc}")
                got = []
            # The unwind is the venue's own order; its fills are booked against the core
            # order of the leg they flatten, so the ledger knows every fill's order.
            booked = [attrs.evolve(f, client_order_id=u.leg_client_order_id,
                                   fill_id=f"{f.fill_id}:unwind") for f in got]
            self._report(booked)
            unwind_fills.extend(booked)
            left = u.quantity - sum((f.quantity for f in got), Decimal(0))
            if left > 0:
                naked[u.instrument_id] = left
        if naked:
            log.error("polymarket: basket %s left NAKED positions after unwind: %s", basket_id,
                      {k: str(v) for k, v in naked.items()})
        return BasketResult(basket_id, False, tuple(fills), tuple(unwind_fills), naked,
                            tuple(notes))

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

    def adopt(self, orders: Sequence[Order], fill_ids: Mapping[str, str] | None = None,
              filled: Mapping[str, Decimal] | None = None) -> int:
        """Know the core orders of this run that an earlier process placed (the ledger's).

        After a restart this process has no venue order ids: open orders map back to
        these client ids by the signed ``metadata`` (keccak of the client order id),
        and ``fill_ids`` (ledger fill id -> client order id) give back the venue ids of
        orders already filled, including which taker matches the post response already
        reported (fill ids ``<venue order id>:0``), so ``GET /data/trades`` re-reading
        them after the restart books nothing twice.  ``filled`` (client order id -> filled
        quantity in the ledger) is what was reported already, so an adopted order that
        leaves the book is ended only after any fills still missing.  Returns how many
        orders were adopted.
        """
        for order in orders:
            self.adopted[order.client_order_id] = order
        for coid, qty in (filled or {}).items():
            self.reported[coid] = max(self.reported.get(coid, Decimal(0)), qty)
        for fill_id, coid in (fill_ids or {}).items():
            vid, _, rest = fill_id.partition(":")
            if not vid.startswith("0x"):
                continue  # a trade-feed fill id (<trade id>:<venue order id>)
            if rest in ("0", "0:unwind"):
                self.taker_reported.add(vid)
                if rest == "0":
                    self.venue_ids.setdefault(coid, vid)
        for fill_id, coid in (fill_ids or {}).items():
            _trade, _, vid = fill_id.partition(":")
            if vid.startswith("0x") and ":" not in vid and coid not in self.venue_ids:
                self.venue_ids[coid] = vid  # a maker fill from the trades feed
        return len(orders)

    def _client_id_of_open(self, row: Mapping[str, Any], by_vid: Mapping[str, str],
                           by_meta: Mapping[str, str]) -> str | None:
        """The core client order id of one ``GET /data/orders`` row, or None."""
        vid = str(row.get("id", ""))
        if vid in by_vid:
            return by_vid[vid]
        meta = str(row.get("metadata") or "")
        if meta in by_meta:
            return by_meta[meta]
        # No metadata in the row: an adopted order still pending whose token, side, price
        # and size all agree is it, if exactly one does (never guess between two).
        token, side = str(row.get("asset_id", "")), str(row.get("side", "")).upper()
        try:
            price = Decimal(str(row.get("price")))
            size = Decimal(str(row.get("original_size") or "0"))
        except ArithmeticError:
            return None
        known = set(by_vid.values())
        candidates = [o.client_order_id for o in self.adopted.values()
                      if o.client_order_id not in known and token_of(o.instrument_id) == token
                      and o.side.value.upper() == side and o.limit_price == price
                      and o.quantity == size]
        return candidates[0] if len(candidates) == 1 else None

    async def open_orders(self) -> list[Order]:
        """Open orders on the venue as core orders.

        Client ids come back from the venue order id (orders this process sent), or the
        signed ``metadata`` of an order this run placed before a restart (see
        :meth:`adopt`); what neither explains is reported as ``pm:<venue order id>``.
        Resting orders found here are covered by the heartbeat again (after a restart
        nothing else would keep the dead-man's switch alive).
        """
        await self.ensure_api_creds()
        rows = await asyncio.to_thread(self.client.get_open_orders, OpenOrderParams())
        by_meta = {client_order_metadata(c): c for c in (*self._orders, *self.adopted)}
        by_vid = {v: c for c, v in self.venue_ids.items()}
        out = []
        for row in rows:
            vid = str(row.get("id", ""))
            cid = self._client_id_of_open(row, by_vid, by_meta)
            if cid is None:
                cid = f"pm:{vid}"
            else:
                if self.venue_ids.get(cid) != vid:  # first heard of (after a restart)
                    self._report([OrderUpdate(cid, OrderStatus.OPEN, time.time_ns(), vid)])
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
        by_vid = {v: self.fill_owner.get(c, c) for c, v in self.venue_ids.items()}
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
        id): matched against the adopted ledger orders, that names it.  Each id is asked
        about once; one that matches nothing stays unknown (the core flags its fills).
        """
        if not self.adopted or self.posts_in_flight:
            return
        our_key = self.client.creds.api_key if self.client.creds is not None else ""
        known = set(self.venue_ids.values())
        wanted = []
        for trade in trades:
            if trade.trader_side == "TAKER":
                wanted.append(trade.taker_order_id)
            wanted.extend(m.order_id for m in trade.maker_orders if our_key and m.owner == our_key)
        by_meta = {client_order_metadata(c): c for c in self.adopted if c not in self.venue_ids}
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

    async def executions(self, poll_s: float, lookback_s: int
                         ) -> AsyncIterator[Fill | OrderUpdate]:
        """This account's fills and order updates as they happen, in venue order: what
        order answers reported (at once), ``GET /data/trades`` every ``poll_s`` (re-reading
        a minute of overlap each time: trades can appear late; de-duplicated by fill id),
        then :meth:`poll_ended` for orders that left the book."""
        after = int(time.time()) - lookback_s
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while True:
            self._wake.clear()
            while self._reports:
                yield self._reports.popleft()
            if loop.time() >= next_poll:
                try:
                    fills = await self.poll_trades(after)
                except (VenueError, DataError) as exc:
                    log.warning("polymarket: trades poll failed: %s", exc)
                    fills = []
                for fill in fills:
                    yield fill
                while self._reports:  # e.g. venue ids learnt while mapping the trades
                    yield self._reports.popleft()
                for update in await self.poll_ended():
                    yield update
                if self._seen_trades:
                    after = max(after, max(self._seen_trades.values()) - 60)
                    # Remember a bounded number of fill ids (oldest forgotten first); the
                    # runner de-duplicates against the ledger as well.
                    excess = len(self._seen_trades) - _SEEN_TRADES_MAX
                    for key in list(itertools.islice(self._seen_trades, max(excess, 0))):
                        del self._seen_trades[key]
                next_poll = loop.time() + poll_s
            if not self._reports:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(next_poll - loop.time(), 0))

    async def close(self) -> None:
        """Stop the heartbeat task."""
        if self.heartbeat is not None:
            await self.heartbeat.stop()


_NO_INST = Instrument(C.VENUE, "0", kind="binary")
