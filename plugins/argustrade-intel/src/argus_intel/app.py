"""The intelligence API: a read-only FastAPI app over run ledgers and the plugins' analytics.

Every endpoint is under ``/v1`` and needs an API key (``Authorization: Bearer KEY`` or
``X-API-Key: KEY``): a missing, malformed, unknown or wrong key is refused with 401, a
revoked one with 403.  Then the key's token bucket (429 with ``Retry-After``, seconds
until a token is back) and its daily quota (429 naming the quota, ``Retry-After`` until
the next UTC midnight, when it resets) are checked, in that order; only a request that
passes both counts against the quota.  Answers carry ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-Quota-Limit`` and ``X-Quota-Remaining``.  The OpenAPI
document (``/openapi.json``) and its pages (``/docs``) need no key.

Errors are JSON: ``{"error": {"code": "...", "message": "..."}}``.  Lists are keyset
pages (``limit``, ``cursor``): ``{"data": [...], "next_cursor": C, "next": PATH}``, with
``next`` and ``next_cursor`` null on the last page.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from argus_core import (
    ArgusError,
    ConfigError,
    DataError,
    LedgerError,
    OptionLeg,
    PluginError,
    Pricer,
    redact,
)
from argus_intel import regimes as regime_mod
from argus_intel import spreads as spread_mod
from argus_intel import surface
from argus_intel.bars import BarSeries, bars_of_config
from argus_intel.keys import ApiKey, KeyStore
from argus_intel.ledger_view import (
    EQUITY,
    OPPORTUNITIES,
    SIGNALS,
    Page,
    RunLedger,
    decode_cursor,
    encode_cursor,
)
from argus_intel.limits import RateLimiter, seconds_to_utc_midnight, utc_day
from argus_intel.pricers import build_pricer

log = logging.getLogger("argus.intel")
T = TypeVar("T")

API_VERSION = "v1"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_PATHS = 2_000_000
MAX_QUOTES = 5000
MAX_CLOSES = 1_000_000
#: Largest request body read: a million closes with their time stamps as JSON is ~40 MB.
MAX_BODY = 64 * 1024 * 1024
#: Query parameters a client might put a key in; a key is never accepted there (a URL is
#: logged, kept in histories and sent on in Referer headers), and the refusal says so.
QUERY_KEY_NAMES = ("api_key", "apikey", "key", "token", "access_token", "x-api-key")


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the app
    reads it (a declared ``Content-Length``), or as soon as the count passes it (chunked),
    so a huge body never sits in memory whole."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body, or answer 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        if declared:
            await self.app(scope, receive, send)  # the server stops at the declared length
            return
        # No length declared (chunked): read it here, counting, then hand it on.
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, "body_too_large", f"the request body is over "
                     f"{self.max_bytes // (1024 * 1024)} MB")(scope, receive, send)


#: Headers of every ``/v1`` answer, errors included: its figures are a key holder's, and a
#: shared cache may store an answer to a request that sent ``X-API-Key`` (RFC 9111 keeps
#: only ``Authorization`` requests out of shared caches).
PRIVATE_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))


class PrivateAnswers:
    """ASGI middleware: :data:`PRIVATE_HEADERS` on every answer under ``/v1``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to its answer's start."""
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(
                f"/{API_VERSION}/"):
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in PRIVATE_HEADERS}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in names]
                message = {**message, "headers": [*headers, *PRIVATE_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_private)


class QueryHidden(logging.Filter):
    """Drops the query string from uvicorn's access log lines: a client that puts a key
    in the URL (refused, but sent all the same) must not have it written to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, with ``path?query`` shown as ``path?…``."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) \
                and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def redacted(value: Any) -> Any:
    """``value`` (decoded JSON) with every string passed through ``argus_core.redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


class ApiError(Exception):
    """An error answered as JSON with ``status`` and a stable ``code``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None
           ) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


# -- request and response bodies (they are the OpenAPI document's schemas) -----------

class PageOut(BaseModel):
    """One page of rows; ``next`` (a URL) and ``next_cursor`` are null on the last page."""

    data: list[dict[str, Any]]
    next_cursor: str | None = None
    next: str | None = None


class RegimesIn(BaseModel):
    """Closes to classify (``closes``, optional ``ts_ns``), or a served run's bars
    (``run_id``, and ``instrument_id`` when the run has several instruments)."""

    closes: list[float] | None = Field(None, min_length=2, max_length=MAX_CLOSES)
    ts_ns: list[int] | None = None
    run_id: str | None = None
    instrument_id: str | None = None
    # allow_inf_nan=False: inf (or 1e309, read as inf) passed gt= and made figures of no
    # meaning (no change point ever, zero vol).
    hazard_lambda: float = Field(250.0, gt=1, allow_inf_nan=False,
                                 description="expected bars between changes")
    window: int = Field(10, ge=0, lt=500, description="P(change) = P(run started within "
                                                      "the last `window` bars)")
    threshold: float = Field(0.5, gt=0, le=1, allow_inf_nan=False,
                             description="change point: P(change) rises through this")
    warmup_bars: int = Field(0, ge=0)
    vol_window: int = Field(20, ge=2)
    lookback: int = Field(252, ge=2)
    periods_per_year: float = Field(252.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_source(self) -> RegimesIn:
        if (self.closes is None) == (self.run_id is None):
            raise ValueError("give either closes or run_id")
        if self.ts_ns is not None and (self.closes is None or
                                       len(self.ts_ns) != len(self.closes)):
            raise ValueError("ts_ns must have one time stamp per close")
        if self.ts_ns is not None:
            _check_times(self.ts_ns)
        return self


def _check_times(ts_ns: list[int]) -> None:
    """Posted time stamps are bars' times: in int64 nanoseconds, strictly increasing (they
    were echoed back as given: out of order, repeated, negative, 2**70)."""
    for i, t in enumerate(ts_ns):
        if not 0 <= t < 2**63:
            raise ValueError(f"ts_ns[{i}] = {t} is not a time in nanoseconds since 1970 "
                             f"(0 .. 2**63 - 1)")
        if i and t <= ts_ns[i - 1]:
            raise ValueError(f"ts_ns[{i}] = {t} does not follow ts_ns[{i - 1}] = "
                             f"{ts_ns[i - 1]}: time stamps must increase")


class RegimesOut(PageOut):
    """A page of per-bar regime figures, and every change point of the series."""

    n_bars: int
    change_points: list[dict[str, Any]]


class LegIn(BaseModel):
    """One European option leg: ``quantity`` per unit of underlying (< 0: short)."""

    kind: Literal["call", "put"]
    strike: float = Field(gt=0)
    quantity: float = Field(1.0, allow_inf_nan=False)


class HestonIn(BaseModel):
    """Heston parameters (annualised variances: 0.04 = 20% vol)."""

    v0: float = Field(gt=0, le=25)
    kappa: float = Field(gt=0, le=100)
    theta: float = Field(gt=0, le=25)
    sigma: float = Field(gt=0, le=20, description="vol of variance")
    rho: float = Field(gt=-1, lt=1)


class PopIn(BaseModel):
    """A position held to expiry (``leg`` or ``legs``) and the Heston model to price it."""

    leg: LegIn | None = None
    legs: list[LegIn] | None = Field(None, min_length=1, max_length=8)
    spot: float = Field(gt=0, allow_inf_nan=False)
    t_years: float = Field(gt=0, le=30)
    premium: float = Field(0.0, allow_inf_nan=False,
                           description="net credit per unit of underlying (> 0 received)")
    rate: float = Field(0.0, ge=-1, le=1)
    dividend_yield: float = Field(0.0, ge=-1, le=1)
    model: HestonIn
    paths: int = Field(100_000, ge=2, le=MAX_PATHS)
    seed: int = Field(0, ge=0, lt=2**63)

    @model_validator(mode="after")
    def _one_of_leg_legs(self) -> PopIn:
        if (self.leg is None) == (self.legs is None):
            raise ValueError("give either leg or legs")
        return self


class PopOut(BaseModel):
    """The pricer's answer (``argus_core.PricingResult``)."""

    pricer: str
    backend: str
    p_profit: float
    stderr: float
    expected_pnl: float | None
    paths: int
    details: dict[str, Any]


class OptionQuoteIn(BaseModel):
    """A posted quote; prices per unit of underlying."""

    expiry: dt.date
    strike: float = Field(gt=0)
    kind: Literal["call", "put"] = "put"
    bid: float = Field(ge=0, allow_inf_nan=False)
    ask: float = Field(ge=0, allow_inf_nan=False)


class AnomaliesIn(BaseModel):
    """A chain to judge: quotes of one underlying on ``as_of``."""

    spot: float = Field(gt=0)
    as_of: dt.date
    rate: float = Field(0.0, ge=-1, le=1)
    dividend_yield: float = Field(0.0, ge=-1, le=1)
    k: float = Field(3.0, gt=0, description="flag quotes this many standard deviations off")
    min_quotes: int = Field(5, ge=4)
    min_sigma: float = Field(0.002, ge=0)
    quotes: list[OptionQuoteIn] = Field(min_length=1, max_length=MAX_QUOTES)


class PutQuoteIn(BaseModel):
    """A posted put; prices per share, sizes in contracts (default: not limiting)."""

    expiry: dt.date
    strike: float = Field(gt=0)
    bid: float = Field(ge=0, allow_inf_nan=False)
    ask: float = Field(ge=0, allow_inf_nan=False)
    bid_size: float = Field(1e9, gt=0)
    ask_size: float = Field(1e9, gt=0)


class SpreadsIn(BaseModel):
    """A put chain; ``settings`` overrides the VRP strategy's ``[plugins.vrp]`` rules."""

    underlying: str = Field("SPY", min_length=1, max_length=16, pattern=r"^[A-Za-z0-9.]+$")
    spot: float = Field(gt=0)
    as_of: dt.date
    realised_vol: float | None = Field(None, ge=0)
    equity: float | None = Field(None, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    quotes: list[PutQuoteIn] = Field(min_length=1, max_length=MAX_QUOTES)


# -- the app ---------------------------------------------------------------------------

class Runs:
    """The served run directories by run id, and their bars (read once, on first ask)."""

    def __init__(self, run_dirs: Sequence[Path], data_dirs: Sequence[Path]) -> None:
        self.data_dirs = [Path(d) for d in data_dirs]
        self.ledgers: dict[str, RunLedger] = {}
        for run_dir in run_dirs:
            ledger = RunLedger(Path(run_dir))
            run_id = str(ledger.run()["run_id"])
            if run_id in self.ledgers:
                raise ConfigError(f"{run_dir} and {self.ledgers[run_id].run_dir} hold the same "
                                  f"run {run_id} (one config, run twice); serve one of them")
            self.ledgers[run_id] = ledger
        self._bars: dict[str, list[BarSeries]] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunLedger:
        """The run's ledger; 404 when it is not served."""
        ledger = self.ledgers.get(run_id)
        if ledger is None:
            raise ApiError(404, "run_not_found", f"no run {run_id!r} is served here (see "
                                                 f"/{API_VERSION}/runs)")
        return ledger

    def bars(self, run_id: str, instrument_id: str | None) -> BarSeries:
        """One instrument's bars of the run (``instrument_id`` may be left out when the
        run has one)."""
        ledger = self.get(run_id)
        with self._lock:
            if run_id not in self._bars:
                config = ledger.config()
                try:
                    self._bars[run_id] = bars_of_config(config, self.data_dirs)
                except DataError as exc:
                    # The answer names no server path (any key holder reads it); the log does.
                    log.warning("run %s: bars unavailable: %s", run_id,
                                getattr(exc, "detail", exc))
                    raise ApiError(404, "bars_unavailable", f"run {run_id}: {exc}") from None
            series = self._bars[run_id]
        names = [s.instrument_id for s in series]
        if instrument_id is None and len(series) == 1:
            return series[0]
        for s in series:
            if s.instrument_id == instrument_id:
                return s
        raise ApiError(404, "instrument_not_found",
                       f"run {run_id} has bars of {', '.join(names) or 'no instrument'}; "
                       f"name one with instrument_id")


def _page_out(request: Request, page: Page) -> dict[str, Any]:
    nxt = None
    if page.next_cursor is not None:
        # Relative (path and query): a link built from the request's Host header would send
        # a client that follows it, key and all, wherever a forged or proxied Host says.
        url = request.url.include_query_params(cursor=page.next_cursor)
        nxt = f"{url.path}?{url.query}"
    return {"data": page.rows, "next_cursor": page.next_cursor, "next": nxt}


#: The two ways to present a key (declared so that the OpenAPI document lists them).
BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="X-API-Key: KEY")
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def presented_keys(request: Request) -> tuple[list[str], list[str]]:
    """The distinct keys a request presents (every ``Authorization: Bearer`` and
    ``X-API-Key`` header, spaces around them dropped) and the headers they came in.
    Another scheme (``Basic``) or an empty value presents nothing."""
    found: dict[str, str] = {}
    names: list[str] = []
    for value in request.headers.getlist("authorization"):
        scheme, _, param = value.strip().partition(" ")
        if scheme.lower() == "bearer" and param.strip():
            found.setdefault(param.strip(), "Authorization")
            names.append("Authorization")
    for value in request.headers.getlist("x-api-key"):
        if value.strip():
            found.setdefault(value.strip(), "X-API-Key")
            names.append("X-API-Key")
    return list(found), names


def keys_call(method: Callable[..., T], *args: Any) -> T:
    """``method(*args)`` of the key store; a keys file that cannot be used (removed,
    damaged, a key's limits invalid) is 503 ``keys_unavailable``.  The answer names no
    path (it reaches callers not yet authenticated); the server's log names it."""
    try:
        return method(*args)
    except LedgerError as exc:
        log.error("API keys file unusable: %s", exc)
        raise ApiError(503, "keys_unavailable", "the server cannot read its API keys "
                       "file; its log says why (ask the server's operator)") from None


def create_app(run_dirs: Sequence[Path], keys: KeyStore, *, data_dirs: Sequence[Path] = (),
               clock: Callable[[], float] = time.time,
               pricer_factory: Callable[[], Pricer] = build_pricer) -> FastAPI:
    """The API over ``run_dirs`` (each with an ``argus.db``), keyed by ``keys``.

    ``clock`` (unix seconds) drives the token buckets and the quota day (tests move it);
    ``pricer_factory`` builds the Heston pricer on first use.
    """
    runs = Runs(run_dirs, data_dirs)
    limiter = RateLimiter(clock)
    pricer_lock = threading.Lock()
    pricer_box: list[Pricer] = []
    regime_lock = threading.Lock()
    regime_cache: dict[tuple[Any, ...], tuple[BarSeries, regime_mod.RegimeSeries]] = {}

    def pricer() -> Pricer:
        with pricer_lock:
            if not pricer_box:
                pricer_box.append(pricer_factory())
            return pricer_box[0]

    def require_key(request: Request, response: Response) -> ApiKey:
        presented, headers = presented_keys(request)
        challenge = {"WWW-Authenticate": "Bearer"}
        in_url = [q for q in request.query_params if q.lower() in QUERY_KEY_NAMES]
        if not presented and in_url:
            log.info("refused a key sent in the URL (%s)", ", ".join(map(repr, in_url)))
            raise ApiError(401, "key_in_url", f"API keys are accepted only in a header "
                           f"('Authorization: Bearer KEY' or 'X-API-Key: KEY'), never in the "
                           f"URL ({in_url[0]}=): a URL is logged and kept in histories, so "
                           f"revoke that key and make another", challenge)
        if not presented:
            raise ApiError(401, "missing_key", "an API key is required: send "
                           "'Authorization: Bearer KEY' or 'X-API-Key: KEY'", challenge)
        if len(presented) > 1:
            # Which one wins was header order: a proxy reading the other header would
            # authorise another key than this server does.
            log.info("refused a request with %d keys", len(presented))
            raise ApiError(401, "invalid_key", f"{len(presented)} API keys were sent (in "
                           f"{' and '.join(headers)}); send one", challenge)
        client = request.client.host if request.client is not None else None
        verdict = keys_call(keys.verify, presented[0], client)
        if verdict.outcome == "revoked" and verdict.key is not None:
            log.info("refused revoked key %s", verdict.key.key_id)
            raise ApiError(403, "key_revoked", f"API key {verdict.key.key_id} "
                           f"({verdict.key.name}) was revoked")
        if verdict.outcome == "throttled":
            log.warning("refused an API key: too many wrong or unknown keys for its key "
                        "id or from client %s", client)
            raise ApiError(429, "too_many_failures", "too many requests with a wrong "
                           "secret for this key id, or wrong keys from this client; "
                           "keys are not checked for "
                           f"{math.ceil(verdict.retry_after_s)} s",
                           {"Retry-After": str(max(1, math.ceil(verdict.retry_after_s)))})
        if verdict.key is None:
            log.info("refused a %s API key", verdict.outcome)  # never the key itself
            raise ApiError(401, "invalid_key", "the API key is not valid", challenge)
        key = verdict.key
        allowed, left, wait = limiter.take(key.key_id, key.rate_per_s, key.burst)
        rate_headers = {"X-RateLimit-Limit": f"{key.rate_per_s:g}/s",
                        "X-RateLimit-Remaining": str(int(left))}
        if not allowed:
            raise ApiError(429, "rate_limited",
                           f"rate limit of {key.rate_per_s:g} requests/s (burst "
                           f"{key.burst:g}) exceeded for key {key.key_id}; retry after "
                           f"{wait:.2f} s", {**rate_headers,
                                             "Retry-After": str(max(1, math.ceil(wait)))})
        now = clock()
        if key.quota_per_day is not None:
            count = keys_call(keys.count_request, key.key_id, utc_day(now),
                              key.quota_per_day)
            if count is None:
                reset = seconds_to_utc_midnight(now)
                raise ApiError(429, "quota_exceeded",
                               f"daily quota of {key.quota_per_day} requests exceeded for "
                               f"key {key.key_id}; it resets at 00:00 UTC (in {reset} s)",
                               {**rate_headers, "Retry-After": str(reset),
                                "X-Quota-Limit": str(key.quota_per_day),
                                "X-Quota-Remaining": "0"})
            rate_headers.update({"X-Quota-Limit": str(key.quota_per_day),
                                 "X-Quota-Remaining": str(key.quota_per_day - count)})
        else:
            keys_call(keys.count_request, key.key_id, utc_day(now), None)
        response.headers.update(rate_headers)
        return key

    app = FastAPI(title="Argus intelligence API", version="1.0.0",
                  description=__doc__ or "", openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                 for e in exc.errors()]
        return _error(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(ArgusError)
    async def _argus(request: Request, exc: ArgusError) -> JSONResponse:
        if isinstance(exc, LedgerError):
            return _error(503, "ledger_unavailable", str(exc))
        if isinstance(exc, PluginError):
            return _error(503, "plugin_unavailable", str(exc))
        code = "invalid_data" if isinstance(exc, DataError) else "invalid_request"
        return _error(422, code, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log (request bodies and headers do not).
        log.error("%s %r failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", f"{type(exc).__name__} while answering "
                      f"{request.method} {request.url.path}; see the server's log",
                      {k.decode(): v.decode() for k, v in PRIVATE_HEADERS})  # (sent outside
        # the middlewares, by Starlette's outermost one)

    # BEARER and API_KEY_HEADER only declare the two ways in the OpenAPI document;
    # require_key reads every header itself (several keys are refused, not picked from).
    v1 = APIRouter(prefix=f"/{API_VERSION}", dependencies=[
        Depends(BEARER), Depends(API_KEY_HEADER), Depends(require_key)])

    @v1.get("/runs", response_model=PageOut, summary="The served runs")
    def list_runs(request: Request, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
                  ) -> dict[str, Any]:
        """Every served run (ordered by run id): mode, status, start/end, the run
        directory and its row counts."""
        ids = sorted(runs.ledgers)
        if cursor is not None:
            (after,) = decode_cursor(cursor, (str,), "runs")
            ids = [i for i in ids if i > str(after)]
        rows = []
        for run_id in ids[:limit]:
            ledger = runs.ledgers[run_id]
            run = ledger.run()
            rows.append({"run_id": run_id, "mode": run["mode"], "status": run["status"],
                         "seed": run["seed"], "started_ns": run["started_ns"],
                         "ended_ns": run["ended_ns"], "run_dir": str(ledger.run_dir),
                         "counts": ledger.counts()})
        more = len(ids) > limit
        nxt = encode_cursor([rows[-1]["run_id"]], "runs") if more and rows else None
        return _page_out(request, Page(rows, nxt))

    @v1.get("/runs/{run_id}", summary="One run")
    def get_run(run_id: str) -> dict[str, Any]:
        """The run's row (with its recorded config) and row counts."""
        ledger = runs.get(run_id)
        run = ledger.run()
        # The config holds references ($env:...), never secret values; any text in it
        # that looks like a credential is hidden all the same.
        return {**{k: v for k, v in run.items() if k != "config_json"},
                "config": redacted(ledger.config()),
                "run_dir": str(ledger.run_dir), "counts": ledger.counts()}

    @v1.get("/runs/{run_id}/bars", response_model=PageOut, summary="A run's bars")
    def get_bars(request: Request, run_id: str, instrument_id: str | None = None,
                 limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
        """The bars the run replayed (from its recorded config's data file), by close
        time; ``ts_ns`` is each bar's close."""
        series = runs.bars(run_id, instrument_id)
        scope = f"bars:{run_id}:{series.instrument_id}"
        start = 0
        if cursor is not None:
            (after,) = decode_cursor(cursor, (int,), scope)
            start = int(np.searchsorted(series.ts_ns, after, side="right"))
        end = min(start + limit, len(series))
        rows = [series.row(i) for i in range(start, end)]
        nxt = encode_cursor([rows[-1]["ts_ns"]], scope) if end < len(series) and rows \
            else None
        return _page_out(request, Page(rows, nxt))

    @v1.get("/runs/{run_id}/equity", response_model=PageOut, summary="A run's equity curve")
    def get_equity(request: Request, run_id: str, limit: Limit = DEFAULT_LIMIT,
                   cursor: Cursor = None) -> dict[str, Any]:
        """Equity rows by time: cash, equity and gross exposure as the ledger's exact
        decimal text."""
        return _page_out(request, runs.get(run_id).page(EQUITY, limit, cursor,
                                                         scope=f"equity:{run_id}"))

    @v1.get("/runs/{run_id}/opportunities", response_model=PageOut,
            summary="A run's scanner opportunities")
    def get_opportunities(request: Request, run_id: str, scanner: str | None = None,
                          kind: str | None = None, status: str | None = None,
                          limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
                          ) -> dict[str, Any]:
        """Opportunities by time (then id), each with its stored body decoded."""
        ledger = runs.get(run_id)
        page = ledger.page(OPPORTUNITIES, limit, cursor,
                           {"scanner": scanner, "kind": kind, "status": status},
                           f"opportunities:{run_id}")
        for row in page.rows:
            row["risk_free"] = bool(row["risk_free"])
            row["body"] = ledger.json_column(
                str(row.pop("body_json")),
                f"opportunities.body_json of {row['opportunity_id']!r}")
        return _page_out(request, page)

    @v1.get("/runs/{run_id}/signals", response_model=PageOut, summary="A run's signals")
    def get_signals(request: Request, run_id: str, name: str | None = None,
                    instrument_id: str | None = None, limit: Limit = DEFAULT_LIMIT,
                    cursor: Cursor = None) -> dict[str, Any]:
        """Published signals (regime features, forecasts...) by time, then name."""
        return _page_out(request, runs.get(run_id).page(
            SIGNALS, limit, cursor, {"name": name, "instrument_id": instrument_id},
            f"signals:{run_id}"))

    def regimes_page(request: Request, body: RegimesIn, limit: int, cursor: str | None,
                     *, link: bool) -> dict[str, Any]:
        params = regime_mod.RegimeParams(
            body.hazard_lambda, body.window, body.threshold, body.warmup_bars,
            body.vol_window, body.lookback, body.periods_per_year)
        if body.run_id is not None:
            key = (body.run_id, body.instrument_id, params)
            with regime_lock:  # pages of one walk reuse one computation
                if key not in regime_cache:
                    series = runs.bars(body.run_id, body.instrument_id)
                    if len(regime_cache) >= 16:
                        regime_cache.pop(next(iter(regime_cache)))
                    regime_cache[key] = (series, regime_mod.regimes(series.close, params))
                series, result = regime_cache[key]
            ts: list[int] | None = [int(t) for t in series.ts_ns]
            closes = [float(c) for c in series.close]
        else:
            assert body.closes is not None  # the model's validator
            closes, ts = body.closes, body.ts_ns
            result = regime_mod.regimes(np.asarray(closes, dtype=np.float64), params)
        # Bound to the series: a run's cursor never pages posted closes or another run's.
        scope = f"regimes:{body.run_id}:{body.instrument_id}" if body.run_id is not None \
            else "regimes:posted"
        start = 0
        if cursor is not None:
            (start,) = decode_cursor(cursor, (int,), scope)
            if start >= len(closes):  # a next_cursor always points inside its series
                raise DataError(f"cursor {cursor!r} points past the series' {len(closes)} "
                                f"bars: it is another series' (send the same body again)")
        end = min(start + limit, len(closes))
        rows = [result.row(i, ts[i] if ts else None, closes[i]) for i in range(start, end)]
        out = _page_out(request, Page(rows, encode_cursor([end], scope)
                                      if end < len(closes) else None))
        if not link:
            out["next"] = None  # a POST: send the same body with ?cursor=next_cursor
        out["n_bars"] = len(closes)
        out["change_points"] = [{"index": int(i), "ts_ns": ts[int(i)] if ts else None,
                                 "p_change": float(result.p_change[int(i)])}
                                for i in result.change_points]
        return out

    @v1.post("/regimes", response_model=RegimesOut, summary="Regimes and change points")
    def post_regimes(request: Request, body: RegimesIn, limit: Limit = DEFAULT_LIMIT,
                     cursor: Cursor = None) -> dict[str, Any]:
        """Per bar: BOCPD probability of a change within ``window`` bars and run length,
        the volatility regime and realised vol (argus_lab.regime); change points where
        P(change) rises through ``threshold``.  Closes posted, or a served run's bars
        (``run_id``).  Pages: send the same body again with ``?cursor=next_cursor``."""
        return regimes_page(request, body, limit, cursor, link=False)

    @v1.get("/regimes", response_model=RegimesOut,
            summary="Regimes and change points of a served run's bars")
    def get_regimes(request: Request, run_id: str, instrument_id: str | None = None,
                    hazard_lambda: Annotated[float, Query(gt=1, allow_inf_nan=False)] = 250.0,
                    window: Annotated[int, Query(ge=0, lt=500)] = 10,
                    threshold: Annotated[float, Query(gt=0, le=1, allow_inf_nan=False)] = 0.5,
                    warmup_bars: Annotated[int, Query(ge=0)] = 0,
                    vol_window: Annotated[int, Query(ge=2)] = 20,
                    lookback: Annotated[int, Query(ge=2)] = 252,
                    periods_per_year: Annotated[float, Query(gt=0, allow_inf_nan=False)
                                                ] = 252.0,
                    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
        """The POST's answer for a served run, with the parameters in the query (and
        ``next`` links)."""
        body = RegimesIn.model_validate({
            "run_id": run_id, "instrument_id": instrument_id, "hazard_lambda": hazard_lambda,
            "window": window, "threshold": threshold, "warmup_bars": warmup_bars,
            "vol_window": vol_window, "lookback": lookback,
            "periods_per_year": periods_per_year})
        return regimes_page(request, body, limit, cursor, link=True)

    @v1.post("/options/pop", response_model=PopOut,
             summary="Heston probability of profit of an option position")
    def post_pop(body: PopIn) -> dict[str, Any]:
        """Risk-neutral Heston Monte Carlo probability that the legs held to expiry plus
        ``premium`` end with a profit, from the ``heston`` pricer (argus-gpu-heston) through
        the core's ``Pricer.probability_of_profit``; ``stderr`` is the binomial standard
        error."""
        legs = [body.leg] if body.leg is not None else list(body.legs or [])
        try:
            core_legs = [OptionLeg(leg.kind, leg.strike, leg.quantity) for leg in legs]
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"legs: {exc}") from None
        res = pricer().probability_of_profit(
            core_legs, body.spot, body.t_years, body.premium, rate=body.rate,
            dividend_yield=body.dividend_yield, model=body.model.model_dump(),
            paths=body.paths, seed=body.seed)
        if res.p_profit is None:
            raise ApiError(502, "pricer_error", f"pricer {res.pricer!r} gave no p_profit")
        return {"pricer": res.pricer, "backend": res.backend, "p_profit": res.p_profit,
                "stderr": res.stderr, "expected_pnl": res.expected_pnl, "paths": res.paths,
                "details": _jsonable(dict(res.details))}

    @v1.post("/options/iv-anomalies", summary="IV-surface anomalies of a posted chain")
    def post_anomalies(body: AnomaliesIn) -> dict[str, Any]:
        """Each quote's Black-Scholes implied vol (brentq on the mid), a quadratic smile
        per expiry fitted robustly in log-moneyness, and the quotes more than ``k``
        standard deviations off it."""
        quotes = [surface.Quote(q.expiry, q.strike, q.kind, q.bid, q.ask) for q in body.quotes]
        return surface.anomalies(quotes, body.spot, body.as_of, rate=body.rate,
                                 dividend_yield=body.dividend_yield, k=body.k,
                                 min_quotes=body.min_quotes, min_sigma=body.min_sigma)

    @v1.post("/options/spreads", summary="VRP put credit spread candidates of a posted chain")
    def post_spreads(body: SpreadsIn) -> dict[str, Any]:
        """The VRP strategy's expiry and short-strike choice on the posted puts, and every
        candidate spread (credit and max loss per contract, short leg's IV, |delta| and
        lognormal probability of profit)."""
        settings = spread_mod.settings_of(body.settings)
        quotes = [spread_mod.PutQuote(q.expiry, q.strike, q.bid, q.ask, q.bid_size,
                                      q.ask_size) for q in body.quotes]
        pricers: dict[str, Pricer] = {}
        if settings.selection == "pop":
            pricers["heston"] = pricer()
        return spread_mod.candidates(body.underlying, body.spot, body.as_of, quotes,
                                     settings, realised_vol=body.realised_vol,
                                     equity=body.equity, pricers=pricers)

    app.include_router(v1)
    app.add_middleware(BodyLimit)
    app.add_middleware(PrivateAnswers)  # outermost: the 413s and 500s get it too
    app.state.runs = runs
    return app


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and non-string dict keys made JSON-ready."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
