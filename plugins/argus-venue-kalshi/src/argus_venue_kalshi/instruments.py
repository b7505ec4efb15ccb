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

from argus_core import DataError, Event, Instrument, Outcome, Settlement
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.schemas import KalshiEvent, Market

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
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
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
                  "tradeable": tradeable(market), "status": market.status},
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
#: ``result`` values Kalshi documents that are not a $1 / $0 binary payout: "void"
#: (positions returned at cost) and "scalar" (paid at a settlement value); not modelled.
UNMODELLED_RESULTS = ("void", "scalar")


def settlement_price(ticker: str, result: object, field: str = "result") -> Decimal | None:
    """What one YES contract of ``ticker`` pays for ``result`` ("yes" -> 1, "no" -> 0);
    None for an unmodelled ("void" / "scalar") result; a ``DataError`` naming the market
    and the field for anything else, so no payout is ever guessed."""
    if result == "yes":
        return Decimal(1)
    if result == "no":
        return Decimal(0)
    if result in UNMODELLED_RESULTS:
        log.warning("kalshi: market %s settled %r, which is not settled here (positions "
                    "stay open)", ticker, result)
        return None
    raise DataError(f"kalshi: market {ticker} settled with {field} {result!r}; expected "
                    f"'yes' or 'no' ('void' / 'scalar' are not modelled)")


def settlement_pair(ticker: str, yes_pays: Decimal, ts_ns: int, reason: str
                    ) -> list[Settlement]:
    """The YES and NO settlements of one market (NO pays ``1 - yes_pays``)."""
    return [Settlement(instrument_id(ticker, YES), ts_ns, yes_pays, reason),
            Settlement(instrument_id(ticker, NO), ts_ns, 1 - yes_pays, reason)]


def settlements_of(market: Market, ts_ns: int) -> list[Settlement]:
    """A settled market's YES and NO settlements ($1 to the winning side, $0 to the
    other), stamped with Kalshi's ``settlement_ts`` when given (else ``ts_ns``); nothing
    while it is unsettled or for a "void" / "scalar" result; a ``DataError`` for a settled
    market whose ``result`` is missing or unknown."""
    if market.status not in SETTLED_STATUSES:
        return []
    yes_pays = settlement_price(market.ticker, market.result)
    if yes_pays is None:
        return []
    reason = f"kalshi market {market.ticker} settled {market.result}"
    return settlement_pair(market.ticker, yes_pays,
                           parse_time_ns(market.settlement_ts) or ts_ns, reason)


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
