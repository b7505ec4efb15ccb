"""Second held-out audit (issue 15) of the cross-venue scanner and venue: books no leg may
use (crossed, a malformed level written past validation, a market that takes no orders,
a market already resolved), a mapping naming a Kalshi market the venue does not list, the
venues' own listed end dates against the mapping's, both legs' fees by hand, and fill
corrections (the core's ``FillCorrection``) in the composite venue's legging record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.scanner import CrossVenueScanner
from argus_crossvenue.venue import CrossVenue

from argus_core import (
    BookDelta,
    Event,
    Fill,
    FillCorrection,
    Instrument,
    Liquidity,
    MarketState,
    Opportunity,
    Outcome,
    Settlement,
    Side,
)

TICKER = "KXFEDCUT-26SEP"
K_YES, K_NO = f"kalshi:{TICKER}/YES", f"kalshi:{TICKER}/NO"
P_YES, P_NO = "polymarket:111", "polymarket:222"
DAY_NS = 86_400 * 10**9
SEP_16 = 1_789_516_800 * 10**9  # 2026-09-16T00:00:00Z


def _books() -> dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]]:
    """Kalshi YES asks 0.42 x 100, Polymarket NO asks 0.52 x 100: one basket (the other,
    K_NO 0.58 + P_YES 0.47, costs over 1)."""
    return {K_YES: ([(0.40, 100)], [(0.42, 100)]), K_NO: ([(0.56, 100)], [(0.58, 100)]),
            P_YES: ([(0.45, 100)], [(0.47, 100)]), P_NO: ([(0.50, 100)], [(0.52, 100)])}


def _scan(market: MarketState, mapping: Path) -> list[Opportunity]:
    return CrossVenueScanner(CrossVenueSettings(mapping=mapping)).scan(market, 2_000)


def test_both_legs_fees_by_hand(make_market: Callable[..., MarketState],
                                write_mapping: Callable[..., Path]) -> None:
    """100 x $1 - 100 x (0.42 + 0.52) - Kalshi 0.07 x 100 x 0.42 x 0.58 = 1.7052, up to
    the cent 1.71 - Polymarket 0.05 x 100 x 0.52 x 0.48 = 1.248 (to 0.00001) = 3.042."""
    k_fee = (D("0.07") * 100 * D("0.42") * D("0.58")).quantize(D("0.01"), ROUND_CEILING)
    p_fee = (D("0.05") * 100 * D("0.52") * D("0.48")).quantize(D("0.00001"), ROUND_DOWN)
    (opp,) = _scan(make_market(_books()), write_mapping())
    assert (k_fee, p_fee) == (D("1.71"), D("1.248"))
    assert opp.expected_profit == 100 - 94 - k_fee - p_fee == D("3.042")
    assert opp.costs == k_fee + p_fee and opp.max_size == 100 and opp.risk_free
    assert {(leg.instrument_id, leg.limit_price) for leg in opp.legs} == {
        (K_YES, D("0.42")), (P_NO, D("0.52"))}


def test_a_crossed_leg_gives_nothing(make_market: Callable[..., MarketState],
                                     write_mapping: Callable[..., Path]) -> None:
    """A Kalshi YES bid of 0.45 over its 0.42 ask (crossed by a delta): before, the basket
    was still priced on the crossed book; now that leg is skipped until it uncrosses."""
    market = make_market(_books())
    market.apply(BookDelta(K_YES, 1_001, Side.BUY, "0.45", "10"))
    assert _scan(market, write_mapping()) == []
    market.apply(BookDelta(K_YES, 1_002, Side.BUY, "0.45", "0"))
    assert len(_scan(market, write_mapping())) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_a_malformed_level_is_skipped_not_a_crash(make_market: Callable[..., MarketState],
                                                  write_mapping: Callable[..., Path],
                                                  bad: float) -> None:
    """A size an adapter wrote into the book's dict past validation: before, an infinite
    one raised DataError out of the whole scan."""
    market = make_market(_books())
    book = market.book(K_YES)
    book.apply(Side.SELL, 0.42, 100.0, 1_001)
    book.asks[0.42] = bad
    assert _scan(market, write_mapping()) == []


@pytest.mark.parametrize("meta", [{"acceptingOrders": False}, {"closed": True},
                                  {"accepting_orders": False}, {"tradeable": False}])
@pytest.mark.parametrize("leg", [K_YES, P_NO])
def test_a_leg_whose_market_takes_no_orders_gives_nothing(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path],
        meta: dict[str, Any], leg: str) -> None:
    """Before, only meta ``tradeable = False`` was read: a market ``closed`` or not
    ``acceptingOrders`` was still a leg."""
    market = make_market(_books())
    old = market.instruments[leg]
    market.add_instruments([Instrument(
        old.venue, old.symbol, kind="binary", tick_size=old.tick_size, lot_size=old.lot_size,
        min_size=old.min_size, meta={**old.meta, **meta})])
    assert _scan(market, write_mapping()) == []


def test_a_resolved_leg_gives_nothing(make_market: Callable[..., MarketState],
                                      write_mapping: Callable[..., Path]) -> None:
    """Kalshi YES resolved at 0, its last asks still in the state: buying it is buying a
    worthless contract at 0.42, not half of an arbitrage."""
    market = make_market(_books())
    market.apply(Settlement(K_YES, 1_001, D(0), "resolved NO"))
    assert _scan(market, write_mapping()) == []


def test_a_mapping_naming_a_kalshi_market_not_listed(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path],
        caplog: pytest.LogCaptureFixture) -> None:
    market = make_market(_books())
    scanner = CrossVenueScanner(CrossVenueSettings(mapping=write_mapping(
        **{"kalshi.ticker": "KXNOPE-26"})))
    with caplog.at_level(logging.WARNING, logger="argus_crossvenue.scanner"):
        assert scanner.scan(market, 1) == [] and scanner.scan(market, 2) == []
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "Kalshi market KXNOPE-26 is not among" in said[0]


def _listed(market: MarketState, kalshi_close: str | None, pm_end_ns: int | None) -> None:
    """The venues' own dates: Kalshi's ``close_time`` meta and the Polymarket token's event
    end."""
    for iid in (K_YES, K_NO):
        old = market.instruments[iid]
        meta = dict(old.meta)
        if kalshi_close is not None:
            meta["close_time"] = kalshi_close
        market.add_instruments([Instrument(
            old.venue, old.symbol, kind="binary", tick_size=old.tick_size,
            lot_size=old.lot_size, min_size=old.min_size, meta=meta)])
    market.apply(Event("polymarket", "E:1", "Fed cut in September?", (
        Outcome("Yes", P_YES, P_NO), Outcome("No", P_NO, P_YES)), end_ts_ns=pm_end_ns))


@pytest.mark.parametrize(("kalshi_close", "pm_end_ns", "risk_free"), [
    ("2026-09-16T18:00:00Z", SEP_16, True),          # as the mapping says (the example)
    (None, None, True),                              # nothing listed: the mapping stands
    ("2026-10-28T18:00:00Z", SEP_16, False),         # Kalshi's market is October's
    ("2026-09-16T18:00:00Z", SEP_16 + 42 * DAY_NS, False),  # Polymarket's ends later
])
def test_the_venues_listed_end_dates_against_the_mapping(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path],
        kalshi_close: str | None, pm_end_ns: int | None, risk_free: bool) -> None:
    """The mapping says both settle 2026-09-16.  Before, only the file's dates were
    compared, so a pair mapped to another meeting's market was risk-free and executable.
    Now a venue listing another end day makes it not risk-free (research lane), saying
    which."""
    market = make_market(_books())
    _listed(market, kalshi_close, pm_end_ns)
    (opp,) = _scan(market, write_mapping())
    assert opp.risk_free is risk_free
    assert opp.lane == ("executable" if risk_free else "research")
    if not risk_free:
        venue = "kalshi" if kalshi_close and kalshi_close.startswith("2026-10") else "polymarket"
        assert f"{venue} lists the market ending 2026-1" in opp.reason


def _fill(fid: str, coid: str, qty: str, fee: str) -> Fill:
    return Fill(fid, coid, "kalshi", K_YES, Side.BUY, price=D("0.42"), quantity=D(qty),
                fee=D(fee), liquidity=Liquidity.TAKER, ts_ns=1)


def test_fill_corrections_in_the_legging_record() -> None:
    """A bust takes the fill off its leg (the leg filled less: the second leg is sized by
    what really filled); a final fee replaces the fill's (a republished fill carries it);
    a correction of a fill the composite never saw changes nothing.  Before, the
    correction reached ``_note``, which read ``client_order_id`` off it and raised."""
    venue = CrossVenue(inner={})
    venue._note(_fill("f1", "c1", "30", "0"))
    venue._note(_fill("f2", "c1", "20", "0.20"))
    venue._note(FillCorrection("f1", 5, "fee listed", fee=D("0.55")))
    venue._note(FillCorrection("f2", 6, "trade failed", bust=True))
    venue._note(FillCorrection("nope", 7, "unknown", bust=True))
    leg = venue._legs["c1"]
    assert leg.filled == 30
    assert [(f.fill_id, f.fee) for f in leg.fills.values()] == [("f1", D("0.55"))]
    assert list(venue._legs) == ["c1"]



def test_a_book_in_cents_is_skipped_and_said_once(make_market: Callable[..., MarketState],
                                                  write_mapping: Callable[..., Path],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Kalshi's YES book written in cents (asks 42): a $1 contract is never worth 42, so the
    leg is skipped with one warning naming the instrument and the likely cause (before:
    skipped in silence, the margin being negative)."""
    books = _books()
    books[K_YES] = ([(40.0, 100)], [(42.0, 100)])
    market = make_market(books)
    scanner = CrossVenueScanner(CrossVenueSettings(mapping=write_mapping()))
    with caplog.at_level(logging.WARNING, logger="argus_crossvenue.scanner"):
        assert scanner.scan(market, 1) == [] and scanner.scan(market, 2) == []
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and K_YES in said[0] and "in cents" in said[0]


def test_reduce_only_guarding_is_the_inner_venue_that_trades_the_instrument() -> None:
    """Kalshi sizes its exits to its own position (a refused flatten keeps the flag);
    Polymarket does not: the composite answers per instrument."""
    class Answer:
        def __init__(self, guards: bool) -> None:
            self.guards = guards

        def guards_reduce_only_on(self, instrument_id: str) -> bool:
            return self.guards

    venue = CrossVenue(inner={"kalshi": Answer(True), "polymarket": Answer(False)})  # type: ignore[dict-item]
    assert venue.guards_reduce_only_on(K_YES) is True
    assert venue.guards_reduce_only_on("polymarket:123") is False
    assert venue.guards_reduce_only_on("kraken:XBT/USD") is False  # no such venue
