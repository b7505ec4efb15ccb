"""The Trade API v2 REST client: public market data and signed portfolio calls.

Every request waits for the local rate limiter first (:mod:`.ratelimit`).  Reads (GET)
are retried on 429 (after its ``Retry-After`` when given) / 5xx / transport errors
(``max_retries``); writes are sent exactly once here and their ambiguous outcomes are
resolved by ``execution``.
Lists are read whole through :meth:`KalshiRest.pages` (Kalshi's ``cursor`` / ``limit``
pagination: docs getting_started/pagination).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from argus_core import ConfigError, DataError, VenueError, loads_frame, redact
from argus_venue_kalshi import constants as C
from argus_venue_kalshi import signing
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.ratelimit import DEFAULT_COST, EndpointCosts, RateLimiter

log = logging.getLogger(__name__)


class KalshiHttpError(VenueError):
    """Kalshi answered with an HTTP error; ``status`` and ``code`` say which."""

    def __init__(self, status: int, code: str, message: str,
                 retry_after_s: float | None = None) -> None:
        super().__init__(f"kalshi: HTTP {status} {code}: {message}")
        self.status, self.code, self.retry_after_s = status, code, retry_after_s


#: The longest ``Retry-After`` believed: a venue asking for more (a garbled hour, a day) is
#: asked again after this long rather than never.
RETRY_AFTER_MAX_S = 300.0
#: The longest a request waits in line for a rate limit.  A longer wait fails the request
#: at once, unsent, with a 429 that says how long is left (:class:`KalshiRateLimited`):
#: the caller (the engine: a flatten of the kill switch is sent again 2 s later; a
#: cancel of a halt, too) is never frozen for the venue's whole penalty, and nothing is
#: sent to Kalshi before the penalty ends.
WAIT_CAP_S = 5.0


def _http_date(value: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None


def retry_after(value: str | None, date: str | None = None,
                now_s: float | None = None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (at most :data:`RETRY_AFTER_MAX_S`):
    delta-seconds, or an HTTP-date counted from the answer's ``Date`` header (Kalshi's
    own clock: a skew between its clock and ours cancels out), else from our clock.  None
    when absent or unreadable (negative, not finite, garbage): the caller backs off on its
    own."""
    if not value:
        return None
    try:
        delay = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        sent = _http_date(date) if date else None
        delay = (when - sent).total_seconds() if sent is not None else \
            when.timestamp() - (time.time() if now_s is None else now_s)
        delay = max(delay, 0.0)  # a date already past: come back now
    if not math.isfinite(delay) or delay < 0:
        return None
    return min(delay, RETRY_AFTER_MAX_S)


def backoff_s(exc: KalshiHttpError | None, attempt: int) -> float:
    """How long to wait before retry ``attempt`` (1, 2, ...): the exchange's Retry-After
    when it gave one, never less than the exponential back-off (a ``Retry-After: 0``
    must not turn a burst of 429s into a burst of requests)."""
    floor = min(0.05 * 2 ** attempt, 2.0)
    if exc is not None and exc.retry_after_s is not None:
        return max(exc.retry_after_s, floor)
    return floor


class KalshiRateLimited(KalshiHttpError):
    """A request not sent: Kalshi asked (a 429's ``Retry-After``) for no requests for
    longer than :data:`WAIT_CAP_S`; ``retry_after_s`` is what is left of that wait."""

    def __init__(self, method: str, path: str, left_s: float) -> None:
        super().__init__(429, "rate_limited", f"{method} {path} not sent: Kalshi asked for "
                         f"no requests for another {left_s:.1f}s (Retry-After)", left_s)


class KalshiMalformedAnswer(VenueError):
    """A 2xx answer whose body is not a JSON object (cut short, an HTML page) or not the
    documented shape: for a write, whether Kalshi acted is unknown."""


class KalshiPagingError(VenueError):
    """A paged list answered a cursor it had already given, pages that each name a next
    cursor and add no item (empty, or repeating items already read) :data:`MAX_EMPTY_PAGES`
    times in a row, or more than :data:`MAX_PAGES` pages: reading on would never end."""


#: Pages in a row that each name a new cursor and add no item (empty, or only items
#: already read) after which a list is given up on (new cursors every time escape the
#: repeated-cursor check).  One such page is a list shifting under the reader (exactly a
#: page of new items arrived between two reads); several in a row are a server that
#: ignores ``cursor``.
MAX_EMPTY_PAGES = 3
#: The most pages one list is read for (``page_limit`` items each): past it the list is
#: taken for one that never ends.
MAX_PAGES = 10_000


def _identity(item: Any, id_key: str | None) -> str:
    """What makes ``item`` one item of a paged list: its ``id_key`` when it carries one
    as a non-empty string, else its whole text."""
    if id_key and isinstance(item, dict) and isinstance(item.get(id_key), str) \
            and item[id_key]:
        return f"id:{item[id_key]}"
    return "text:" + json.dumps(item, sort_keys=True, default=str)


class KalshiRest:
    """Async client of ``settings.rest_url`` (paths under ``/trade-api/v2``)."""

    def __init__(self, settings: KalshiSettings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(base_url=settings.rest_url,
                                         timeout=settings.request_timeout_s)
        self._signer: signing.Signer | None = None
        reads, writes = settings.limits_per_s
        # budgets in tokens: the settings count requests at the default cost
        self.reads = RateLimiter(reads * DEFAULT_COST)
        self.writes = RateLimiter(writes * DEFAULT_COST)
        #: What each request costs (documented defaults until :meth:`load_costs`).
        self.costs = EndpointCosts()
        #: How far Kalshi's clock is ahead of this machine's (seconds; negative: behind),
        #: from the latest answer's ``Date`` header (to its second, less half the round
        #: trip); None until an answer carried one.  Times Kalshi compares (``min_ts``,
        #: the historical cutoffs) are on its clock, not ours.
        self.clock_offset_s: float | None = None

    def signer(self) -> signing.Signer:
        """The request signer (reads the key references on first use)."""
        if self._signer is None:
            s = self.settings
            if s.api_key_id is None or s.private_key is None:
                raise ConfigError("[plugins.kalshi]: api_key_id and private_key must be set "
                                  "for signed calls")
            self._signer = signing.Signer(s.api_key_id.reveal(),
                                          signing.load_private_key(s.private_key.reveal()))
        return self._signer

    async def load_costs(self) -> None:
        """Read ``GET /account/endpoint_costs`` (signed) into :attr:`costs`; on failure
        keep the documented costs and say so."""
        try:
            self.costs = EndpointCosts.from_payload(
                await self.get("/account/endpoint_costs", signed=True))
        except (VenueError, DataError, httpx.TransportError) as exc:
            log.warning("kalshi: endpoint costs unavailable (%s); using the documented "
                        "costs (default %d tokens)", exc, self.costs.default)

    def cost(self, method: str, path: str, items: int = 1) -> int:
        """Tokens one request costs (see :class:`EndpointCosts`)."""
        return self.costs.cost(method, path.split("?", 1)[0], items)

    async def send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   body: dict[str, Any] | None = None, signed: bool = False,
                   items: int = 1) -> Any:
        """One request (a batch of ``items`` orders); the decoded body, or
        :class:`KalshiHttpError` (a 429 also pauses this limiter for its Retry-After), or
        :class:`KalshiMalformedAnswer` for a 2xx whose body is not a JSON object.
        The limiter is charged the request's token cost first.  Transport errors
        (timeouts, resets) propagate as ``httpx`` exceptions."""
        full = C.API_PREFIX + path
        limiter = self.reads if method == "GET" else self.writes
        tokens = self.cost(method, path, items)
        if tokens > limiter.limit:  # Kalshi would refuse it every time: never sent
            raise VenueError(f"kalshi: {method} {path} costs {tokens} tokens, more than the "
                             f"{limiter.limit}-token budget per second; raise "
                             f"[plugins.kalshi] rate_limit_tier or reads_per_s / writes_per_s")
        left = limiter.held_for()
        if left > WAIT_CAP_S:
            raise KalshiRateLimited(method, path, left)
        await limiter.acquire(tokens)
        headers = self.signer().headers(method, full) if signed else {}
        sent_s = time.time()
        request = self._client.build_request(method, full, params=params, json=body,
                                             headers=headers)
        # Streamed, so the status survives a body that cannot be decoded (labelled gzip
        # but not: a proxy's page): httpx raises DecodingError, which is no
        # TransportError, and it escaped every caller bare, naming no venue or order.
        resp = await self._client.send(request, stream=True)
        try:
            content: bytes | None = await resp.aread()
        except httpx.DecodingError:
            content = None
        finally:
            await resp.aclose()
        self._note_clock(resp.headers.get("date"), sent_s, time.time())
        try:
            # depth, digits, lone surrogates: as frames
            payload = None if content is None else loads_frame(content)
        except ValueError:
            payload = None
        if resp.status_code >= 400:
            err = (payload or {}).get("error", {}) if isinstance(payload, dict) else {}
            if not isinstance(err, dict):  # a proxy's {"error": "text"}: a message, no code
                err = {"message": str(err)}
            wait = retry_after(resp.headers.get("retry-after"), resp.headers.get("date"))
            if resp.status_code == 429 and wait:
                limiter.hold(wait)
            text = resp.text if content is not None else "(a body that cannot be decoded)"
            raise KalshiHttpError(resp.status_code, str(err.get("code", "")),
                                  str(err.get("message", redact(text)[:200])), wait)
        if not isinstance(payload, dict):
            what = (f"{len(content)} bytes" if content is not None else
                    f"Content-Encoding {resp.headers.get('content-encoding', '')!r:.40} "
                    f"that cannot be decoded")
            raise KalshiMalformedAnswer(f"kalshi: {method} {path}: HTTP {resp.status_code} "
                                        f"with a body that is not a JSON object ({what})")
        return payload

    def _note_clock(self, date: str | None, sent_s: float, answered_s: float) -> None:
        """Learn Kalshi's clock offset from an answer's ``Date`` (whole seconds: the
        midpoint of its second, against the midpoint of the round trip)."""
        when = _http_date(date) if date else None
        if when is not None:
            self.clock_offset_s = when.timestamp() + 0.5 - (sent_s + answered_s) / 2

    async def get(self, path: str, params: dict[str, Any] | None = None, *,
                  signed: bool = False) -> Any:
        """A GET, retried on 429 (after its Retry-After), 5xx, unreadable answers and
        transport errors."""
        attempt = 0
        while True:
            refusal: KalshiHttpError | None = None
            try:
                return await self.send("GET", path, params=params, signed=signed)
            except KalshiHttpError as exc:
                if (exc.status != 429 and exc.status < 500) or attempt >= self.settings.max_retries:
                    raise
                refusal = exc
            except (KalshiMalformedAnswer, httpx.TransportError):
                if attempt >= self.settings.max_retries:
                    raise
            attempt += 1
            wait = backoff_s(refusal, attempt)
            if refusal is not None and wait > WAIT_CAP_S:
                raise refusal  # not waited out in line: see WAIT_CAP_S
            await asyncio.sleep(wait)

    async def pages(self, path: str, key: str, params: dict[str, Any] | None = None, *,
                    signed: bool = False, id_key: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[Any]:
        """Every item under ``key`` of a cursor-paged list: ``limit`` is
        ``settings.page_limit``; pages are read until the cursor comes back empty.

        Items are de-duplicated: by ``id_key`` (``"order_id"``, ``"trade_id"``) where an
        item carries it as a string, else by their whole text; an item read twice keeps
        its first place and the later read's contents (the newer).  A list can shift
        while it is read (Kalshi's lists are newest first: orders placed between two page
        reads push older ones onto the next page, which then repeats items, a whole page
        when exactly ``limit`` arrived), so a repeated page is not an error.  What
        would read for ever is: a cursor seen before, or :data:`MAX_EMPTY_PAGES` pages in
        a row that each name a new cursor and add no item (empty, or only items already
        read: a server ignoring ``cursor``), or more than :data:`MAX_PAGES` pages; each
        raises :class:`KalshiPagingError`.  ``progress(pages, items)``, when given, is
        called after each page (a long read can say how far it has got)."""
        items: dict[str, Any] = {}
        seen: set[str] = set()
        stale = 0  # pages in a row that added no item
        query: dict[str, Any] = {**(params or {}), "limit": self.settings.page_limit}
        for pages_read in range(1, MAX_PAGES + 1):
            answer = await self.get(path, query, signed=signed)
            page = answer.get(key) or []
            cursor = answer.get("cursor") or ""
            if not isinstance(page, list) or not isinstance(cursor, str):
                raise KalshiMalformedAnswer(f"kalshi: GET {path}: '{key}' is not a list or "
                                            f"'cursor' not a string")
            added = 0
            for item in page:
                ident = _identity(item, id_key)
                added += ident not in items
                items[ident] = item  # a later read of an item is the newer
            if progress is not None:
                progress(pages_read, len(items))
            if not cursor:
                return list(items.values())
            if cursor in seen:
                raise KalshiPagingError(f"kalshi: GET {path} answered cursor {cursor!r} "
                                        f"twice; stopped after {len(seen) + 1} pages")
            stale = 0 if added else stale + 1
            if stale >= MAX_EMPTY_PAGES:
                raise KalshiPagingError(f"kalshi: GET {path} answered {stale} pages in a "
                                        f"row that added nothing (empty, or only items "
                                        f"already read), each with a new cursor: not "
                                        f"paging; stopped after {len(seen) + 1} pages")
            seen.add(cursor)
            query["cursor"] = cursor
        raise KalshiPagingError(f"kalshi: GET {path}: more than {MAX_PAGES} pages of "
                                f"{self.settings.page_limit}; stopped (raise page_limit in "
                                f"[plugins.kalshi] if the list is really this long)")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
