"""Gamma payloads -> core events and instruments; CLOB books -> hash and sorted levels."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from argus_venue_polymarket import instruments as I
from argus_venue_polymarket.books import book_hash, hash_ok, to_order_book
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import book_events
from argus_venue_polymarket.schemas import ClobBook, GammaEvent
from argus_venue_polymarket.testing import make_book, tokens_of

from argus_core.errors import DataError

SETTINGS = PolymarketSettings()


def test_recorded_negrisk_event_maps_to_one_exhaustive_event(fed_event) -> None:  # type: ignore[no-untyped-def]
    raw = fed_event
    events, instruments = I.build([GammaEvent.parse(raw)], SETTINGS)
    assert len(events) == 1
    ev = events[0]
    assert ev.neg_risk and ev.exhaustive and ev.event_id == "481717"
    assert [o.name for o in ev.outcomes] == ["50+ bps decrease", "25 bps decrease", "No change",
                                             "25 bps increase", "50+ bps increase"]
    for (_cond, yes, no), outcome in zip(tokens_of(raw), ev.outcomes, strict=True):
        assert outcome.yes_instrument_id == f"polymarket:{yes}"
        assert outcome.no_instrument_id == f"polymarket:{no}"
    by_id = {i.id: i for i in instruments}
    assert len(by_id) == 10
    no_change_yes = by_id[ev.outcomes[2].yes_instrument_id]
    assert no_change_yes.tick_size == Decimal("0.01") and no_change_yes.min_size == 5
    assert by_id[ev.outcomes[0].yes_instrument_id].tick_size == Decimal("0.001")
    meta = no_change_yes.meta
    assert meta["neg_risk"] and meta["is_yes"] and meta["condition_id"] == raw["markets"][2][
        "conditionId"]
    assert (meta["fee_rate"], meta["fee_exponent"], meta["fee_taker_only"]) == ("0.05", "1", True)
    assert ev.end_ts_ns is not None


def test_fee_curve_matches_polymarket_formula(fed_event) -> None:  # type: ignore[no-untyped-def]
    ev = GammaEvent.parse(fed_event)
    curve = ev.markets[2].fee
    # rate 0.05, exponent 1: 100 shares at 0.69 pay 100 * 0.05 * 0.69 * 0.31
    assert curve.fee(Decimal(100), Decimal("0.69")) == Decimal("1.069500")
    assert curve.fee(Decimal(100), Decimal("0.69"), maker=True) == 0


@pytest.mark.parametrize("mutate, why", [
    (lambda e: e.update(negRiskAugmented=True), "augmented"),
    (lambda e: e["markets"][1].update(closed=True), "closed outcome"),
    (lambda e: e["markets"][3].update(active=False), "inactive outcome"),
    (lambda e: e["markets"][0].update(clobTokenIds=None), "outcome without tokens"),
])
def test_incomplete_outcome_sets_are_not_exhaustive(mutate, why, fed_event) -> None:  # type: ignore[no-untyped-def]
    raw = fed_event
    mutate(raw)
    ev = I.build([GammaEvent.parse(raw)], SETTINGS)[0][0]
    assert not ev.exhaustive, why


def test_augmented_event_marks_other_and_placeholders(fed_event) -> None:  # type: ignore[no-untyped-def]
    raw = fed_event
    raw["negRiskAugmented"] = True
    raw["markets"][3]["groupItemTitle"] = "Other"
    raw["markets"][3]["negRiskOther"] = True
    raw["markets"][4]["groupItemTitle"] = "Person C"
    ev = I.build([GammaEvent.parse(raw)], SETTINGS)[0][0]
    assert [o.placeholder for o in ev.outcomes] == [False, False, False, True, True]
    assert not ev.exhaustive


def test_binary_market_becomes_two_outcome_event(pm_load) -> None:  # type: ignore[no-untyped-def]
    market = pm_load("polymarket_gamma_market.json")
    raw = {"id": "e1", "title": "t", "negRisk": False, "markets": [market]}
    (ev,), instruments = I.build([GammaEvent.parse(raw)], SETTINGS)
    a, b = json.loads(market["clobTokenIds"])
    assert not ev.neg_risk and ev.event_id == f"e1:{market['id']}"
    assert [(o.yes_instrument_id, o.no_instrument_id) for o in ev.outcomes] == [
        (f"polymarket:{a}", f"polymarket:{b}"), (f"polymarket:{b}", f"polymarket:{a}")]
    assert len(instruments) == 2


@pytest.mark.parametrize("field, value, fragment", [
    ("clobTokenIds", "[\"123\"", "clobTokenIds"),
    ("clobTokenIds", "[\"12a\", \"34\"]", "not a decimal token id"),
    ("orderPriceMinTickSize", 2, "orderPriceMinTickSize"),
    ("outcomes", 5, "outcomes"),
])
def test_malformed_market_fields_name_the_field(field, value, fragment, fed_event) -> None:  # type: ignore[no-untyped-def]
    raw = fed_event
    raw["markets"][0][field] = value
    with pytest.raises(DataError, match=fragment) as info:
        GammaEvent.parse(raw)
    assert "481717" in str(info.value)


@pytest.mark.parametrize("name, served", [
    ("polymarket_clob_book.json", "608948fac9887f4b8589dd2099748107b7d27810"),
    ("polymarket_clob_book_negrisk.json", "5ddc21d986ec9860efb0a3c9de57d1ecfb288eef"),
])
def test_recorded_books_hash_like_the_venue(name: str, served: str, pm_load) -> None:  # type: ignore[no-untyped-def]
    book = ClobBook.parse(pm_load(name))
    assert book.hash == served and book_hash(book) == served and hash_ok(book)


def test_hash_vectors(pm_load) -> None:  # type: ignore[no-untyped-def]
    for case in pm_load("polymarket_signing_test_vectors.json")["orderbook_hash"]["cases"]:
        assert book_hash(ClobBook.parse(case["input"])) == case["expected_hash"]


def test_levels_are_sorted_best_first_from_worst_to_best_payload(pm_load) -> None:  # type: ignore[no-untyped-def]
    raw = pm_load("polymarket_clob_book.json")
    ob = to_order_book(ClobBook.parse(raw), "polymarket:x", 1)
    prices = [float(lvl["price"]) for lvl in raw["bids"]]
    assert ob.bids[0, 0] == max(prices) and ob.bids[-1, 0] == min(prices)
    ask_prices = [float(lvl["price"]) for lvl in raw["asks"]]
    assert ob.asks[0, 0] == min(ask_prices) and ob.asks[-1, 0] == max(ask_prices)
    assert len(ob.bids) == len(raw["bids"]) and len(ob.asks) == len(raw["asks"])


def test_tampered_book_is_marked_stale_not_served() -> None:
    good = make_book("11", "0xm", [("0.40", "10")], [("0.45", "10")])
    bad = dict(good, asks=[{"price": "0.44", "size": "10"}])  # level changed, hash kept
    out = book_events([ClobBook.parse(good), ClobBook.parse(bad)], verify_hash=True, now_ns=5)
    assert type(out[0]).__name__ == "OrderBook"
    assert type(out[1]).__name__ == "BookStatus" and not out[1].live
    assert "hash" in out[1].reason


def test_book_prices_outside_unit_interval_are_rejected() -> None:
    raw = make_book("11", "0xm", [("0.40", "10")], [("0.45", "10")])
    raw["asks"][0]["price"] = "1.2"
    with pytest.raises(DataError, match=r"asks\[0\]\.price"):
        ClobBook.parse(raw)
