"""Typed views of Polymarket payloads (Gamma events/markets, CLOB books, websocket frames).

Parsing is strict where a wrong value could cost money (token ids, tick sizes,
prices) and lenient about fields we do not use.  Every error is a
``DataError`` that names the payload and the field.
"""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs

from argus_core.errors import DataError
from argus_core.models import to_decimal


def _require(obj: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise DataError(f"{where}: missing field {key!r}")
    return obj[key]


def json_list(value: Any, *, where: str) -> list[Any]:
    """Gamma encodes ``outcomes`` / ``clobTokenIds`` / ``outcomePrices`` as JSON *strings*."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise DataError(f"{where}: expected a JSON-encoded list, got {type(value).__name__}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not a JSON-encoded list ({exc.msg})") from None
    if not isinstance(parsed, list):
        raise DataError(f"{where}: expected a list, got {type(parsed).__name__}")
    return parsed


def _bool(value: Any, default: bool = False) -> bool:
    return default if value is None else bool(value)


#: Polymarket charges fees in units of 0.00001 pUSD and floors each fill's fee to that unit.
FEE_QUANTUM = Decimal("0.00001")


@attrs.frozen
class FeeCurve:
    """Polymarket's taker fee: ``rate * (p * (1 - p)) ** exponent`` per share, in collateral.

    Source: https://docs.polymarket.com/trading/fees ("fee = C x feeRate x (p(1-p))^exponent",
    takers only) and py-clob-client-v2 ``fees.adjust_buy_amount_for_fees`` (``platform_fee_rate
    = fee_rate * (price * (1 - price)) ** fee_exponent`` per share); each fill's fee is floored
    to 5 decimals (0.00001 pUSD), as NautilusTrader's ``compute_commission`` does to match the
    venue's charge.  ``taker_only`` (Gamma ``feeSchedule.takerOnly``) means makers pay nothing.
    """

    rate: Decimal = Decimal(0)
    exponent: Decimal = Decimal(1)
    taker_only: bool = True

    def per_share(self, price: Decimal) -> Decimal:
        """Fee per share bought or sold at ``price`` (before the per-fill floor)."""
        if self.rate == 0:
            return Decimal(0)
        base = price * (1 - price)
        if self.exponent == self.exponent.to_integral_value():
            return self.rate * base ** int(self.exponent)
        return self.rate * Decimal(repr(float(base) ** float(self.exponent)))

    def fee(self, shares: Decimal, price: Decimal, *, maker: bool = False) -> Decimal:
        """Fee of one fill of ``shares`` at ``price``, floored to 0.00001 pUSD."""
        if maker and self.taker_only:
            return Decimal(0)
        return (shares * self.per_share(price)).quantize(FEE_QUANTUM, rounding=ROUND_DOWN)


@attrs.frozen
class GammaMarket:
    """One Gamma market (one binary question with a YES and a NO token)."""

    market_id: str
    condition_id: str
    question: str
    group_title: str
    outcomes: tuple[str, ...]
    token_ids: tuple[str, ...]
    tick_size: Decimal
    min_size: Decimal
    active: bool
    closed: bool
    accepting_orders: bool
    enable_order_book: bool
    neg_risk: bool
    neg_risk_other: bool
    question_id: str
    fee: FeeCurve | None
    end_date: str | None
    raw_fee_schedule: dict[str, Any] | None = attrs.field(default=None, eq=False)

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> GammaMarket:
        """Validate one ``markets[]`` item."""
        mid = str(_require(raw, "id", where))
        where = f"{where} market {mid}"
        outcomes = tuple(str(o) for o in json_list(_require(raw, "outcomes", where),
                                                    where=f"{where}.outcomes"))
        tokens_raw = raw.get("clobTokenIds")
        token_ids = tuple(str(t) for t in json_list(tokens_raw, where=f"{where}.clobTokenIds")
                          ) if tokens_raw not in (None, "") else ()
        if token_ids and len(token_ids) != len(outcomes):
            raise DataError(f"{where}: {len(token_ids)} clobTokenIds for {len(outcomes)} outcomes")
        for tok in token_ids:
            if not tok.isdigit():
                raise DataError(f"{where}.clobTokenIds: {tok!r} is not a decimal token id")
        tick = to_decimal(raw.get("orderPriceMinTickSize", "0.01"),
                          field=f"{where}.orderPriceMinTickSize")
        if not Decimal(0) < tick < Decimal(1):
            raise DataError(f"{where}.orderPriceMinTickSize: {tick} is not in (0, 1)")
        min_size = to_decimal(raw.get("orderMinSize", 0), field=f"{where}.orderMinSize")
        return cls(
            market_id=mid,
            condition_id=str(raw.get("conditionId") or ""),
            question=str(raw.get("question") or ""),
            group_title=str(raw.get("groupItemTitle") or ""),
            outcomes=outcomes,
            token_ids=token_ids,
            tick_size=tick,
            min_size=min_size,
            active=_bool(raw.get("active"), True),
            closed=_bool(raw.get("closed")),
            accepting_orders=_bool(raw.get("acceptingOrders"), True),
            enable_order_book=_bool(raw.get("enableOrderBook"), True),
            neg_risk=_bool(raw.get("negRisk")),
            neg_risk_other=_bool(raw.get("negRiskOther")),
            question_id=str(raw.get("questionID") or ""),
            fee=_parse_fee(raw, where),
            end_date=raw.get("endDate"),
            raw_fee_schedule=raw.get("feeSchedule"),
        )


def _parse_fee(raw: dict[str, Any], where: str) -> FeeCurve | None:
    """Fee curve from ``feeSchedule`` (current Gamma), ``None`` when the market states none."""
    if raw.get("feesEnabled") is False:
        return FeeCurve(Decimal(0))
    sched = raw.get("feeSchedule")
    if isinstance(sched, dict):
        rate = to_decimal(sched.get("rate", 0), field=f"{where}.feeSchedule.rate")
        exponent = to_decimal(sched.get("exponent", 1), field=f"{where}.feeSchedule.exponent")
        if rate < 0 or exponent < 0:
            raise DataError(f"{where}.feeSchedule: negative rate or exponent")
        return FeeCurve(rate, exponent, _bool(sched.get("takerOnly"), True))
    return None


@attrs.frozen
class GammaEvent:
    """One Gamma ``/events`` item with its markets."""

    event_id: str
    title: str
    slug: str
    neg_risk: bool
    neg_risk_market_id: str
    neg_risk_augmented: bool
    active: bool
    closed: bool
    end_date: str | None
    markets: tuple[GammaMarket, ...]

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str = "gamma event") -> GammaEvent:
        """Validate one event (its markets too)."""
        eid = str(_require(raw, "id", where))
        where = f"{where} {eid}"
        markets_raw = raw.get("markets") or []
        if not isinstance(markets_raw, list):
            raise DataError(f"{where}.markets: expected a list")
        return cls(
            event_id=eid,
            title=str(raw.get("title") or ""),
            slug=str(raw.get("slug") or ""),
            neg_risk=_bool(raw.get("negRisk")) or _bool(raw.get("enableNegRisk")),
            neg_risk_market_id=str(raw.get("negRiskMarketID") or ""),
            neg_risk_augmented=_bool(raw.get("negRiskAugmented")),
            active=_bool(raw.get("active"), True),
            closed=_bool(raw.get("closed")),
            end_date=raw.get("endDate"),
            markets=tuple(GammaMarket.parse(m, where) for m in markets_raw),
        )


@attrs.frozen
class BookLevel:
    """One level exactly as the venue sent it (strings kept for the hash)."""

    price: str
    size: str


@attrs.frozen
class ClobBook:
    """A CLOB order-book summary (``GET /book``, ``POST /books``, websocket ``book``).

    ``bids`` / ``asks`` keep the venue's order (worst to best) and string
    values, because the book hash is computed over exactly that.
    """

    market: str
    asset_id: str
    timestamp: str
    hash: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    min_order_size: str | None
    tick_size: str | None
    neg_risk: bool | None
    last_trade_price: str | None

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str = "book") -> ClobBook:
        """Validate a book payload; prices must lie in (0, 1), sizes >= 0."""
        asset = str(_require(raw, "asset_id", where))
        where = f"{where} {asset[:12]}…"
        sides = []
        for name in ("bids", "asks"):
            levels = raw.get(name) or []
            if not isinstance(levels, list):
                raise DataError(f"{where}.{name}: expected a list")
            out = []
            for i, lvl in enumerate(levels):
                p = _require(lvl, "price", f"{where}.{name}[{i}]")
                s = _require(lvl, "size", f"{where}.{name}[{i}]")
                pd = to_decimal(p, field=f"{where}.{name}[{i}].price")
                sd = to_decimal(s, field=f"{where}.{name}[{i}].size")
                if not Decimal(0) < pd < Decimal(1):
                    raise DataError(f"{where}.{name}[{i}].price: {p} is not in (0, 1)")
                if sd < 0:
                    raise DataError(f"{where}.{name}[{i}].size: {s} is negative")
                out.append(BookLevel(str(p), str(s)))
            sides.append(tuple(out))
        nr = raw.get("neg_risk")
        return cls(
            market=str(raw.get("market") or ""),
            asset_id=asset,
            timestamp=str(raw.get("timestamp") or ""),
            hash=str(raw.get("hash") or ""),
            bids=sides[0],
            asks=sides[1],
            min_order_size=None if raw.get("min_order_size") is None else str(
                raw["min_order_size"]),
            tick_size=None if raw.get("tick_size") is None else str(raw["tick_size"]),
            neg_risk=None if nr is None else bool(nr),
            last_trade_price=None if raw.get("last_trade_price") is None else str(
                raw["last_trade_price"]),
        )

    def ts_ns(self, fallback_ns: int) -> int:
        """The book's timestamp (venue milliseconds) in ns; ``fallback_ns`` if not numeric."""
        return int(self.timestamp) * 1_000_000 if self.timestamp.isdigit() else fallback_ns
