"""Red team of the crossvenue scanner: metadata that cannot pair (a complement that is the
token itself, or has the same outcome, or is not listed; different quote currencies),
mapping files that pair one market twice or both ways, lot grids that only meet at their
least common multiple, ``min_edge`` against exactly priced fees, opportunity ids that
outlive the basket they named, and a reason as long as the walk."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.mapping import load_mapping, parse_pair
from argus_crossvenue.scanner import CrossVenueScanner, common_step
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_polymarket.fees import PolymarketFeeSchedule

from argus_core import (
    BookDelta,
    ConfigError,
    FeeSchedule,
    Instrument,
    MarketState,
    OrderBook,
    Side,
)

TICKER = "KXFEDCUT-26SEP"
K_YES, K_NO = f"kalshi:{TICKER}/YES", f"kalshi:{TICKER}/NO"
P_YES, P_NO = "polymarket:111", "polymarket:222"
PAIR: dict[str, Any] = {
    "name": "fed-cut", "relation": "same",
    "kalshi": {"ticker": TICKER, "side": "yes", "resolution_source": "FOMC statement",
               "settles": "2026-09-16"},
    "polymarket": {"token_id": "111", "outcome": "Yes",
                   "resolution_source": "FOMC statement", "settles": "2026-09-16"},
}


def fees(instrument_id: str) -> FeeSchedule:
    """Each venue's real schedule (as conftest's)."""
    return (KalshiFeeSchedule() if instrument_id.startswith("kalshi:")
            else PolymarketFeeSchedule(rate=D("0.05"), exponent=D(1)))


def instruments(pm_min_size: str = "5") -> list[Instrument]:
    """Kalshi's YES/NO and Polymarket's two tokens with the venues' meta (as conftest's)."""
    out = [Instrument("kalshi", f"{TICKER}/{side}", kind="binary", lot_size=D(1),
                      min_size=D(1), meta={"ticker": TICKER}) for side in ("YES", "NO")]
    out += [Instrument("polymarket", token, kind="binary", lot_size=D("0.01"),
                       min_size=D(pm_min_size),
                       meta={"complement": f"polymarket:{other}", "token_outcome": outcome})
            for token, other, outcome in (("111", "222", "Yes"), ("222", "111", "No"))]
    return out

Books = dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]]

# Kalshi YES 0.42 + Polymarket NO 0.52: 1.7235 after fees (test_crossvenue_scanner's walk)
EXAMPLE: Books = {
    K_YES: ([(0.37, 100.0)], [(0.42, 50.0), (0.43, 30.0), (0.44, 200.0)]),
    K_NO: ([(0.56, 200.0)], [(0.62, 100.0), (0.63, 100.0)]),
    P_YES: ([(0.46, 100.0)], [(0.49, 100.0), (0.50, 200.0)]),
    P_NO: ([(0.47, 100.0)], [(0.52, 40.0), (0.53, 60.0), (0.56, 500.0)]),
}


def market_of(insts: list[Instrument] | None = None, books: Books | None = None,
              ts: dict[str, int] | None = None) -> MarketState:
    market = MarketState(fees=fees)
    market.add_instruments(insts if insts is not None else instruments())
    for iid, (bids, asks) in (books or EXAMPLE).items():
        market.apply(OrderBook(iid, (ts or {}).get(iid, 1_000), bids, asks))
    return market


def pair(**changes: Any) -> Any:
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PAIR.items()}
    for key, value in changes.items():
        table, _, field = key.rpartition(".")
        (raw[table] if table else raw)[field] = value
    return parse_pair(raw, "test")


def scanner(*pairs: Any, **settings: Any) -> CrossVenueScanner:
    return CrossVenueScanner(CrossVenueSettings(**settings), list(pairs) or [pair()])


def with_meta(insts: list[Instrument], iid: str, **meta: Any) -> list[Instrument]:
    return [attrs.evolve(i, meta={**i.meta, **meta}) if i.id == iid else i for i in insts]


@pytest.mark.parametrize(("insts", "why"), [
    (with_meta(instruments(), P_YES, complement=P_YES), "is the token itself"),
    (with_meta(instruments(), P_NO, token_outcome="Yes"), "is outcome 'Yes' too"),
    (with_meta(instruments(), P_YES, complement=K_NO), "not a listed polymarket token"),
    ([i for i in instruments() if i.id != P_NO], "not a listed polymarket token"),
    (with_meta(instruments(), P_NO, complement="polymarket:333"), "as its own complement"),
])
def test_a_complement_token_that_is_no_complement_is_never_paired(
        insts: list[Instrument], why: str, caplog: pytest.LogCaptureFixture) -> None:
    """Before: a ``complement`` naming the token itself priced Kalshi YES + Polymarket YES
    (one outcome bought twice) as a risk-free 10.77 profit; a complement token of the same
    outcome was paired as if it were the other one."""
    with caplog.at_level(logging.WARNING, logger="argus_crossvenue.scanner"):
        assert scanner().scan(market_of(insts), 2_000) == []
    assert any(why in r.getMessage() and "fed-cut" in r.getMessage() for r in caplog.records)


def test_venues_quoting_in_different_currencies_are_not_paired(
        caplog: pytest.LogCaptureFixture) -> None:
    insts = [attrs.evolve(i, quote="EUR") if i.venue == "polymarket" else i
             for i in instruments()]
    with caplog.at_level(logging.WARNING, logger="argus_crossvenue.scanner"):
        assert scanner().scan(market_of(insts), 2_000) == []
    assert "different currencies (EUR, USD)" in caplog.text


def test_a_mapping_file_pairing_one_kalshi_market_and_token_twice_is_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    body = "\n".join(f'''
[[pairs]]
name = "{name}"
relation = "{relation}"
[pairs.kalshi]
ticker = "{TICKER}"
resolution_source = "FOMC"
settles = 2026-09-16
[pairs.polymarket]
token_id = "111"
outcome = "Yes"
resolution_source = "FOMC"
settles = 2026-09-16''' for name, relation in (("a", "same"), ("b", "complement")))
    path.write_text(body)
    with pytest.raises(ConfigError, match="pairs 'a' and 'b' both map Kalshi market"):
        load_mapping(path)


def test_pairs_disagreeing_through_the_complement_token_are_all_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    """"fed-cut" maps Kalshi YES to the Yes token; "contra" maps Kalshi YES to the No
    token as the *same* outcome: one of them buys YES twice.  Before, both were reported
    and the wrong one ranked first (10.77 'risk-free')."""
    contra = pair(**{"name": "contra", "polymarket.token_id": "222",
                     "polymarket.outcome": "No"})
    with caplog.at_level(logging.WARNING, logger="argus_crossvenue.scanner"):
        assert scanner(pair(), contra).scan(market_of(), 2_000) == []
    assert "'fed-cut', 'contra'" in caplog.text and "opposite outcomes" in caplog.text


def test_a_pair_repeated_through_the_complement_token_is_scanned_once() -> None:
    """Kalshi NO is the complement of the No token: the same market pair as "fed-cut"."""
    twin = pair(**{"name": "twin", "kalshi.side": "no", "polymarket.token_id": "222",
                   "polymarket.outcome": "No"})
    found = scanner(pair(), twin).scan(market_of(), 2_000)
    assert [o.event_id for o in found] == ["fed-cut"]


def test_lots_that_are_not_multiples_meet_at_their_least_common_multiple() -> None:
    """Kalshi lots 0.03, Polymarket 0.02: before, the size was floored to 0.03 steps
    (0.99), off Polymarket's grid; now to 0.06 steps (0.96)."""
    insts = [attrs.evolve(i, lot_size=D("0.03") if i.venue == "kalshi" else D("0.02"),
                          min_size=D(0)) for i in instruments()]
    books: Books = {K_YES: ([], [(0.42, 1.0)]), K_NO: ([], [(0.9, 1.0)]),
                    P_YES: ([], [(0.9, 1.0)]), P_NO: ([], [(0.52, 1.0)])}
    (opp,) = scanner().scan(market_of(insts, books), 2_000)
    assert {leg.quantity for leg in opp.legs} == {D("0.96")}
    assert (common_step(D("0.03"), D("0.02")), common_step(D(1), D("0.01")),
            common_step(D("1E+1"), D("0.25"))) == (D("0.06"), D(1), D(10))


def test_min_edge_holds_for_the_exact_price_not_only_the_walked_margin() -> None:
    """1 unit, Kalshi 0.50 + Polymarket 0.45: the walked margin is 0.020125 > 0.02, but
    Kalshi rounds its 0.0175 fee up to 0.02, so the exact edge is 0.01763.  Before, it was
    reported with min_edge = 0.02."""
    books: Books = {K_YES: ([], [(0.50, 1.0)]), K_NO: ([], [(0.9, 1.0)]),
                    P_YES: ([], [(0.9, 1.0)]), P_NO: ([], [(0.45, 1.0)])}
    market = market_of(instruments("0"), books)
    (opp,) = scanner().scan(market, 2_000)
    assert opp.edge_per_unit == D("0.01763")
    assert scanner(min_edge="0.02").scan(market, 2_000) == []
    assert [o.edge_per_unit for o in scanner(min_edge="0.017").scan(market, 2_000)] == [
        D("0.01763")]


def test_a_basket_changed_by_its_older_books_update_gets_a_new_id() -> None:
    """Kalshi's book (ts 100) is older than Polymarket's (ts 200); Kalshi's best level goes
    at ts 150.  Before, the id carried only the newest time (200), so the changed basket
    (profit 1.7235 -> 0.7235) kept the old id, which the runner acts on only once."""
    market = market_of(ts={K_YES: 100, P_NO: 200})
    scan = scanner()
    (before,) = scan.scan(market, 2_000)
    market.apply(BookDelta(K_YES, 150, Side.SELL, 0.42, 0.0))
    (after,) = scan.scan(market, 2_000)
    assert (before.expected_profit, after.expected_profit) == (D("1.72350"), D("0.72350"))
    assert before.opportunity_id != after.opportunity_id
    (again,) = scan.scan(market, 2_001)  # nothing changed: the same finding, the same id
    assert again.opportunity_id == after.opportunity_id


def test_a_walk_through_many_levels_gives_a_short_reason() -> None:
    """2,000 Kalshi levels walked: before, a 34 kB reason stored with every finding."""
    insts = [attrs.evolve(i, tick_size=D("0.00001"), lot_size=D(1), min_size=D(0))
             for i in instruments()]
    books: Books = {K_YES: ([], [(0.40 + n * 1e-5, 1.0) for n in range(2_000)]),
                    K_NO: ([], [(0.9, 1.0)]), P_YES: ([], [(0.9, 1.0)]),
                    P_NO: ([], [(0.45, 5_000.0)])}
    (opp,) = scanner().scan(market_of(insts, books), 2_000)
    assert opp.max_size == 2_000 and len(opp.reason) < 600
    assert "1995 more levels" in opp.reason and "1@0.41999" in opp.reason


def test_the_example_pair_still_prices_exactly(
        make_market: Callable[..., MarketState]) -> None:
    (opp,) = scanner().scan(make_market(EXAMPLE), 2_000)
    assert (opp.max_size, opp.expected_profit, opp.risk_free) == (D(100), D("1.7235"), True)
