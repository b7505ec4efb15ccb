"""Gamma events -> core ``Event`` groups and ``Instrument`` rules.

Mapping:

* a negRisk Gamma event becomes one core ``Event`` (``neg_risk=True``) whose
  outcomes are its markets (YES/NO token of each);
* every market of a non-negRisk event becomes its own two-outcome binary
  ``Event`` (``"<event id>:<market id>"``): outcome "Yes" is (YES, NO) and
  outcome "No" is (NO, YES), so "exactly one outcome resolves YES" holds;
* ``exhaustive`` is True only when the outcome set is complete *and* every
  outcome is open for trading: augmented negRisk events (which can gain
  outcomes, and carry "Other"/placeholder outcomes) and events with any
  closed, inactive or book-less outcome are marked not exhaustive, so no
  scanner can treat them as risk-free.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from argus_core import Event, Instrument, Outcome
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.schemas import FeeCurve, GammaEvent, GammaMarket

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(C.PLACEHOLDER_TITLE_PATTERN, re.IGNORECASE)


def instrument_id(token_id: str) -> str:
    """``polymarket:<token id>``."""
    return f"{C.VENUE}:{token_id}"


def token_of(instrument_id_: str) -> str:
    """The CLOB token id inside a ``polymarket:<token id>`` instrument id."""
    venue, _, token = instrument_id_.partition(":")
    if venue != C.VENUE or not token.isdigit():
        raise ValueError(f"{instrument_id_!r} is not a polymarket:<token id> instrument id")
    return token


def parse_iso_ns(value: str | None) -> int | None:
    """ISO-8601 (Gamma ``endDate``) -> epoch ns, None when absent or unparsable."""
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return None


def _yes_index(market: GammaMarket) -> int:
    lowered = [o.strip().lower() for o in market.outcomes]
    return lowered.index("yes") if "yes" in lowered else 0


def is_placeholder(event: GammaEvent, market: GammaMarket) -> bool:
    """An augmented event's "Other" or not-yet-named outcome (or one with no tokens yet)."""
    if not event.neg_risk_augmented:
        return False
    title = market.group_title.strip() or market.question.strip()
    return (market.neg_risk_other or not market.token_ids or bool(_PLACEHOLDER.match(title)))


#: The slug of Polymarket's recurring crypto up/down markets: the coin, the window's
#: length and its start in Unix seconds (``btc-updown-15m-1777467600``: "Bitcoin Up or
#: Down - April 29, 9:00AM-9:15AM ET", ending at the market's ``endDate``).
_UPDOWN_SLUG = re.compile(r"([a-z0-9]+)-updown-([1-9][0-9]{0,2})([mh])-([0-9]{9,11})")


def updown_window(event: GammaEvent, market: GammaMarket) -> dict[str, Any]:
    """The ``meta`` the ``latency`` scanner reads of a recurring crypto up/down market:
    ``underlying`` (the coin, upper case), ``window_start_s`` and ``window_end_ns``; empty
    for any other market, and for one whose ``endDate`` is not its slug's start plus its
    length (nothing is guessed: a window off by an hour would price the wrong move).  The
    "Up" / "Down" outcome of each token says its direction."""
    for slug in (market.slug, event.slug):
        found = _UPDOWN_SLUG.fullmatch(slug)
        if found is None:
            continue
        coin, length, unit, start = found.groups()
        seconds = int(length) * (60 if unit == "m" else 3600)
        end = parse_iso_ns(market.end_date or event.end_date)
        if end is None or end != (int(start) + seconds) * 1_000_000_000:
            return {}
        return {"underlying": coin.upper(), "window_start_s": int(start), "window_end_ns": end}
    return {}


def tradeable_market(market: GammaMarket) -> bool:
    """Open, accepting orders, with an order book and two tokens."""
    return (market.active and not market.closed and market.accepting_orders
            and market.enable_order_book and len(market.token_ids) == 2)


def fee_curve(market: GammaMarket, settings: PolymarketSettings) -> FeeCurve:
    """The market's fee curve: its ``feeSchedule``, else the configured default."""
    curve = market.fee or FeeCurve(settings.default_fee_rate, settings.default_fee_exponent)
    if settings.fee_rate_override is not None:
        curve = FeeCurve(settings.fee_rate_override, curve.exponent, curve.taker_only)
    return curve


def build(events: list[GammaEvent], settings: PolymarketSettings
          ) -> tuple[list[Event], list[Instrument]]:
    """Core events and instruments for ``events`` (markets without tokens get no instrument).

    A token listed under two events (Gamma lists a market under each event it belongs
    to) keeps the first event's instrument, and every event naming a shared token is
    ``exhaustive=False``: before, the later event's ``meta`` replaced the first's and both
    events were exhaustive, so a "one outcome must win" basket could count an outcome of
    another question among its own."""
    out_events: list[Event] = []
    instruments: dict[str, Instrument] = {}
    for ev in events:
        for market in ev.markets:
            for inst in _instruments(ev, market, settings):
                instruments.setdefault(inst.id, inst)
        if ev.neg_risk:
            out_events.append(_neg_risk_event(ev))
        else:
            out_events.extend(_binary_events(ev))
    return _shared_not_exhaustive(events, out_events), list(instruments.values())


def _shared_not_exhaustive(gamma: list[GammaEvent], events: list[Event]) -> list[Event]:
    """``events`` with each one that names a token another Gamma event also lists made
    ``exhaustive=False`` (said in the log)."""
    owner: dict[str, str] = {}
    shared: set[str] = set()
    for ev in gamma:
        for token in {t for m in ev.markets for t in m.token_ids}:
            if owner.setdefault(token, ev.event_id) != ev.event_id:
                shared.add(instrument_id(token))
    out = []
    for event in events:
        if event.exhaustive and _named(event) & shared:
            log.warning("polymarket: event %s (%s) shares markets with another event: not "
                        "exhaustive", event.event_id, event.title[:60])
            event = attrs.evolve(event, exhaustive=False)
        out.append(event)
    return out


def _named(event: Event) -> set[str]:
    return {i for o in event.outcomes for i in (o.yes_instrument_id, o.no_instrument_id)}


def shared_with_known(gamma: list[GammaEvent], events: list[Event],
                      instruments: list[Instrument], known_events: Iterable[Event],
                      known_instruments: Mapping[str, Instrument]
                      ) -> tuple[list[Event], list[Instrument]]:
    """:func:`build`'s rule for a discovery of some events only (a ``new_market`` frame's:
    Gamma asked for the announced event ids), against what the stream knows: an event of
    ``events`` naming a token that a known event outside this discovery also names, and
    that known event, are ``exhaustive=False`` (the known one returned among the events,
    changed), and the token keeps its known instrument (the first listing's).  Before, the
    check saw only the new events and found nothing shared, while a discovery at the start
    listing both marked both."""
    batch = {ev.event_id for ev in events}
    others = [ev for ev in known_events if ev.event_id not in batch]
    elsewhere = set().union(*(_named(ev) for ev in others))
    shared = {i for ev in events for i in _named(ev) if i in elsewhere}
    if not shared:
        return events, instruments
    out: list[Event] = []
    for event in [*events, *(ev for ev in others if _named(ev) & shared)]:
        if event.exhaustive and _named(event) & shared:
            log.warning("polymarket: event %s (%s) shares markets with another event: not "
                        "exhaustive", event.event_id, event.title[:60])
            event = attrs.evolve(event, exhaustive=False)
        out.append(event)
    ours = {ev.event_id for ev in gamma}
    kept = []
    for inst in instruments:
        old = known_instruments.get(inst.id)
        if inst.id in shared and old is not None and old.meta.get("event_id") not in ours:
            inst = old  # listed first under another event: that listing's instrument stays
        kept.append(inst)
    return out, kept


def market_instruments(market: GammaMarket, settings: PolymarketSettings) -> list[Instrument]:
    """Instruments of a market Gamma ``GET /markets`` returned without its event (a held
    market that discovery no longer lists): the event's fields are unknown (its id is
    ``market:<market id>``, no negRisk market id), the market's own ``negRisk`` is kept."""
    event = GammaEvent(event_id=f"market:{market.market_id}", title=market.question, slug="",
                       neg_risk=market.neg_risk, neg_risk_market_id="",
                       neg_risk_augmented=False, active=market.active, closed=market.closed,
                       end_date=market.end_date, markets=(market,))
    return _instruments(event, market, settings)


def _instruments(ev: GammaEvent, market: GammaMarket, settings: PolymarketSettings
                 ) -> list[Instrument]:
    if len(market.token_ids) != 2:
        return []
    curve = fee_curve(market, settings)
    yes = _yes_index(market)
    window = updown_window(ev, market)
    result = []
    for idx, token in enumerate(market.token_ids):
        result.append(Instrument(
            venue=C.VENUE,
            symbol=token,
            kind="binary",
            tick_size=market.tick_size,
            lot_size=C.LOT_SIZE,
            min_size=market.min_size,
            base=market.outcomes[idx],
            quote="USD",
            meta={
                "event_id": ev.event_id,
                "market_id": market.market_id,
                "condition_id": market.condition_id,
                "question_id": market.question_id,
                "question": market.question,
                "outcome": market.group_title or market.question,
                "token_outcome": market.outcomes[idx],
                "outcome_index": idx,
                "is_yes": idx == yes,
                "complement": instrument_id(market.token_ids[1 - idx]),
                "neg_risk": ev.neg_risk or market.neg_risk,
                "neg_risk_market_id": ev.neg_risk_market_id,
                "neg_risk_augmented": ev.neg_risk_augmented,
                "placeholder": is_placeholder(ev, market),
                "fee_rate": str(curve.rate),
                "fee_exponent": str(curve.exponent),
                "fee_taker_only": curve.taker_only,
                "tradeable": tradeable_market(market),
                **window,
            },
        ))
    return result


def _neg_risk_event(ev: GammaEvent) -> Event:
    outcomes = []
    complete = bool(ev.markets) and not ev.neg_risk_augmented and ev.active and not ev.closed
    for market in ev.markets:
        if len(market.token_ids) != 2:
            complete = False
            continue
        yes = _yes_index(market)
        complete = complete and tradeable_market(market)
        outcomes.append(Outcome(
            name=market.group_title or market.question,
            yes_instrument_id=instrument_id(market.token_ids[yes]),
            no_instrument_id=instrument_id(market.token_ids[1 - yes]),
            placeholder=is_placeholder(ev, market),
        ))
    return Event(
        venue=C.VENUE, event_id=ev.event_id, title=ev.title, outcomes=tuple(outcomes),
        neg_risk=True, exhaustive=complete and len(outcomes) >= 2, closed=ev.closed,
        end_ts_ns=parse_iso_ns(ev.end_date),
    )


def _binary_events(ev: GammaEvent) -> list[Event]:
    result = []
    for market in ev.markets:
        if len(market.token_ids) != 2:
            continue
        a, b = (instrument_id(t) for t in market.token_ids)
        result.append(Event(
            venue=C.VENUE,
            event_id=f"{ev.event_id}:{market.market_id}",
            title=market.question or ev.title,
            outcomes=(Outcome(market.outcomes[0], a, b), Outcome(market.outcomes[1], b, a)),
            neg_risk=False,
            exhaustive=tradeable_market(market),
            closed=market.closed,
            end_ts_ns=parse_iso_ns(market.end_date or ev.end_date),
        ))
    return result


def fee_of(instrument: Instrument) -> FeeCurve:
    """The fee curve stored in an instrument's ``meta`` by :func:`build`."""
    meta = instrument.meta
    return FeeCurve(Decimal(meta.get("fee_rate", "0")), Decimal(meta.get("fee_exponent", "1")),
                    bool(meta.get("fee_taker_only", True)))
