"""Market data: Gamma discovery and CLOB books over REST, the websocket market channel.

REST (:class:`PolymarketRest`) pages Gamma ``GET /events`` and fetches books
with ``GET /book`` / batched ``POST /books``, checking each book's hash.

Streaming (:class:`MarketStream`) shards the token set over several websocket
connections, keeps each alive with the venue's text ``PING``, and reconnects
with jittered exponential backoff.  A book is *stale* (``BookStatus(live=False)``)
from the moment anything puts it in doubt -- a disconnect, a silent connection,
a malformed frame, a hash or best-price mismatch, a book crossed by a change, a
``price_change`` older than the last one or than its book, a websocket book older than
a change already read -- until a fresh ``book`` snapshot for it arrives (the venue sends
one per token on every subscribe; a REST snapshot is fetched for books that failed a
check).

A REST snapshot answers later than the stream moves: the ``price_change`` items of a
stale token are kept meanwhile (from its latest doubt on: whatever caused it may have
lost changes), and the REST book is taken only if it is no older than what the stream
had said at that doubt, with the kept changes stamped at or after it applied on top in
time order (changes carry absolute sizes, so one already in the snapshot is harmless,
but only followed by every change after it: a kept change from before a loss, replayed
over a REST book of its own millisecond, undid the lost one); an older one, one asked
for before a newer doubt, or (after a reconnect or a malformed frame) one not yet dated
by a later frame, is asked for again.  A book still stale ``ws_stale_after_s`` of the
stream's time later (its subscribe ``book`` lost) is resnapshotted.  A change or book
for a token not subscribed, off the book's tick, of an impossible size, or under a
mangled ``event_type`` is a malformed frame, never dropped quietly.  Book timestamps
never go back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from argus_core import (
    BookDelta,
    BookStatus,
    DataError,
    MarketEvent,
    OrderBook,
    Settlement,
    Side,
    Signal,
    Trade,
    VenueError,
    loads_frame,
    to_decimal,
)
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.books import hash_checkable, hash_ok, to_order_book
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.instruments import instrument_id
from argus_venue_polymarket.schemas import ClobBook, GammaEvent, GammaMarket

log = logging.getLogger(__name__)


_RETRY_STATUS = {429, 500, 502, 503, 504}
#: The signal a ``tick_size_change`` becomes (its value the new tick; the exact one is in
#: :attr:`MarketStream.tick_sizes`).
TICK_SIGNAL = "polymarket.tick_size"
#: Market-channel message types this stream reads, and the keys that carry book levels.
_KNOWN = frozenset({"book", "price_change", "last_trade_price", "tick_size_change",
                    "market_resolved", "best_bid_ask", "new_market"})
_BOOKISH = frozenset({"price_changes", "bids", "asks"})
#: A level or print size beyond any real one ("1e400" is a finite Decimal).
_MAX_SIZE = Decimal(10) ** 12
#: Changes kept per stale token while its REST snapshot is on its way (more: asked again).
_BUFFER_MAX = 10_000
#: REST snapshots asked for again in a row when each is older than the stream.
_RESNAPSHOT_TRIES = 5
#: How far a venue time stamp may run ahead of this machine's clock.  The venue's clock and
#: ours agree to a second or so; a stamp further ahead is damage or another unit (micro-
#: seconds read as milliseconds), and taken it would move the core's clock (the newest
#: stamp seen) ahead, leaving every other book "stale by age" for the rest of the run.
MAX_AHEAD_NS = 60 * 10**9


def backoff_delay(attempt: int, lo: float, hi: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped at ``hi``."""
    base = min(hi, lo * (2 ** attempt))
    return base / 2 + rng.uniform(0, base / 2)


def frame_items(raw: str) -> Iterator[dict[str, Any]]:
    """The objects of one websocket frame of either channel (an object or a list of them;
    none for a keep-alive), in order; ``DataError`` or ``ValueError`` (``loads_frame``)
    at the first item that is not an object, after the ones before it."""
    if raw.strip() in ("PONG", "PING", ""):
        return
    payload = loads_frame(raw)
    for item in payload if isinstance(payload, list) else [payload]:
        if not isinstance(item, dict):
            raise DataError(f"frame item is {type(item).__name__}, not an object")
        yield item


def _event_id(raw: Any) -> str | None:
    """A Gamma event's ``id`` as text (None when the item has none)."""
    eid = raw.get("id") if isinstance(raw, dict) else None
    return None if eid is None else str(eid)


class PolymarketRest:
    """Async REST client for Gamma discovery and CLOB books."""

    def __init__(self, settings: PolymarketSettings, client: httpx.AsyncClient | None = None
                 ) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.request_timeout_s)
        self._own_client = client is None

    async def close(self) -> None:
        """Close the HTTP connection pool (if we opened it)."""
        if self._own_client:
            await self._client.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        delay_rng = random.Random()
        for attempt in range(4):
            try:
                resp = await self._client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == 3:
                    raise VenueError(f"polymarket: {method} {url} failed: {exc!r}; check the "
                                     f"URL in [plugins.polymarket] and the network") from None
            else:
                if resp.status_code not in _RETRY_STATUS or attempt == 3:
                    break
            await asyncio.sleep(backoff_delay(attempt, 0.2, 2.0, delay_rng))
        if resp.status_code != 200:
            raise VenueError(f"polymarket: {method} {url} answered HTTP {resp.status_code}: "
                             f"{resp.text[:200]}")
        try:
            return loads_frame(resp.content)  # depth, digits, lone surrogates: as frames
        except ValueError:
            raise DataError(f"polymarket: {method} {url} did not return JSON: "
                            f"{resp.text[:120]!r}") from None

    async def events(self, ids: Sequence[str] = ()) -> list[GammaEvent]:
        """Every active, open event (paged with ``limit``/``offset`` until a short page);
        with ``ids``, only those events (Gamma's repeated ``id`` filter), the configured
        ``event_filters`` applied all the same.

        A malformed event is logged and skipped, so one bad item cannot hide
        the rest of the exchange; its id and the reason are in the log.  An event listed
        on two pages (they overlap when events are listed meanwhile) is kept once.  A
        page that brings no event not seen before (a Gamma that ignores ``offset``
        answers the same page for ever), or more than ``GAMMA_MAX_EVENT_PAGES`` pages,
        ends the read with a ``DataError``.
        """
        s = self.settings
        url = f"{s.gamma_url.rstrip('/')}/events"
        out: list[GammaEvent] = []
        seen: set[str] = set()
        offset = 0
        for _ in range(C.GAMMA_MAX_EVENT_PAGES):
            params: dict[str, Any] = {"limit": s.page_size, "offset": offset,
                                      "active": "true", "closed": "false", **s.event_filters}
            if ids:
                params["id"] = list(ids)
            page = await self._request("GET", url, params=params)
            if isinstance(page, dict) and isinstance(page.get("data"), list):
                page = page["data"]  # keyset-style wrapper
            if not isinstance(page, list):
                raise DataError(f"polymarket: GET {url} returned {type(page).__name__}, "
                                f"expected a list of events")
            known = len(seen)
            out.extend(self._new_events(page, offset, seen))
            if s.max_events is not None and len(out) >= s.max_events:
                return out[: s.max_events]
            if len(page) < s.page_size:
                return out
            if len(seen) == known:
                raise DataError(f"polymarket: GET {url} offset {offset} answered a full page "
                                f"with no event not seen before ({len(seen)} read): Gamma "
                                f"is not paging (ignoring offset?); discovery stopped")
            offset += len(page)
        raise DataError(f"polymarket: GET {url}: more than {C.GAMMA_MAX_EVENT_PAGES} pages "
                        f"of {s.page_size} events ({len(seen)} read): discovery stopped; "
                        f"set max_events or event_filters in [plugins.polymarket]")

    @staticmethod
    def _new_events(page: list[Any], offset: int, seen: set[str]) -> list[GammaEvent]:
        """The events of ``page`` not in ``seen`` (which they join), each validated; a
        malformed one is logged and skipped."""
        out = []
        for i, raw in enumerate(page):
            eid = _event_id(raw)
            if eid in seen:
                continue
            try:
                out.append(GammaEvent.parse(raw, where=f"GET /events offset {offset + i}:"))
            except DataError as exc:
                log.warning("polymarket: skipping malformed Gamma event: %s", exc)
            if eid is not None:
                seen.add(eid)
        return out

    async def closed_markets(self, ids: Sequence[str], batch: int = 50, *,
                             key: str = "condition_ids") -> list[GammaMarket]:
        """Gamma ``GET /markets?condition_ids=...&closed=true``: the markets among ``ids``
        that have closed (their ``outcomePrices`` say how they resolved).  ``key=
        "clob_token_ids"``: ``ids`` are token ids (a market is listed once for its two)."""
        url = f"{self.settings.gamma_url.rstrip('/')}/markets"
        out: list[GammaMarket] = []
        for start in range(0, len(ids), batch):
            chunk = list(ids[start:start + batch])
            page = await self._request("GET", url, params={
                key: chunk, "closed": "true", "limit": len(chunk)})
            if not isinstance(page, list):
                raise DataError(f"polymarket: GET {url} returned {type(page).__name__}, "
                                f"expected a list of markets")
            for i, raw in enumerate(page):
                try:
                    out.append(GammaMarket.parse(raw, where=f"GET /markets item {i}:"))
                except DataError as exc:
                    log.warning("polymarket: skipping malformed Gamma market: %s", exc)
        return out

    async def book(self, token_id: str) -> ClobBook:
        """``GET /book?token_id=``."""
        url = f"{self.settings.clob_url.rstrip('/')}/book"
        raw = await self._request("GET", url, params={"token_id": token_id})
        return ClobBook.parse(raw, where=f"GET /book {token_id[:12]}…")

    async def books(self, token_ids: Sequence[str]) -> list[ClobBook | DataError]:
        """``POST /books`` in batches of ``books_batch_size``; a malformed book is returned
        as its ``DataError`` (the caller marks that token stale) instead of failing the batch."""
        url = f"{self.settings.clob_url.rstrip('/')}/books"
        size = self.settings.books_batch_size
        out: list[ClobBook | DataError] = []
        for start in range(0, len(token_ids), size):
            chunk = token_ids[start:start + size]
            page = await self._request("POST", url, json=[{"token_id": t} for t in chunk])
            if not isinstance(page, list):
                raise DataError(f"polymarket: POST {url} returned {type(page).__name__}, "
                                f"expected a list of books")
            for raw in page:
                try:
                    out.append(ClobBook.parse(raw, where="POST /books"))
                except DataError as exc:
                    out.append(exc)
        return out


def book_events(books: Iterable[ClobBook | DataError], *, verify_hash: bool,
                now_ns: int | None = None) -> list[MarketEvent]:
    """Core events for REST books: a live ``OrderBook``, or a ``BookStatus(live=False)``
    naming why the book cannot be trusted (bad hash, crossed or malformed levels)."""
    now = now_ns if now_ns is not None else time.time_ns()
    out: list[MarketEvent] = []
    for book in books:
        if isinstance(book, DataError):
            log.warning("polymarket: %s", book)
            continue
        iid = instrument_id(book.asset_id)
        if verify_hash and book.hash and not hash_ok(book):
            out.append(BookStatus(iid, now, False, "book hash mismatch"))
            continue
        ts = book.ts_ns(now)
        if ts > time.time_ns() + MAX_AHEAD_NS:
            out.append(BookStatus(iid, now, False, f"book stamped {ts // 10**6} ms, ahead "
                                                   f"of this machine's clock"))
            continue
        try:
            out.append(to_order_book(book, iid, ts))
        except DataError as exc:
            out.append(BookStatus(iid, now, False, f"unusable book: {exc}"))
    return out


class _LocalBook:
    """Top-of-book tracker used to cross-check ``price_change`` frames."""

    __slots__ = ("asks", "bids")

    def __init__(self, book: OrderBook) -> None:
        self.bids = {float(p): float(q) for p, q in book.bids}
        self.asks = {float(p): float(q) for p, q in book.asks}

    def apply(self, side: Side, price: float, size: float) -> None:
        ladder = self.bids if side is Side.BUY else self.asks
        if size > 0:
            ladder[price] = size
        else:
            ladder.pop(price, None)

    def best(self) -> tuple[float, float]:
        """(best bid or 0, best ask or 1): the venue's convention for an empty side."""
        return (max(self.bids) if self.bids else 0.0, min(self.asks) if self.asks else 1.0)


class MarketStream:
    """The websocket market channel for a set of tokens, sharded over connections."""

    def __init__(self, settings: PolymarketSettings, token_ids: Sequence[str],
                 rest: PolymarketRest, *, seed: int | None = None,
                 without_tokens: bool = False) -> None:
        self.settings = settings
        self.token_ids = list(dict.fromkeys(token_ids))
        #: Over no tokens, yield what :meth:`emit` puts in (the Gamma poll of held markets
        #: awaiting their resolution) instead of ending at once.
        self.without_tokens = without_tokens
        self.rest = rest
        self._queue: asyncio.Queue[MarketEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random(seed)
        self._closed = self._started = False
        self.live: dict[str, bool] = dict.fromkeys(self.token_ids, False)
        self._local: dict[str, _LocalBook] = {}
        # Per token: the stream's time when the book went stale (a REST book must be no
        # older), the last change applied, the last event emitted (kept monotone);
        # the changes seen while stale (None: too many kept, the next REST book is refused).
        self._stale_ts: dict[str, int] = {}
        self._delta_ts: dict[str, int] = {}
        self._emitted_ts: dict[str, int] = {}
        # The newest change read per token (applied or kept): a websocket book older than it
        # lacks that change and is never taken (see _on_book).
        self._change_ts: dict[str, int] = {}
        # The winning asset per token of the market_resolved frames taken (a second frame
        # naming another winner is refused, the same one is not news).
        self._winners: dict[str, str] = {}
        self._kept: dict[str, list[tuple[int, Side, Decimal, Decimal]] | None] = {}
        # The stream's clock (newest venue timestamp of any frame) and, per stale token,
        # when it went stale by that clock: a token still stale ``ws_stale_after_s`` later
        # (its subscribe snapshot lost, every REST answer old) is resnapshotted again.
        self._now_ts = 0
        self._stale_at: dict[str, int] = {}
        self._next_check_ts = 0
        self._floor_pending: set[str] = set()  # stale on a frame of unknown time
        # Tokens of a connection made again: what changed while it was down was never sent,
        # so a REST book must be dated by the new connection's first frame (strictly).
        self._reconnected: set[str] = set()
        # Bumped each time a token is put in doubt: a REST answer to a request made before
        # the latest doubt may predate its cause, and is asked for again.
        self._doubts: dict[str, int] = {}
        self.tick_sizes: dict[str, Decimal] = {}
        # The connections' token lists (one per shard, grown by add_tokens) and each
        # shard's open socket.
        self._shards: list[list[str]] = []
        self._sockets: dict[int, Any] = {}
        self._unsubscribed: set[str] = set()
        #: Called with the frame when the channel announces a market listed just now
        #: (``new_market``): the venue runs its discovery then (see ``stream()``).
        self.on_new_market: Callable[[dict[str, Any]], None] | None = None
        #: Called each time a connection has sent its subscription (must not block nor
        #: raise): what resolved while no connection listened is the caller's to ask.
        self.on_connected: Callable[[], None] | None = None
        #: Counters for monitoring and tests (connects, reconnects, bad frames, resnapshots).
        self.stats = {"connects": 0, "disconnects": 0, "malformed": 0, "hash_mismatch": 0,
                      "best_mismatch": 0, "resnapshots": 0, "crossed": 0,
                      "resolutions_refused": 0}

    def emit(self, event: MarketEvent) -> None:
        """Put an event from another source (the Gamma resolution poll) into this stream."""
        self._queue.put_nowait(event)

    def shards(self) -> list[list[str]]:
        """Token ids split into one list per websocket connection."""
        n = self.settings.tokens_per_ws_connection
        return [self.token_ids[i:i + n] for i in range(0, len(self.token_ids), n)]

    async def __aiter__(self) -> AsyncIterator[MarketEvent]:
        if not self.token_ids and not self.without_tokens:  # nothing could ever arrive
            log.warning("polymarket: a market stream over no tokens ends at once")
            return
        if not self._started:
            self._started = True
            self._shards = self.shards()
            self._tasks = [asyncio.create_task(self._run_shard(i, shard))
                           for i, shard in enumerate(self._shards)]
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self.close()

    def add_tokens(self, tokens: Iterable[str]) -> list[str]:
        """Follow ``tokens`` too (markets listed after the start); returns those new to the
        stream.  Each joins the first connection with room (``tokens_per_ws_connection``),
        subscribed there at once with the channel's ``"operation": "subscribe"`` message
        (and again on every reconnect), or a new connection.  A new token is stale until
        its first ``book`` (the venue sends one per subscribed token; a REST snapshot after
        ``ws_stale_after_s`` when it does not come); changes before that are kept for it."""
        new = [t for t in dict.fromkeys(tokens) if t not in self.live]
        if not new or self._closed:
            return []
        for token in new:
            self.token_ids.append(token)
            self.live[token] = False
            self._stale_ts[token] = self._now_ts
            self._kept[token] = []
            self._stale_at[token] = self._now_ts  # 0 before any frame: from the next one
        if not self._started:
            return new  # not streaming yet: the first connections subscribe them
        room = self.settings.tokens_per_ws_connection
        rest = list(new)
        for index, shard in enumerate(self._shards):  # room left by unsubscribed tokens too
            free = room - len(shard)
            if rest and free > 0:
                joined, rest = rest[:free], rest[free:]
                shard.extend(joined)  # a reconnect subscribes them with the rest
                self._send_operation(index, "subscribe", joined)
        for i in range(0, len(rest), room):
            self._shards.append(rest[i:i + room])
            self._tasks.append(asyncio.create_task(
                self._run_shard(len(self._shards) - 1, self._shards[-1])))
        return new

    def unsubscribe(self, tokens: Iterable[str]) -> None:
        """Stop asking for ``tokens`` (settled markets: nothing is left to trade): each
        leaves its connection's list (``"operation": "unsubscribe"`` on the open connection;
        a reconnect no longer subscribes it, nor marks it stale), so a run following
        markets for weeks holds connections for the open ones only.  Whatever still
        arrives for them is read as before."""
        gone = set(tokens)
        for index, shard in enumerate(self._shards):
            left = [t for t in shard if t in gone]
            if left:
                shard[:] = [t for t in shard if t not in gone]
                self._send_operation(index, "unsubscribe", left)
        self.token_ids = [t for t in self.token_ids if t not in gone]
        self._unsubscribed |= gone
        for token in gone:  # no REST snapshot is asked for them any more
            self._stale_at.pop(token, None)

    def _send_operation(self, index: int, operation: str, tokens: list[str]) -> None:
        """Send an ``operation`` (``subscribe`` / ``unsubscribe``) message on shard
        ``index``'s open connection (none open: its next connect subscribes the shard's
        list as it is then)."""
        ws = self._sockets.get(index)
        if ws is None or not tokens:
            return
        message = json.dumps({"assets_ids": tokens, "operation": operation,
                              "custom_feature_enabled": True})

        async def send() -> None:
            # A failed send is a broken connection: the shard reconnects and subscribes
            # its whole list.
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.send(message)

        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.get_running_loop().create_task(send()))

    async def close(self) -> None:
        """Stop every connection."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    # --- per connection -------------------------------------------------------------------

    def _mark_stale(self, tokens: Iterable[str], reason: str) -> None:
        now = time.time_ns()
        for token in tokens:
            self._doubts[token] = self._doubts.get(token, 0) + 1
            if self.live.get(token, True):
                self._queue.put_nowait(BookStatus(instrument_id(token), now, False, reason))
            # Whatever put it in doubt may have lost changes (a disconnect, frames in
            # flight): the changes kept before it are no catch-up for a REST book, which
            # must now be at least as new as the stream is (replayed over a REST book of
            # their own millisecond, a kept change undid a lost one that followed it).
            if (self.live.get(token, True) or token not in self._kept) \
                    and token not in self._unsubscribed:  # (its overdue REST snapshot)
                self._stale_at[token] = self._now_ts
            self._stale_ts[token] = self._now_ts
            self._kept[token] = []
            self.live[token] = False
            self._local.pop(token, None)

    async def _run_shard(self, index: int, tokens: list[str]) -> None:
        s = self.settings
        attempt = 0
        while not self._closed:
            try:
                async with ws_connect(s.ws_url, ping_interval=None, max_size=2 ** 24,
                                      open_timeout=s.request_timeout_s) as ws:
                    self.stats["connects"] += 1
                    self._reconnected.update(tokens)
                    self._floor_pending.update(tokens)
                    for token in tokens:  # their books are due (the clock starts below)
                        if not self.live.get(token):
                            self._stale_at.setdefault(token, 0)
                    # Registered before the subscription is written: a token added from
                    # here on is sent as an operation after it (see add_tokens).
                    self._sockets[index] = ws
                    pinger = asyncio.create_task(self._ping(ws))
                    try:
                        await ws.send(json.dumps({"assets_ids": list(tokens), "type": "market",
                                                  "custom_feature_enabled": True}))
                        if self.on_connected is not None:
                            self.on_connected()
                        while True:
                            # asyncio.timeout, not wait_for: on 3.11 wait_for loses a
                            # cancel that lands as a frame arrives (the feed never stops).
                            async with asyncio.timeout(s.ws_stale_after_s):
                                raw = await ws.recv()
                            attempt = 0  # a frame arrived: the connection works
                            await self._on_frame(raw, tokens)
                    finally:
                        self._sockets.pop(index, None)
                        pinger.cancel()
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                reason = f"websocket silent for {s.ws_stale_after_s:g}s (shard {index})"
            except (ConnectionClosed, OSError, InvalidHandshake, InvalidURI) as exc:
                reason = f"websocket disconnected (shard {index}): {type(exc).__name__}"
            self.stats["disconnects"] += 1
            self._mark_stale(tokens, reason)
            log.warning("polymarket: %s; reconnecting", reason)
            await asyncio.sleep(backoff_delay(attempt, s.reconnect_min_s, s.reconnect_max_s,
                                              self._rng))
            attempt += 1

    async def _ping(self, ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                await asyncio.sleep(self.settings.ws_ping_interval_s)
                await ws.send("PING")

    async def _on_frame(self, raw: str | bytes, tokens: list[str]) -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        try:
            for msg in frame_items(raw):
                self._on_message(msg)
        except (DataError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            # RecursionError (valid JSON nested thousands deep) used to end this shard's task
            # silently: its books then never updated nor went stale.
            # We cannot tell which book the frame was about: every book on this
            # connection is in doubt until a fresh REST snapshot.
            self.stats["malformed"] += 1
            log.warning("polymarket: malformed websocket frame (%s): %.120r", exc, raw)
            # (Its changes are lost, some perhaps kept, those read before the bad one:
            # _mark_stale drops every kept change, see there.)
            self._mark_stale(tokens, f"malformed websocket frame: {exc}")
            # Its time is unknown: a REST book is new enough only once stamped at or after
            # the next frame that reads (see _catch_up).  Not awaited here: the reads go on.
            self._floor_pending.update(tokens)
            self._schedule_resnapshot(tokens)

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("event_type")
        if kind not in _KNOWN and (not isinstance(kind, str) or _BOOKISH & msg.keys()):
            # A mangled type on a message that carries levels: dropping it quietly would
            # lose a change no later check can see (the channel has no sequence numbers).
            raise DataError(f"message of event_type {kind!r} carries book levels")
        if kind in ("book", "price_change", "last_trade_price"):
            ts = _venue_ts(msg.get("timestamp"), f"ws {kind}")
            if self._floor_pending:
                for token in self._floor_pending:
                    self._stale_ts[token] = max(self._stale_ts.get(token, 0), ts)
                self._floor_pending.clear()
                self._reconnected.clear()
            if ts > self._now_ts:
                self._now_ts = ts
                if self._stale_at and ts >= self._next_check_ts:
                    self._overdue()
        else:
            ts = _ts_ns(msg.get("timestamp"))
        if kind == "book":
            self._on_book(ClobBook.parse(msg, where="ws book"), ts)
        elif kind == "price_change":
            self._on_price_change(msg, ts)
        elif kind == "last_trade_price":
            side = {"SELL": Side.SELL, "BUY": Side.BUY}.get(str(msg.get("side", "BUY")).upper())
            price = to_decimal(msg["price"], field="last_trade_price.price")
            size = to_decimal(msg["size"], field="last_trade_price.size")
            # (no tick check: the documented print is at 0.456 in a 0.01-tick book)
            if side is None or not Decimal(0) < price < Decimal(1) or size >= _MAX_SIZE:
                raise DataError(f"last_trade_price: {msg.get('side')!r} {size} at {price} is "
                                f"no print")
            self._queue.put_nowait(Trade(instrument_id(self._ours(msg["asset_id"])), ts, price,
                                         size, side))
        elif kind == "tick_size_change":
            token, tick = self._ours(msg.get("asset_id")), _tick_of(msg.get("new_tick_size"))
            self.tick_sizes[token] = tick
            self._queue.put_nowait(Signal(TICK_SIGNAL, instrument_id(token), ts, float(tick)))
        elif kind == "market_resolved":
            self._on_resolved(msg, ts)
        elif kind == "new_market" and self.on_new_market is not None:
            self.on_new_market(msg)
        # best_bid_ask and unknown types carry nothing a book needs.

    def _on_resolved(self, msg: dict[str, Any], ts: int) -> None:
        """Settle the followed tokens a ``market_resolved`` names (the winner 1, the others
        0).  A frame whose winner is not one of its own distinct ``assets_ids``, or that
        names another winner than an earlier one, is refused in the log (market and winner
        named): a settlement cannot be taken back, and the Gamma poll settles the market
        from its ``outcomePrices`` (a 50-50 too).  Tokens not followed are left out: the
        channel may announce other markets' resolutions."""
        market = str(msg.get("market") or msg.get("id") or "?")[:80]
        problem = _resolution_problem(msg.get("assets_ids"), msg.get("winning_asset_id"))
        if problem:
            self.stats["resolutions_refused"] += 1
            log.warning("polymarket: market_resolved of market %s refused: %s (nothing "
                        "settled; the Gamma resolution poll settles it)", market, problem)
            return
        assets: list[str] = msg["assets_ids"]  # (checked just above)
        winner: str = msg["winning_asset_id"]
        ours = [t for t in assets if t in self.live]
        earlier = {self._winners[t] for t in ours if t in self._winners}
        if earlier - {winner}:
            self.stats["resolutions_refused"] += 1
            log.error("polymarket: market_resolved of market %s names another winner "
                      "(%.20s…) than an earlier one (%.20s…): refused, the first stands",
                      market, winner, ", ".join(sorted(earlier)))
            return
        for token in ours:
            if token in self._winners:
                continue  # the same resolution again (a reconnect's replay): not news
            self._winners[token] = winner
            self._queue.put_nowait(Settlement(
                instrument_id(token), ts, 1 if token == winner else 0,
                f"market {market} resolved {msg.get('winning_outcome', '')}"))

    def _ours(self, asset_id: Any) -> str:
        """``asset_id`` if it is one of this stream's tokens; a ``DataError`` otherwise (the
        venue sends only what was subscribed: another id is a mangled one, and the change
        it carried would be lost unseen)."""
        if type(asset_id) is not str or asset_id not in self.live:
            raise DataError(f"asset_id {str(asset_id)[:20]!r} is not a subscribed token")
        return asset_id

    def _on_book(self, book: ClobBook, ts: int) -> None:
        token = self._ours(book.asset_id)
        if book.tick_size:  # the book states its tick: changes off it are corrupted
            self.tick_sizes[token] = to_decimal(book.tick_size, field="book.tick_size")
        if hash_checkable(book) and self.settings.verify_book_hash and not hash_ok(book):
            self.stats["hash_mismatch"] += 1
            self._mark_stale([token], "websocket book hash mismatch")
            self._schedule_resnapshot([token])
            return
        newest = self._change_ts.get(token, 0)
        if ts < newest:  # it lacks a change read already (absolute sizes: it would undo it)
            self._mark_stale([token], f"websocket book of {ts // 10**6} ms older than a "
                                      f"price_change already read ({newest // 10**6} ms)")
            self._schedule_resnapshot([token])
            return
        try:
            ob = to_order_book(book, instrument_id(token), ts)
        except DataError as exc:
            self._mark_stale([token], f"unusable websocket book: {exc}")
            self._schedule_resnapshot([token])
            return
        self._accept_snapshot(token, ob)
        # The venue's book dates the changes after it: an older one is already in it.
        self._delta_ts[token] = ts

    def _accept_snapshot(self, token: str, ob: OrderBook) -> None:
        last = self._emitted_ts.get(token, 0)
        if ob.ts_ns < last:  # a book's time never goes back (the venue's clock may)
            ob = OrderBook(ob.instrument_id, last, ob.bids, ob.asks)
        self._emitted_ts[token] = ob.ts_ns
        # Changes are ordered among themselves (a book's stamp may be of another clock).
        self._delta_ts.pop(token, None)
        self._kept.pop(token, None)
        self._stale_at.pop(token, None)
        self._local[token] = _LocalBook(ob)
        self.live[token] = True
        self._queue.put_nowait(ob)

    def _on_price_change(self, msg: dict[str, Any], ts: int) -> None:
        # Each change's ``hash`` is not checked: it cannot be.  The channel documents it as
        # "hash of the order" (market-channel page, PriceChange table), with no algorithm;
        # the book hash (``books.book_hash``) covers fields a change does not carry
        # (``min_order_size``, ``tick_size``, ``neg_risk``, ``last_trade_price``, the book's
        # own timestamp, every level as the venue's text).  A change is checked instead by
        # the ``best_bid`` / ``best_ask`` it states and a crossed book (_book_doubt).
        changes = msg["price_changes"]
        if not isinstance(changes, list) or not changes:
            # (an emptied list would be a change lost unseen: the channel has no seq)
            raise DataError("price_change.price_changes is not a list of changes")
        for ch in changes:
            token = self._ours(ch["asset_id"])
            side = {"BUY": Side.BUY, "SELL": Side.SELL}.get(str(ch["side"]).upper())
            price = to_decimal(ch["price"], field="price_change.price")
            size = to_decimal(ch["size"], field="price_change.size")
            if side is None or not Decimal(0) < price < Decimal(1) or not 0 <= size < _MAX_SIZE \
                    or self._off_tick(token, side, price):
                raise DataError(f"price_change {ch['side']!r} {price} x {size} is no level")
            self._change_ts[token] = max(ts, self._change_ts.get(token, 0))
            local = self._local.get(token)
            if local is None:
                kept = self._kept.get(token)
                if kept is not None:  # for the REST snapshot on its way (see _resnapshot)
                    kept.append((ts, side, price, size))
                    if len(kept) > _BUFFER_MAX:
                        self._kept[token] = None
                continue  # stale book: deltas are meaningless until the next snapshot
            floor = self._delta_ts.get(token, 0)
            if ts < floor:
                # An older change after a newer one or its book: frames out of order, or
                # one replayed (its absolute size may undo a newer one).
                self._mark_stale([token], f"a price_change ({ts // 10**6} ms) older than the "
                                          f"last one or the book ({floor // 10**6} ms)")
                self._schedule_resnapshot([token])
                continue
            self._delta_ts[token] = ts
            stamp = max(ts, self._emitted_ts.get(token, 0))
            self._emitted_ts[token] = stamp
            delta = BookDelta(instrument_id(token), stamp, side, price, size)
            local.apply(side, float(delta.price), float(delta.size))
            self._queue.put_nowait(delta)
            doubt = self._book_doubt(local, ch)
            if doubt:
                self._mark_stale([token], doubt)
                self._schedule_resnapshot([token])

    def _off_tick(self, token: str, side: Side, price: Decimal) -> bool:
        """Whether ``price`` is off the token's tick and no level its book holds.  A level
        resting from before a ``tick_size_change`` to a coarser tick is off the new grid
        and may still shrink or leave: refused, its change put every book of the
        connection in doubt (and a book that stated such a level could never lose it)."""
        tick = self.tick_sizes.get(token)
        if not tick or not price % tick:
            return False
        local = self._local.get(token)
        ladder = None if local is None else local.bids if side is Side.BUY else local.asks
        return ladder is None or float(price) not in ladder

    def _book_doubt(self, local: _LocalBook, change: dict[str, Any]) -> str:
        """Why the book is wrong after ``change`` ("" when it is not known to be): crossed
        (a missed update: the core refuses it, and only a fresh book mends it), or a
        ``best_bid`` / ``best_ask`` the change states (each on its own) that disagrees."""
        bid, ask = local.best()
        if local.bids and local.asks and bid >= ask:
            self.stats["crossed"] += 1
            return f"crossed book after a price_change (best bid {bid} >= best ask {ask})"
        ours = {"best_bid": bid, "best_ask": ask}
        wrong = {key: float(change[key]) for key in ours
                 if key in change and float(change[key]) != ours[key]}
        if wrong:
            self.stats["best_mismatch"] += 1
            return f"best bid/ask {(bid, ask)} disagree with the venue's {wrong}"
        return ""

    def _overdue(self) -> None:
        """Resnapshot the tokens stale for ``ws_stale_after_s`` of the stream's time (checked
        once a second of it): before, a token whose subscribe snapshot was lost stayed
        stale for the rest of the connection."""
        now, wait = self._now_ts, int(self.settings.ws_stale_after_s * 1e9)
        self._next_check_ts = now + 1_000_000_000
        for token, at in self._stale_at.items():
            if not at:  # waiting since the connection opened: counted from its first frame
                self._stale_at[token] = now
        late = [t for t, at in self._stale_at.items() if now - at >= wait]
        if late:
            log.warning("polymarket: %d book(s) stale for %gs; asking for REST snapshots",
                        len(late), self.settings.ws_stale_after_s)
            self._stale_at.update(dict.fromkeys(late, now))
            self._schedule_resnapshot(late)

    def _schedule_resnapshot(self, tokens: list[str]) -> None:
        self.stats["resnapshots"] += 1  # counted when asked for (it runs beside the reads)
        asyncio.get_running_loop().create_task(self._resnapshot(tokens))

    async def _resnapshot(self, tokens: list[str], tries: int = 0) -> None:
        """Fresh REST books for ``tokens``; each becomes live again only if it checks out and
        is no older than the stream (:meth:`_catch_up`); an older one is asked for again."""
        doubts = {t: self._doubts.get(t, 0) for t in tokens}
        try:
            books = await self.rest.books(tokens)
        except (VenueError, DataError) as exc:
            log.warning("polymarket: REST resnapshot failed: %s (books stay stale until the "
                        "next websocket snapshot)", exc)
            return
        again = []
        for ev in book_events(books, verify_hash=self.settings.verify_book_hash):
            if not isinstance(ev, OrderBook | BookStatus):
                continue
            token = ev.instrument_id.partition(":")[2]
            if self.live.get(token):
                continue  # a websocket book made it live meanwhile: that one is newer
            if self._doubts.get(token, 0) != doubts.get(token, 0):
                again.append(token)  # in doubt again since asked: may predate the cause
            elif isinstance(ev, OrderBook):
                caught_up = self._catch_up(token, ev, first=tries == 0)
                if caught_up is None:
                    again.append(token)
                else:
                    self._accept_snapshot(token, caught_up)
            else:
                self._queue.put_nowait(ev)
        if again and tries + 1 < _RESNAPSHOT_TRIES:
            await asyncio.sleep(backoff_delay(tries, self.settings.reconnect_min_s,
                                              self.settings.reconnect_max_s, self._rng))
            self.stats["resnapshots"] += 1
            await self._resnapshot([t for t in again if not self.live.get(t)], tries + 1)
        elif again:
            log.warning("polymarket: REST books of %d token(s) stayed older than the stream "
                        "%d times; stale until the next websocket snapshot", len(again),
                        _RESNAPSHOT_TRIES)

    def _catch_up(self, token: str, book: OrderBook, *, first: bool = True
                  ) -> OrderBook | None:
        """``book`` (REST) with the changes the stream carried since it applied, or None
        when it is older than what the stream had said when the book went stale (the
        changes between are lost) or the kept changes overflowed.  After a malformed frame
        (its time unknown) the first answer must wait for a later frame to date it; a
        retry, asked after a backoff, is taken against the last readable frame's time."""
        kept = self._kept.get(token, [])
        if kept is None or (first and token in self._floor_pending) or \
                token in self._reconnected or \
                book.ts_ns < self._stale_ts.get(token, 0):
            log.warning("polymarket: REST book of %s… is older than the stream (%d < %d "
                        "ms); asking again", token[:12], book.ts_ns // 10**6,
                        self._stale_ts.get(token, 0) // 10**6)
            return None
        # In time order: changes kept while stale are not checked for order as a live
        # book's are (frames reordered across milliseconds replayed as they came left a
        # level at its older size); the sort is stable, so one millisecond's changes keep
        # the order they came in.
        later = sorted((k for k in kept if k[0] >= book.ts_ns), key=itemgetter(0))
        if not later:
            return book
        local = _LocalBook(book)
        for _, side, price, size in later:
            local.apply(side, float(price), float(size))
        try:
            return OrderBook(book.instrument_id, max(book.ts_ns, later[-1][0]),
                             sorted(local.bids.items(), reverse=True), sorted(local.asks.items()))
        except DataError as exc:  # crossed after the changes: ask again
            log.warning("polymarket: REST book of %s… with the stream's changes: %s",
                        token[:12], exc)
            return None


def _tick_of(value: Any) -> Decimal:
    """A ``tick_size_change``'s ``new_tick_size``: a number in (0, 1), else ``DataError``
    (before, text killed the shard's task and NaN, 0 or 1.5 became the token's tick, every
    later price change then refused as off the grid)."""
    tick = to_decimal(value, field="tick_size_change.new_tick_size")
    if not Decimal(0) < tick < Decimal(1):
        raise DataError(f"tick_size_change.new_tick_size: {tick} is not in (0, 1)")
    return tick


def _resolution_problem(assets: Any, winner: Any) -> str:
    """Why a ``market_resolved``'s ``assets_ids`` / ``winning_asset_id`` settle nothing
    ("" when they can): the assets must be distinct token ids (text), the winner one of
    them."""
    if not isinstance(assets, list) or len(assets) < 2 or \
            not all(isinstance(a, str) and a.isdigit() for a in assets) or \
            len(set(assets)) != len(assets):
        return f"assets_ids {str(assets)[:60]!r} are not distinct token ids"
    if not isinstance(winner, str) or winner not in assets:
        return f"winning_asset_id {str(winner)[:30]!r} is not among its assets_ids"
    return ""


def _ts_ns(value: Any) -> int:
    """Another message's timestamp (milliseconds) in ns; this machine's clock when it is
    unreadable or ahead of it (a settlement or tick stamped years ahead moved the core's
    clock there)."""
    now = time.time_ns()
    try:
        ts = int(str(value)) * 1_000_000
    except (TypeError, ValueError):
        return now
    return min(ts, now)


def _venue_ts(value: Any, where: str) -> int:
    """A book / change / trade message's venue timestamp (milliseconds) in ns; a missing
    or unreadable one, or one ahead of this machine's clock by more than
    :data:`MAX_AHEAD_NS`, is a malformed frame (a local clock would be no venue time)."""
    text = str(value)
    if value is None or isinstance(value, bool) or not text.isdigit():
        raise DataError(f"{where}: timestamp {value!r} is not venue milliseconds")
    ts = int(text) * 1_000_000
    if ts > time.time_ns() + MAX_AHEAD_NS:
        raise DataError(f"{where}: timestamp {text[:24]} ms is ahead of this machine's "
                        f"clock by more than {MAX_AHEAD_NS // 10**9} s (check the clock)")
    return ts


def resolution_settlements(market: GammaMarket, ts_ns: int) -> list[Settlement]:
    """``Settlement`` events for a resolved Gamma market (none while it is unresolved)."""
    prices = market.resolution()
    if prices is None:
        return []
    outcome = next((o for o, p in zip(market.outcomes, prices, strict=True) if p == 1), "50-50")
    return [Settlement(instrument_id(token), ts_ns, price,
                       f"Gamma: market {market.market_id} ({market.question[:60]}) resolved "
                       f"{outcome}")
            for token, price in zip(market.token_ids, prices, strict=True)]
