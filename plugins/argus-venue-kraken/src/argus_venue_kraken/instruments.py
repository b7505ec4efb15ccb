"""Kraken pair names <-> core Instruments.

Kraken spells one pair three ways: the REST key (``XXBTZUSD``, legacy X/Z
prefixes), the REST ``altname`` (``XBTUSD``) and the WebSocket name (v1
``XBT/USD``, v2 ``BTC/USD``).  Argus uses the v2 spelling as the instrument
symbol (``kraken:BTC/USD``) and keeps the REST names in ``Instrument.meta``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from argus_core import DataError, Instrument, to_decimal
from argus_venue_kraken import constants as C


def normalise_asset(code: str) -> str:
    """A Kraken asset code in common spelling: ``XXBT`` -> ``BTC``, ``ZUSD`` -> ``USD``."""
    code = code.upper()
    code = C.LEGACY_ASSETS.get(code, code)
    return C.ASSET_ALIASES.get(code, code)


def ws_symbol(wsname: str) -> str:
    """WS v1 / AssetPairs ``wsname`` -> WS v2 symbol: ``XBT/USD`` -> ``BTC/USD``."""
    base, sep, quote = wsname.partition("/")
    if not sep:
        raise DataError(f"Kraken pair name {wsname!r} has no '/'")
    return f"{normalise_asset(base)}/{normalise_asset(quote)}"


def rest_altname(symbol: str) -> str:
    """WS v2 symbol -> REST ``altname`` (what ``pair=`` accepts): ``BTC/USD`` -> ``XBTUSD``."""
    base, _, quote = symbol.partition("/")
    return C.REST_ASSET_NAMES.get(base, base) + C.REST_ASSET_NAMES.get(quote, quote)


def instrument_id(symbol: str) -> str:
    """Core instrument id of a WS v2 symbol."""
    return f"{C.VENUE}:{symbol}"


@attrs.frozen
class PairInfo:
    """What the venue needs from one AssetPairs entry."""

    symbol: str  # WS v2 spelling, e.g. BTC/USD
    rest_key: str  # e.g. XXBTZUSD
    altname: str  # e.g. XBTUSD
    price_decimals: int
    lot_decimals: int
    tick_size: Decimal
    ordermin: Decimal
    costmin: Decimal | None
    status: str
    base: str
    quote: str
    fees_taker: tuple[tuple[Decimal, Decimal], ...] = ()
    fees_maker: tuple[tuple[Decimal, Decimal], ...] = ()

    def instrument(self) -> Instrument:
        """The core Instrument (tick size, lot size from lot_decimals, min size from ordermin)."""
        return Instrument(
            venue=C.VENUE, symbol=self.symbol, kind="spot", tick_size=self.tick_size,
            lot_size=Decimal(1).scaleb(-self.lot_decimals), min_size=self.ordermin,
            base=self.base, quote=self.quote,
            meta={"rest_key": self.rest_key, "altname": self.altname,
                  "price_decimals": self.price_decimals, "lot_decimals": self.lot_decimals,
                  "costmin": str(self.costmin) if self.costmin is not None else None,
                  "status": self.status,
                  "fees_taker_pct": [[str(v), str(f)] for v, f in self.fees_taker],
                  "fees_maker_pct": [[str(v), str(f)] for v, f in self.fees_maker]},
        )


def _int(entry: dict[str, Any], key: str, where: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DataError(f"{where}: {key} must be a non-negative integer, got {value!r}")
    return value


def _fee_rows(rows: Any, where: str) -> tuple[tuple[Decimal, Decimal], ...]:
    if rows is None:
        return ()
    try:
        return tuple((to_decimal(v, field=where), to_decimal(f, field=where)) for v, f in rows)
    except (TypeError, ValueError):
        raise DataError(f"{where}: fee rows must be [volume, percent] pairs") from None


def parse_asset_pair(rest_key: str, entry: dict[str, Any]) -> PairInfo:
    """One AssetPairs result entry -> ``PairInfo``; ``DataError`` names the pair and field."""
    where = f"Kraken AssetPairs[{rest_key}]"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object")
    wsname = entry.get("wsname")
    if not isinstance(wsname, str):
        base, quote = entry.get("base"), entry.get("quote")
        if not isinstance(base, str) or not isinstance(quote, str):
            raise DataError(f"{where}: needs wsname or base/quote")
        wsname = f"{base}/{quote}"
    symbol = ws_symbol(wsname)
    price_decimals = _int(entry, "pair_decimals", where)
    lot_decimals = _int(entry, "lot_decimals", where)
    tick = entry.get("tick_size")
    tick_size = (to_decimal(tick, field=f"{where}.tick_size") if tick is not None
                 else Decimal(1).scaleb(-price_decimals))
    costmin = entry.get("costmin")
    base_code, quote_code = symbol.split("/")
    return PairInfo(
        symbol=symbol, rest_key=rest_key, altname=str(entry.get("altname") or rest_key),
        price_decimals=price_decimals, lot_decimals=lot_decimals, tick_size=tick_size,
        ordermin=to_decimal(entry.get("ordermin", "0"), field=f"{where}.ordermin"),
        costmin=to_decimal(costmin, field=f"{where}.costmin") if costmin is not None else None,
        status=str(entry.get("status", "online")), base=base_code, quote=quote_code,
        fees_taker=_fee_rows(entry.get("fees"), f"{where}.fees"),
        fees_maker=_fee_rows(entry.get("fees_maker"), f"{where}.fees_maker"),
    )


def parse_asset_pairs(result: Any) -> dict[str, PairInfo]:
    """An AssetPairs ``result`` -> {WS v2 symbol: PairInfo}."""
    if not isinstance(result, dict):
        raise DataError("Kraken AssetPairs: result must be an object keyed by pair")
    pairs: dict[str, PairInfo] = {}
    for key, entry in result.items():
        info = parse_asset_pair(key, entry)
        pairs[info.symbol] = info
    return pairs
