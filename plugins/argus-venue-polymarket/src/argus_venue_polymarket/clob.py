"""The CLOB over HTTP: py-clob-client-v2's client on an httpx client of our own, and what a
failed order post means (:class:`PostOutcome`, :func:`post_outcome`).

Exactly-once submission has to tell "never sent" from "may have been acted on"; the
library turns every transport failure into one "Request exception!", so the client here
raises :class:`ClobTransportError` / :class:`ClobStatusError` instead.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
import urllib.parse
from typing import Any

import attrs
import httpx
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import OpenOrderParams, TradeParams
from py_clob_client_v2.constants import END_CURSOR, INITIAL_CURSOR
from py_clob_client_v2.endpoints import ORDERS, TRADES
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import loads_frame

#: The longest ``Retry-After`` believed (a venue asking for a day is asked again sooner).
RETRY_AFTER_MAX_S = 300.0
#: The longest a request waits in line for a 429's ``Retry-After``.  A longer wait is not
#: slept: every request to that endpoint before it ends is refused unsent
#: (:class:`ClobRateLimited`), so a caller (the engine's flatten of a kill switch, sent
#: again every 2 s) is never frozen for the venue's whole penalty, and the venue hears
#: nothing from us on that endpoint until the penalty is over.
WAIT_CAP_S = 5.0
#: The most pages one listing (``GET /data/trades``, ``GET /data/orders``) is read to:
#: 100,000 items at the venue's page sizes; a venue whose cursor never reaches the end
#: marker is answered with an error instead of being read for ever.
MAX_PAGES = 200


def retry_after_s(value: str | None, date: str | None = None,
                  now_s: float | None = None) -> float:
    """A ``Retry-After`` in seconds (at most :data:`RETRY_AFTER_MAX_S`): delta-seconds, or
    an HTTP-date counted from the answer's ``Date`` (the venue's clock: a skew between its
    clock and ours cancels out), else from our clock; 0 when absent or unreadable
    (garbage, negative, not finite): the caller's own back-off applies."""
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
        delay = (when - sent).total_seconds() if sent is not None and sent.tzinfo else \
            when.timestamp() - (time.time() if now_s is None else now_s)
        delay = max(delay, 0.0)
    if not math.isfinite(delay) or delay < 0:
        return 0.0
    return min(delay, RETRY_AFTER_MAX_S)


@attrs.frozen
class PostOutcome:
    """How one order post (single or batch) ended, as far as this process can tell.

    ``answer`` is the venue's decoded answer (a ``200`` body, or a ``4xx`` refusal turned
    into ``{"success": false, "errorMsg": ...}``); without one the outcome is ambiguous
    and ``problem`` says why.  ``ended`` is False when the venue may still be acting on
    the request (our timeout, a ``504``); ``refused`` when the venue said it took nothing
    (``429``, no connection) — one clean look-up then suffices.  A ``503`` is not such
    proof (a gateway answers it after the venue acted too, and the order may be listed
    only later): it is looked for until ``order_settle_s`` like a ``502``.
    """

    answer: Any = None
    problem: str = ""
    ended: bool = True
    refused: bool = False
    retry_after_s: float = 0.0


class ClobTransportError(PolyApiException):
    """An exchange with the CLOB that failed below HTTP (no connection, timeout, reset,
    broken framing); ``cause`` is httpx's exception, so "never sent" can be told from
    "may have been acted on"."""

    def __init__(self, cause: httpx.RequestError) -> None:
        super().__init__(error_msg=f"{type(cause).__name__}: {cause}")
        self.cause = cause


class ClobStatusError(PolyApiException):
    """A non-200 answer of the CLOB, with the ``Retry-After`` it carried (seconds, 0 when
    none: a ``429`` says when to come back)."""

    def __init__(self, resp: httpx.Response) -> None:
        super().__init__(resp)
        # An auth layer, WAF or proxy may quote our request back (its L2 headers: API
        # key, passphrase, the request's HMAC): never carried into a message, a log line
        # or a reason the ledger stores.
        self.error_msg = _scrub(getattr(self, "error_msg", None), _auth_values(resp))
        self.retry_after_s = retry_after_s(resp.headers.get("Retry-After"),
                                           resp.headers.get("Date"))


#: Auth headers that are no secret (public, or too short to redact safely).
_PUBLIC_AUTH = frozenset({"poly_address", "poly_timestamp", "poly_nonce"})


def _auth_values(resp: httpx.Response) -> list[str]:
    """The values of the L1/L2 auth headers (``POLY_*``) of the request ``resp`` answers."""
    try:
        headers = resp.request.headers
    except RuntimeError:  # a response built without a request
        return []
    return sorted({v for k, v in headers.items()
                   if k.lower().startswith("poly_") and k.lower() not in _PUBLIC_AUTH
                   and len(v) >= 8}, key=len, reverse=True)


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` (text, or a decoded JSON body) with each of ``secrets`` masked."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[REDACTED]")
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


class ClobRateLimited(PolyApiException):
    """A request not sent: the venue asked (a 429's ``Retry-After``) for nothing on this
    endpoint for longer than :data:`WAIT_CAP_S`; ``retry_after_s``: what is left of it."""

    def __init__(self, what: str, left_s: float) -> None:
        super().__init__(error_msg=f"{what} not sent: the venue asked for no requests for "
                         f"another {left_s:.1f}s (Retry-After)")
        self.status_code = 429
        self.retry_after_s = left_s


class ClobPagingError(PolyApiException):
    """A listing that cannot be read to its end: a ``next_cursor`` seen before (the venue
    would serve the same pages for ever), missing, not text, or past :data:`MAX_PAGES`;
    or a page that is not ``{"data": [...], "next_cursor": ...}``."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(error_msg=f"{what}: {problem}")


class ClobHttpClient(ClobClient):
    """py-clob-client-v2's ``ClobClient`` over an httpx client of its own.

    The library sends through one module-wide httpx client (httpx's default 5 s
    timeout) and turns every transport failure into "Request exception!"; exactly-once
    submission needs a configured timeout and to know *which* failure happened.  The
    request shape (headers, JSON body, status handling) is the library's.
    """

    def __init__(self, host: str, chain_id: int, *, timeout_s: float, **kwargs: Any) -> None:
        # retry_on_error stays False: the library would re-post an order blind after a 5xx.
        super().__init__(host, chain_id, retry_on_error=False, **kwargs)
        self.http = httpx.Client(http2=True, timeout=timeout_s)
        #: "METHOD /path" -> monotonic time until which a 429 asked us not to call it.
        self.holds: dict[str, float] = {}
        self._holds_lock = threading.Lock()

    def _request(self, method: str, endpoint: str, headers: dict[str, str] | None,
                 data: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = dict(headers or {})
        headers.update({"User-Agent": "py_clob_client_v2", "Accept": "*/*",
                        "Connection": "keep-alive", "Content-Type": "application/json"})
        if method == "GET":
            headers["Accept-Encoding"] = "gzip"
        what = f"{method} {urllib.parse.urlsplit(endpoint).path}"
        with self._holds_lock:
            left = self.holds.get(what, 0.0) - time.monotonic()
        if left > WAIT_CAP_S:
            raise ClobRateLimited(what, left)
        if left > 0:
            time.sleep(left)  # a short wait the venue asked for (a worker thread's)
        try:
            if isinstance(data, str):
                resp = self.http.request(method, endpoint, headers=headers,
                                         content=data.encode("utf-8"), params=params)
            else:
                resp = self.http.request(method, endpoint, headers=headers, json=data,
                                         params=params)
        except httpx.RequestError as exc:
            raise ClobTransportError(exc) from exc
        if resp.status_code != 200:
            refusal = ClobStatusError(resp)
            if resp.status_code == 429 and refusal.retry_after_s > 0:
                with self._holds_lock:
                    self.holds[what] = max(self.holds.get(what, 0.0),
                                           time.monotonic() + refusal.retry_after_s)
            raise refusal
        try:
            return loads_frame(resp.content)  # depth, digits, lone surrogates: as frames
        except ValueError:
            return resp.text

    def get_trades(self, params: TradeParams | None = None, only_first_page: bool = False,
                   next_cursor: str | None = None) -> list[Any]:
        """``GET /data/trades`` (the library's query), every page (:meth:`_read_pages`)."""
        p = params or TradeParams()
        query = {"market": p.market, "asset_id": p.asset_id, "after": p.after,
                 "before": p.before, "maker_address": p.maker_address, "id": p.id}
        return self._read_pages(TRADES, query, only_first_page, next_cursor)

    def get_open_orders(self, params: OpenOrderParams | None = None,
                        only_first_page: bool = False, next_cursor: str | None = None
                        ) -> list[Any]:
        """``GET /data/orders`` (the library's query), every page (:meth:`_read_pages`)."""
        p = params or OpenOrderParams()
        query = {"market": p.market, "asset_id": p.asset_id, "id": p.id}
        return self._read_pages(ORDERS, query, only_first_page, next_cursor)

    def _read_pages(self, path: str, query: dict[str, Any], only_first_page: bool,
                    next_cursor: str | None) -> list[Any]:
        """The items of every page of ``path`` (``next_cursor`` paging to ``LTE=``), as the
        library reads them, but never for ever: the library's loop re-read the same page
        without end when the venue repeated a cursor (or sent ``null``), holding its
        worker thread and every poll that waited on it (:class:`ClobPagingError`)."""
        what = f"GET {path}"
        headers = self._l2_headers("GET", path)
        params = {k: v for k, v in query.items() if v}
        cursor: Any = next_cursor or INITIAL_CURSOR
        seen: set[str] = set()
        items: list[Any] = []
        while cursor != END_CURSOR:
            if not isinstance(cursor, str) or not cursor:
                raise ClobPagingError(what, f"next_cursor {cursor!r:.40} is no cursor")
            if cursor in seen:
                raise ClobPagingError(what, f"next_cursor {cursor!r:.40} came back after "
                                            f"{len(seen)} page(s): the listing never ends")
            if len(seen) >= MAX_PAGES:
                raise ClobPagingError(what, f"more than {MAX_PAGES} pages (next_cursor "
                                            f"never {END_CURSOR!r})")
            seen.add(cursor)
            page = self._get(f"{self.host}{path}", headers=headers,
                             params={**params, "next_cursor": cursor})
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ClobPagingError(what, f"a page that is not {{data: [...], next_cursor}} "
                                            f"({str(page)[:80]!r})")
            items.extend(page["data"])
            cursor = page.get("next_cursor")
            if only_first_page:
                break
        return items

    def _resolve_transactions_hashes(self, response: Any) -> Any:
        # The library polls the trades for up to 30 s after a match to fill in settlement
        # transaction hashes; fills are booked from the answer's amounts and the trades
        # feed, so that wait would only delay the answer (and the basket's judgement).
        return response

    def _get(self, endpoint: str, headers: Any = None, params: dict[str, Any] | None = None
             ) -> Any:
        return self._request("GET", endpoint, headers, None, params)

    def _post(self, endpoint: str, headers: Any = None, data: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        return self._request("POST", endpoint, headers, data, params)

    def _delete(self, endpoint: str, headers: Any = None, data: Any = None,
                params: dict[str, Any] | None = None) -> Any:
        return self._request("DELETE", endpoint, headers, data, params)


def post_outcome(exc: Exception) -> PostOutcome:
    """What a failed order post means (see :class:`PostOutcome`)."""
    if isinstance(exc, ClobTransportError):
        cause = exc.cause
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return PostOutcome(problem=f"not sent ({exc.error_msg})", refused=True)
        if isinstance(cause, httpx.TimeoutException):
            return PostOutcome(problem=f"no answer in time ({exc.error_msg})", ended=False)
        return PostOutcome(problem=f"the connection failed mid-exchange ({exc.error_msg})")
    if isinstance(exc, PolyApiException) and exc.status_code is not None:
        code, msg = exc.status_code, exc.error_msg
        if code == 429:
            return PostOutcome(problem=f"rate limited (429: {_short(msg)})", refused=True,
                               retry_after_s=exc.retry_after_s
                               if isinstance(exc, ClobStatusError | ClobRateLimited) else 0.0)
        if code == 503:
            return PostOutcome(problem=f"venue unavailable (503: {msg})")
        if code == 504:
            return PostOutcome(problem=f"gateway timeout (504: {msg})", ended=False)
        if code >= 500:
            return PostOutcome(problem=f"venue error ({code}: {msg})")
        text = msg.get("error", msg) if isinstance(msg, dict) else msg
        return PostOutcome(answer={"success": False, "errorMsg": str(text), "orderID": "",
                                   "status": f"http {code}"})
    return PostOutcome(problem=f"{type(exc).__name__}: {exc}")



def _short(msg: Any) -> str:
    """A refusal's body for a message: a CDN's HTML page (Cloudflare's 429) by its title,
    anything else cut at 200 characters."""
    text = str(msg)
    if "<html" in text.lower():
        start, end = text.lower().find("<title>"), text.lower().find("</title>")
        return f"HTML page {text[start + 7:end].strip()!r}" if 0 <= start < end else \
            "an HTML page"
    return text[:200]
