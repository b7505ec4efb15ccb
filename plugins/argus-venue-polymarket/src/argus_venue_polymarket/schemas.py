"""Typed views of Polymarket payloads (Gamma events/markets, CLOB books, websocket frames).

Parsing is strict where a wrong value could cost money (token ids, tick sizes,
prices) and lenient about fields we do not use.  Every error is a
``DataError`` that names the payload and the field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs

from argus_core import DataError, loads_frame, to_decimal


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
        parsed = loads_frame(value)  # a number of 5,000 digits is malformed, not a crash
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
    outcome_prices: tuple[Decimal, ...] = ()
    uma_resolution_status: str = ""
    #: Gamma ``closedTime``: when the market closed (ISO 8601, or Postgres' ``2021-12-05
    #: 20:37:01+00`` in older records); None when the payload has none.
    closed_time: str | None = None
    #: Gamma ``slug`` (``btc-updown-15m-1777467600``: see ``instruments.updown_window``).
    slug: str = ""

    def resolution(self) -> tuple[Decimal, ...] | None:
        """Final payout per token (in ``token_ids`` order) once the market has resolved.

        Resolved means: ``closed``, UMA's status (when Gamma gives one) is
        ``resolved``, and ``outcomePrices`` are final -- each 0, 0.5 or 1 and summing
        to 1 (a 50-50 resolution pays 0.5 per token).  A closed market still
        showing trading prices (0.9995 / 0.0005) or under dispute is not resolved.
        """
        if not self.closed or len(self.outcome_prices) != len(self.token_ids) or not self.token_ids:
            return None
        if self.uma_resolution_status not in ("", "resolved"):
            return None
        final = {Decimal(0), Decimal("0.5"), Decimal(1)}
        if any(p not in final for p in self.outcome_prices) or sum(self.outcome_prices) != 1:
            return None
        return self.outcome_prices

    def closed_ts_ns(self) -> int | None:
        """``closedTime`` in epoch ns (a time without a zone is UTC); None when absent or
        unreadable."""
        if not self.closed_time:
            return None
        try:
            when = datetime.fromisoformat(self.closed_time.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1_000

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
        if len(set(token_ids)) != len(token_ids):  # YES and NO one token: outcomes overlap
            raise DataError(f"{where}.clobTokenIds: {token_ids[0]} named twice")
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
            outcome_prices=_prices(raw.get("outcomePrices"), where),
            uma_resolution_status=str(raw.get("umaResolutionStatus") or "").lower(),
            closed_time=str(raw["closedTime"]) if raw.get("closedTime") else None,
            slug=str(raw.get("slug") or ""),
        )


def _prices(value: Any, where: str) -> tuple[Decimal, ...]:
    """``outcomePrices`` (a JSON-encoded list of decimal strings); empty when absent."""
    if value in (None, ""):
        return ()
    return tuple(to_decimal(p, field=f"{where}.outcomePrices")
                 for p in json_list(value, where=f"{where}.outcomePrices"))


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
            markets=_distinct_tokens(tuple(GammaMarket.parse(m, where) for m in markets_raw),
                                     where),
        )


def _distinct_tokens(markets: tuple[GammaMarket, ...], where: str) -> tuple[GammaMarket, ...]:
    """``markets``, each token in one of them only: a token named by two markets makes
    outcomes that overlap (a "buy every outcome" basket buying one token twice)."""
    owner: dict[str, str] = {}
    for market in markets:
        for token in market.token_ids:
            if owner.setdefault(token, market.market_id) != market.market_id:
                raise DataError(f"{where}: token {token} is named by markets "
                                f"{owner[token]} and {market.market_id}")
    return markets


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


#: Trade statuses after which a trade can no longer be undone on chain (or has been).
TRADE_BOOKED_STATUSES = ("MATCHED", "MINED", "CONFIRMED", "RETRYING")


@attrs.frozen
class MakerOrderMatch:
    """One resting order a trade matched (``maker_orders[]`` of ``GET /data/trades``)."""

    order_id: str
    owner: str
    maker_address: str
    asset_id: str
    side: str
    price: Decimal
    matched_amount: Decimal


@attrs.frozen
class ClobTrade:
    """One item of the CLOB's ``GET /data/trades`` (L2-authenticated, this account's trades).

    ``trader_side`` says whether this account was the taker (``taker_order_id``,
    ``side``, ``size``, ``price`` describe its order) or a maker (its orders are
    the ``maker_orders`` entries it owns).
    """

    trade_id: str
    taker_order_id: str
    asset_id: str
    side: str
    size: Decimal
    price: Decimal
    status: str
    match_time_s: int
    trader_side: str
    owner: str
    maker_orders: tuple[MakerOrderMatch, ...]

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str = "trade") -> ClobTrade:
        """Validate one trade; sides, sizes and prices are checked."""
        tid = str(_require(raw, "id", where))
        where = f"{where} {tid}"
        makers, listed = [], raw.get("maker_orders") or []
        if not isinstance(listed, list):
            raise DataError(f"{where}.maker_orders: {listed!r:.40} is not a list")
        for i, m in enumerate(listed):
            w = f"{where}.maker_orders[{i}]"
            makers.append(MakerOrderMatch(
                order_id=str(_require(m, "order_id", w)), owner=str(m.get("owner") or ""),
                maker_address=str(m.get("maker_address") or ""),
                asset_id=str(_require(m, "asset_id", w)), side=_side(m, w),
                price=_unit_price(_require(m, "price", w), f"{w}.price"),
                matched_amount=_size(_require(m, "matched_amount", w), f"{w}.matched_amount")))
        match_time = _epoch_s(raw.get("match_time"), f"{where}.match_time")
        trader_side = str(raw.get("trader_side") or "TAKER").upper()
        if trader_side not in ("TAKER", "MAKER"):
            raise DataError(f"{where}.trader_side: {trader_side!r} is not TAKER or MAKER")
        return cls(
            trade_id=tid, taker_order_id=str(raw.get("taker_order_id") or ""),
            asset_id=str(_require(raw, "asset_id", where)), side=_side(raw, where),
            size=_size(_require(raw, "size", where), f"{where}.size"),
            price=_unit_price(_require(raw, "price", where), f"{where}.price"),
            status=str(raw.get("status") or "").upper(),
            match_time_s=match_time,
            trader_side=trader_side, owner=str(raw.get("owner") or ""),
            maker_orders=tuple(makers))


#: The most shares one trade or order may carry, and the times a trade may have (seconds
#: whose nanoseconds fit int64): past them a venue's answer is malformed.
MAX_SIZE, _SECONDS_ROOM = Decimal(10**12), 2**63 // 10**9


def _epoch_s(value: Any, where: str) -> int:
    """Unix seconds from ``"1672290701"`` (the docs' form) or an ISO-8601 time; 0 if absent."""
    if value in (None, ""):
        return 0
    text = str(value)
    try:
        seconds = int(text) if text.isascii() and text.isdigit() else \
            int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except (ValueError, OverflowError):  # ('²' is a digit to isdigit; 5,000 digits)
        seconds = -1
    if not 0 <= seconds < _SECONDS_ROOM:
        raise DataError(f"{where}: {text!r:.40} is neither unix seconds nor an ISO time")
    return seconds


def _side(raw: dict[str, Any], where: str) -> str:
    side = str(_require(raw, "side", where)).upper()
    if side not in ("BUY", "SELL"):
        raise DataError(f"{where}.side: {side!r} is not BUY or SELL")
    return side


def _unit_price(value: Any, where: str) -> Decimal:
    price = to_decimal(value, field=where)
    if not Decimal(0) < price < Decimal(1):
        raise DataError(f"{where}: {price} is not in (0, 1)")
    return price


def _size(value: Any, where: str) -> Decimal:
    size = to_decimal(value, field=where)
    if not 0 < size <= MAX_SIZE:  # 1e26 shares overflowed the fee's rounding
        raise DataError(f"{where}: {size} must be > 0 and at most {MAX_SIZE:,} shares")
    return size
