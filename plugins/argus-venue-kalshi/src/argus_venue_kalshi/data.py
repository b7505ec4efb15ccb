"""The market-data side: books over REST (``argus scan``) and over the websocket.

The websocket stream subscribes ``orderbook_delta`` for every market, loads each
``orderbook_snapshot``, applies ``orderbook_delta`` frames while ``seq`` counts up by one
per subscription, and emits core books and deltas for the YES and NO instruments.

The same session subscribes ``market_lifecycle_v2`` (every market's lifecycle; Kalshi
takes no ticker filter): a followed market's ``settled`` event becomes ``Settlement``
events (its ``result``, else the one its ``determined`` event carried, else the
market's from REST).  The venue de-duplicates them against the REST poll.  A ``created``
or ``activated`` event of a market not followed is handed to :attr:`BookStream.on_new_market`
(the venue looks it up and, when its event is configured, follows it:
:meth:`BookStream.add_tickers` subscribes its book on the open session and on every
reconnect).

Integrity: a sequence gap, a delta that cannot apply (a level going negative) or a
malformed frame marks the affected books untradeable (``BookStatus(live=False)``) and
resubscribes them, so a fresh snapshot makes them live again; a dropped or silent
socket marks every book untradeable and reconnects with jittered backoff.  A subscribe
refused (``type: error``), left unanswered, or whose snapshot does not come within
``heartbeat_timeout_s`` is sent again (after :data:`MAX_RETRIES` in a row the connection
is made again); an answer to a subscribe given up on is unsubscribed at once, so no two
subscriptions feed one book.  Prices and counts off Kalshi's fixed-point grids are refused
(:mod:`.books`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import attrs
import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from argus_core import (
    BookStatus,
    ConfigError,
    DataError,
    MarketEvent,
    OrderBook,
    VenueError,
    loads_frame,
)
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.books import Ladders, SequenceCheck, SequenceGap, book_sides
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.instruments import (
    NO,
    SCALAR,
    VOID,
    YES,
    instrument_id,
    settlement_price,
    settlements_of,
)
from argus_venue_kalshi.rest import KalshiRest
from argus_venue_kalshi.schemas import Market, dec

log = logging.getLogger(__name__)

#: Subscribes retried (refused, unanswered, no snapshot) without a snapshot in between
#: before the connection is dropped and made again.
MAX_RETRIES = 5

#: What a credential-less stream refused by Kalshi is told to do.
_SET_KEYS = "set [plugins.kalshi] api_key_id and private_key (a read-only key will do)"

#: Seconds before a failed read of the settlements missed while the lifecycle channel
#: was not listening is tried again.
CATCH_UP_RETRY_S = 5.0



async def rest_books(rest: KalshiRest, tickers: list[str]) -> list[OrderBook]:
    """Every market's YES and NO books from ``GET /markets/{ticker}/orderbook``."""
    out: list[OrderBook] = []
    for ticker in tickers:
        raw = await rest.get(f"/markets/{ticker}/orderbook")
        book = raw.get("orderbook_fp")
        if not isinstance(book, dict):  # absent is not empty: levels we cannot read
            raise DataError(f"kalshi: GET /markets/{ticker}/orderbook: no orderbook_fp "
                            f"object (keys {sorted(raw)})")
        ladders = Ladders(ticker)
        ladders.load(*book_sides(book, "_dollars",
                                 f"GET /markets/{ticker}/orderbook orderbook_fp"))
        out.extend(ladders.books(time.time_ns()))
    return out


def _stale(tickers: list[str], reason: str) -> list[BookStatus]:
    now = time.time_ns()
    return [BookStatus(instrument_id(t, side), now, False, reason)
            for t in tickers for side in (YES, NO)]


#: Lifecycle events that announce a market (the venue may start following it).
NEW_MARKET_EVENTS = ("created", "activated")

#: Turns a settled market into events: ``resolve(market, ts_ns, how)`` (the venue's
#: knows void costs and amendments; ``how`` is appended to the settlements' reason).
Resolver = Callable[[Market, int, str], Awaitable[list[MarketEvent]]]


async def _settle_plain(market: Market, ts_ns: int, how: str) -> list[MarketEvent]:
    return [attrs.evolve(s, reason=s.reason + how) for s in settlements_of(market, ts_ns)]


class BookStream:
    """One websocket session after another, yielding market events until cancelled."""

    def __init__(self, settings: KalshiSettings, rest: KalshiRest, tickers: list[str],
                 resolve: Resolver | None = None) -> None:
        self.settings, self.rest, self.tickers = settings, rest, tickers
        self.resolve: Resolver = resolve or _settle_plain
        self._ids = itertools.count(1)
        self.reconnects = 0
        #: ticker -> the result its ``determined`` lifecycle event announced.
        self.determined: dict[str, str] = {}
        #: The clock of the snapshot deadline (tests drive it).
        self.clock_ns: Callable[[], int] = time.monotonic_ns
        #: Called with the ticker of a market not followed that a ``created`` /
        #: ``activated`` lifecycle event announced (must not block nor raise).
        self.on_new_market: Callable[[str], None] | None = None
        #: Reads the followed markets' settlements over REST (the venue's): called once
        #: the lifecycle channel listens on each connection, for what settled before.
        self.catch_up: Callable[[], Awaitable[list[MarketEvent]]] | None = None
        #: The open session's socket and state (None between connections).
        self._live: tuple[ClientConnection, _Session] | None = None

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Market events until cancelled; reconnects forever."""
        attempt = 0
        while True:
            try:
                async with connect(self.settings.ws_url, additional_headers=self._headers(),
                                   open_timeout=self.settings.request_timeout_s,
                                   ping_interval=None) as ws:
                    attempt = 0
                    async for event in self._session(ws):
                        yield event
            except websockets.InvalidStatus as exc:
                code = exc.response.status_code  # never its body: it may quote headers
                if code in (401, 403) and not self.settings.has_credentials:
                    raise ConfigError(f"kalshi websocket: Kalshi refused an unsigned "
                                      f"connection (HTTP {code}): {_SET_KEYS}") from None
                if code in (401, 403):
                    log.error("kalshi websocket: handshake refused (HTTP %d): check "
                              "[plugins.kalshi] api_key_id and private_key, and this "
                              "machine's clock (the signature carries a timestamp); "
                              "reconnecting", code)
                else:
                    log.warning("kalshi websocket: handshake refused (HTTP %d); "
                                "reconnecting", code)
            except (OSError, TimeoutError, websockets.ConnectionClosed,
                    websockets.InvalidHandshake) as exc:
                log.warning("kalshi websocket: %s: %s; reconnecting", type(exc).__name__, exc)
            for status in _stale(self.tickers, "websocket disconnected"):
                yield status
            self.reconnects += 1
            s = self.settings
            await asyncio.sleep(random.uniform(0, min(s.reconnect_max_s,
                                                      s.reconnect_base_s * 2 ** attempt)))
            attempt += 1

    async def add_tickers(self, tickers: Iterable[str]) -> list[str]:
        """Follow ``tickers`` too (those not followed yet, which are returned): every
        reconnect subscribes them, and the open session (if any) gets a ``subscribe`` for
        them now, with the usual answer / snapshot-deadline checks.  A send that fails
        is left to the reconnect."""
        new = [t for t in dict.fromkeys(tickers) if t not in self.tickers]
        if not new:
            return []
        self.tickers.extend(new)
        live = self._live
        if live is not None:
            ws, state = live
            try:
                await self._subscribe(ws, list(new), state.pending, state.asked)
            except (OSError, websockets.ConnectionClosed) as exc:
                log.warning("kalshi websocket: cannot subscribe %s now (%s); the reconnect "
                            "will", ", ".join(new), exc)
        return new

    def _headers(self) -> dict[str, str]:
        if not self.settings.has_credentials:
            return {}
        return self.rest.signer().headers("GET", C.WS_PATH)

    async def _subscribe(self, ws: ClientConnection, tickers: list[str],
                         pending: dict[int, list[str]],
                         asked: dict[str, int] | None = None) -> None:
        cmd_id = next(self._ids)
        pending[cmd_id] = tickers
        if asked is not None:  # each ticker's snapshot is due within the deadline
            now = self.clock_ns()
            asked.update(dict.fromkeys(tickers, now))
        await ws.send(json.dumps({"id": cmd_id, "cmd": "subscribe",
                                  "params": {"channels": ["orderbook_delta"],
                                             "market_tickers": tickers}}))

    async def _subscribe_lifecycle(self, ws: ClientConnection, state: _Session) -> None:
        state.lifecycle_cmd = next(self._ids)
        await ws.send(json.dumps({"id": state.lifecycle_cmd, "cmd": "subscribe",
                                  "params": {"channels": [C.WS_LIFECYCLE_CHANNEL]}}))

    def _auth_required(self, msg: dict[str, Any]) -> None:
        """Kalshi's error 9 on a subscribe: the connection is not authenticated, and
        ``orderbook_delta`` needs it.  Without credentials that is this config's to fix
        (a ``ConfigError``: asking again cannot help); with them, a connection Kalshi did
        not take as signed is made again."""
        if not self.settings.has_credentials:
            raise ConfigError(
                "kalshi websocket: Kalshi serves order books (orderbook_delta) only on an "
                f"authenticated connection (error 9, Authentication required): {_SET_KEYS}")
        raise ConnectionResetError(f"kalshi websocket: Authentication required (error 9) "
                                   f"on a signed connection: {str(msg.get('msg'))[:80]}")

    async def _catch_up(self, state: _Session) -> list[MarketEvent]:
        """:attr:`catch_up`'s settlements (what settled while the lifecycle channel was
        not listening); a failed read is tried again :data:`CATCH_UP_RETRY_S` later."""
        if self.catch_up is None:
            state.catch_up_at = None
            return []
        try:
            events = await self.catch_up()
        except (VenueError, httpx.TransportError) as exc:
            log.warning("kalshi: cannot read the markets' settlements after subscribing the "
                        "lifecycle channel (%s); trying again in %gs", exc, CATCH_UP_RETRY_S)
            state.catch_up_at = time.monotonic() + CATCH_UP_RETRY_S
            return []
        state.catch_up_at = None
        return events

    async def _resubscribe(self, ws: ClientConnection, sids: list[int],
                           state: _Session, *, subscribe: bool = True) -> None:
        tickers = sorted({t for sid in sids for t in state.sid_tickers.pop(sid, [])})
        for sid in sids:
            state.dead.add(sid)
            state.seq.forget(sid)
        for ticker in tickers:
            # A delta on the new subscription before its snapshot must not land on the old
            # ladder (it would be emitted as if the book were whole): it is a resync again.
            state.ladders.pop(ticker, None)
        await ws.send(json.dumps({"id": next(self._ids), "cmd": "unsubscribe",
                                  "params": {"sids": sids}}))
        if tickers and subscribe:
            await self._subscribe(ws, tickers, state.pending, state.asked)

    async def _retry(self, ws: ClientConnection, tickers: Iterable[str], state: _Session,
                     why: str) -> None:
        """Subscribe ``tickers`` again; after :data:`MAX_RETRIES` retries without a
        snapshot in between the connection is dropped (``events`` reconnects)."""
        state.retries += 1
        if state.retries > MAX_RETRIES:
            raise ConnectionResetError(f"kalshi websocket: {MAX_RETRIES} subscribes in a row "
                                       f"brought no snapshot ({why})")
        await self._subscribe(ws, sorted(set(tickers)), state.pending, state.asked)

    async def _overdue(self, ws: ClientConnection, state: _Session) -> None:
        """Ask again for every book whose snapshot has not come within the heartbeat
        deadline of subscribing (the answer or the snapshot lost, or answered so late):
        before, such a book stayed stale for the rest of the connection."""
        limit = self.clock_ns() - int(self.settings.heartbeat_timeout_s * 1e9)
        late = {t for t, at in state.asked.items() if at < limit}
        if not late:
            return
        log.warning("kalshi websocket: no snapshot of %s %gs after subscribing; asking again",
                    ", ".join(sorted(late)), self.settings.heartbeat_timeout_s)
        for cmd_id, tickers in list(state.pending.items()):
            if late & set(tickers):
                del state.pending[cmd_id]
        sids = [sid for sid, tickers in state.sid_tickers.items() if late & set(tickers)]
        if sids:
            late |= {t for sid in sids for t in state.sid_tickers[sid]}
            await self._resubscribe(ws, sids, state, subscribe=False)
        await self._retry(ws, late, state, "snapshot overdue")

    async def _session(self, ws: ClientConnection) -> AsyncIterator[MarketEvent]:
        state = _Session()
        # set with the ticker list copied in one step: add_tickers sends what it adds
        # later on this session, what it added before is in this subscribe
        self._live = (ws, state)
        try:
            # The lifecycle first: Kalshi answers commands in order, so no book of this
            # session comes before a settlement of its market can.
            await self._subscribe_lifecycle(ws, state)
            await self._subscribe(ws, list(self.tickers), state.pending, state.asked)
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel that lands
                # as a frame arrives (the feed never stops).
                async with asyncio.timeout(self.settings.heartbeat_timeout_s):
                    raw = await ws.recv()
                if state.asked:
                    await self._overdue(ws, state)
                if state.catch_up_at is not None and time.monotonic() >= state.catch_up_at:
                    for settlement in await self._catch_up(state):
                        yield settlement
                try:
                    frame = loads_frame(raw)
                    if not isinstance(frame, dict):
                        raise ValueError("not an object")
                except (ValueError, RecursionError):
                    # RecursionError: valid JSON nested thousands deep must not end the run.
                    log.warning("kalshi websocket: malformed frame; resubscribing every book")
                    for status in _stale(self.tickers, "malformed frame"):
                        yield status
                    await self._resubscribe(ws, list(state.sid_tickers), state)
                    continue
                async for event in self._frame(ws, frame, state):
                    yield event
        finally:
            if self._live is not None and self._live[0] is ws:
                self._live = None

    async def _frame(self, ws: ClientConnection, frame: dict[str, Any], state: _Session
                     ) -> AsyncIterator[MarketEvent]:
        kind = frame.get("type")
        if kind == "subscribed" and frame.get("id") == state.lifecycle_cmd:
            # What settled before the channel listened (since the venue's first read, or
            # while disconnected) is read over REST now, once the channel covers the rest.
            for settlement in await self._catch_up(state):
                yield settlement
            return
        if kind == "error" and frame.get("id") == state.lifecycle_cmd:
            log.warning("kalshi websocket: %s subscribe refused: %s; subscribing again",
                        C.WS_LIFECYCLE_CHANNEL, frame.get("msg"))
            state.retries += 1
            if state.retries > MAX_RETRIES:
                raise ConnectionResetError(f"kalshi websocket: {C.WS_LIFECYCLE_CHANNEL} "
                                           f"subscribe refused {MAX_RETRIES} times")
            await self._subscribe_lifecycle(ws, state)
            return
        if kind == C.WS_LIFECYCLE_CHANNEL:
            try:
                settlements = await self._lifecycle(frame.get("msg"))
            except DataError:
                raise  # a result we cannot read on a settled market is refused loudly
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # a frame of the wrong shape: dropped (the settlement poll reads it again)
                log.warning("kalshi websocket: bad %s frame dropped: %s",
                            C.WS_LIFECYCLE_CHANNEL, exc)
                return
            for settlement in settlements:
                yield settlement
            return
        if kind == "subscribed":
            cmd_id, msg = frame.get("id"), frame.get("msg")
            sub_sid = msg.get("sid") if isinstance(msg, dict) else None
            if type(cmd_id) is not int or type(sub_sid) is not int:  # a bool is no id
                # Without its sid the subscription's frames cannot be checked: ask again.
                log.warning("kalshi websocket: malformed subscribed ack %r; resubscribing",
                            str(frame)[:200])
                tickers = state.pending.pop(cmd_id, []) if type(cmd_id) is int else []
                if tickers:
                    await self._retry(ws, tickers, state, "malformed subscribed ack")
                return
            if state.sid_tickers.get(sub_sid) is not None and cmd_id not in state.pending:
                return  # the same answer again (a duplicate frame)
            if cmd_id not in state.pending:
                # The answer to a subscribe given up on (asked again since): its frames
                # would feed the same ladders twice.  Ended at once.
                log.warning("kalshi websocket: late answer to subscribe %s; unsubscribing "
                            "sid %s", cmd_id, sub_sid)
                state.dead.add(sub_sid)
                await ws.send(json.dumps({"id": next(self._ids), "cmd": "unsubscribe",
                                          "params": {"sids": [sub_sid]}}))
                return
            state.sid_tickers[sub_sid] = state.pending.pop(cmd_id)
            return
        if kind == "error":
            cmd_id = frame.get("id")
            msg = frame.get("msg")
            if isinstance(msg, dict) and msg.get("code") == C.WS_ERROR_AUTH_REQUIRED:
                self._auth_required(msg)
            refused = state.pending.pop(cmd_id, None) if type(cmd_id) is int else None
            log.warning("kalshi websocket error: %s%s", frame.get("msg"),
                        "; subscribing again" if refused else "")
            if refused:  # a refused subscribe left these books stale for good
                await self._retry(ws, refused, state, f"subscribe refused: {frame.get('msg')}")
            return
        if kind not in ("orderbook_snapshot", "orderbook_delta"):
            return
        sid = frame.get("sid")
        if type(sid) is not int or sid in state.dead or sid not in state.sid_tickers:
            return  # not a subscription of ours (an unhashable sid must not raise here)
        try:
            state.seq.check(frame)
            events = self._apply(kind, frame.get("msg") or {}, state, sid)
        except (SequenceGap, DataError, KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("kalshi websocket: %s; resubscribing sid %s", exc, sid)
            for status in _stale(state.sid_tickers.get(sid, []), f"book integrity: {exc}"):
                yield status
            await self._resubscribe(ws, [sid], state)
            return
        for event in events:
            yield event

    async def _lifecycle(self, msg: Any) -> list[MarketEvent]:
        """Settlements for a followed market's ``settled`` lifecycle event: a yes / no
        result from the event itself; a scalar or void result (which needs the market's
        settlement value or the account's costs), or none at all, from the market read
        over REST.  ``resolve`` (the venue's) turns the market into events."""
        if not isinstance(msg, dict):
            return []
        if msg.get("market_ticker") not in self.tickers:
            announced = msg.get("market_ticker")
            if (msg.get("event_type") in NEW_MARKET_EVENTS and isinstance(announced, str)
                    and announced and self.on_new_market is not None):
                self.on_new_market(announced)
            return []
        ticker, event_type = msg["market_ticker"], msg.get("event_type")
        if event_type == "determined" and isinstance(msg.get("result"), str):
            self.determined[ticker] = msg["result"]
            return []
        if event_type != "settled":
            return []
        result = msg.get("result") or self.determined.get(ticker)
        if result in ("yes", "no"):
            settled_s = msg.get("settled_ts")
            ts_ns = int(settled_s) * 10**9 if isinstance(settled_s, int) else time.time_ns()
            market = Market(ticker, "", "", "finalized", result=result)
            how = " (websocket)"
        else:
            if result not in (None, "", SCALAR, VOID):  # no payout is ever guessed
                settlement_price(ticker, result, f"{C.WS_LIFECYCLE_CHANNEL} result")
            market = Market.parse((await self.rest.get(f"/markets/{ticker}"))["market"])
            ts_ns, how = time.time_ns(), ""
        return await self.resolve(market, ts_ns, how)

    def _apply(self, kind: str, msg: dict[str, Any], state: _Session,
               sid: int) -> list[MarketEvent]:
        ticker = msg["market_ticker"]
        if ticker not in state.sid_tickers[sid]:
            raise DataError(f"sid {sid} carries {ticker!r}, which it was not subscribed for")
        now = time.time_ns()
        if kind == "orderbook_snapshot":
            fresh = Ladders(ticker)
            fresh.load(*book_sides(msg, "_dollars_fp", f"{ticker} snapshot"))
            books: list[MarketEvent] = list(fresh.books(now))  # a crossed one raises first
            state.ladders[ticker] = fresh
            state.asked.pop(ticker, None)
            state.retries = 0
            return books
        if ticker not in state.ladders:
            raise DataError(f"delta for {ticker} before its snapshot")
        ladders = state.ladders[ticker]
        side, price = msg["side"], dec(msg["price_dollars"], "price_dollars")
        size = ladders.apply(side, price, dec(msg["delta_fp"], "delta_fp"))
        return list(ladders.deltas(side, price, size, now))


class _Session:
    def __init__(self) -> None:
        self.seq = SequenceCheck()
        self.ladders: dict[str, Ladders] = {}
        self.pending: dict[int, list[str]] = {}
        self.sid_tickers: dict[int, list[str]] = {}
        self.dead: set[int] = set()
        self.lifecycle_cmd = 0
        #: when the settlements missed before the lifecycle channel listened are read
        #: (None: read, or the channel not subscribed yet)
        self.catch_up_at: float | None = None
        #: ticker -> when its snapshot was asked for (cleared by the snapshot)
        self.asked: dict[str, int] = {}
        #: subscribes retried since the last snapshot arrived
        self.retries = 0
