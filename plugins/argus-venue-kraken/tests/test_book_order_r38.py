"""A book snapshot re-sent from earlier never rolls the live book back (red team r38).

Kraken's v2 ``book`` snapshot is a whole book with its own checksum, so a duplicated
old snapshot frame (a resubscribe race) passed the checksum and replaced the live book
with old levels until the next update's checksum failed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_venue_kraken.book import ChecksumBook
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import KrakenMarketFeed
from argus_venue_kraken.instruments import PairInfo

from argus_core import BookStatus, OrderBook

T1, T2, T3 = ("2023-11-14T22:13:20.000000Z", "2023-11-14T22:13:21.000000Z",
              "2023-11-14T22:13:22.000000Z")


@pytest.fixture
def feed(tmp_path: Path) -> KrakenMarketFeed:
    settings = attrs.evolve(KrakenSettings(nonce_path=tmp_path / "nonce"), pairs=["BTC/USD"],
                            channels=["book"])
    pair = PairInfo("BTC/USD", "XXBTZUSD", "XBTUSD", 1, 8, Decimal("0.1"), Decimal("0.0001"),
                    None, "online", "XBT", "USD")
    f = KrakenMarketFeed(settings, {"BTC/USD": pair}, clock_ns=lambda: 1_700_000_000 * 10**9)
    f.on_connect()
    f._outbox.clear()
    return f


def frame(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], ts: str | None,
          *, base: ChecksumBook | None = None) -> str:
    """A v2 book frame with Kraken's checksum of the book it leaves (``base`` + levels)."""
    book = base or ChecksumBook("BTC/USD", 10, 1, 8)
    levels = ([{"price": p, "qty": q} for p, q in bids], [{"price": p, "qty": q} for p, q in asks])
    checksum = book.apply_snapshot(*levels) if kind == "snapshot" else book.apply_update(*levels)
    item: dict[str, Any] = {"symbol": "BTC/USD", "bids": levels[0], "asks": levels[1],
                            "checksum": checksum}
    if ts:
        item["timestamp"] = ts
    return json.dumps({"channel": "book", "type": kind, "data": [item]})


OLD = frame("snapshot", [("100.1", "1")], [("100.3", "2")], T1)


def live_at_t2(feed: KrakenMarketFeed) -> ChecksumBook:
    """Snapshot at T1, then an update at T2 (the bid moves up); returns the true book."""
    truth = ChecksumBook("BTC/USD", 10, 1, 8)
    assert [type(e) for e in feed.on_frame(OLD)] == [OrderBook]
    truth.apply_snapshot([{"price": "100.1", "qty": "1"}], [{"price": "100.3", "qty": "2"}])
    update = frame("update", [("100.1", "0"), ("100.2", "5")], [], T2, base=truth)
    (book,) = feed.on_frame(update)
    assert book.bids.tolist() == [[100.2, 5.0]]
    return truth


def test_a_resent_old_snapshot_does_not_roll_the_live_book_back(feed) -> None:
    truth = live_at_t2(feed)
    assert feed.on_frame(OLD) == []  # before the fix: an OrderBook of the T1 levels
    assert feed.is_live("BTC/USD") and feed.stale_snapshots == 1
    assert feed.books["BTC/USD"].checksum() == truth.checksum()
    (book,) = feed.on_frame(frame("update", [("100.2", "4")], [], T3, base=truth))
    assert isinstance(book, OrderBook) and book.bids.tolist() == [[100.2, 4.0]]
    assert feed.checksum_mismatches == 0 and feed.resubscribes == 0


def test_an_old_snapshot_while_a_fresh_one_is_awaited_is_not_taken_for_it(feed) -> None:
    truth = live_at_t2(feed)
    bad = json.loads(frame("update", [("100.2", "4")], [], T3, base=ChecksumBook(
        "BTC/USD", 10, 1, 8)))
    bad["data"][0]["checksum"] = 1
    (status,) = feed.on_frame(json.dumps(bad))
    assert isinstance(status, BookStatus) and not status.live
    assert feed.on_frame(OLD) == []  # before the fix: live again with the T1 book
    assert not feed.is_live("BTC/USD")
    fresh = frame("snapshot", [("100.2", "5")], [("100.3", "2")], T2)
    assert [type(e) for e in feed.on_frame(fresh)] == [OrderBook]
    assert feed.books["BTC/USD"].checksum() == truth.checksum()


@pytest.mark.parametrize("ts", [T2, None])
def test_an_unordered_snapshot_unlike_the_live_book_resyncs(feed, ts) -> None:
    live_at_t2(feed)
    other = frame("snapshot", [("100.0", "9")], [("100.3", "2")], ts)
    (status,) = feed.on_frame(other)
    assert isinstance(status, BookStatus) and not status.live and "snapshot" in status.reason
    assert [m["method"] for m in feed._outbox] == ["unsubscribe", "subscribe"]


def test_the_same_book_again_is_harmless(feed) -> None:
    truth = live_at_t2(feed)
    bids = [(str(p), str(q)) for p, q in truth.bids_decimal()]
    asks = [(str(p), str(q)) for p, q in truth.asks_decimal()]
    assert feed.on_frame(frame("snapshot", bids, asks, T2)) == []
    assert feed.is_live("BTC/USD") and feed.resubscribes == 0
    newer = frame("snapshot", [("100.0", "9")], [("100.3", "2")], T3)
    (book,) = feed.on_frame(newer)
    assert isinstance(book, OrderBook) and book.bids.tolist() == [[100.0, 9.0]]
