"""Kalshi markets -> core ``Instrument`` rules and ``Event`` groups.

Mapping:

* every market becomes two instruments, ``kalshi:<TICKER>/YES`` and ``kalshi:<TICKER>/NO``
  (a NO contract is bought on Kalshi as ``side="no"``), priced in dollars of probability
  (42 cents -> ``Decimal("0.42")``), paying $1;
* every market becomes a binary core ``Event`` (``<TICKER>``): outcome "Yes" is (YES, NO),
  "No" is (NO, YES); ``exhaustive`` only while the market is open;
* a mutually exclusive Kalshi event also becomes one multi-outcome ``Event``
  (``<EVENT TICKER>``), never marked exhaustive: Kalshi does not promise its market set
  is complete, so no scanner may treat it as risk-free.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from argus_core import DataError, Event, Instrument, Outcome, Settlement
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.schemas import KalshiEvent, Market, count, dec

log = logging.getLogger(__name__)

YES, NO = "YES", "NO"


def instrument_id(ticker: str, side: str = YES) -> str:
    """``kalshi:<TICKER>/YES`` or ``kalshi:<TICKER>/NO``."""
    return f"{C.VENUE}:{ticker}/{side.upper()}"


def parse_instrument_id(instrument_id_: str) -> tuple[str, str]:
    """(ticker, "yes" | "no") of a ``kalshi:<TICKER>/<SIDE>`` instrument id."""
    venue, _, symbol = instrument_id_.partition(":")
    ticker, _, side = symbol.rpartition("/")
    if venue != C.VENUE or not ticker or side not in (YES, NO):
        raise ValueError(f"{instrument_id_!r} is not a kalshi:<TICKER>/YES|NO instrument id")
    return ticker, side.lower()


def cents_to_probability(cents: int | str) -> Decimal:
    """42 -> Decimal("0.42"): a Kalshi cent price as a probability in dollars."""
    return Decimal(str(cents)) * C.CENT


def probability_to_cents(price: Decimal) -> int:
    """Decimal("0.42") -> 42; refuses prices off the cent grid or outside 1..99."""
    cents = price / C.CENT
    if cents != cents.to_integral() or not 1 <= cents <= 99:
        raise ValueError(f"kalshi price {price} is not a whole cent between 0.01 and 0.99")
    return int(cents)


def parse_time_ns(value: str | None) -> int | None:
    """ISO-8601 -> epoch ns (None when absent or unparsable)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except (ValueError, OverflowError):
        return None


def tradeable(market: Market) -> bool:
    """Open for trading."""
    return market.status in C.OPEN_MARKET_STATUSES


def instruments_of(market: Market, event: KalshiEvent | None = None) -> list[Instrument]:
    """The YES and NO instruments of one market."""
    out = []
    for side, other in ((YES, NO), (NO, YES)):
        out.append(Instrument(
            venue=C.VENUE, symbol=f"{market.ticker}/{side}", kind="binary",
            tick_size=market.tick_size, lot_size=Decimal(1), min_size=Decimal(1),
            base=side, quote="USD",
            meta={"ticker": market.ticker, "event_ticker": market.event_ticker,
                  "series_ticker": event.series_ticker if event else "",
                  "title": market.title, "outcome": market.subtitle or market.title,
                  "side": side.lower(), "is_yes": side == YES,
                  "complement": instrument_id(market.ticker, other),
                  "close_time": market.close_time, "rules": market.rules,
                  "tradeable": tradeable(market), "status": market.status,
                  "price_level_structure": market.price_level_structure,
                  "price_ranges": [[str(v) for v in band] for band in market.price_ranges]},
        ))
    return out


def binary_event(market: Market) -> Event:
    """The two-outcome core event of one market."""
    yes, no = instrument_id(market.ticker, YES), instrument_id(market.ticker, NO)
    return Event(venue=C.VENUE, event_id=market.ticker, title=market.title,
                 outcomes=(Outcome("Yes", yes, no), Outcome("No", no, yes)),
                 neg_risk=False, exhaustive=tradeable(market),
                 closed=not tradeable(market), end_ts_ns=parse_time_ns(market.close_time))


def group_event(event: KalshiEvent) -> Event | None:
    """A mutually exclusive event's multi-outcome core event (never exhaustive)."""
    if not event.mutually_exclusive or len(event.markets) < 2:
        return None
    outcomes = tuple(Outcome(m.subtitle or m.title or m.ticker, instrument_id(m.ticker, YES),
                             instrument_id(m.ticker, NO)) for m in event.markets)
    ends = [t for t in (parse_time_ns(m.close_time) for m in event.markets) if t is not None]
    return Event(venue=C.VENUE, event_id=event.event_ticker, title=event.title,
                 outcomes=outcomes, neg_risk=False, exhaustive=False,
                 closed=not any(tradeable(m) for m in event.markets),
                 end_ts_ns=max(ends) if ends else None)


#: Market statuses once Kalshi has paid positions out (``GET /markets`` reports
#: ``finalized``; ``settled`` is the ``?status=`` filter's name for it).  ``determined``
#: is not enough: a determined result may be disputed and amended before it pays.
SETTLED_STATUSES = ("settled", "finalized")
#: ``result`` "void": the market was voided and every position is returned at its
#: original cost (docs: the ``GET /portfolio/settlements`` object's ``market_result``).
VOID = "void"
#: ``result`` "scalar": YES pays ``settlement_value_dollars``, NO the rest of $1 (docs:
#: Market ``result`` / ``settlement_value_dollars``; ``expiration_value`` is the figure
#: it was read from).
SCALAR = "scalar"


def settlement_price(ticker: str, result: object, field: str = "result",
                     value: Decimal | None = None) -> Decimal | None:
    """What one YES contract of ``ticker`` pays for ``result``: "yes" -> 1, "no" -> 0,
    "scalar" -> ``value`` (the market's ``settlement_value_dollars``); None for "void"
    (each position is returned at its own cost: :func:`void_settlements`).  Anything
    else, or a scalar result without a value in [0, 1], is a ``DataError`` naming the
    market and the field, so no payout is ever guessed."""
    if result == "yes":
        return Decimal(1)
    if result == "no":
        return Decimal(0)
    if result == SCALAR:
        if value is None or not Decimal(0) <= value <= Decimal(1):
            raise DataError(f"kalshi: market {ticker} settled scalar with "
                            f"settlement_value_dollars {value!r}; expected a value in "
                            f"[0, 1] dollars")
        return value
    if result == VOID:
        return None
    raise DataError(f"kalshi: market {ticker} settled with {field} {result!r}; expected "
                    f"'yes', 'no', 'scalar' or 'void'")


def outcome(market: Market) -> str:
    """A settled market's result as one comparable word ("yes", "no", "void", or
    "scalar 0.3700"): two reports of one market that differ here are an amendment."""
    if market.result == SCALAR:  # normalised: "0.3700" and 37 cents are one value
        value = market.settlement_value
        return f"{SCALAR} {value if value is None else f'{value.normalize():f}'}"
    return market.result


def settlement_pair(ticker: str, yes_pays: Decimal, ts_ns: int, reason: str
                    ) -> list[Settlement]:
    """The YES and NO settlements of one market (NO pays ``1 - yes_pays``)."""
    return [Settlement(instrument_id(ticker, YES), ts_ns, yes_pays, reason),
            Settlement(instrument_id(ticker, NO), ts_ns, 1 - yes_pays, reason)]


def settlement_ts(market: Market, ts_ns: int) -> int:
    """Kalshi's ``settlement_ts`` when given (stable across restarts), else ``ts_ns``."""
    return parse_time_ns(market.settlement_ts) or ts_ns


def settlements_of(market: Market, ts_ns: int) -> list[Settlement]:
    """A settled market's YES and NO settlements ($1 to the winning side, $0 to the
    other; a scalar market's ``settlement_value_dollars`` to YES and the rest to NO),
    stamped with :func:`settlement_ts`; nothing while it is unsettled or for "void"
    (settled at cost by :func:`void_settlements`); a ``DataError`` for a settled market
    whose ``result`` is missing or unknown."""
    if market.status not in SETTLED_STATUSES:
        return []
    yes_pays = settlement_price(market.ticker, market.result, value=market.settlement_value)
    if yes_pays is None:
        return []
    reason = f"kalshi market {market.ticker} settled {outcome(market)}"
    return settlement_pair(market.ticker, yes_pays, settlement_ts(market, ts_ns), reason)


def void_settlements(ticker: str, account: dict[str, Any] | None, ts_ns: int
                     ) -> list[Settlement]:
    """A voided market's settlements from this account's ``GET /portfolio/settlements``
    object: each side the account held closes at its cost per contract
    (``<side>_total_cost_dollars / <side>_count_fp``, so the round trip nets zero before
    fees); a side held at none gets no settlement (there is no price that is right for
    every holder)."""
    out = []
    for side in (YES, NO):
        key = side.lower()
        held = count(account, f"{key}_count", default=Decimal(0)) if account else Decimal(0)
        if held <= 0 or account is None:
            continue
        cost = _cost(account, f"{key}_total_cost")
        out.append(Settlement(instrument_id(ticker, side), ts_ns, cost / held,
                              f"kalshi market {ticker} voided: {held} {side} returned at "
                              f"cost {cost}"))
    return out


def _cost(payload: dict[str, Any], name: str) -> Decimal:
    """Money field ``name + "_dollars"`` (a string) or ``name`` (cents), non-negative."""
    if payload.get(f"{name}_dollars") is not None:
        value = dec(payload[f"{name}_dollars"], f"{name}_dollars")
    elif payload.get(name) is not None:
        value = dec(payload[name], name) * C.CENT
    else:
        raise DataError(f"kalshi: {name} / {name}_dollars missing in {sorted(payload)}")
    if value < 0:
        raise DataError(f"kalshi: {name} {value} is negative")
    return value


def build(events: list[KalshiEvent], markets: list[Market]
          ) -> tuple[list[Event], list[Instrument]]:
    """Core events and instruments for ``events`` plus stand-alone ``markets``."""
    out_events: list[Event] = []
    instruments: list[Instrument] = []
    seen: set[str] = set()
    for ev in events:
        for market in ev.markets:
            seen.add(market.ticker)
            instruments.extend(instruments_of(market, ev))
            out_events.append(binary_event(market))
        group = group_event(ev)
        if group is not None:
            out_events.append(group)
    for market in markets:
        if market.ticker not in seen:
            seen.add(market.ticker)
            instruments.extend(instruments_of(market))
            out_events.append(binary_event(market))
    return out_events, instruments
