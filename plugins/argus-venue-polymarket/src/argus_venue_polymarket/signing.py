"""Signing: a core ``Order`` -> a CLOB V2 order built and EIP-712 signed *locally* with
py-clob-client-v2, checked against the intent before anything leaves the process.

:func:`order_terms` checks what the CLOB will accept (tick grid, lot size, minimum size,
time in force) without any network; :func:`sign_order` builds ``OrderArgsV2`` and signs
it (exchange V2 domain, the negRisk exchange for negRisk markets); :func:`verify_signed_order`
re-derives what was signed (token, side, amounts = price x size, signer recovered from the
signature) and computes the order's EIP-712 hash: the venue order id the CLOB will give
it, known *before* sending.  The signed ``metadata`` is :func:`client_order_metadata`.
"""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, Decimal

import attrs
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2, OrderType
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2
from py_clob_client_v2.order_utils.model.side import Side as ClobSide

from argus_core import Instrument, Order, Side, TimeInForce, VenueError
from argus_core import OrderType as CoreOrderType
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.instruments import token_of

#: The CLOB order type of each core time in force (IOC is the CLOB's FAK).
CLOB_ORDER_TYPE = {TimeInForce.GTC: OrderType.GTC, TimeInForce.GTD: OrderType.GTD,
                   TimeInForce.IOC: OrderType.FAK, TimeInForce.FOK: OrderType.FOK}
_UNIT = Decimal(10) ** C.TOKEN_DECIMALS


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
    builder = ExchangeOrderBuilderV2(exchange, chain_id, None)
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


def exchange_address(chain_id: int, neg_risk: bool) -> str:
    """The V2 exchange that verifies our signatures (negRisk exchange for negRisk markets)."""
    cfg = get_contract_config(chain_id)
    return cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2


@attrs.frozen
class OrderTerms:
    """What the CLOB will be asked for, checked: token, tick (as py-clob-client-v2 spells
    it), price, size, CLOB order type and whether the market is negRisk."""

    token: str
    tick: str
    price: Decimal
    size: Decimal
    order_type: str
    neg_risk: bool


def order_terms(order: Order, inst: Instrument | None) -> OrderTerms:
    """Check ``order`` against its market (``VenueError`` when the CLOB would not take it):
    a limit price on the tick grid, a size in whole lots and above the minimum, FOK/IOC
    for a MARKET order.  Needs no network: tick size and negRisk come from discovery."""
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
    if order.time_in_force not in CLOB_ORDER_TYPE:
        raise VenueError(f"polymarket: no {order.time_in_force.value.upper()} orders through "
                         f"the CLOB client (use gtc, gtd, ioc or fok)")
    order_type = CLOB_ORDER_TYPE[order.time_in_force]
    neg_risk = bool(inst.meta.get("neg_risk", False))
    return OrderTerms(token, tick_str, price, size, order_type, neg_risk)


def sign_order(order: Order, terms: OrderTerms, builder: OrderBuilder, *, chain_id: int,
               gtd_lifetime_s: int) -> SignedPost:
    """Build and sign ``order`` on ``terms`` and verify the signature (see
    :func:`verify_signed_order`): the signed order, its CLOB order type and its hash (the
    venue order id it will have).  A GTD order expires ``gtd_lifetime_s`` from now (plus
    the CLOB's one-minute security threshold)."""
    expiration = (int(time.time()) + 60 + gtd_lifetime_s
                  if terms.order_type == OrderType.GTD else 0)
    args = OrderArgsV2(token_id=terms.token, price=float(terms.price), size=float(terms.size),
                       side="BUY" if order.side is Side.BUY else "SELL",
                       expiration=expiration,
                       metadata=client_order_metadata(order.client_order_id))
    signed = builder.build_order(
        args, CreateOrderOptions(tick_size=terms.tick, neg_risk=terms.neg_risk), version=2)
    order_hash = verify_signed_order(
        signed, exchange=exchange_address(chain_id, terms.neg_risk), chain_id=chain_id,
        token_id=terms.token, side=order.side, price=terms.price, size=terms.size,
        signer=builder._v2_order_signer())
    return SignedPost(order, terms.order_type, order_hash, signed)


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

