"""Held-out red team of how the plugin *reads* Kraken (WS v2 items, book levels, REST paging).

Found (each failed before the fix):

* one bad item in a ``trade`` / ``ohlc`` / ``book`` frame threw away the good items before
  it, and the state they had already advanced made the loss permanent: a trade's id was
  recorded as seen (its replay after a reconnect was dropped), a completed bar was marked
  emitted; a bad book item of one pair resynced the *first* item's pair and left its own
  book live with half an update applied;
* a book snapshot listing one price twice (or a level of quantity 0) was taken as a book;
* number text outside JSON's grammar (``"1_01.0"``, ``" 101.0"``, ``"+101.0"``, Arabic-Indic
  digits) was read as a price;
* ``TradesHistory`` paging looped for ever when Kraken repeated a page (``ofs`` ignored) or
  its ``count`` kept growing, and stopped silently after one page when ``count`` was
  missing or negative (the trades past the first 50 were never booked);
* a public answer (Depth, Ticker, OHLC, Trades) keyed by another pair than the one asked
  for was read as the asked pair's.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_venue_kraken.book import BookError, ChecksumBook, to_units
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import KrakenMarketFeed
from argus_venue_kraken.instruments import PairInfo
from argus_venue_kraken.rest import KrakenRestClient
from argus_venue_kraken.testing import book_frame

from argus_core import DataError

TS = "2023-11-14T22:13:20.000000Z"


def _pair(symbol: str, key: str) -> PairInfo:
    base, quote = symbol.split("/")
    return PairInfo(symbol, key, key, 1, 8, Decimal("0.1"), Decimal("0.0001"), None, "online",
                    base, quote)


@pytest.fixture
def feed(tmp_path: Path) -> KrakenMarketFeed:
    settings = attrs.evolve(KrakenSettings(nonce_path=tmp_path / "nonce"),
                            pairs=["BTC/USD", "ETH/USD"],
                            channels=["book", "ticker", "trade", "ohlc"])
    pairs = {"BTC/USD": _pair("BTC/USD", "XBTUSD"), "ETH/USD": _pair("ETH/USD", "ETHUSD")}
    f = KrakenMarketFeed(settings, pairs, clock_ns=lambda: 1)
    f.on_connect()
    f._outbox.clear()
    return f


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def lv(price: str, qty: str) -> dict[str, str]:
    return {"price": price, "qty": qty}


def book_item(symbol: str, bids: list[dict[str, str]], asks: list[dict[str, str]],
              **patch: Any) -> dict[str, Any]:
    book = ChecksumBook(symbol, 10, 1, 8)
    item = {"symbol": symbol, "bids": bids, "asks": asks, "timestamp": TS,
            "checksum": book.apply_update(bids, asks)}
    item.update(patch)
    return item


def frame(channel: str, *items: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"channel": channel, "type": "update", "data": list(items), **extra})


def trade(trade_id: int, price: str = "100.0") -> dict[str, Any]:
    return {"symbol": "BTC/USD", "side": "buy", "price": price, "qty": "1.0",
            "ord_type": "market", "trade_id": trade_id, "timestamp": TS}


def test_a_bad_trade_item_does_not_lose_the_good_one_before_it(feed) -> None:
    """Before: trade 5 was dropped with the off-grid trade 6 behind it, yet recorded as
    seen, so its replay after a reconnect was dropped too: lost for good."""
    events = feed.on_frame(frame("trade", trade(5), trade(6, price="100.05")))
    assert [(type(e).__name__, e.price) for e in events] == [("Trade", Decimal("100.0"))]
    assert feed.malformed == 1


def ohlc(begin: str, **patch: Any) -> dict[str, Any]:
    item = {"symbol": "BTC/USD", "open": "100.0", "high": "101.0", "low": "99.0",
            "close": "100.5", "vwap": "100.2", "trades": 3, "volume": "2.0",
            "interval_begin": begin, "interval": 1}
    item.update(patch)
    return item


def test_a_bad_ohlc_item_does_not_lose_the_completed_bar(feed) -> None:
    """Before: the bar completed by the first item was marked emitted, then the bad second
    item threw the frame away: the bar never reached the core."""
    assert feed.on_frame(frame("ohlc", ohlc("2023-11-14T22:13:00Z"))) == []
    events = feed.on_frame(frame("ohlc", ohlc("2023-11-14T22:14:00Z"),
                                 ohlc("2023-11-14T22:14:00Z", open="x")))
    assert kinds(events) == ["Bar"] and feed.malformed == 1


def test_a_bad_book_item_resyncs_its_own_pair_only(feed) -> None:
    """Before: a frame with a good BTC/USD item then a bad ETH/USD one resynced BTC/USD
    (the first item's pair) and left ETH/USD live with half its update applied."""
    for sym in ("BTC/USD", "ETH/USD"):
        snap = book_item(sym, [lv("100.0", "1.0")], [lv("101.0", "1.0")])
        assert kinds(feed.on_frame(book_frame("snapshot", snap))) == ["OrderBook"]
    after = ChecksumBook("BTC/USD", 10, 1, 8)
    after.apply_snapshot([lv("100.0", "2.0")], [lv("101.0", "1.0")])
    good = {"symbol": "BTC/USD", "bids": [lv("100.0", "2.0")], "asks": [], "timestamp": TS,
            "checksum": after.checksum()}
    bad = {"symbol": "ETH/USD", "asks": [lv("101.0", "3.0")], "bids": [lv("x", "1")],
           "checksum": 1, "timestamp": TS}
    events = feed.on_frame(frame("book", good, bad))
    assert kinds(events) == ["OrderBook", "BookStatus"]
    assert events[0].instrument_id == "kraken:BTC/USD"
    assert events[1].instrument_id == "kraken:ETH/USD" and not events[1].live
    assert feed.is_live("BTC/USD") and not feed.is_live("ETH/USD")


@pytest.mark.parametrize("bids", [
    [lv("100.0", "1.0"), lv("100.0", "2.0"), lv("99.0", "1.0")],
    [lv("100.0", "1.0"), lv("99.0", "0")],
], ids=["one-price-twice", "qty-zero"])
def test_a_snapshot_that_is_no_book_resyncs(feed, bids) -> None:
    """Before: a snapshot listing 100.0 twice (the last won) or a level of quantity 0 was
    taken as a live book whenever its checksum matched the collapsed book."""
    snap = book_item("BTC/USD", bids, [lv("101.0", "1.0")])
    events = feed.on_frame(book_frame("snapshot", snap))
    assert kinds(events) == ["BookStatus"] and not feed.is_live("BTC/USD")
    assert "snapshot" in events[0].reason
    assert [m["method"] for m in feed._outbox] == ["unsubscribe", "subscribe"]


@pytest.mark.parametrize("junk", ["1_01.0", " 101.0", "101.0 ", "+101.0", "\u0661\u0660\u0661.0",
                                  "1_01", "1e1_0"])
def test_number_text_outside_json_grammar_is_refused(feed, junk) -> None:
    """Before: Python's int()/Decimal() read these as 101.0 (or 1e10) and a snapshot of
    such text strings went live."""
    with pytest.raises(BookError):
        to_units(junk, 1)
    asks = [lv(junk, "1.0")]
    checksum = zlib.crc32(b"1010100000000" + b"1000100000000")
    snap = {"symbol": "BTC/USD", "checksum": checksum, "timestamp": TS,
            "bids": [lv("100.0", "1.0")], "asks": asks}
    events = feed.on_frame(json.dumps({"channel": "book", "type": "snapshot", "data": [snap]}))
    assert kinds(events) == ["BookStatus"] and not feed.is_live("BTC/USD")


def _page(ofs: int, total: int) -> dict[str, Any]:
    return {f"T{i}": {} for i in range(ofs, min(ofs + 50, total))}


PAGERS = {
    "page-repeated-ofs-ignored": lambda ofs: {"count": 10**6, "trades": _page(0, 50)},
    "count-keeps-growing": lambda ofs: {"count": ofs + 100, "trades": _page(ofs, ofs + 50)},
    "count-missing": lambda ofs: {"trades": _page(ofs, 120)},
    "count-negative": lambda ofs: {"count": -1, "trades": _page(ofs, 120)},
    "count-fraction": lambda ofs: {"count": 99.9, "trades": _page(ofs, 120)},
    "count-bool": lambda ofs: {"count": True, "trades": _page(ofs, 120)},
}


@pytest.mark.parametrize("answer", list(PAGERS.values()), ids=list(PAGERS))
async def test_trades_history_paging_ends_or_says_why(tmp_path, answer) -> None:
    """Before: a repeated page or an ever-growing count paged for ever (stopped here at
    200 calls); a missing, negative or odd count ended after the first page silently."""
    client = KrakenRestClient(KrakenSettings(nonce_path=tmp_path / "nonce"))
    calls: list[int] = []

    async def private(method: str, params: dict[str, Any] | None = None, **_: Any) -> Any:
        assert params is not None
        calls.append(params["ofs"])
        if len(calls) > 200:
            raise AssertionError("TradesHistory paged for ever")
        return answer(params["ofs"])

    client.private = private  # type: ignore[method-assign]
    with pytest.raises(DataError, match="TradesHistory"):
        async for _ in client.trades_history_pages(0):
            pass


async def test_trades_history_paging_still_reads_every_page(tmp_path) -> None:
    """The fix keeps the good path: 120 trades over three pages, one repeated across a
    page boundary (a trade made meanwhile), all read."""
    client = KrakenRestClient(KrakenSettings(nonce_path=tmp_path / "nonce"))

    async def private(method: str, params: dict[str, Any] | None = None, **_: Any) -> Any:
        assert params is not None
        ofs = params["ofs"]
        return {"count": 121, "trades": _page(max(ofs - 1, 0), 121)}

    client.private = private  # type: ignore[method-assign]
    seen: dict[str, Any] = {}
    async for page in client.trades_history_pages(0):
        seen.update(page)
    assert len(seen) == 121


@pytest.mark.parametrize("method", ["Depth", "Ticker", "OHLC", "Trades"])
async def test_an_answer_for_another_pair_is_refused(rest_server, make_settings, fake_time,
                                                     method):
    """Public answers are keyed by Kraken's pair name and the key was never read: an
    answer about ETH/BTC to a question about BTC/USD (a proxy's cache, a server bug) was
    read as BTC/USD's book, ticker, bars or trades."""
    from argus_venue_kraken.rest import KrakenRestClient

    from argus_core.errors import DataError

    client = KrakenRestClient(make_settings(rest_url=rest_server.url), clock=fake_time.clock,
                              sleep=fake_time.sleep)
    try:
        await client.asset_pairs(["BTC/USD", "ETH/BTC"])
        other = {"Depth": {"asks": [], "bids": []}, "Ticker": {},
                 "OHLC": [], "Trades": []}[method]
        rest_server.inject(method, ("json", {"error": [], "result": {
            "XETHXXBT": other, "last": "1"}}))
        call = {"Depth": lambda: client.depth("BTC/USD", 2),
                "Ticker": lambda: client.ticker("BTC/USD"),
                "OHLC": lambda: client.ohlc("BTC/USD", 60),
                "Trades": lambda: client.trades("BTC/USD")}[method]
        with pytest.raises(DataError, match=r"answer is for pair 'XETHXXBT', not BTC/USD"):
            await call()
    finally:
        await client.close()
