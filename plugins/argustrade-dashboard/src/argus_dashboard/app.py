"""The dashboard's web app (Starlette): pages, a JSON API, a live stream and controls.

Routes (``KEY`` is a run's position on the command line, from 0):

* ``GET /`` the run's page when one run is served, else the list of runs;
  ``GET /runs/KEY`` one run's page.
* ``GET /api/runs`` and ``GET /api/runs/KEY``: the same data as JSON.
* ``GET /api/runs/KEY/stream``: server-sent events (``state``, ``summary``,
  ``equity``, ``fills``, ``orders``, ``positions``, ``risk_events``, ``signals``,
  ``audit``, ``strategy_versions``), polling the ledger once per ``poll_s``; the query
  parameters ``fills``, ``equity`` and ``risk_events`` are the marks the client has.
* ``POST /api/runs/KEY/ACTION`` (``kill``, ``kill_flatten``, ``resume``, ``promote``,
  ``rollback``): the token in the ``X-Argus-Token`` header, ``Authorization: Bearer``
  or a form field ``token`` — never a cookie or a GET, so another site cannot make a
  browser act (no CSRF).  403 without a valid token.
* ``GET /healthz``: the server is up.

Reads and writes run in worker threads: the event loop never waits on SQLite, and the
trading loop never waits on the dashboard (reads are short read-only transactions).
When reads need a token (the server listens beyond this machine), a page may be opened
once with ``?token=...``: the answer sets an HttpOnly cookie and redirects without it.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import apsw
import attrs
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from argus_core import ArgusError, loads_frame, redact
from argus_dashboard import ledger_view as lv
from argus_dashboard.controls import (
    ACTIONS,
    ControlError,
    Tokens,
    apply_control,
    orchestrator_store,
)
from argus_dashboard.live import LiveCursor
from argus_dashboard.page import CONTENT_SECURITY_POLICY, error_page, index_page, run_page

log = logging.getLogger(__name__)
TOKEN_HEADER = "X-Argus-Token"
TOKEN_COOKIE = "argus_token"
#: Largest control request body read (a reason is at most 500 characters).
MAX_BODY = 64 * 1024
#: The fields a control reads; anything else in a body is ignored.
FIELDS = ("token", "reason", "version_id", "to", "slot")
#: Sent with every answer: no framing (a Kill button under a decoy), no sniffing, no
#: Referer (an address opened with ``?token=``), no caching of pages with figures, and
#: no script but the page's own (:data:`argus_dashboard.page.CONTENT_SECURITY_POLICY`).
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]


class BodyError(Exception):
    """A control request whose body cannot be read as asked; ``status`` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` (streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(
                    h for h in SECURITY_HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cross_origin(request: Request) -> str | None:
    """Why a control request comes from another web site, or None.  A browser names the
    page that sent it (``Origin``, ``Sec-Fetch-Site``; a ``Referer`` where an older
    browser or an extension leaves ``Origin`` out: our own pages send none); a script
    such as curl sends neither.  A token in the form could only have been typed into our
    own page, but a control is refused from anywhere else all the same."""
    site = request.headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {site}"
    host = request.headers.get("host", "").lower()
    for header in ("origin", "referer"):
        sender = request.headers.get(header)
        if sender is None:
            continue
        try:  # ("http://[::1" is a ValueError: it was a 500)
            netloc = urllib.parse.urlsplit(sender).netloc.lower() if sender != "null" else ""
        except ValueError:
            netloc = ""
        if not netloc or netloc != host:
            return f"{header.title()}: {sender[:100]}"
        if header == "origin":
            return None  # the browser's own word; a Referer adds nothing to it
    return None


@attrs.frozen
class RunDir:
    """A served run directory: its key in URLs, its name on the page, its path."""

    key: str
    name: str
    path: Path
    #: A lab ledger (``[plugins.lab] dir``/lab.db) whose deploy-gate verdicts to show.
    lab_db: Path | None = None


def run_dirs(paths: Sequence[Path], lab_db: Path | None = None) -> list[RunDir]:
    """Key each directory by its position; name it by its folder name."""
    return [RunDir(str(i), Path(p).name or str(p), Path(p), lab_db)
            for i, p in enumerate(paths)]


class UnreadableLedger(Exception):
    """A served run's ledger that SQLite cannot read (damaged, or replaced, while served)."""


def read_run(run: RunDir) -> dict[str, Any]:
    """:func:`argus_dashboard.ledger_view.read_run` of ``run``; :class:`UnreadableLedger`,
    naming the file and SQLite's complaint, when the ledger cannot be read."""
    try:
        return lv.read_run(run.path, run.lab_db)
    except (apsw.Error, ArgusError, OSError) as exc:
        raise UnreadableLedger(f"{run.path / lv.LEDGER_FILE} cannot be read: "
                               f"{type(exc).__name__}: {exc}") from None


def _jsonable(value: Any) -> Any:
    """JSON for the API: a ledger's bytes never reach it (no table here has them), nor
    anything credential-shaped a row may quote (``argus_core.redact``), nor a number JSON
    has not (NaN, infinity: a REAL column may hold one; they become null)."""
    return _redacted(json.loads(json.dumps(value, default=str)))


def _redacted(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def create_app(runs: Sequence[RunDir], tokens: Tokens | None = None, *, poll_s: float = 1.0,
               reads_need_token: bool = False,
               allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The dashboard over ``runs``; controls need one of ``tokens`` (none: all refused),
    reads too when ``reads_need_token``; with ``allowed_hosts``, a request naming any
    other ``Host`` is refused (a web page cannot reach a loopback dashboard through a
    DNS name it rebinds to 127.0.0.1)."""
    tokens = tokens or Tokens()
    by_key = {r.key: r for r in runs}

    def holder(request: Request, form: dict[str, Any] | None = None) -> str | None:
        """The holder of the token a control request carries (header or form field)."""
        presented = request.headers.get(TOKEN_HEADER)
        auth = request.headers.get("authorization", "")
        if not presented and auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        if not presented and form is not None:
            presented = str(form.get("token") or "")
        return tokens.holder_of(presented)

    def may_read(request: Request) -> bool:
        if not reads_need_token:
            return True
        return (tokens.holder_of(request.cookies.get(TOKEN_COOKIE)) is not None
                or holder(request) is not None)

    by_name = {r.name: r for r in runs}

    def run_of(request: Request) -> RunDir | None:
        """The run by key (its position), or by its folder name where that is unique."""
        key = str(request.path_params.get("key", "0"))
        found = by_key.get(key)
        if found is None and len(by_name) == len(runs):
            found = by_name.get(key)
        return found

    def refused_read() -> Response:
        return JSONResponse({"error": f"this dashboard needs a token to read: send it in "
                                      f"{TOKEN_HEADER}, or open the page once with ?token="},
                            status_code=401)

    def not_found(request: Request) -> Response:
        return JSONResponse({"error": f"no run {request.path_params.get('key')!r} here; "
                                      f"runs: {', '.join(by_key)}"}, status_code=404)

    def can_promote(data: dict[str, Any]) -> bool:
        return "strategy_versions" in data and orchestrator_store() is not None

    async def login_redirect(request: Request) -> Response | None:
        """``?token=`` once: set the read cookie and drop the token from the address."""
        presented = request.query_params.get("token")
        if presented is None:
            return None
        answer = RedirectResponse(request.url.path, status_code=303)
        if tokens.holder_of(presented) is not None:
            answer.set_cookie(TOKEN_COOKIE, presented, httponly=True, samesite="strict")
        return answer

    async def page(request: Request) -> Response:
        redirect = await login_redirect(request)
        if redirect is not None:
            return redirect
        if not may_read(request):
            return refused_read()
        if "key" not in request.path_params and len(runs) != 1:
            listing = await anyio.to_thread.run_sync(_listing, runs)
            return HTMLResponse(index_page(listing, poll_s))
        run = run_of(request)
        if run is None:
            return not_found(request)
        try:
            data = await anyio.to_thread.run_sync(read_run, run)
        except UnreadableLedger as exc:
            return HTMLResponse(error_page(run.key, run.name, str(exc), poll_s),
                                status_code=503)
        return HTMLResponse(run_page(
            run.key, run.name, data, runs=[(r.key, r.name) for r in runs],
            can_promote=can_promote(data), controls_enabled=tokens.enabled, poll_s=poll_s))

    async def api_runs(request: Request) -> Response:
        if not may_read(request):
            return refused_read()
        return JSONResponse(_jsonable(await anyio.to_thread.run_sync(_listing, runs)))

    async def api_run(request: Request) -> Response:
        if not may_read(request):
            return refused_read()
        run = run_of(request)
        if run is None:
            return not_found(request)
        try:
            data = await anyio.to_thread.run_sync(read_run, run)
        except UnreadableLedger as exc:
            return JSONResponse({"error": redact(str(exc))}, status_code=503)
        data["controls"] = {"enabled": tokens.enabled, "promote": can_promote(data),
                            "actions": [a for a in ACTIONS if can_promote(data)
                                        or a not in ("promote", "rollback")]}
        return JSONResponse(_jsonable(data))

    async def stream(request: Request) -> Response:
        if not may_read(request):
            return refused_read()
        run = run_of(request)
        if run is None:
            return not_found(request)

        def mark(name: str) -> int | None:  # a row id: ASCII digits ('²' is a digit to
            raw = request.query_params.get(name)  # isdigit), under 2**63 (10**30 failed
            return int(raw) if raw is not None and raw.isascii() and raw.isdigit() \
                and len(raw) < 19 else None  # every poll of the stream)

        cursor = LiveCursor(run.path, fills=mark("fills"), equity=mark("equity"),
                            risk_events=mark("risk_events"))

        async def events() -> AsyncIterator[dict[str, str]]:
            while True:
                try:
                    changes = await anyio.to_thread.run_sync(cursor.poll)
                except Exception as exc:  # a busy or half-written ledger: try next time
                    log.warning("dashboard: reading %s failed: %s", run.path, exc)
                    changes = []
                for name, data in changes:
                    yield {"event": name, "data": json.dumps(_jsonable(data))}
                await anyio.sleep(poll_s)

        return EventSourceResponse(events(), ping=15)

    async def control(request: Request) -> Response:
        run = run_of(request)
        if run is None:
            return not_found(request)
        action = str(request.path_params["action"])
        foreign = cross_origin(request)
        if foreign is not None:
            log.warning("dashboard: %r refused on %s: cross-origin (%r)", action, run.path,
                        foreign)
            return JSONResponse({"error": f"cross-origin control refused ({foreign}): "
                                          f"use the dashboard's own page, or a client "
                                          f"that is not a browser"}, status_code=403)
        try:
            form = await _body(request)
        except BodyError as exc:
            log.warning("dashboard: %r on %s: unreadable body (%s)", action, run.path, exc)
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        wants_html = "application/json" not in request.headers.get("content-type", "") and \
            "text/html" in request.headers.get("accept", "")
        who = holder(request, form)
        if who is None:
            why = ("controls are off: the dashboard was started without --token"
                   if not tokens.enabled else "a valid token is required for controls")
            log.warning("dashboard: %r refused on %s (no valid token)", action, run.path)
            return JSONResponse({"error": why}, status_code=403)
        try:
            done = await anyio.to_thread.run_sync(lambda: apply_control(
                run.path, action, who, form.get("reason") or "",
                version_id=form.get("version_id"), to_status=form.get("to"),
                slot=form.get("slot")))
        except ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        log.info("dashboard: %s on %s by %s%s", action, run.path, who,
                 "" if done.get("changed", True) else " (nothing changed)")
        if wants_html:  # a plain form post (no script): back to the page
            return RedirectResponse(f"/runs/{run.key}", status_code=303)
        return JSONResponse(_jsonable(done))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "runs": len(runs)})

    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(middleware=middleware, routes=[
        Route("/", page),
        Route("/runs/{key}", page),
        Route("/healthz", healthz),
        Route("/api/runs", api_runs),
        Route("/api/runs/{key}", api_run),
        Route("/api/runs/{key}/stream", stream),
        Route("/api/runs/{key}/{action}", control, methods=["POST"]),
    ])


async def _body(request: Request) -> dict[str, str]:
    """A control request's fields (:data:`FIELDS`), from JSON or a urlencoded form; an
    empty body has none.  :class:`BodyError` for a body over :data:`MAX_BODY` (413), of
    another type (415), not JSON or not an object (400), or a field that is not text."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise BodyError(413, f"the body is over {MAX_BODY // 1024} kB; a control needs a "
                             f"token and a reason")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise BodyError(413, f"the body is over {MAX_BODY // 1024} kB; a control needs "
                                 f"a token and a reason")
    if not raw.strip():
        return {}
    fields: list[tuple[str, Any]]
    if kind == "application/json" or kind.endswith("+json"):
        try:  # (loads_frame: 30,000 brackets were a RecursionError, a 500)
            data = loads_frame(bytes(raw))
        except ValueError:
            raise BodyError(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BodyError(400, "the body must be a JSON object, e.g. "
                                 '{"reason": "spreads blew out"}')
        fields = list(data.items())
    elif kind == "application/x-www-form-urlencoded":
        try:
            fields = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                            errors="strict", max_num_fields=len(FIELDS) * 4)
        except UnicodeDecodeError:
            raise BodyError(400, "the form is not UTF-8 urlencoded fields") from None
        except ValueError:  # parse_qsl's max_num_fields: no control needs more
            raise BodyError(400, f"the form has over {len(FIELDS) * 4} fields; a control "
                                 f"reads {', '.join(FIELDS)}") from None
    else:
        raise BodyError(415, f"unsupported content type {kind or 'none'!r}: send "
                             f"application/json or application/x-www-form-urlencoded")
    out: dict[str, str] = {}
    for name, value in fields:
        if name not in FIELDS or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BodyError(400, f"{name}: text expected, not {type(value).__name__}")
        out[name] = str(value)
    return out


def _listing(runs: Sequence[RunDir]) -> list[dict[str, Any]]:
    """Each run's headline figures, for the index and ``/api/runs``."""
    out = []
    for run in runs:
        entry: dict[str, Any] = {"key": run.key, "name": run.name, "run_dir": str(run.path),
                                 "trading_state": None, "equity": None, "fills": None}
        try:
            entry.update(_headline(run.path))
        except (apsw.Error, ArgusError, OSError) as exc:  # one damaged run: the rest show
            entry["error"] = (f"{run.path / lv.LEDGER_FILE} cannot be read: "
                              f"{type(exc).__name__}: {exc}")
        out.append(entry)
    return out


def _headline(run_dir: Path) -> dict[str, Any]:
    """A run's state, equity and fill count (nothing before its ledger is ready)."""
    if not (run_dir / lv.LEDGER_FILE).exists():
        return {}

    def read(conn: apsw.Connection) -> dict[str, Any]:
        if not lv.ready(conn):
            return {}
        summary = lv.summary(conn)
        return {"trading_state": lv.trading_state(conn)["state"],
                "equity": summary["equity"], "fills": summary["fills"]}
    return lv.reading(run_dir, read)  # a finished run's folder left as it was
