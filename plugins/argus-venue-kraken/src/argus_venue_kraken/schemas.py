"""Kraken payload shapes -> core models, with errors that name the payload and the field.

REST answers ``{"error": [...], "result": {...}}``; WebSocket v2 frames are
``{"channel": ..., "type": "snapshot"|"update", "data": [...]}``.  WS frames are
decoded with ``parse_float=str`` so prices keep their exact decimal text.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from argus_core import (
    Bar,
    DataError,
    Fill,
    Liquidity,
    OrderBook,
    OrderStatus,
    Side,
    Signal,
    Trade,
    VenueError,
    to_decimal,
)
from argus_venue_kraken import constants as C

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)


class KrakenApiError(VenueError):
    """Kraken answered with a non-empty ``error`` array."""

    def __init__(self, method: str, errors: list[str]) -> None:
        self.method = method
        self.errors = list(errors)
        remedies = [C.ERROR_REMEDIES[e] for e in errors if e in C.ERROR_REMEDIES]
        text = f"Kraken {method} refused: {', '.join(errors)}"
        if remedies:
            text += f" ({'; '.join(remedies)})"
        super().__init__(text)

    def has(self, codes: tuple[str, ...]) -> bool:
        """Whether any error starts with one of ``codes``."""
        return any(e.startswith(codes) for e in self.errors)


class MalformedAnswerError(VenueError):
    """Kraken's answer could not be read (not JSON, not an object, neither error nor result):
    for a call that changes state, whether Kraken acted is unknown."""


class KrakenRateLimitError(KrakenApiError):
    """``EAPI:Rate limit exceeded`` / ``EOrder:Rate limit exceeded`` / throttled."""


class KrakenNonceError(KrakenApiError):
    """``EAPI:Invalid nonce``: another request with a higher nonce got there first."""


def api_error(method: str, errors: list[str]) -> KrakenApiError:
    """The most specific error class for Kraken's ``error`` array."""
    if any(e.startswith(C.RATE_LIMIT_ERRORS) for e in errors):
        return KrakenRateLimitError(method, errors)
    if any(e.startswith(C.NONCE_ERRORS) for e in errors):
        return KrakenNonceError(method, errors)
    return KrakenApiError(method, errors)


def unwrap(method: str, payload: Any) -> Any:
    """The ``result`` of a REST answer, or the matching ``KrakenApiError``."""
    if not isinstance(payload, dict):
        raise MalformedAnswerError(f"Kraken {method}: expected a JSON object, got "
                                   f"{type(payload).__name__}")
    errors = payload.get("error") or []
    if not isinstance(errors, list):
        raise MalformedAnswerError(f"Kraken {method}: 'error' must be a list, got {errors!r}")
    if errors:
        raise api_error(method, [str(e) for e in errors])
    if "result" not in payload:
        raise MalformedAnswerError(f"Kraken {method}: answer has neither error nor result")
    return payload["result"]


# -- time -----------------------------------------------------------------------------
def rfc3339_ns(text: Any, *, where: str = "timestamp") -> int:
    """``2023-10-06T17:35:55.440295Z`` (up to 9 fractional digits) -> ns since the epoch."""
    if not isinstance(text, str):
        raise DataError(f"{where}: expected an RFC 3339 string, got {text!r}")
    body = text[:-1] if text.endswith("Z") else text
    head, _, frac = body.partition(".")
    tz = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, _, rest = frac.partition(sign)
            tz = sign + rest
    try:
        dt = datetime.fromisoformat(head + (tz or "+00:00"))
    except ValueError:
        raise DataError(f"{where}: {text!r} is not an RFC 3339 timestamp") from None
    if frac and not frac.isdigit():
        raise DataError(f"{where}: {text!r} has a bad fractional second")
    seconds = int((dt - _EPOCH).total_seconds())
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def rfc3339(ts_ns: int) -> str:
    """ns since the epoch -> ``2021-04-01T00:18:45.123Z`` (UTC, milliseconds truncated), the
    form of AddOrder's ``deadline``."""
    seconds, frac_ns = divmod(ts_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{frac_ns // 1_000_000:03d}Z"


def seconds_ns(value: Any, *, where: str = "time") -> int:
    """Unix seconds (int, float or decimal text like ``"1688671200.1234"``) -> ns; a time
    before 1970 or whose nanoseconds pass int64 is a DataError (``"1e999999"`` overflowed
    the Decimal context)."""
    dec = to_decimal(value, field=where)
    if not 0 <= dec < _SECONDS_ROOM:
        raise DataError(f"{where}: {str(value)[:40]} is not unix seconds from 1970 to 2262")
    return int(dec * 1_000_000_000)


_SECONDS_ROOM = Decimal(2**63 // 10**9)
_MAX_PRICE = Decimal("1e18")  # the highest price the core takes from market data
#: The most a single fill may carry: past it an answer is malformed, not a trade.
MAX_FILL_QUANTITY = Decimal(10**12)


def sane_fill(fill: Fill, where: str) -> Fill:
    """``fill`` when its quantity, price, fee and time are ones a trade can have: at most
    :data:`MAX_FILL_QUANTITY`, a price up to the core's ``MAX_PRICE``, a fee (or rebate)
    of at most the fill's whole notional, a time within int64 nanoseconds; else a
    DataError (a fee of 1e999999999 overflowed the account; a price of 1e300 was booked)."""
    notional = fill.price * fill.quantity
    if not (fill.quantity <= MAX_FILL_QUANTITY and fill.price <= _MAX_PRICE
            and fill.fee.copy_abs() <= notional and 0 <= fill.ts_ns < 2**63):
        raise DataError(f"{where}: a fill of {fill.quantity} at {fill.price} with fee "
                        f"{fill.fee} at {fill.ts_ns} ns is not one a trade can have")
    return fill


# -- REST -------------------------------------------------------------------------------
@attrs.frozen
class OhlcRow:
    """One OHLC entry (REST or WS): the bar opening at ``begin_ns`` and lasting ``interval_s``."""

    begin_ns: int
    interval_s: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    count: int

    @property
    def close_ns(self) -> int:
        """When the bar closes (and becomes knowable)."""
        return self.begin_ns + self.interval_s * 1_000_000_000

    def bar(self, instrument_id: str) -> Bar:
        """The core Bar, stamped at its close time."""
        return Bar(instrument_id, self.close_ns, float(self.open), float(self.high),
                   float(self.low), float(self.close), float(self.volume))


def parse_rest_ohlc_row(row: Any, interval_s: int, where: str) -> OhlcRow:
    """``[time, open, high, low, close, vwap, volume, count]`` -> OhlcRow."""
    if not isinstance(row, list | tuple) or len(row) < 8:
        raise DataError(f"{where}: expected [time, open, high, low, close, vwap, volume, count], "
                        f"got {row!r}")
    t, o, h, lo, c, vwap, vol, count = row[:8]
    return OhlcRow(seconds_ns(t, where=f"{where}.time"), interval_s,
                   to_decimal(o, field=f"{where}.open"), to_decimal(h, field=f"{where}.high"),
                   to_decimal(lo, field=f"{where}.low"), to_decimal(c, field=f"{where}.close"),
                   to_decimal(vwap, field=f"{where}.vwap"),
                   to_decimal(vol, field=f"{where}.volume"),
                   int(count))


def pair_entry(result: Any, method: str, *, skip: tuple[str, ...] = ("last",)) -> tuple[str, Any]:
    """The single pair-keyed entry of a REST result (Kraken keys it by its own pair name)."""
    if not isinstance(result, dict):
        raise DataError(f"Kraken {method}: result must be an object")
    keys = [k for k in result if k not in skip]
    if len(keys) != 1:
        raise DataError(f"Kraken {method}: expected one pair in the result, got {keys}")
    return keys[0], result[keys[0]]


def parse_rest_depth(entry: Any, instrument_id: str, ts_ns: int | None = None) -> OrderBook:
    """A Depth entry ``{"asks": [[price, volume, ts], ...], "bids": ...}`` -> OrderBook."""
    where = f"Kraken Depth[{instrument_id}]"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object with asks and bids")
    sides: dict[str, list[tuple[float, float]]] = {}
    latest = 0
    for name in ("bids", "asks"):
        rows = entry.get(name)
        if not isinstance(rows, list):
            raise DataError(f"{where}: {name} must be a list")
        levels = []
        for i, row in enumerate(rows):
            if not isinstance(row, list | tuple) or len(row) < 2:
                raise DataError(f"{where}.{name}[{i}]: expected [price, volume, timestamp]")
            levels.append((float(to_decimal(row[0], field=f"{where}.{name}[{i}].price")),
                           float(to_decimal(row[1], field=f"{where}.{name}[{i}].volume"))))
            if len(row) > 2:
                latest = max(latest, seconds_ns(row[2], where=f"{where}.{name}[{i}].timestamp"))
        sides[name] = levels
    return OrderBook(instrument_id, ts_ns if ts_ns is not None else latest,
                     sides["bids"], sides["asks"])


def parse_rest_trades(rows: Any, instrument_id: str) -> list[Trade]:
    """Trades rows ``[price, volume, time, "b"|"s", "l"|"m", misc, trade_id]`` -> Trades."""
    where = f"Kraken Trades[{instrument_id}]"
    if not isinstance(rows, list):
        raise DataError(f"{where}: expected a list of trades")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) < 4:
            raise DataError(f"{where}[{i}]: expected [price, volume, time, side, ...]")
        side = {"b": Side.BUY, "s": Side.SELL}.get(row[3])
        if side is None:
            raise DataError(f"{where}[{i}]: side must be 'b' or 's', got {row[3]!r}")
        out.append(Trade(instrument_id, seconds_ns(row[2], where=f"{where}[{i}].time"),
                         to_decimal(row[0], field=f"{where}[{i}].price"),
                         to_decimal(row[1], field=f"{where}[{i}].volume"), side))
    return out


@attrs.frozen
class Ticker:
    """The fields of a ticker both REST and WS v2 provide."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    volume_24h: Decimal
    vwap_24h: Decimal

    def signals(self, instrument_id: str, ts_ns: int) -> list[Signal]:
        """As core Signals (``ticker.bid``, ``ticker.ask``, ``ticker.last``, ...)."""
        return [Signal(f"ticker.{name}", instrument_id, ts_ns, float(getattr(self, name)))
                for name in ("bid", "ask", "last", "volume_24h", "vwap_24h")]


def parse_rest_ticker(entry: Any, where: str) -> Ticker:
    """A REST Ticker entry (``a``, ``b``, ``c``, ``v``, ``p`` arrays) -> Ticker."""
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object")
    try:
        return Ticker(to_decimal(entry["b"][0], field=f"{where}.b"),
                      to_decimal(entry["a"][0], field=f"{where}.a"),
                      to_decimal(entry["c"][0], field=f"{where}.c"),
                      to_decimal(entry["v"][1], field=f"{where}.v"),
                      to_decimal(entry["p"][1], field=f"{where}.p"))
    except (KeyError, IndexError, TypeError):
        raise DataError(f"{where}: needs a, b, c, v, p arrays") from None


# -- WebSocket v2 ------------------------------------------------------------------------
def _req(item: dict[str, Any], key: str, where: str) -> Any:
    try:
        return item[key]
    except (KeyError, TypeError):
        raise DataError(f"{where}: missing {key!r}") from None


def parse_ws_ticker(item: dict[str, Any], where: str) -> Ticker:
    """A v2 ``ticker`` data item -> Ticker."""
    return Ticker(*(to_decimal(_req(item, k, where), field=f"{where}.{k}")
                    for k in ("bid", "ask", "last", "volume", "vwap")))


def parse_ws_trade(item: dict[str, Any], instrument_id: str, where: str) -> tuple[int, Trade]:
    """A v2 ``trade`` data item -> (trade_id, Trade)."""
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(str(_req(item, "side", where)))
    if side is None:
        raise DataError(f"{where}: side must be buy or sell, got {item.get('side')!r}")
    trade = Trade(instrument_id, rfc3339_ns(_req(item, "timestamp", where), where=where),
                  to_decimal(_req(item, "price", where), field=f"{where}.price"),
                  to_decimal(_req(item, "qty", where), field=f"{where}.qty"), side)
    return int(item.get("trade_id") or 0), trade


def parse_ws_ohlc(item: dict[str, Any], where: str) -> OhlcRow:
    """A v2 ``ohlc`` data item (``interval_begin``, ``interval`` in minutes) -> OhlcRow."""
    begin_ns = rfc3339_ns(_req(item, "interval_begin", where), where=f"{where}.interval_begin")
    interval_s = int(_req(item, "interval", where)) * 60
    open_, high, low, close, vwap, volume = (
        to_decimal(_req(item, k, where), field=f"{where}.{k}")
        for k in ("open", "high", "low", "close", "vwap", "volume"))
    return OhlcRow(begin_ns, interval_s, open_, high, low, close, vwap, volume,
                   int(item.get("trades") or 0))


def parse_execution(item: dict[str, Any], instrument_id: str, where: str) -> Fill | None:
    """A v2 ``executions`` item -> core Fill (only ``exec_type == "trade"`` carries one).

    The fee is booked in the pair's quote currency (the core's money): a fee
    charged in the quote asset is taken as is, one charged in the base asset
    (Kraken's ``fcib`` preference) is converted at the fill price; a negative
    fee (a maker rebate) is a credit.  A fee the fill cannot be valued in the
    quote by (another asset such as ``KFEE`` credits, an unreadable entry) never
    drops the fill — the trade happened, and its position must be booked — :
    ``fee_usd_equiv`` values it when the quote is USD, otherwise it is booked
    without that part and a warning names it (see :func:`fee_in_quote`).
    """
    if item.get("exec_type") != "trade":
        return None
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(_req(item, "side", where))
    if side is None:
        raise DataError(f"{where}: side must be buy or sell")
    price = to_decimal(_req(item, "last_price", where), field=f"{where}.last_price")
    quantity = to_decimal(_req(item, "last_qty", where), field=f"{where}.last_qty")
    fee = fee_in_quote(item, instrument_id, price, where)
    liquidity = Liquidity.MAKER if item.get("liquidity_ind") == "m" else Liquidity.TAKER
    fill_id = item.get("exec_id") or item.get("trade_id") or ""
    if not fill_id or not isinstance(fill_id, str):
        # The core books each fill_id once; a fill without an id cannot be deduplicated.
        raise DataError(f"{where}: trade execution without exec_id or trade_id")
    return sane_fill(Fill(
        fill_id=fill_id,
        client_order_id=str(item.get("cl_ord_id") or item.get("order_id") or ""),
        venue=C.VENUE, instrument_id=instrument_id, side=side, price=price, quantity=quantity,
        fee=fee, liquidity=liquidity,
        ts_ns=rfc3339_ns(_req(item, "timestamp", where), where=f"{where}.timestamp"),
    ), where)


def fee_in_quote(item: dict[str, Any], instrument_id: str, price: Decimal, where: str
                 ) -> Decimal:
    """The fee of an ``executions`` trade in the pair's quote currency.

    ``fees`` entries in the quote are summed, entries in the base are valued at the
    fill price.  Entries in any other asset, or unreadable ones, are valued by
    ``fee_usd_equiv`` when the quote is USD (it covers the whole fee), else left out
    with a warning: the fill is booked all the same (a fill dropped for its fee would
    leave the position wrong); the cash then differs from Kraken's by that fee."""
    base, _, quote = instrument_id.partition(":")[2].partition("/")
    fee = Decimal(0)
    odd: list[str] = []
    for k, entry in enumerate(item.get("fees") or []):
        try:
            qty = to_decimal(_req(entry, "qty", where), field=f"{where}.fees[{k}].qty")
            asset = str(_req(entry, "asset", where)).upper()
        except (DataError, TypeError, AttributeError) as exc:
            odd.append(f"fees[{k}] unreadable ({exc})")
            continue
        asset = C.ASSET_ALIASES.get(asset, asset)
        if asset == quote:
            fee += qty
        elif asset == base:
            fee += qty * price
        else:
            odd.append(f"{qty} {asset}")
    usd = item.get("fee_usd_equiv")
    if usd is not None and quote == "USD" and (odd or not item.get("fees")):
        try:
            return to_decimal(usd, field=f"{where}.fee_usd_equiv")
        except DataError as exc:
            odd.append(f"fee_usd_equiv unreadable ({exc})")
    if odd:
        log.warning("%s: fill %s: fee %s is neither in %s nor in %s; the fill is booked "
                    "without it (cash differs from Kraken's by that fee)", where,
                    item.get("exec_id") or item.get("trade_id"), ", ".join(odd), quote, base)
    return fee


#: ``order_status`` of a v2 ``executions`` item -> the core status an OrderUpdate carries.
#: ``filled`` / ``partially_filled`` are left to the fills (they carry the quantities);
#: ``expired`` becomes CANCELLED with the reason saying so (the core has no EXPIRED).
_ORDER_STATUS: dict[str, OrderStatus] = {
    "new": OrderStatus.OPEN,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
}
#: exec_types that say something about an order's state other than a trade.
#: ``pending_new`` is left out: the order is not live yet, and the ``new`` that follows is
#: the acknowledgement (a PENDING update would tell the core nothing).
ORDER_EVENT_TYPES = frozenset({"new", "canceled", "expired", "restated", "amended", "status"})


@attrs.frozen
class OrderEvent:
    """A non-trade v2 ``executions`` item: what the core's OrderUpdate needs, with Kraken ids."""

    status: OrderStatus
    ts_ns: int
    cl_ord_id: str | None
    order_id: str | None
    reason: str


def parse_order_event(item: dict[str, Any], where: str) -> OrderEvent | None:
    """A v2 ``executions`` item about an order's state -> :class:`OrderEvent`.

    ``new`` acknowledges (OPEN, with Kraken's ``order_id``), ``canceled`` and
    ``expired`` close the order (CANCELLED, with Kraken's ``reason`` and, for
    an expiry, the word ``expired``), ``restated`` / ``amended`` / ``status``
    report the order's current ``order_status``.  None for ``pending_new``, trades,
    ``filled``, ``iceberg_refill`` and order states the fills report (``filled``).
    """
    exec_type = item.get("exec_type")
    if exec_type not in ORDER_EVENT_TYPES:
        return None
    order_status = item.get("order_status") or exec_type
    if exec_type in ("canceled", "expired"):
        order_status = exec_type  # the event is the order's end whatever else it says
    status = _ORDER_STATUS.get(str(order_status))
    if status is None:
        if order_status in ("filled", "pending_new"):
            return None  # reached through the fills / not live yet
        raise DataError(f"{where}: unknown order_status {order_status!r} for exec_type "
                        f"{exec_type!r}")
    cl, order_id = item.get("cl_ord_id"), item.get("order_id")
    if not cl and not order_id:
        raise DataError(f"{where}: {exec_type} event without cl_ord_id or order_id")
    reason = str(item.get("reason") or "")
    if order_status == "expired":
        reason = f"expired: {reason}" if reason else "expired"
    elif exec_type in ("restated", "amended"):
        reason = f"{exec_type}: {reason}" if reason else exec_type
    return OrderEvent(status, rfc3339_ns(_req(item, "timestamp", where),
                                         where=f"{where}.timestamp"),
                      str(cl) if cl else None, str(order_id) if order_id else None, reason)


def parse_history_trade(trade_id: str, entry: Any, instrument_id: str, client_order_id: str,
                        where: str) -> Fill:
    """A private REST ``TradesHistory`` entry -> core Fill under ``client_order_id``.

    ``fill_id`` is the trade's txid (the ``trades`` key), which is the ``exec_id``
    the WS ``executions`` channel gives the same trade, so a trade reported on
    both paths is booked once.  Kraken states ``fee`` in the quote currency;
    ``maker`` is a boolean; ``time`` is Unix seconds with 4 decimals.
    """
    if not isinstance(entry, dict):
        raise DataError(f"{where}: trade is not an object")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(str(_req(entry, "type", where)))
    if side is None:
        raise DataError(f"{where}: type must be buy or sell")
    return sane_fill(Fill(
        fill_id=str(trade_id), client_order_id=client_order_id, venue=C.VENUE,
        instrument_id=instrument_id, side=side,
        price=to_decimal(_req(entry, "price", where), field=f"{where}.price"),
        quantity=to_decimal(_req(entry, "vol", where), field=f"{where}.vol"),
        fee=to_decimal(entry.get("fee", "0"), field=f"{where}.fee"),
        liquidity=Liquidity.MAKER if entry.get("maker") is True else Liquidity.TAKER,
        ts_ns=seconds_ns(_req(entry, "time", where), where=f"{where}.time"),
    ), where)
