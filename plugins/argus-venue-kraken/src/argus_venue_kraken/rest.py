"""Kraken REST client (httpx): public market data and the signed private API.

Public calls are ``GET /0/public/<Method>?...``; private calls are
``POST /0/private/<Method>`` with a url-encoded body that starts with the
nonce, signed in ``API-Sign`` (see :mod:`argus_venue_kraken.signing`).

Refused-but-harmless answers are retried: a rate-limit refusal saturates the
local counter and waits; an invalid nonce draws a fresh nonce; 5xx and
transport errors are retried only for calls that are safe to repeat
(order entry is made safe by its client order id, see ``execution``).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from argus_core import (
    Bar,
    ConfigError,
    DataError,
    OrderBook,
    Trade,
    VenueError,
    loads_frame,
    remember,
)
from argus_venue_kraken import constants as C
from argus_venue_kraken.config import KrakenSettings

if TYPE_CHECKING:
    from argus_venue_kraken.history import GapReport
from argus_venue_kraken.instruments import PairInfo, parse_asset_pairs, rest_altname
from argus_venue_kraken.ratelimit import (
    RETRY_AFTER_MAX_S,
    WAIT_CAP_S,
    Clock,
    RestRateLimiter,
    Sleep,
)
from argus_venue_kraken.schemas import (
    KrakenApiError,
    KrakenNonceError,
    KrakenRateLimitError,
    MalformedAnswerError,
    OhlcRow,
    Ticker,
    pair_entry,
    parse_rest_depth,
    parse_rest_ohlc_row,
    parse_rest_ticker,
    parse_rest_trades,
    unwrap,
)
from argus_venue_kraken.signing import NonceStore, api_sign

log = logging.getLogger(__name__)

#: A refused nonce did nothing at Kraken (it checks the nonce first), so it is drawn afresh
#: up to this many times on top of ``max_retries``, which 5xx, timeouts and rate limits
#: share: one process's concurrent private calls can reach Kraken out of nonce order (a
#: busy event loop, pooled connections, a request held on the way), each such reordering
#: costs the later-arriving call one refusal, and a read that spent its retries on 5xx
#: ended the executions feed on the first refused nonce after them.
NONCE_RETRIES = 10

#: Private methods that change nothing, so a 5xx / timeout may be retried blindly.
_IDEMPOTENT_PRIVATE = frozenset({"Balance", "OpenOrders", "ClosedOrders", "QueryOrders",
                                 "TradesHistory", "QueryTrades", "GetWebSocketsToken",
                                 "TradeBalance", "CancelAllOrdersAfter", "CancelAll"})


class TransientVenueError(VenueError):
    """The request's fate is unknown (5xx, timeout, dropped connection)."""


class KrakenThrottled(KrakenRateLimitError):
    """An HTTP 429 (Kraken's edge, before Kraken saw the request) that said how long to
    stay away (``retry_after_s``), or a call refused unsent because that wait is not over
    and is longer than :data:`~argus_venue_kraken.ratelimit.WAIT_CAP_S`."""

    def __init__(self, method: str, retry_after_s: float, *, sent: bool = True) -> None:
        what = ("HTTP 429" if sent else
                "not sent: Kraken's edge asked for no requests for another")
        super().__init__(method, [f"EAPI:Rate limit exceeded ({what} "
                                  f"{'Retry-After ' if sent else ''}{retry_after_s:.1f}s)"])
        self.retry_after_s = retry_after_s


def retry_after_s(value: str | None, date: str | None = None,
                  now_s: float | None = None) -> float:
    """A ``Retry-After`` in seconds (at most ``RETRY_AFTER_MAX_S``): delta-seconds, or an
    HTTP-date counted from the answer's ``Date`` (the server's clock: a skew between its
    clock and ours cancels out), else from ours; 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        delay = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            sent = email.utils.parsedate_to_datetime(date) if date else None
        except (TypeError, ValueError, IndexError):
            return 0.0
        if when.tzinfo is None:
            return 0.0
        delay = max(0.0, (when - sent).total_seconds() if sent is not None and sent.tzinfo
                    else when.timestamp() - (time.time() if now_s is None else now_s))
    if not math.isfinite(delay) or delay < 0:
        return 0.0
    return min(delay, RETRY_AFTER_MAX_S)


class KrakenRestClient:
    """Async client of Kraken's REST API.

    ``clock``/``sleep`` drive the local rate-limit model (tests pass fakes);
    ``transport`` lets a test swap the network for an ``httpx`` transport.
    """

    def __init__(self, settings: KrakenSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Clock | None = None, sleep: Sleep | None = None,
                 nonce_store: NonceStore | None = None) -> None:
        self.settings = settings
        self._sleep: Sleep = sleep or asyncio.sleep
        self.rest_limiter = RestRateLimiter(settings.rate_limit_tier, clock or time.monotonic,
                                            self._sleep)
        self.nonces = nonce_store or NonceStore(settings.nonce_path)
        host = urllib.parse.urlsplit(settings.rest_url).hostname or ""
        self._http = httpx.AsyncClient(base_url=settings.rest_url.rstrip("/"),
                                       timeout=settings.request_timeout_s, transport=transport,
                                       headers={"User-Agent": "argus-venue-kraken/0.1"},
                                       # An environment proxy makes no sense for a local server.
                                       trust_env=host not in ("127.0.0.1", "localhost", "::1"))
        self._pairs: dict[str, PairInfo] = {}
        self._rng = random.Random()
        #: Kraken's clock less ours, in seconds, from the ``Date`` of its latest answer (0
        #: within the header's one-second resolution): AddOrder deadlines are on its clock.
        self.clock_skew_s = 0.0

    def __repr__(self) -> str:  # never show credentials
        return f"KrakenRestClient({self.settings.rest_url!r})"

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    # -- transport ------------------------------------------------------------------------
    async def _send(self, method: str, request: httpx.Request) -> Any:
        content: bytes | None = None  # None: a body that cannot be decoded
        try:
            # Streamed, so the status survives a body labelled gzip that is not (a
            # proxy's page): httpx raises DecodingError, which is no TransportError, and
            # it escaped every caller bare (an AddOrder unresolved, the executions
            # stream ended), naming neither Kraken nor the call.
            response = await self._http.send(request, stream=True)
            try:
                content = await response.aread()
            except httpx.DecodingError:
                pass
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise TransientVenueError(f"Kraken {method}: timed out "
                                      f"({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientVenueError(f"Kraken {method}: {type(exc).__name__}: {exc}") from None
        self._note_date(response.headers.get("date"))
        if response.status_code == 429:
            wait = retry_after_s(response.headers.get("retry-after"),
                                 response.headers.get("date"))
            if wait > 0:
                self.rest_limiter.hold(wait)
                raise KrakenThrottled(method, wait)
            raise KrakenRateLimitError(method, ["EAPI:Rate limit exceeded"])
        if response.status_code >= 500:
            raise TransientVenueError(f"Kraken {method}: HTTP {response.status_code} from "
                                      f"{request.url.host}")
        if content is None:
            raise MalformedAnswerError(
                f"Kraken {method}: HTTP {response.status_code} with a body that cannot be "
                f"decoded (Content-Encoding "
                f"{response.headers.get('content-encoding', '')!r:.40})")
        try:
            payload = loads_frame(content)  # lone surrogates made whole, too
        except ValueError:  # not JSON, not UTF-8, or a number past int()'s 4,300 digits
            raise MalformedAnswerError(f"Kraken {method}: HTTP {response.status_code} with a "
                                       f"body that is not JSON: {response.text[:120]!r}"
                                       ) from None
        return unwrap(method, payload)

    def _note_date(self, date: str | None) -> None:
        """Learn Kraken's clock from an answer's ``Date`` (whole seconds: a skew under 1.5 s
        is noise and taken as none)."""
        if not date:
            return
        try:
            when = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return
        if when.tzinfo is None:
            return
        skew = when.timestamp() + 0.5 - time.time()  # the header truncates to the second
        self.clock_skew_s = skew if abs(skew) >= 1.5 else 0.0

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.reconnect_max_s, self.settings.reconnect_base_s * 2 ** attempt)
        return self._rng.uniform(base / 2, base)

    async def public(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET /0/public/<method>``; retries throttling and 5xx (public calls are idempotent)."""
        attempt = 0
        while True:
            request = self._http.build_request("GET", C.PUBLIC_PREFIX + method,
                                               params=dict(params or {}))
            try:
                return await self._send(method, request)
            except (KrakenRateLimitError, TransientVenueError) as exc:
                if attempt >= self.settings.max_retries:
                    raise
                delay = self._backoff(attempt)
                log.warning("%s; retrying in %.2fs", exc, delay)
                attempt += 1
                await self._sleep(delay)

    # -- private --------------------------------------------------------------------------
    def _credentials(self) -> tuple[str, str]:
        key, secret = self.settings.api_key, self.settings.api_secret
        if key is None or secret is None:
            raise ConfigError("Kraken private API needs api_key and api_secret in "
                              "[plugins.kraken] (as '$env:NAME' references)")
        return key.reveal(), secret.reveal()

    def signed_request(self, method: str, params: Mapping[str, Any], nonce: int) -> httpx.Request:
        """The POST request for a private call, body ``nonce=...&...`` and its signature."""
        key, secret = self._credentials()
        path = C.PRIVATE_PREFIX + method
        body = urllib.parse.urlencode({"nonce": str(nonce), **{k: _wire(v) for k, v in
                                                               params.items() if v is not None}})
        headers = {"API-Key": key, "API-Sign": api_sign(path, body, nonce, secret),
                   "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return self._http.build_request("POST", path, content=body.encode(), headers=headers)

    async def private(self, method: str, params: Mapping[str, Any] | None = None, *,
                      retry_transient: bool | None = None, retry_rate_limit: bool = True,
                      late_params: Callable[[], Mapping[str, Any]] | None = None) -> Any:
        """``POST /0/private/<method>``, signed, within the local rate-limit model.

        ``EAPI:Invalid nonce`` is retried with a fresh nonce (Kraken checks it
        before anything else, so it did nothing; ``max_retries`` + :data:`NONCE_RETRIES`
        times, apart from the other retries); rate-limit refusals are retried
        after a back-off unless ``retry_rate_limit`` is False (then the counter is
        saturated and the refusal raised); transport errors, 5xx and unreadable bodies only
        when ``retry_transient`` (default: for read-only methods).  ``late_params`` are
        drawn for each send after every wait (an AddOrder ``deadline`` must be counted
        from the moment the request leaves, not from before a ``Retry-After`` wait).
        """
        params = dict(params or {})
        if retry_transient is None:
            retry_transient = method in _IDEMPOTENT_PRIVATE
        attempt = refused_nonces = 0
        while True:
            left = self.rest_limiter.held_for()
            if left > WAIT_CAP_S:  # not slept in line: see WAIT_CAP_S
                raise KrakenThrottled(method, left, sent=False)
            if left > 0:
                await self._sleep(left)
            await self.rest_limiter.acquire(method)
            nonce = self.nonces.next()
            sent = {**params, **late_params()} if late_params is not None else params
            request = self.signed_request(method, sent, nonce)
            try:
                return await self._send(method, request)
            except KrakenNonceError:
                refused_nonces += 1
                if refused_nonces > self.settings.max_retries + NONCE_RETRIES:
                    raise
                log.warning("Kraken %s: invalid nonce %d; drawing a fresh one", method, nonce)
                self.nonces.bump_past(nonce)
                continue  # not one of the max_retries: Kraken did nothing
            except KrakenRateLimitError as exc:
                self.rest_limiter.counter.saturate()
                told = exc.retry_after_s if isinstance(exc, KrakenThrottled) else 0.0
                if not retry_rate_limit or attempt >= self.settings.max_retries \
                        or told > WAIT_CAP_S:
                    raise
                delay = max(self._backoff(attempt), self.rest_limiter.counter.wait_for(1),
                            told)
                log.warning("%s; backing off %.2fs", exc, delay)
                await self._sleep(delay)
            except (TransientVenueError, MalformedAnswerError) as exc:
                # an unreadable body is a failed exchange like a 5xx: for a read, ask again
                if not retry_transient or attempt >= self.settings.max_retries:
                    raise
                delay = self._backoff(attempt)
                log.warning("%s; retrying in %.2fs", exc, delay)
                await self._sleep(delay)
            attempt += 1

    # -- public market data -----------------------------------------------------------------
    async def asset_pairs(self, symbols: list[str] | None = None) -> dict[str, PairInfo]:
        """AssetPairs -> {WS v2 symbol: PairInfo}; cached for later calls."""
        params = {"pair": ",".join(rest_altname(s) for s in symbols)} if symbols else {}
        pairs = parse_asset_pairs(await self.public("AssetPairs", params))
        self._pairs.update(pairs)
        if symbols:
            missing = [s for s in symbols if s not in pairs]
            if missing:
                raise VenueError(f"Kraken AssetPairs has no pair {', '.join(missing)}; check "
                                 f"pairs in [plugins.kraken] (WS v2 names like 'BTC/USD')")
        return pairs

    async def pair(self, symbol: str) -> PairInfo:
        """PairInfo of one symbol (fetched once)."""
        if symbol not in self._pairs:
            await self.asset_pairs([symbol])
        return self._pairs[symbol]

    def cached_pair(self, symbol: str) -> PairInfo | None:
        """PairInfo if already fetched."""
        return self._pairs.get(symbol)

    def symbol_for(self, kraken_pair: str) -> str | None:
        """WS v2 symbol of a REST pair name (``XBTUSD`` / ``XXBTZUSD``), if known."""
        for info in self._pairs.values():
            if kraken_pair in (info.altname, info.rest_key, info.symbol):
                return info.symbol
        return None

    def _entry_of(self, result: Any, method: str, symbol: str) -> tuple[str, Any]:
        """The one pair entry of a public answer about ``symbol``; a ``DataError`` when it
        is another pair's (an answer for the wrong pair was read as this one's book,
        bars or trades).  Kraken keys it by its own name (``XXBTZUSD``): a name AssetPairs
        gave for another pair is refused; one it has not given (pairs not read yet) is
        taken as Kraken's name for this one."""
        key, entry = pair_entry(result, method)
        known = self.symbol_for(key)
        if known is not None and known != symbol:
            raise DataError(f"Kraken {method}: the answer is for pair {key!r}, not "
                            f"{symbol} ({rest_altname(symbol)})")
        return key, entry

    async def ohlc(self, symbol: str, interval_min: int, since_s: int | None = None
                   ) -> tuple[list[OhlcRow], int]:
        """One OHLC page: (rows, ``last``).  The last row is the unfinished current bar."""
        params: dict[str, Any] = {"pair": rest_altname(symbol), "interval": interval_min}
        if since_s is not None:
            params["since"] = since_s
        result = await self.public("OHLC", params)
        key, rows = self._entry_of(result, "OHLC", symbol)
        if not isinstance(rows, list):
            raise VenueError(f"Kraken OHLC[{key}]: expected a list of rows")
        parsed = [parse_rest_ohlc_row(r, interval_min * 60, f"Kraken OHLC[{key}][{i}]")
                  for i, r in enumerate(rows)]
        return parsed, int(result.get("last") or 0)

    async def ohlc_bars(self, symbol: str, interval_min: int, since_s: int | None = None,
                        *, now_ns: int | None = None) -> list[Bar]:
        """Completed bars from one OHLC page (the in-progress bar is dropped)."""
        from argus_venue_kraken.history import bars_from_ohlc_pages

        rows, _ = await self.ohlc(symbol, interval_min, since_s)
        bars, _ = bars_from_ohlc_pages([rows], f"{C.VENUE}:{symbol}", interval_min * 60,
                                       now_ns=now_ns)
        return bars

    async def ohlc_history(self, symbol: str, interval_min: int, since_s: int | None = None,
                           *, max_pages: int = 10, now_ns: int | None = None
                           ) -> tuple[list[Bar], GapReport]:
        """Follow OHLC's ``last`` cursor page by page; merged bars and a gap report."""
        from argus_venue_kraken.history import bars_from_ohlc_pages

        pages: list[list[OhlcRow]] = []
        cursor = since_s
        for _ in range(max_pages):
            rows, last = await self.ohlc(symbol, interval_min, cursor)
            pages.append(rows)
            if not rows or last == cursor:
                break
            cursor = last
        return bars_from_ohlc_pages(pages, f"{C.VENUE}:{symbol}", interval_min * 60,
                                    now_ns=now_ns)

    async def ticker(self, symbol: str) -> Ticker:
        """Ticker of one pair."""
        result = await self.public("Ticker", {"pair": rest_altname(symbol)})
        key, entry = self._entry_of(result, "Ticker", symbol)
        return parse_rest_ticker(entry, f"Kraken Ticker[{key}]")

    async def depth(self, symbol: str, count: int = 10, *, ts_ns: int | None = None) -> OrderBook:
        """Order book (``count`` levels per side) as a core OrderBook."""
        result = await self.public("Depth", {"pair": rest_altname(symbol), "count": count})
        _, entry = self._entry_of(result, "Depth", symbol)
        return parse_rest_depth(entry, f"{C.VENUE}:{symbol}", ts_ns)

    async def trades(self, symbol: str, since: str | None = None) -> tuple[list[Trade], str]:
        """Recent trades and the ``last`` cursor for the next page."""
        params: dict[str, Any] = {"pair": rest_altname(symbol)}
        if since is not None:
            params["since"] = since
        result = await self.public("Trades", params)
        _, rows = self._entry_of(result, "Trades", symbol)
        return parse_rest_trades(rows, f"{C.VENUE}:{symbol}"), str(result.get("last", ""))

    # -- private calls ----------------------------------------------------------------------
    async def balance(self) -> dict[str, str]:
        """Balances by Kraken asset code."""
        return dict(await self.private("Balance"))

    async def add_order(self, params: Mapping[str, Any], *,
                        late_params: Callable[[], Mapping[str, Any]] | None = None) -> Any:
        """AddOrder, sent once: 5xx, timeouts and rate limits are raised, never retried here
        (the caller looks the order up by ``cl_ord_id`` first, see ``execution``);
        ``late_params`` (the ``deadline``) are drawn as it leaves."""
        return await self.private("AddOrder", params, retry_transient=False,
                                  retry_rate_limit=False, late_params=late_params)

    async def cancel_order(self, *, txid: str | None = None, cl_ord_id: str | None = None
                           ) -> dict[str, Any]:
        """CancelOrder by Kraken txid or by client order id (asked again after a 5xx, reset
        or unreadable answer: a second cancel of one order cancels nothing more)."""
        if (txid is None) == (cl_ord_id is None):
            raise ValueError("cancel_order needs exactly one of txid, cl_ord_id")
        params = {"txid": txid} if txid else {"cl_ord_id": cl_ord_id}
        result = await self.private("CancelOrder", params, retry_transient=True)
        if not isinstance(result, dict):
            raise MalformedAnswerError(f"Kraken CancelOrder: result is not an object: "
                                       f"{str(result)[:80]!r}")
        return dict(result)

    async def cancel_all(self) -> int:
        """CancelAll; returns how many orders were cancelled."""
        return int((await self.private("CancelAll")).get("count", 0))

    async def cancel_all_orders_after(self, timeout_s: int) -> dict[str, Any]:
        """Arm (timeout > 0) or disarm (0) the dead-man's switch."""
        return _object(await self.private("CancelAllOrdersAfter", {"timeout": int(timeout_s)}),
                       "CancelAllOrdersAfter")

    async def open_orders(self, cl_ord_id: str | None = None) -> dict[str, Any]:
        """OpenOrders: {txid: order}."""
        result = await self.private("OpenOrders", {"cl_ord_id": cl_ord_id})
        found = result.get("open") if isinstance(result, dict) else None
        if not isinstance(found, dict):  # never "none open": an order may rest unseen
            raise MalformedAnswerError("Kraken OpenOrders: 'open' is not an object")
        return dict(found)

    async def closed_orders(self, cl_ord_id: str | None = None) -> dict[str, Any]:
        """ClosedOrders: {txid: order}, the newest 50 (all of them, with a ``cl_ord_id``)."""
        result = await self.private("ClosedOrders", {"cl_ord_id": cl_ord_id})
        closed = result.get("closed") if isinstance(result, dict) else None
        if not isinstance(closed, dict):
            raise MalformedAnswerError("Kraken ClosedOrders: 'closed' is not an object")
        return dict(closed)

    async def query_orders(self, txids: list[str]) -> dict[str, Any]:
        """QueryOrders: {txid: order} for up to 50 txids."""
        return _object(await self.private("QueryOrders", {"txid": ",".join(txids),
                                                          "trades": True}), "QueryOrders")

    async def trades_history(self, start: int | None = None) -> dict[str, Any]:
        """TradesHistory: {trade_id: trade}, every page from ``start`` (exclusive, Unix s)."""
        trades: dict[str, Any] = {}
        async for page in self.trades_history_pages(start):
            trades.update(page)
        return trades

    async def trades_history_pages(self, start: int | None = None
                                   ) -> AsyncIterator[dict[str, Any]]:
        """TradesHistory page by page (50 trades each, newest first), paged by ``ofs``.

        Kraken counts every match of ``start`` in ``count``; we stop when ``ofs``
        reaches it or a page comes back empty.  A trade made meanwhile shifts
        the newest-first pages by one, so a page may repeat a trade, never skip
        one (callers deduplicate by trade id).  Each page costs 2 on the REST
        counter, which the rate-limit model accounts for.

        An answer that cannot be paged is a ``DataError``, never an endless loop or a
        silent stop after one page: a ``count`` missing or not a whole number >= 0, a
        page listing only trades already listed (``ofs`` ignored), or a ``count`` grown
        more than :data:`PAGING_GROWTH` past the first page's.
        """
        ofs = 0
        listed: set[str] = set()
        first_count: int | None = None
        while True:
            result = await self.private("TradesHistory", {"start": start, "ofs": ofs})
            if not isinstance(result, dict):
                raise DataError("Kraken TradesHistory: result is not an object")
            page = result.get("trades") or {}
            if not isinstance(page, dict):
                raise DataError("Kraken TradesHistory: 'trades' is not an object")
            if not page:
                return
            count = _whole_count(result.get("count"), f"Kraken TradesHistory (ofs {ofs})")
            if first_count is None:
                first_count = count
            elif count > first_count + PAGING_GROWTH:
                raise DataError(f"Kraken TradesHistory: count grew from {first_count} to "
                                f"{count} while paging (ofs {ofs}); not paging on for ever")
            if listed.issuperset(page):
                raise DataError(f"Kraken TradesHistory: the page at ofs {ofs} lists only "
                                f"trades already listed (count {count}): Kraken is not "
                                f"paging by ofs")
            listed.update(page)
            yield dict(page)
            ofs += len(page)
            if ofs >= count:
                return

    async def websockets_token(self) -> str:
        """GetWebSocketsToken: the short-lived token the authenticated WS needs."""
        result = await self.private("GetWebSocketsToken")
        token = result.get("token") if isinstance(result, dict) else None
        if not isinstance(token, str):
            raise VenueError("Kraken GetWebSocketsToken: answer has no token")
        remember(token)  # a credential: redacted wherever it could be printed or stored
        return token


#: How far TradesHistory's ``count`` may grow past its first page's while paging (trades
#: made meanwhile); beyond it the answer is no listing that ends.
PAGING_GROWTH = 500


def _whole_count(value: Any, where: str) -> int:
    """A listing's ``count``: a whole number >= 0 (an int or its decimal text), else
    ``DataError`` (``True``, ``99.9``, ``-1`` or none would end the paging early)."""
    if isinstance(value, str) and value.isdecimal() and value.isascii():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise DataError(f"{where}: count must be a whole number >= 0, got {value!r:.40}")


def _object(result: Any, method: str) -> dict[str, Any]:
    """``result`` of ``method`` when it is an object, else :class:`MalformedAnswerError`."""
    if not isinstance(result, dict):
        raise MalformedAnswerError(f"Kraken {method}: the result is not an object: "
                                   f"{result!r:.80}")
    return dict(result)


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = ["KrakenApiError", "KrakenRestClient", "KrakenThrottled", "TransientVenueError"]
