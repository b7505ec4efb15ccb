"""Held-out feed faults on Kraken's WebSocket v2 ``book`` and other channels, driven frame by
frame through :meth:`KrakenMarketFeed.on_frame` (the server-level tests are in
test_kraken_ws.py).

Found (failed before the fix): a ``status`` / ``ticker`` / ``trade`` / ``ohlc`` frame whose
``data`` items are not objects (``"data": [5]``) raised AttributeError out of the stream, and
a frame nested thousands deep (valid JSON) raised RecursionError: both ended the run.  Held:
a checksum mismatch mid-stream marks the book not live and resubscribes once however many
updates follow before the new snapshot; JSON numbers with trailing zeros or exponents
checksum right; a price with more decimals than the pair's resyncs.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import KrakenMarketFeed
from argus_venue_kraken.instruments import PairInfo
from argus_venue_kraken.testing import ReferenceBook, book_frame, random_book_messages


@pytest.fixture
def feed(tmp_path: Path) -> KrakenMarketFeed:
    settings = attrs.evolve(KrakenSettings(nonce_path=tmp_path / "nonce"), pairs=["BTC/USD"],
                            channels=["book", "ticker", "trade", "ohlc"])
    pair = PairInfo("BTC/USD", "XXBTZUSD", "XBTUSD", 1, 8, Decimal("0.1"), Decimal("0.0001"),
                    None, "online", "XBT", "USD")
    f = KrakenMarketFeed(settings, {"BTC/USD": pair}, clock_ns=lambda: 1)
    f.on_connect()
    f._outbox.clear()
    return f


@pytest.fixture
def snap(load) -> dict[str, Any]:
    item = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    item["timestamp"] = "2023-11-14T22:13:20.000000Z"
    return item


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.mark.parametrize("raw", [
    '{"channel":"status","data":[5]}', '{"channel":"status","data":"x"}',
    '{"channel":"ticker","data":[5]}', '{"channel":"trade","data":[null]}',
    '{"channel":"ohlc","data":["x"]}', "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
])
def test_odd_frames_do_not_end_the_run(feed, snap, raw) -> None:
    assert kinds(feed.on_frame(book_frame("snapshot", snap))) == ["OrderBook"]
    events = feed.on_frame(raw)  # raised before
    assert feed.malformed == 1
    # A lost frame may have been a book update: the book is in doubt until a fresh snapshot.
    if events:
        assert kinds(events) == ["BookStatus"] and not events[0].live
        assert not feed.is_live("BTC/USD")


def test_a_mismatch_mid_stream_resubscribes_once_then_recovers(feed, snap) -> None:
    items = list(random_book_messages(snap, 30, seed=5, price_decimals=1, lot_decimals=8))
    assert kinds(feed.on_frame(book_frame("snapshot", snap))) == ["OrderBook"]
    for it in items[:5]:
        assert kinds(feed.on_frame(book_frame("update", it))) == ["OrderBook"]
    bad = {**items[5], "checksum": (items[5]["checksum"] + 1) % 2**32}
    events = feed.on_frame(book_frame("update", bad))
    assert kinds(events) == ["BookStatus"] and "checksum mismatch" in events[0].reason
    for it in items[6:20]:  # updates in flight before the new snapshot: ignored
        assert feed.on_frame(book_frame("update", it)) == []
    subs = [m["method"] for m in feed._outbox]
    assert subs == ["unsubscribe", "subscribe"] and feed.resubscribes == 1
    ref = ReferenceBook(10, 1, 8)
    ref.apply(snap["bids"], snap["asks"])
    for it in items[:20]:
        ref.apply(it["bids"], it["asks"])
    bids, asks = ref.top()
    fresh = {"symbol": "BTC/USD", "checksum": ref.checksum(), "timestamp": items[19]["timestamp"],
             "bids": [{"price": str(p), "qty": str(q)} for p, q in bids],
             "asks": [{"price": str(p), "qty": str(q)} for p, q in asks]}
    assert kinds(feed.on_frame(book_frame("snapshot", fresh))) == ["OrderBook"]
    for it in items[20:]:
        ev = feed.on_frame(book_frame("update", it))
        assert kinds(ev) == ["OrderBook"]
        ref.apply(it["bids"], it["asks"])
    assert feed.books["BTC/USD"].bids_decimal() == ref.top()[0]


def test_json_numbers_with_trailing_zeros_and_exponents_checksum_right(feed, snap) -> None:
    """Kraken sends numbers; ``45285.20`` / ``1.5e-3`` must not break our own checksum."""
    text = book_frame("snapshot", snap)
    first = re.search(r'"price":([0-9.]+),"qty":([0-9.]+)', text)
    assert first is not None
    raw = text.replace(first.group(0), f'"price":{first.group(1)}000,"qty":'
                       f'{Decimal(first.group(2)).scaleb(-3)}e3', 1)
    assert raw != text
    events = feed.on_frame(raw)
    assert kinds(events) == ["OrderBook"] and feed.is_live("BTC/USD")


def test_a_price_finer_than_the_pairs_decimals_resyncs(feed, snap) -> None:
    feed.on_frame(book_frame("snapshot", snap))
    upd = {"symbol": "BTC/USD", "checksum": 1, "timestamp": "2023-11-14T22:13:21.000000Z",
           "bids": [{"price": "45283.55", "qty": "1.0"}], "asks": []}
    events = feed.on_frame(book_frame("update", upd))
    assert kinds(events) == ["BookStatus"] and "more than 1 decimals" in events[0].reason


def test_a_frame_with_a_5000_digit_number_is_dropped_as_malformed(
        feed: KrakenMarketFeed) -> None:
    # a plain ValueError from json.loads (int()'s limit) escaped the decoder and ended the
    # stream; now the frame is dropped and counted like any malformed one
    assert feed.decode('{"channel": "heartbeat", "n": ' + "9" * 5000 + "}") is None
    assert feed.malformed == 1
    assert feed.decode('{"channel": "heartbeat"}') == {"channel": "heartbeat"}
