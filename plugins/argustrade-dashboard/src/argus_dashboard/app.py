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
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from argus_dashboard import ledger_view as lv
from argus_dashboard.controls import (
    ACTIONS,
    ControlError,
    Tokens,
    apply_control,
    orchestrator_store,
)
from argus_dashboard.live import LiveCursor
from argus_dashboard.page import index_page, run_page

log = logging.getLogger(__name__)
TOKEN_HEADER = "X-Argus-Token"
TOKEN_COOKIE = "argus_token"


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


def _jsonable(value: Any) -> Any:
    """JSON for the API: a ledger's bytes never reach it (no table here has them)."""
    return json.loads(json.dumps(value, default=str))


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
        data = await anyio.to_thread.run_sync(lv.read_run, run.path, run.lab_db)
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
        data = await anyio.to_thread.run_sync(lv.read_run, run.path, run.lab_db)
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

        def mark(name: str) -> int | None:
            raw = request.query_params.get(name)
            return int(raw) if raw is not None and raw.lstrip("-").isdigit() else None

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
        form = await _body(request)
        wants_html = "application/json" not in request.headers.get("content-type", "") and \
            "text/html" in request.headers.get("accept", "")
        who = holder(request, form)
        if who is None:
            why = ("controls are off: the dashboard was started without --token"
                   if not tokens.enabled else "a valid token is required for controls")
            log.warning("dashboard: %s refused on %s (no valid token)", action, run.path)
            return JSONResponse({"error": why}, status_code=403)
        try:
            done = await anyio.to_thread.run_sync(lambda: apply_control(
                run.path, action, who, str(form.get("reason") or ""),
                version_id=form.get("version_id"), to_status=form.get("to"),
                slot=form.get("slot")))
        except ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        log.info("dashboard: %s on %s by %s", action, run.path, who)
        if wants_html:  # a plain form post (no script): back to the page
            return RedirectResponse(f"/runs/{run.key}", status_code=303)
        return JSONResponse(_jsonable(done))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "runs": len(runs)})

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
                  ] if allowed_hosts else []
    return Starlette(middleware=middleware, routes=[
        Route("/", page),
        Route("/runs/{key}", page),
        Route("/healthz", healthz),
        Route("/api/runs", api_runs),
        Route("/api/runs/{key}", api_run),
        Route("/api/runs/{key}/stream", stream),
        Route("/api/runs/{key}/{action}", control, methods=["POST"]),
    ])


async def _body(request: Request) -> dict[str, Any]:
    """A control request's fields, from JSON or a form."""
    kind = request.headers.get("content-type", "")
    if "application/json" in kind:
        try:
            data = await request.json()
        except ValueError:
            return {}
        return {str(k): (None if v is None else str(v)) for k, v in data.items()} \
            if isinstance(data, dict) else {}
    if "form" in kind:
        form = await request.form()
        return {k: str(v) for k, v in form.items() if isinstance(v, str)}
    return {}


def _listing(runs: Sequence[RunDir]) -> list[dict[str, Any]]:
    """Each run's headline figures, for the index and ``/api/runs``."""
    out = []
    for run in runs:
        entry: dict[str, Any] = {"key": run.key, "name": run.name, "run_dir": str(run.path),
                                 "trading_state": None, "equity": None, "fills": None}
        if (run.path / lv.LEDGER_FILE).exists():
            with lv.read_only(run.path) as conn:
                if not lv.ready(conn):
                    out.append(entry)
                    continue
                summary = lv.summary(conn)
                entry.update(trading_state=lv.trading_state(conn)["state"],
                             equity=summary["equity"], fills=summary["fills"])
        out.append(entry)
    return out
