"""WebSocket v2 market data -> core MarketEvents (books, trades, bars, ticker signals).

One :class:`WsSession` loop owns a connection: it subscribes, reads frames
with a heartbeat deadline, and on any disconnect marks the books stale,
waits a jittered exponential backoff and reconnects and resubscribes.
:class:`KrakenMarketFeed` turns frames into events:

* ``book``: snapshot + updates applied to a :class:`ChecksumBook`; the CRC32 is
  verified on every message.  A mismatch, an unparsable level, an update
  before its snapshot or a timestamp going backwards marks the book stale
  (``BookStatus(live=False)``) and resubscribes that symbol for a fresh
  snapshot; the next good snapshot emits an ``OrderBook`` (live again).
  Every good message emits the top-N ``OrderBook``.
* ``trade`` -> ``Trade`` (deduplicated by trade id across reconnects).
* ``ohlc`` -> ``Bar`` stamped at the bar's close, emitted only once the bar is
  complete (a later bar began, or a frame's timestamp passed its close).
* ``ticker`` -> ``Signal`` events (``ticker.bid``, ``ticker.ask``, ...).
* ``status``: anything but ``online`` marks every book stale; ``online`` again
  resubscribes the books.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from argus_core import BookStatus, DataError, MarketEvent, VenueError, loads_frame
from argus_venue_kraken.book import ChecksumBook, to_units
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.instruments import PairInfo, instrument_id
from argus_venue_kraken.ratelimit import Sleep
from argus_venue_kraken.rest import TransientVenueError
from argus_venue_kraken.schemas import (
    OhlcRow,
    parse_ws_ohlc,
    parse_ws_ticker,
    parse_ws_trade,
    rfc3339_ns,
)

log = logging.getLogger(__name__)


#: A trade's price or size with more integer digits than this is a corrupted value.
_MAX_DIGITS = 15

#: What one bad data item can raise (AttributeError: an item that is not an object).
_ITEM_ERRORS = (DataError, KeyError, TypeError, ValueError, IndexError, AttributeError,
                ArithmeticError)

#: After this many consecutive failed resyncs of one book, drop the connection instead.
MAX_RESYNCS = 5


class _Stalled(Exception):
    """No frame within the heartbeat deadline."""


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
    return rng.uniform(0.0, min(cap_s, base_s * (2 ** min(attempt, 30))))


class WsSession(abc.ABC):
    """A reconnecting WebSocket v2 session: subscribe, read, recover."""

    def __init__(self, url: str, settings: KrakenSettings, *, rng: random.Random | None = None,
                 sleep: Sleep | None = None, clock_ns: Callable[[], int] | None = None) -> None:
        self.url = url
        self.settings = settings
        self._rng = rng or random.Random()
        self._sleep = sleep or asyncio.sleep
        self._clock_ns = clock_ns or time.time_ns
        self._closed = False
        self._ws: ClientConnection | None = None
        self._outbox: list[dict[str, Any]] = []
        self._req_id = 0
        #: Counters for logs and tests.
        self.connects = 0
        self.disconnects = 0
        self.malformed = 0
        self.last_disconnect_reason = ""

    def _next_req_id(self) -> int:
        self._req_id += 1
        return self._req_id

    def send_later(self, message: dict[str, Any]) -> None:
        """Queue a request; it is sent after the current frame is handled."""
        self._outbox.append(message)

    async def _open(self) -> ClientConnection:
        host = urlsplit(self.url).hostname or ""
        # Environment proxies make no sense for a local test server.
        proxy: Any = None if host in ("127.0.0.1", "localhost", "::1") else True
        return await connect(self.url, open_timeout=self.settings.request_timeout_s,
                             ping_interval=20, ping_timeout=20, close_timeout=2,
                             max_size=2 ** 24,
                             proxy=proxy, compression=None)

    async def events(self) -> AsyncIterator[MarketEvent | Any]:
        """Events until :meth:`close`; reconnects forever with jittered backoff."""
        attempt = 0
        while not self._closed:
            reason = ""
            try:
                await self.prepare()
                ws = await self._open()
            except (OSError, TimeoutError, InvalidHandshake, TransientVenueError) as exc:
                reason = f"connect failed: {type(exc).__name__}: {exc}"
            except InvalidURI as exc:
                raise VenueError(f"Kraken websocket URL {self.url!r} is invalid: {exc}") from None
            else:
                self._ws = ws
                self.connects += 1
                try:
                    self._outbox.clear()
                    for event in self.on_connect():
                        yield event
                    await self._flush(ws)
                    for event in await self.after_subscribe():
                        yield event
                    while not self._closed:
                        try:
                            # asyncio.timeout, not wait_for: on 3.11 wait_for loses a
                            # cancel that lands as a frame arrives (the feed never stops).
                            async with asyncio.timeout(self.settings.heartbeat_timeout_s):
                                raw = await ws.recv()
                        except TimeoutError:
                            raise _Stalled from None
                        attempt = 0
                        for event in self.on_frame(raw):
                            yield event
                        if self._outbox:
                            await self._flush(ws)
                except _Stalled:
                    reason = (f"no frame for {self.settings.heartbeat_timeout_s:g}s "
                              f"(heartbeat missed)")
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else "no close frame"
                    reason = f"connection closed ({code})"
                except OSError as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                finally:
                    self._ws = None
                    await ws.close()
            if self._closed:
                break
            self.disconnects += 1
            self.last_disconnect_reason = reason
            log.warning("Kraken websocket %s: %s; reconnecting", self.url, reason)
            for event in self.on_disconnect(reason):
                yield event
            delay = backoff_delay(attempt, self.settings.reconnect_base_s,
                                  self.settings.reconnect_max_s, self._rng)
            attempt += 1
            await self._sleep(delay)

    async def _flush(self, ws: ClientConnection) -> None:
        while self._outbox:
            await ws.send(json.dumps(self._outbox.pop(0)))

    async def close(self) -> None:
        """Stop reconnecting and close the socket."""
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    def decode(self, raw: str | bytes) -> dict[str, Any] | None:
        """A frame as a dict (prices kept as exact text), or None when malformed."""
        try:
            msg = loads_frame(raw, parse_float=str)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            # RecursionError: a frame nested thousands deep (valid JSON) must not end the run.
            self.malformed += 1
            log.warning("Kraken websocket: dropped a frame that is not JSON: %r", raw[:80])
            return None
        if not isinstance(msg, dict):
            self.malformed += 1
            log.warning("Kraken websocket: dropped a frame that is not an object: %r", raw[:80])
            return None
        return msg

    async def prepare(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Work before each connection attempt (e.g. fetch an auth token)."""

    async def after_subscribe(self) -> list[Any]:
        """Events to emit once the subscriptions are sent (e.g. a REST backfill); none here."""
        return []

    @abc.abstractmethod
    def on_connect(self) -> list[Any]:
        """Queue subscriptions (``send_later``); return events to emit."""

    @abc.abstractmethod
    def on_frame(self, raw: str | bytes) -> list[Any]:
        """Handle one frame; return events to emit."""

    @abc.abstractmethod
    def on_disconnect(self, reason: str) -> list[Any]:
        """Return events to emit when the connection dropped."""


class KrakenMarketFeed(WsSession):
    """The public v2 feed of the configured pairs and channels as core events."""

    def __init__(self, settings: KrakenSettings, pairs: dict[str, PairInfo], **kwargs: Any) -> None:
        super().__init__(settings.ws_url, settings, **kwargs)
        self.pairs = pairs
        self.symbols = list(settings.pairs)
        missing = [s for s in self.symbols if s not in pairs]
        if missing:
            raise VenueError(f"Kraken: no AssetPairs entry for {', '.join(missing)}; the book "
                             f"checksum needs each pair's price and lot decimals")
        self._ids = {s: instrument_id(s) for s in self.symbols}
        self.books = {s: ChecksumBook(s, settings.book_depth, pairs[s].price_decimals,
                                      pairs[s].lot_decimals) for s in self.symbols}
        self._live: dict[str, bool] = dict.fromkeys(self.symbols, False)
        self._awaiting: set[str] = set()
        # When each awaited snapshot was asked for (local clock): one that never comes (the
        # subscribe refused, its answer or the snapshot lost) is asked for again.
        self._awaiting_since: dict[str, int] = {}
        self._book_ts: dict[str, int] = dict.fromkeys(self.symbols, 0)
        # Kraken's own timestamps only (never the local clock), for the ordering check.
        self._venue_ts: dict[str, int] = dict.fromkeys(self.symbols, 0)
        self._resyncs: dict[str, int] = dict.fromkeys(self.symbols, 0)
        self._ohlc_pending: dict[str, OhlcRow] = {}
        self._ohlc_emitted: dict[str, int] = {}
        self._trade_ids: dict[str, int] = {}
        self._system = "online"
        self.checksum_mismatches = 0
        self.resubscribes = 0
        #: Snapshots refused for being older than (or unordered against) the book shown.
        self.stale_snapshots = 0

    # -- subscriptions --------------------------------------------------------------------
    def _subscribe(self, channel: str, symbols: list[str], **params: Any) -> None:
        self.send_later({"method": "subscribe", "params": {"channel": channel,
                                                           "symbol": symbols, **params},
                         "req_id": self._next_req_id()})

    def on_connect(self) -> list[Any]:
        channels = self.settings.channels
        if "book" in channels:
            self._awaiting.update(self.symbols)
            now = self._clock_ns()
            self._awaiting_since = dict.fromkeys(self.symbols, now)
            self._subscribe("book", self.symbols, depth=self.settings.book_depth, snapshot=True)
        if "ticker" in channels:
            self._subscribe("ticker", self.symbols)
        if "trade" in channels:
            self._subscribe("trade", self.symbols, snapshot=False)
        if "ohlc" in channels:
            self._subscribe("ohlc", self.symbols, interval=self.settings.ohlc_interval_min,
                            snapshot=True)
        return []

    def _resync(self, symbol: str, reason: str, *, force: bool = False) -> list[Any]:
        """Mark ``symbol``'s book stale and ask for a fresh snapshot (unsubscribe + subscribe)."""
        self.books[symbol].clear()
        self._live[symbol] = False
        self._resyncs[symbol] += 1
        if self._resyncs[symbol] > MAX_RESYNCS:
            # Resubscribing keeps failing: start over on a new connection.
            raise ConnectionResetError(f"{symbol}: {MAX_RESYNCS} book resyncs in a row failed")
        if force or symbol not in self._awaiting:
            self._awaiting.add(symbol)
            self._awaiting_since[symbol] = self._clock_ns()
            self.resubscribes += 1
            depth = self.settings.book_depth
            self.send_later({"method": "unsubscribe",
                             "params": {"channel": "book", "symbol": [symbol], "depth": depth},
                             "req_id": self._next_req_id()})
            self._subscribe("book", [symbol], depth=depth, snapshot=True)
        log.warning("Kraken book %s stale: %s; resubscribing for a fresh snapshot", symbol, reason)
        return [BookStatus(self._ids[symbol], self._now(symbol), False, reason)]

    def _now(self, symbol: str) -> int:
        return self._book_ts.get(symbol) or self._clock_ns()

    def on_disconnect(self, reason: str) -> list[Any]:
        out = []
        for symbol in self.symbols:
            self.books[symbol].clear()
            self._awaiting.discard(symbol)
            self._resyncs[symbol] = 0
            if self._live[symbol]:
                self._live[symbol] = False
                out.append(BookStatus(self._ids[symbol], self._now(symbol), False,
                                      f"disconnected: {reason}"))
        return out

    # -- frames -------------------------------------------------------------------------------
    def _overdue(self) -> list[Any]:
        """Resubscribe each book whose snapshot has not come within the heartbeat deadline
        of asking (a refused subscribe, a lost answer or snapshot): without this the book
        stayed stale for the rest of the connection.  Counts as a resync, so a book that
        never gets one ends the connection (:data:`MAX_RESYNCS`)."""
        if not self._awaiting:
            return []
        limit = self._clock_ns() - int(self.settings.heartbeat_timeout_s * 1e9)
        out: list[Any] = []
        for symbol in [s for s in self._awaiting if self._awaiting_since.get(s, 0) < limit]:
            out.extend(self._resync(symbol, f"no snapshot {self.settings.heartbeat_timeout_s:g}s "
                                            f"after subscribing", force=True))
        return out

    def on_frame(self, raw: str | bytes) -> list[Any]:
        if self._awaiting:  # a check per frame (heartbeats too) while a snapshot is due
            overdue = self._overdue()
            if overdue:
                return overdue + self._on_frame(raw)
        return self._on_frame(raw)

    def _on_frame(self, raw: str | bytes) -> list[Any]:
        msg = self.decode(raw)
        if msg is None:
            # A lost frame may have been a book update: every book is in doubt.
            return self._doubt_all("malformed frame (possible lost update)")
        channel = msg.get("channel")
        try:
            if channel == "book":
                return self._on_book(msg)
            if channel == "heartbeat":
                return []
            if channel == "trade":
                return self._on_trade(msg)
            if channel == "ohlc":
                return self._on_ohlc(msg)
            if channel == "ticker":
                return self._on_ticker(msg)
            if channel == "status":
                return self._on_status(msg)
            if "method" in msg:
                return self._on_ack(msg)
        except (DataError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            # AttributeError: a data item that is not an object (``"data": [5]``).
            self.malformed += 1
            log.warning("Kraken websocket: bad %s frame: %s", channel or "unknown", exc)
            if channel == "book":
                symbol = _book_symbol(msg)
                if symbol in self.books:
                    return self._resync(symbol, f"malformed book frame: {exc}")
                return self._doubt_all(f"malformed book frame: {exc}")
        return []

    def _doubt_all(self, reason: str) -> list[Any]:
        out: list[Any] = []
        for symbol in self.symbols:
            if self._live[symbol]:
                out.extend(self._resync(symbol, reason))
        return out

    def _on_ack(self, msg: dict[str, Any]) -> list[Any]:
        if msg.get("success") is False:
            error = str(msg.get("error", "unknown error"))
            method = msg.get("method")
            log.warning("Kraken websocket %s refused: %s", method, error)
            if method == "subscribe" and ("pair" in error.lower() or "symbol" in error.lower()):
                raise VenueError(f"Kraken refused the subscription: {error}; check pairs in "
                                 f"[plugins.kraken]")
        return []

    def _on_status(self, msg: dict[str, Any]) -> list[Any]:
        data = msg.get("data") or [{}]
        system = str(data[0].get("system", "online"))
        previous, self._system = self._system, system
        out: list[Any] = []
        if system != "online":
            for symbol in self.symbols:
                if self._live[symbol]:
                    self._live[symbol] = False
                    out.append(BookStatus(self._ids[symbol], self._now(symbol), False,
                                          f"exchange status {system}"))
            return out
        if previous != "online" and "book" in self.settings.channels:
            for symbol in self.symbols:
                self._resyncs[symbol] = 0
                out.extend(self._resync(symbol, "exchange back online; awaiting a fresh snapshot",
                                        force=True))
        return out

    def _each_item(self, msg: dict[str, Any],
                   handle: Callable[[int, dict[str, Any]], list[Any]]) -> list[Any]:
        """``handle(i, item)`` for each data item, each fenced on its own: a bad item is
        dropped, counted and logged (a bad book item resyncs its own book), and the
        frame's other items still count.  Throwing the whole frame away lost the items
        before the bad one for good: their trade ids, bars and book levels had already
        advanced the feed's state."""
        data = msg["data"]
        if not isinstance(data, list):
            raise DataError(f"'data' must be a list, got {type(data).__name__}")
        out: list[Any] = []
        for i, item in enumerate(data):
            try:
                out.extend(handle(i, item))
            except _ITEM_ERRORS as exc:
                self.malformed += 1
                channel = msg.get("channel")
                log.warning("Kraken websocket: bad %s item [%d]: %s", channel, i, exc)
                if channel == "book":
                    out.extend(self._on_bad_book_item(item, msg.get("type"), exc))
        return out

    def _on_bad_book_item(self, item: Any, kind: Any, exc: Exception) -> list[Any]:
        """Resync the book a bad item was for (every live book when it names none of
        ours: it may have been an update to any of them)."""
        symbol = item.get("symbol") if isinstance(item, dict) else None
        if isinstance(symbol, str) and symbol in self.books:
            return self._resync(symbol, f"malformed book {kind} item: {exc}",
                                force=kind == "snapshot")
        return self._doubt_all(f"malformed book item: {exc}")

    def _on_book(self, msg: dict[str, Any]) -> list[Any]:
        kind = msg.get("type")
        return self._each_item(msg, lambda _i, item: self._on_book_item(kind, item))

    def _on_book_item(self, kind: Any, item: dict[str, Any]) -> list[Any]:
        """One ``book`` data item: a snapshot or an update of one symbol's book."""
        symbol = item["symbol"]
        book = self.books.get(symbol)
        if book is None:
            return []  # not ours
        raw_ts = item.get("timestamp")
        ts = rfc3339_ns(raw_ts, where=f"book {symbol}.timestamp") if raw_ts else 0
        expected = int(item["checksum"])
        bids, asks = item.get("bids") or [], item.get("asks") or []
        if kind == "snapshot":
            if self._system != "online":
                return []
            refused = self._out_of_order_snapshot(symbol, ts, expected)
            if refused is not None:
                return refused
            got = book.apply_snapshot(bids, asks)
            if got != expected:
                self.checksum_mismatches += 1
                return self._resync(symbol, f"checksum mismatch on snapshot "
                                            f"(got {got}, Kraken {expected})", force=True)
            self._awaiting.discard(symbol)
            self._resyncs[symbol] = 0
            self._venue_ts[symbol] = ts
            self._book_ts[symbol] = ts or self._clock_ns()
            return self._emit_book(symbol)
        if kind != "update":
            raise DataError(f"book frame type must be snapshot or update, got {kind!r}")
        if symbol in self._awaiting:
            return []  # stale until the fresh snapshot arrives
        if not self._live[symbol]:
            if self._system == "online":
                return self._resync(symbol, "update without a snapshot")
            return []
        if ts and ts < self._venue_ts[symbol]:
            return self._resync(symbol, "book timestamp went backwards (sequence doubt)")
        got = book.apply_update(bids, asks)
        if got != expected:
            self.checksum_mismatches += 1
            return self._resync(symbol, f"checksum mismatch (got {got}, Kraken {expected})")
        if ts:
            self._venue_ts[symbol] = ts
            self._book_ts[symbol] = max(ts, self._book_ts[symbol])
        return self._emit_book(symbol)

    def _out_of_order_snapshot(self, symbol: str, ts: int, checksum: int) -> list[Any] | None:
        """None when a snapshot may replace ``symbol``'s book; else the events of refusing it.

        A snapshot is a whole book, so one re-sent from earlier (a duplicated frame, a
        resubscribe race) passed its own checksum and rolled the book back until the next
        update's checksum failed.  The book never goes back in time: a snapshot older than
        the newest book time Kraken gave is dropped (a fresh one is still awaited, and
        asked for again if it never comes).  One no newer than a live book (same time, or
        none) cannot be ordered against it: the same checksum is the same book (nothing to
        do), another one resyncs at once rather than guess which is current."""
        last = self._venue_ts[symbol]
        if ts and ts < last:
            self.stale_snapshots += 1
            log.warning("Kraken book %s: dropped a snapshot older than the book already seen "
                        "(a re-sent frame)", symbol)
            return []
        if not self._live[symbol] or (ts and ts > last):
            return None
        if checksum == self.books[symbol].checksum():
            return []
        self.stale_snapshots += 1
        return self._resync(symbol, "unasked snapshot no newer than the live book, with "
                                    "another checksum", force=True)

    def _emit_book(self, symbol: str) -> list[Any]:
        book = self.books[symbol]
        if book.is_crossed():
            return self._resync(symbol, "crossed book after a verified checksum")
        self._live[symbol] = True
        return [book.to_order_book(self._ids[symbol], self._book_ts[symbol])]

    def _on_trade(self, msg: dict[str, Any]) -> list[Any]:
        return self._each_item(msg, self._on_trade_item)

    def _on_trade_item(self, i: int, item: dict[str, Any]) -> list[Any]:
        """One ``trade`` item -> a Trade (none when not ours or replayed)."""
        symbol = item.get("symbol")
        if symbol not in self._ids:
            return []
        trade_id, trade = parse_ws_trade(item, self._ids[symbol], f"trade[{i}]")
        # A print off the pair's price or lot grid, or beyond any real amount (1e400 is
        # a finite Decimal), is no trade Kraken made: refused like a book level would be.
        pair = self.pairs[symbol]
        to_units(item["price"], pair.price_decimals)
        to_units(item["qty"], pair.lot_decimals)
        if max(trade.price.adjusted(), trade.size.adjusted()) > _MAX_DIGITS:
            raise DataError(f"trade[{i}]: {trade.size} at {trade.price} is no real print")
        if trade_id and trade_id <= self._trade_ids.get(symbol, 0):
            return []  # replayed after a reconnect
        if trade_id:
            self._trade_ids[symbol] = trade_id
        return [trade]

    def _on_ohlc(self, msg: dict[str, Any]) -> list[Any]:
        out = self._each_item(msg, self._on_ohlc_item)
        # The frame's own timestamp says how far the venue's clock has gone.
        frame_ts = msg.get("timestamp")
        if frame_ts:
            now = rfc3339_ns(frame_ts, where="ohlc.timestamp")
            for symbol, row in list(self._ohlc_pending.items()):
                if row.close_ns <= now:
                    out.extend(self._emit_bar(symbol, row))
                    del self._ohlc_pending[symbol]
        return out

    def _on_ohlc_item(self, i: int, item: dict[str, Any]) -> list[Any]:
        """One ``ohlc`` item: the bar it completes (a later bar began), if any."""
        symbol = item.get("symbol")
        if symbol not in self._ids:
            return []
        row = parse_ws_ohlc(item, f"ohlc[{i}]")
        out: list[Any] = []
        pending = self._ohlc_pending.get(symbol)
        if pending is not None and row.begin_ns > pending.begin_ns:
            out.extend(self._emit_bar(symbol, pending))
            pending = None
        if pending is None or row.begin_ns >= pending.begin_ns:
            self._ohlc_pending[symbol] = row
        return out

    def _emit_bar(self, symbol: str, row: OhlcRow) -> list[Any]:
        if row.close_ns <= self._ohlc_emitted.get(symbol, 0):
            return []
        self._ohlc_emitted[symbol] = row.close_ns
        return [row.bar(self._ids[symbol])]

    def _on_ticker(self, msg: dict[str, Any]) -> list[Any]:
        def item_signals(i: int, item: dict[str, Any]) -> list[Any]:
            symbol = item.get("symbol")
            if symbol not in self._ids:
                return []
            ticker = parse_ws_ticker(item, f"ticker[{i}]")
            raw_ts = item.get("timestamp") or msg.get("timestamp")
            ts = rfc3339_ns(raw_ts, where="ticker.timestamp") if raw_ts else self._clock_ns()
            return ticker.signals(self._ids[symbol], ts)

        return self._each_item(msg, item_signals)

    def is_live(self, symbol: str) -> bool:
        """Whether ``symbol``'s local book is verified and current."""
        return self._live.get(symbol, False)


def _book_symbol(msg: dict[str, Any]) -> str | None:
    try:
        return str(msg["data"][0]["symbol"])
    except (KeyError, IndexError, TypeError):
        return None
