"""The checksummed local book: Kraken's documented examples and an independent reference."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
from argus_venue_kraken.book import BookError, ChecksumBook, to_units
from argus_venue_kraken.testing import ReferenceBook, random_book_messages


def test_guide_example_reproduces_documented_checksum(load):
    item = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    vectors = load("kraken_test_vectors.json")["ws_v2_book_checksum_guide"]
    book = ChecksumBook("BTC/USD", 10, price_decimals=1, lot_decimals=8)
    assert book.apply_snapshot(item["bids"], item["asks"]) == item["checksum"] == 3310070434
    assert book.checksum_text() == vectors["asks_string"] + vectors["bids_string"]


@pytest.mark.parametrize("parse_float", [str, float])
def test_matic_examples_need_pair_precision(load, parse_float):
    """Kraken sends these as JSON numbers; only 4/8 decimals reproduce the checksums."""
    snap = load("kraken_ws_v2_book_snapshot.json", parse_float=parse_float)["data"][0]
    upd = load("kraken_ws_v2_book_update.json", parse_float=parse_float)["data"][0]
    book = ChecksumBook("MATIC/USD", 10, price_decimals=4, lot_decimals=8)
    assert book.apply_snapshot(snap["bids"], snap["asks"]) == 2439117997
    assert book.apply_update(upd["bids"], upd["asks"]) == 2114181697
    # The update replaced the 0.5657 bid's quantity.
    assert book.bids_decimal()[-1] == (Decimal("0.5657"), Decimal("1098.39475580"))


def test_matic_checksum_fails_at_the_wrong_precision(load):
    snap = load("kraken_ws_v2_book_snapshot.json", parse_float=str)["data"][0]
    book = ChecksumBook("MATIC/USD", 10, price_decimals=5, lot_decimals=8)
    assert book.apply_snapshot(snap["bids"], snap["asks"]) != 2439117997


def test_random_walk_matches_reference_on_every_message(load):
    snap = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    book = ChecksumBook("BTC/USD", 10, 1, 8)
    ref = ReferenceBook(10, 1, 8)
    assert book.apply_snapshot(snap["bids"], snap["asks"]) == ref.apply(snap["bids"], snap["asks"])
    for item in random_book_messages(snap, 3000, seed=7, price_decimals=1, lot_decimals=8):
        assert book.apply_update(item["bids"], item["asks"]) == item["checksum"]
        ref.apply(item["bids"], item["asks"])
    bids, asks = ref.top()
    assert book.bids_decimal() == bids and book.asks_decimal() == asks
    np_bids, np_asks = book.levels_array()
    assert np.array_equal(np_bids, np.array([[float(p), float(q)] for p, q in bids]))
    assert np.array_equal(np_asks, np.array([[float(p), float(q)] for p, q in asks]))


def test_deeper_book_checksums_only_top_ten(load):
    snap = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    deep = ChecksumBook("BTC/USD", 25, 1, 8)
    shallow = ChecksumBook("BTC/USD", 10, 1, 8)
    extra = [{"price": "45200.0", "qty": "1.0"}]  # an 11th bid, outside the top 10
    assert deep.apply_snapshot(snap["bids"] + extra, snap["asks"]) == snap["checksum"]
    assert shallow.apply_snapshot(snap["bids"], snap["asks"]) == snap["checksum"]
    assert len(deep) == 21


def test_insert_truncates_to_depth_and_delete_refills(load):
    snap = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    book = ChecksumBook("BTC/USD", 10, 1, 8)
    book.apply_snapshot(snap["bids"], snap["asks"])
    worst_bid = book.bids_decimal()[-1][0]
    book.apply_update([{"price": "45284.0", "qty": "0.5"}], [])  # new best bid
    prices = [p for p, _ in book.bids_decimal()]
    assert len(prices) == 10 and prices[0] == Decimal("45284.0") and worst_bid not in prices
    # Deleting an unknown level changes nothing.
    before = book.checksum()
    assert book.apply_update([{"price": "40000.0", "qty": "0"}], []) == before


def test_bad_levels_raise_book_error():
    book = ChecksumBook("BTC/USD", 10, 1, 8)
    with pytest.raises(BookError, match="more than 1 decimals"):
        book.apply_update([{"price": "45283.55", "qty": "1"}], [])
    with pytest.raises(BookError):
        book.apply_update([{"price": "abc", "qty": "1"}], [])
    with pytest.raises(BookError):
        book.apply_update([{"price": "-1.0", "qty": "1"}], [])
    with pytest.raises(BookError):
        book.apply_update([{"qty": "1"}], [])


def test_exponent_and_excess_zero_forms_are_exact():
    assert to_units("1e-05", 8) == 1000
    assert to_units("0.10000000000", 8) == 10_000_000
    assert to_units(0.566, 4) == 5660
    book = ChecksumBook("X/USD", 10, 5, 8)
    book.apply_update([{"price": "1E-5", "qty": "2"}], [])
    assert book.bids_decimal() == [(Decimal("0.00001"), Decimal("2.00000000"))]


def test_order_book_conversion_is_core_valid(load):
    snap = load("kraken_ws_v2_book_snapshot.json", parse_float=str)["data"][0]
    book = ChecksumBook("MATIC/USD", 10, 4, 8)
    book.apply_snapshot(snap["bids"], snap["asks"])
    ob = book.to_order_book("kraken:MATIC/USD", 1)
    assert ob.best_bid == 0.5666 and ob.best_ask == 0.5668
    assert ob.bids.shape == (10, 2)
    assert json.dumps(ob.asks.tolist())  # plain floats
