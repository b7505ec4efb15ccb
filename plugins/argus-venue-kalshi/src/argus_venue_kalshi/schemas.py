"""Kalshi Trade API v2 payloads -> small typed records.

Kalshi sends prices two ways: legacy integer cents (``yes_price: 42``) and fixed-point
dollar strings (``yes_price_dollars: "0.4200"``); counts as integers (``count``) or
fixed-point strings (``count_fp: "10.00"``).  Every reader here accepts either, prefers
the exact dollar / fp string, and refuses anything non-finite or out of range.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from argus_core import DataError
from argus_venue_kalshi import constants as C

_CENT = Decimal("0.01")


def dec(value: Any, what: str) -> Decimal:
    """``value`` as an exact, finite Decimal; a ``DataError`` naming ``what`` otherwise."""
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DataError(f"kalshi: {what} is not a number: {value!r}") from None
    if not out.is_finite():
        raise DataError(f"kalshi: {what} is not finite: {value!r}")
    return out


def price(payload: dict[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    """Price field ``name`` in dollars: ``name + "_dollars"`` (a string) or ``name`` (cents)."""
    if payload.get(f"{name}_dollars") is not None:
        value = dec(payload[f"{name}_dollars"], f"{name}_dollars")
    elif payload.get(name) is not None:
        value = dec(payload[name], name) * _CENT
    elif required:
        raise DataError(f"kalshi: {name} / {name}_dollars missing in {sorted(payload)}")
    else:
        return None
    if not Decimal(0) <= value <= Decimal(1):
        raise DataError(f"kalshi: {name} {value} is outside [0, 1] dollars")
    return value


def count(payload: dict[str, Any], name: str = "count", *, default: Decimal | None = None
          ) -> Decimal:
    """Contract count ``name + "_fp"`` (a string) or ``name`` (an integer)."""
    if payload.get(f"{name}_fp") is not None:
        value = dec(payload[f"{name}_fp"], f"{name}_fp")
    elif payload.get(name) is not None:
        value = dec(payload[name], name)
    elif default is not None:
        return default
    else:
        raise DataError(f"kalshi: {name} / {name}_fp missing in {sorted(payload)}")
    if value < 0:
        raise DataError(f"kalshi: {name} {value} is negative")
    return value.normalize() if value == value.to_integral() else value


def position(payload: dict[str, Any]) -> Decimal:
    """A market position's signed contracts (``position_fp`` or ``position``): positive
    YES, negative NO."""
    for name in ("position_fp", "position"):
        if payload.get(name) is not None:
            return dec(payload[name], name)
    raise DataError(f"kalshi: position / position_fp missing in {sorted(payload)}")


def _price_ranges(raw: dict[str, Any], legacy_tick: Decimal
                  ) -> tuple[tuple[Decimal, Decimal, Decimal], ...]:
    """A market's price grid: ``price_ranges`` (``[{start, end, step}]`` in dollars), else
    the documented bands of a known ``price_level_structure``, else ``tick_size``."""
    ticker = raw.get("ticker")
    listed = raw.get("price_ranges")
    if listed:
        out = []
        for band in listed:
            try:
                start, end, step = (dec(band[k], f"{ticker} price_ranges {k}")
                                    for k in ("start", "end", "step"))
            except (KeyError, TypeError):
                raise DataError(f"kalshi: market {ticker}: price_ranges entry {band!r} is "
                                f"not {{start, end, step}}") from None
            if not (0 <= start < end <= 1 and step > 0):
                raise DataError(f"kalshi: market {ticker}: price range {band!r} is invalid")
            out.append((start, end, step))
        return tuple(out)
    structure = raw.get("price_level_structure")
    if structure in C.PRICE_LEVEL_STRUCTURES:
        return C.PRICE_LEVEL_STRUCTURES[structure]
    return ((Decimal(0), Decimal(1), legacy_tick),)


def on_grid(price: Decimal, ranges: tuple[tuple[Decimal, Decimal, Decimal], ...]) -> bool:
    """Whether ``price`` is strictly between 0 and 1 and on the step of a band holding it
    (a price on the border of two bands is valid on either's grid)."""
    return 0 < price < 1 and any(start <= price <= end and (price - start) % step == 0
                                 for start, end, step in ranges)


def _settlement_value(raw: dict[str, Any]) -> Decimal | None:
    """``settlement_value_dollars`` (or ``yes_settlement_value_dollars``, or legacy cents
    ``settlement_value``), unchecked: the settlement names the market when it is wrong."""
    for name, scale in (("settlement_value_dollars", Decimal(1)),
                        ("yes_settlement_value_dollars", Decimal(1)),
                        ("settlement_value", _CENT)):
        if raw.get(name) is not None:
            return dec(raw[name], name) * scale
    return None


@attrs.frozen
class Market:
    """One Kalshi market (a binary contract): ``GET /markets`` / ``GET /markets/{ticker}``."""

    ticker: str
    event_ticker: str
    title: str
    status: str
    subtitle: str = ""
    close_time: str | None = None
    tick_size: Decimal = _CENT
    #: Valid prices: (start, end, step) bands in dollars (``price_ranges``, else the
    #: documented bands of ``price_level_structure``, else whole cents).
    price_ranges: tuple[tuple[Decimal, Decimal, Decimal], ...] = ((Decimal(0), Decimal(1),
                                                                   _CENT),)
    price_level_structure: str = ""
    result: str = ""
    rules: str = ""
    settlement_ts: str | None = None
    #: What one YES contract pays, in dollars, once a scalar market settles
    #: (``settlement_value_dollars``; None before determination).
    settlement_value: Decimal | None = None
    #: The figure the market settled on (``expiration_value``), for messages.
    expiration_value: str = ""

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Market:
        """A market from its JSON object."""
        if not isinstance(raw.get("ticker"), str) or not raw["ticker"]:
            raise DataError(f"kalshi: market without a ticker: {sorted(raw)}")
        tick = raw.get("tick_size")
        legacy = dec(tick, "tick_size") * _CENT if tick else _CENT
        ranges = _price_ranges(raw, legacy)
        return cls(
            ticker=raw["ticker"], event_ticker=str(raw.get("event_ticker") or ""),
            title=str(raw.get("title") or ""), status=str(raw.get("status") or ""),
            subtitle=str(raw.get("yes_sub_title") or raw.get("subtitle") or ""),
            close_time=raw.get("close_time"),
            tick_size=min(step for _, _, step in ranges), price_ranges=ranges,
            price_level_structure=str(raw.get("price_level_structure") or ""),
            result=str(raw.get("result") or ""), rules=str(raw.get("rules_primary") or ""),
            settlement_ts=raw.get("settlement_ts"),
            settlement_value=_settlement_value(raw),
            expiration_value=str(raw.get("expiration_value") or ""),
        )


@attrs.frozen
class KalshiEvent:
    """One Kalshi event (a group of markets): ``GET /events/{event_ticker}``."""

    event_ticker: str
    series_ticker: str
    title: str
    mutually_exclusive: bool
    markets: tuple[Market, ...] = ()

    @classmethod
    def parse(cls, raw: dict[str, Any], markets: list[dict[str, Any]] | None = None
              ) -> KalshiEvent:
        """An event from its JSON object (markets nested or given beside it)."""
        nested = markets if markets is not None else raw.get("markets") or []
        return cls(event_ticker=str(raw.get("event_ticker") or ""),
                   series_ticker=str(raw.get("series_ticker") or ""),
                   title=str(raw.get("title") or ""),
                   mutually_exclusive=bool(raw.get("mutually_exclusive")),
                   markets=tuple(Market.parse(m) for m in nested))
