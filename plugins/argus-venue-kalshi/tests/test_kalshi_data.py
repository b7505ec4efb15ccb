"""Market data against the local exchange: discovery, REST books, websocket snapshot +
deltas, and integrity (sequence gap, malformed frame, disconnect, bad signature)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path

import pytest
from argus_testkit import load_payload
from argus_venue_kalshi.books import Ladders, SequenceCheck, SequenceGap
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import BookDelta, BookStatus, ConfigError, DataError, Event, OrderBook, Side

PAYLOADS = Path(__file__).parent / "payloads"
YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"
NO = "kalshi:KXHIGHNY-24JAN01-T60/NO"


class Tape:
    """Consumes a venue stream in the background."""

    def __init__(self, stream: AsyncIterator[object]) -> None:
        self.items: list[object] = []
        self._task = asyncio.get_running_loop().create_task(self._pump(stream))

    async def _pump(self, stream: AsyncIterator[object]) -> None:
        async for item in stream:
            self.items.append(item)

    async def wait(self, predicate: Callable[[list[object]], bool], what: str) -> None:
        for _ in range(300):
            if predicate(self.items):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"still waiting for {what}: {self.items[-5:]}")

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def books_of(items: list[object], iid: str) -> list[OrderBook]:
    return [i for i in items if isinstance(i, OrderBook) and i.instrument_id == iid]


def stale_of(items: list[object], iid: str) -> list[BookStatus]:
    return [i for i in items if isinstance(i, BookStatus) and i.instrument_id == iid
            and not i.live]


def test_documented_shapes_load_into_core_books() -> None:
    rest = load_payload("orderbook_KXHIGHNY-24JAN01-T60.json", PAYLOADS)["orderbook_fp"]
    ladders = Ladders("KXHIGHNY-24JAN01-T60")
    ladders.load(rest["yes_dollars"], rest["no_dollars"])
    yes, no = ladders.books(1)
    assert yes.best_bid == 0.40 and yes.best_ask == pytest.approx(0.42)
    assert no.best_bid == 0.58 and no.best_ask == pytest.approx(0.60)
    snap = load_payload("ws_orderbook_snapshot.json", PAYLOADS)
    delta = load_payload("ws_orderbook_delta.json", PAYLOADS)
    seq = SequenceCheck()
    seq.check(snap)
    seq.check(delta)
    with pytest.raises(SequenceGap):
        seq.check(dict(delta, seq=5))
    msg = delta["msg"]
    size = ladders.apply(msg["side"], D(msg["price_dollars"]), D(msg["delta_fp"]))
    assert size == 0 and ladders.books(2)[0].best_bid == 0.39
    with pytest.raises(DataError):
        ladders.apply("yes", D("0.39"),
                      D("-11"))


async def test_instruments_events_and_rest_snapshot(exchange, local_settings) -> None:
    exchange.engine.events["KXHIGHNY-24JAN01"] = {
        "event_ticker": "KXHIGHNY-24JAN01", "series_ticker": "KXHIGHNY",
        "title": "Highest temperature in NYC on Jan 1, 2024?", "mutually_exclusive": True}
    venue = KalshiVenue(local_settings(markets=[], event_tickers=["KXHIGHNY-24JAN01"]))
    try:
        ids = {i.id for i in await venue.instruments()}
        assert ids == {YES, NO}
        snap = await venue.snapshot()
        assert any(isinstance(e, Event) for e in snap)
        yes = books_of(snap, YES)[0]
        assert (yes.best_bid, yes.best_ask) == (0.40, pytest.approx(0.42))
        fees = venue.fee_schedule(YES)
        assert fees.fee(D("0.5"), D(10),
                        maker=False) == D("0.18")
    finally:
        await venue.close()


async def test_websocket_snapshot_then_deltas(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    tape = Tape(venue.stream())
    try:
        await tape.wait(lambda items: books_of(items, YES), "the YES snapshot")
        exchange.engine.set_level("KXHIGHNY-24JAN01-T60", "no", 58, 5)  # 20 -> 5
        await tape.wait(lambda items: any(isinstance(i, BookDelta) for i in items), "a delta")
        deltas = [i for i in tape.items if isinstance(i, BookDelta)]
        yes_ask = next(d for d in deltas if d.instrument_id == YES)
        no_bid = next(d for d in deltas if d.instrument_id == NO)
        assert (yes_ask.side, str(yes_ask.price), str(yes_ask.size)) == (Side.SELL, "0.4200",
                                                                           "5.00")
        assert (no_bid.side, str(no_bid.price)) == (Side.BUY, "0.5800")
    finally:
        await tape.stop()
        await venue.close()


async def test_a_sequence_gap_marks_books_stale_and_resubscribes(exchange, local_settings
                                                                 ) -> None:
    venue = KalshiVenue(local_settings())
    tape = Tape(venue.stream())
    try:
        await tape.wait(lambda items: books_of(items, YES), "the first snapshot")
        exchange.ws.skip_seq()
        exchange.engine.set_level("KXHIGHNY-24JAN01-T60", "yes", 40, 1)
        await tape.wait(lambda items: stale_of(items, YES) and stale_of(items, NO),
                        "both books marked stale")
        await tape.wait(lambda items: len(books_of(items, YES)) == 2, "a fresh snapshot")
        assert "sid" in stale_of(tape.items, YES)[0].reason or "seq" in \
            stale_of(tape.items, YES)[0].reason
        book_cmds = [c["cmd"] for c in exchange.ws.commands
                     if "market_lifecycle_v2" not in (c.get("params") or {}).get("channels", [])]
        assert book_cmds == ["subscribe", "unsubscribe", "subscribe"]
        assert books_of(tape.items, YES)[-1].best_bid == 0.40  # the change is in the snapshot
        assert exchange.ws.subscriptions() == 1
    finally:
        await tape.stop()
        await venue.close()


async def test_a_malformed_frame_marks_books_stale_and_resubscribes(exchange, local_settings
                                                                    ) -> None:
    venue = KalshiVenue(local_settings())
    tape = Tape(venue.stream())
    try:
        await tape.wait(lambda items: books_of(items, YES), "the first snapshot")
        exchange.ws.send_malformed()
        await tape.wait(lambda items: stale_of(items, YES), "a stale book")
        await tape.wait(lambda items: len(books_of(items, YES)) == 2, "a fresh snapshot")
        assert stale_of(tape.items, YES)[0].reason == "malformed frame"
    finally:
        await tape.stop()
        await venue.close()


async def test_a_dropped_socket_marks_books_stale_and_reconnects(exchange, local_settings
                                                                 ) -> None:
    venue = KalshiVenue(local_settings())
    tape = Tape(venue.stream())
    try:
        await tape.wait(lambda items: books_of(items, YES), "the first snapshot")
        exchange.ws.drop()
        await tape.wait(lambda items: stale_of(items, YES), "a stale book")
        await tape.wait(lambda items: len(books_of(items, YES)) == 2, "a snapshot after "
                        "reconnecting")
        assert stale_of(tape.items, YES)[0].reason == "websocket disconnected"
    finally:
        await tape.stop()
        await venue.close()


async def test_a_badly_signed_handshake_is_refused(exchange, local_settings, tmp_path,
                                                   caplog) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "other.pem"
    path.write_bytes(other.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    from argus_core import Secret
    venue = KalshiVenue(local_settings(private_key=Secret(f"$file:{path}")))
    tape = Tape(venue.stream())
    with caplog.at_level(logging.ERROR, logger="argus_venue_kalshi.data"):
        try:
            await tape.wait(lambda items: stale_of(items, YES), "the refused connection")
            assert exchange.ws.refused_handshakes >= 1
            assert not books_of(tape.items, YES)
        finally:
            await tape.stop()
            await venue.close()
    # said plainly, with what to check (not a bare "InvalidStatus" warning)
    assert any("HTTP 401" in r.getMessage() and "api_key_id" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


async def test_order_books_without_credentials_are_a_clear_config_error(
        exchange, local_settings) -> None:
    """Kalshi serves ``orderbook_delta`` only on an authenticated connection (error 9,
    "Authentication required"): a venue without a key retried that subscribe and
    reconnected forever, its books stale, saying only "subscribe refused".  Now the
    stream ends at once with a ``ConfigError`` naming the keys to set."""
    venue = KalshiVenue(local_settings(api_key_id=None, private_key=None))

    async def run() -> None:
        async for _ in venue.stream():
            pass
    try:
        with pytest.raises(ConfigError, match=r"api_key_id and private_key"):
            await asyncio.wait_for(run(), 5)
    finally:
        await venue.close()
    refused = [c for c in exchange.ws.commands
               if "orderbook_delta" in (c.get("params") or {}).get("channels", [])]
    assert len(refused) == 1  # asked once: asking again cannot help



async def test_an_unsigned_handshake_refused_is_a_clear_config_error(exchange, local_settings
                                                                     ) -> None:
    """Some of Kalshi's pages say every websocket connection must be signed: refused
    with 401 and no credentials configured, the stream ends with the keys to set instead
    of retrying for ever."""
    exchange.ws.unsigned_refused = True  # the stricter reading of the docs
    venue = KalshiVenue(local_settings(api_key_id=None, private_key=None))

    async def run() -> None:
        async for _ in venue.stream():
            pass
    try:
        with pytest.raises(ConfigError, match=r"HTTP 401.*api_key_id and private_key"):
            await asyncio.wait_for(run(), 5)
    finally:
        await venue.close()
    assert exchange.ws.refused_handshakes == 1  # asked once: asking again cannot help
