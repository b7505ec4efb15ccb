"""The HTML pages: rendered complete on the server (every number is in the first
response), then kept current by a small inline script reading the server-sent events.

No template engine, no CDN: plain HTML with stable ids, ``data-testid`` on the headline
numbers, ``data-field`` / ``data-value`` on every table cell (the exact ledger text), and
an inline SVG chart.  Both renderers, this module's and the script's, follow the same
column specs (:data:`COLUMNS`), handed to the script as JSON.  Every value is escaped
(``html.escape`` here, ``textContent`` in the script), and cut to :data:`MAX_CELL`
characters; the JSON API has every text whole.  The answers' Content-Security-Policy
(:data:`CONTENT_SECURITY_POLICY`) lets only the page's own script and style run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from datetime import UTC, datetime
from typing import Any

from argus_core import redact, visible_text
from argus_dashboard.controls import PROMOTE_TO

#: Per table: the row's key field, then ``(field, heading)`` per column.
COLUMNS: dict[str, dict[str, Any]] = {
    "positions": {"key": "instrument_id", "cols": [
        ("instrument_id", "Instrument"), ("quantity", "Quantity"), ("avg_price", "Avg price"),
        ("realized_pnl", "Realised P&L"), ("ts_ns", "Updated")]},
    "working-orders": {"key": "client_order_id", "cols": [
        ("client_order_id", "Order"), ("instrument_id", "Instrument"), ("side", "Side"),
        ("quantity", "Quantity"), ("filled_quantity", "Filled"), ("limit_price", "Limit"),
        ("order_type", "Type"), ("status", "Status"), ("strategy", "Strategy"),
        ("ts_ns", "Time")]},
    "fills": {"key": "fill_id", "cols": [
        ("fill_id", "Fill"), ("ts_ns", "Time"), ("instrument_id", "Instrument"),
        ("side", "Side"), ("price", "Price"), ("quantity", "Quantity"), ("fee", "Fee"),
        ("liquidity", "Liquidity"), ("client_order_id", "Order")]},
    "risk-events": {"key": "id", "cols": [
        ("id", "#"), ("ts_ns", "Time"), ("check_name", "Check"), ("action", "Action"),
        ("reason", "Reason"), ("instrument_id", "Instrument"), ("strategy", "Strategy")]},
    "signals": {"key": None, "cols": [
        ("name", "Signal"), ("instrument_id", "Instrument"), ("value", "Value"),
        ("ts_ns", "Time")]},
    "strategy-versions": {"key": "version_id", "cols": [
        ("version_id", "Version"), ("slot", "Slot"), ("status", "Status"),
        ("parent_id", "Parent"), ("replaced_id", "Replaced"), ("model", "Model"),
        ("reason", "Reason"),
        ("updated_ns", "Updated")]},
    "lab-verdicts": {"key": "id", "cols": [
        ("id", "#"), ("family", "Family"), ("verdict", "Verdict"),
        ("reasons_json", "Reasons"), ("ts_ns", "Time")]},
    "audit": {"key": "id", "cols": [
        ("id", "#"), ("ts_ns", "Time"), ("action", "Action"), ("actor", "By"),
        ("reason", "Reason"), ("detail_json", "Detail"), ("outcome", "Outcome")]},
}
#: The ledger section each table shows.
SOURCES = {"positions": "positions", "working-orders": "working_orders", "fills": "fills",
           "risk-events": "risk_events", "signals": "signals",
           "strategy-versions": "strategy_versions", "lab-verdicts": "lab_verdicts",
           "audit": "audit"}


#: The most characters of one text a cell or figure shows (and holds in ``data-value``):
#: a 1 MB reason was a 1 MB cell, twice, and the page holds up to 200 rows per table.
MAX_CELL = 1000
#: Characters redacted beyond the cut, so that a secret the cut crosses is still found
#: whole (redacting all of a 1 MB text costs ~0.15 s, per cell).
_REDACT_MARGIN = 4096


#: An instrument or a strategy id holding U+202E showed the rest of its cell reversed:
#: text is shown through the core's ``visible_text`` (the script's ``visible`` is its
#: copy); ``data-value`` keeps the ledger's exact text.
visible = visible_text


def esc(value: Any) -> str:
    """HTML-escaped text of ``value`` (None as empty), hidden controls written out."""
    return "" if value is None else html.escape(visible(redact(str(value))), quote=True)


def cut(text: str) -> tuple[str, int | None]:
    """``text`` redacted and cut to :data:`MAX_CELL` characters, and its whole length
    when it was cut (else None)."""
    if len(text) <= MAX_CELL:
        return redact(text), None
    shown = redact(text[:MAX_CELL + _REDACT_MARGIN])[:MAX_CELL]
    return shown, len(text)


def _value(value: Any) -> str:
    """A cut text as HTML-escaped text (for an attribute or an element)."""
    return "" if value is None else html.escape(cut(str(value))[0], quote=True)


def _cut_note(length: int, run_key: str) -> str:
    """What a cut cell says after its text: how long the whole is, and where it is."""
    return (f'… <a class="cut" href="/api/runs/{esc(run_key)}">({length:,} characters: '
            f'the whole text)</a>')


def show(field: str, value: Any) -> str:
    """How a cell shows a value: time stamps as UTC ISO time, the rest as stored."""
    if value is None:
        return ""
    if field.endswith("_ns") and isinstance(value, int):
        return iso(value)
    return str(value)


def iso(ts_ns: int | None) -> str:
    """``ts_ns`` as an ISO 8601 UTC time (milliseconds); a stamp that is no integer, or
    out of the calendar's range, as its text (a ledger's odd row must not stop the page)."""
    if ts_ns is None:
        return ""
    try:
        return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="milliseconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ts_ns)


def table(name: str, rows: list[dict[str, Any]], run_key: str = "") -> str:
    """One table, its rows keyed by ``data-key`` and its cells by ``data-field``."""
    spec = COLUMNS[name]
    head = "".join(f'<th scope="col" data-field="{f}">{esc(h)}</th>' for f, h in spec["cols"])
    body = "".join(row(name, r, run_key) for r in rows)
    return (f'<table id="{name}" data-testid="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table>')


def row(name: str, r: dict[str, Any], run_key: str = "") -> str:
    """One table row (the script's ``rowElement`` builds the same)."""
    spec = COLUMNS[name]
    key = spec["key"]
    attr = f' data-key="{_value(r.get(key))}"' if key else ""
    cells = "".join(cell(f, r.get(f), run_key) for f, _ in spec["cols"])
    return f"<tr{attr}>{cells}</tr>"


def cell(field: str, value: Any, run_key: str = "") -> str:
    """One cell: ``data-value`` the ledger's text, shown as :func:`show` shows it; a text
    over :data:`MAX_CELL` characters is cut in both, with ``data-length`` its length
    and a link to the JSON API that has it whole."""
    raw, length = cut("" if value is None else str(value))
    if length is None:
        return (f'<td data-field="{field}" data-value="{html.escape(raw, quote=True)}">'
                f'{esc(show(field, value))}</td>')
    return (f'<td data-field="{field}" data-value="{html.escape(raw, quote=True)}" '
            f'data-length="{length}">{html.escape(visible(raw))}'
            f'{_cut_note(length, run_key)}</td>')


def _figure(ident: str, label: str, value: Any, shown: str | None = None) -> str:
    """A headline number: ``<dd id=... data-testid=... data-value=...>``."""
    text = html.escape(visible(cut(str(value if shown is None else shown))[0]))
    return (f'<div class="figure"><dt>{esc(label)}</dt><dd id="{ident}" data-testid="{ident}"'
            f' data-value="{_value(value)}">{text}</dd></div>')


#: How the page says whether the loop has taken up the latch (``data-value`` -> text).
ADOPTED_TEXT = {"yes": "yes", "no": "not yet (at the loop's next commit)", "": ""}


def _adopted(value: bool | None) -> str:
    """``adopted`` (:func:`argus_dashboard.ledger_view.adopted`) as ``yes``, ``no`` or
    empty (no latch set)."""
    return "" if value is None else ("yes" if value else "no")


def percent(fraction: float | None) -> str:
    """``0.0123`` as ``1.23%``."""
    return "" if fraction is None else f"{fraction * 100:.2f}%"


def _json_script(ident: str, data: Any) -> str:
    # No "<" at all inside the script element: neither "</script" nor "<!--" can end or
    # re-open it, whatever text a ledger row holds.
    text = json.dumps(data).replace("<", "\\u003c")
    return f'<script id="{ident}" type="application/json">{text}</script>'


def run_page(key: str, name: str, data: dict[str, Any], *, runs: list[tuple[str, str]],
             can_promote: bool, controls_enabled: bool, poll_s: float) -> str:
    """The page of one run."""
    nav = " ".join(f'<a href="/runs/{esc(k)}" data-run-key="{esc(k)}">{esc(n)}</a>'
                   for k, n in runs) if len(runs) > 1 else ""
    if not data.get("ledger"):
        body = (f'<p id="no-ledger">No ledger yet in {esc(data["run_dir"])}: the page '
                f'reloads until the run starts.</p>')
        return _page(f"Argus: {name}", nav, body, key, poll_s, reload_s=5)
    state, summ, dd = data["trading_state"], data["summary"], data["drawdown"]
    run = data.get("run") or {}
    health = data["health"]
    state_panel = f"""
<section id="state-panel" aria-labelledby="h-state"><h2 id="h-state">Trading state and health</h2>
<dl class="figures">
<div class="figure"><dt>State</dt><dd id="trading-state" data-testid="trading-state"
 data-state="{esc(state["state"])}" data-value="{esc(state["state"])}"
 class="state state-{esc(state["state"])}">{esc(str(state["state"]).upper())}</dd></div>
{_figure("state-reason", "Reason", state["reason"])}
{_figure("state-by", "By", state["by"])}
{_figure("state-flatten", "Flatten", "yes" if state["flatten"] else "no")}
{_figure("state-since", "Since", state["ts_ns"], iso(state["ts_ns"]))}
{_figure("state-adopted", "Adopted by the loop", _adopted(state["adopted"]),
         ADOPTED_TEXT[_adopted(state["adopted"])])}
{_figure("run-id", "Run", run.get("run_id"))}
{_figure("run-mode", "Mode", run.get("mode"))}
{_figure("run-status", "Run status", health["run_status"])}
{_figure("last-write-age", "Last ledger write", health["last_write_age_s"],
         f'{health["last_write_age_s"]} s ago' if health["last_write_age_s"] is not None else "")}
<div class="figure"><dt>Live updates</dt><dd id="live-status" data-testid="live-status"
 data-status="connecting">connecting</dd></div>
</dl></section>"""
    equity_panel = f"""
<section id="equity-panel" aria-labelledby="h-equity"><h2 id="h-equity">Equity and drawdown</h2>
<dl class="figures">
{_figure("equity", "Equity", summ["equity"])}
{_figure("cash", "Cash", summ["cash"])}
{_figure("gross-exposure", "Gross exposure", summ["gross_exposure"])}
{_figure("peak-equity", "Peak equity", dd["peak"])}
{_figure("drawdown", "Drawdown", dd["current"], percent(dd["current"]))}
{_figure("max-drawdown", "Max drawdown", dd["max"], percent(dd["max"]))}
{_figure("fill-count", "Fills", summ["fills"])}
{_figure("order-count", "Orders", summ["orders"])}
{_figure("working-count", "Working orders", summ["working_orders"])}
{_figure("risk-event-count", "Risk events", summ["risk_events"])}
</dl>
<svg id="equity-chart" data-testid="equity-chart" viewBox="0 0 800 160" preserveAspectRatio="none"
 role="img" aria-label="Equity curve"><polyline id="equity-line" fill="none" stroke="#2563eb"
 stroke-width="1.5" points=""/></svg>
<svg id="drawdown-chart" data-testid="drawdown-chart" viewBox="0 0 800 80"
 preserveAspectRatio="none" role="img" aria-label="Drawdown"><polyline id="drawdown-line"
 fill="none" stroke="#dc2626" stroke-width="1.5" points=""/></svg>
</section>"""
    controls = _controls(key, data, can_promote, controls_enabled)
    sections = [state_panel, equity_panel, controls]
    for name_, title in (("positions", "Positions"), ("working-orders", "Working orders"),
                         ("fills", "Fills (newest first)"),
                         ("risk-events", "Risk events (newest first)"),
                         ("signals", "Signals and regimes"),
                         ("strategy-versions", "Strategy versions"),
                         ("lab-verdicts", "Lab verdicts"),
                         ("audit", "Control audit trail (newest first)")):
        rows = data.get(SOURCES[name_])
        if rows is None:
            continue  # a plugin's table this ledger does not have
        sections.append(f'<section id="{name_}-panel" aria-labelledby="h-{name_}">'
                        f'<h2 id="h-{name_}">{esc(title)}</h2>{table(name_, rows, key)}'
                        f'</section>')
    if "thoughts" in data:
        sections.append(_thoughts(data["thoughts"]))
    marks = data["marks"]
    body = "\n".join(sections) + _json_script("equity-data", data["equity_curve"]) + \
        _json_script("columns", COLUMNS) + _json_script("adopted-text", ADOPTED_TEXT) + \
        _json_script("marks", {"fills": marks["fills"], "equity": marks["equity"],
                               "risk_events": marks["risk_events"]})
    return _page(f"Argus: {name}", nav, body, key, poll_s)


def _controls(key: str, data: dict[str, Any], can_promote: bool, enabled: bool) -> str:
    """The controls form: POSTs carrying the token (never a GET, never a cookie)."""
    base = f"/api/runs/{esc(key)}"
    note = "" if enabled else ('<p id="controls-disabled">Started without --token: '
                               'every control is refused.</p>')
    promote = ""
    if can_promote:
        versions = data.get("strategy_versions") or []
        options = "".join(f'<option value="{esc(v["version_id"])}">{esc(v["version_id"])} '
                          f'({esc(v["status"])})</option>' for v in versions)
        slots = sorted({str(v["slot"]) for v in versions})
        slot_options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in slots)
        to_options = "".join(f'<option value="{t}">{t}</option>' for t in PROMOTE_TO)
        promote = (
            '<fieldset><legend>Strategy versions</legend>'
            '<label for="promote-version">Version</label>'
            f'<select id="promote-version" name="version_id">{options}</select>'
            f'<label for="promote-to">To</label><select id="promote-to" name="to">'
            f'{to_options}</select>{_button(base, "promote", "Promote")}'
            '<label for="rollback-slot">Slot</label>'
            f'<select id="rollback-slot" name="slot">{slot_options}</select>'
            f'{_button(base, "rollback", "Roll back")}</fieldset>')
    return (
        '<section id="controls-panel" aria-labelledby="h-controls">'
        f'<h2 id="h-controls">Controls</h2>{note}'
        f'<form id="controls" method="post" action="{base}/kill">'
        '<label for="token">Token</label>'
        '<input type="password" id="token" name="token" autocomplete="off" required>'
        '<label for="reason">Reason</label>'
        '<input type="text" id="reason" name="reason" maxlength="500">'
        f'{_button(base, "kill", "Kill")}{_button(base, "kill_flatten", "Kill and flatten")}'
        f'{_button(base, "resume", "Resume")}{promote}</form>'
        '<p id="control-result" data-testid="control-result" role="status" data-status="">'
        '</p></section>')


def _button(base: str, action: str, label: str) -> str:
    """A submit button posting to ``base/action`` (id ``<action>-button``, dashes)."""
    ident = action.replace("_", "-") + "-button"
    return (f'<button type="submit" id="{ident}" data-testid="{ident}" data-action="{action}"'
            f' formaction="{base}/{action}">{esc(label)}</button>')


def _thoughts(thoughts: list[dict[str, Any]]) -> str:
    """The orchestrator's thought spool, newest first, each call folded."""
    items = "".join(
        f'<details data-key="{esc(t["thought_id"])}"><summary>{esc(iso(t["ts_ns"]))} '
        f'{esc(t["cycle_id"])} #{esc(t["seq"])} {esc(t["purpose"])} ({esc(t["model"])}, '
        f'{esc(t["status"])}, {esc(t["input_tokens"])}+{esc(t["output_tokens"])} tokens, '
        f'${esc(t["cost_usd"])})</summary><h3>Prompt</h3><pre>{esc(t["prompt"])}</pre>'
        f'<h3>Response</h3><pre>{esc(t["response_text"] or t["error"])}</pre></details>'
        for t in thoughts)
    return (f'<section id="thoughts-panel" aria-labelledby="h-thoughts"><h2 id="h-thoughts">'
            f'Orchestrator thought spool</h2><div id="thoughts">{items}</div></section>')


def index_page(runs: list[dict[str, Any]], poll_s: float) -> str:
    """The list of served runs, with each one's state and equity."""
    rows = "".join(
        f'<tr data-key="{esc(r["key"])}"><td data-field="name"><a href="/runs/{esc(r["key"])}">'
        f'{esc(r["name"])}</a></td><td data-field="run_dir">{esc(r["run_dir"])}</td>'
        f'<td data-field="trading_state" data-value="{esc(r["trading_state"])}">'
        f'{esc(r.get("error") or r["trading_state"])}</td>'
        f'<td data-field="equity" data-value="{esc(r["equity"])}">'
        f'{esc(r["equity"])}</td><td data-field="fills" data-value="{esc(r["fills"])}">'
        f'{esc(r["fills"])}</td></tr>' for r in runs)
    body = (f'<section id="runs-panel"><h2>Runs</h2><table id="runs" data-testid="runs"><thead>'
            f'<tr><th scope="col">Run</th><th scope="col">Directory</th><th scope="col">State'
            f'</th><th scope="col">Equity</th><th scope="col">Fills</th></tr></thead><tbody>'
            f'{rows}</tbody></table></section>')
    return _page("Argus runs", "", body, "", poll_s, reload_s=max(5, int(poll_s * 5)))


def error_page(key: str, name: str, message: str, poll_s: float) -> str:
    """The page of a run whose ledger cannot be read: what and where; it reloads every
    5 s (a ledger being replaced may be readable again)."""
    body = f'<p id="ledger-error" data-testid="ledger-error">{esc(message)}</p>'
    return _page(f"Argus: {name}", "", body, key, poll_s, reload_s=5)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1rem 2rem;color:#111}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.figures{display:flex;flex-wrap:wrap;gap:.4rem 1.5rem;margin:0}
.figure dt{font-size:.75rem;color:#555}.figure dd{margin:0;font-weight:600}
.state{padding:0 .4rem;border-radius:3px}.state-active{background:#bbf7d0}
.state-reducing{background:#fde68a}.state-halted{background:#fecaca}
table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #ddd;
padding:2px 6px;text-align:left;white-space:nowrap}
svg{width:100%;max-width:900px;height:160px;border:1px solid #eee;display:block}
#drawdown-chart{height:80px}form label{margin-left:.5rem}
#control-result[data-status=error]{color:#b91c1c}#control-result[data-status=ok]{color:#15803d}
pre{white-space:pre-wrap;max-height:20rem;overflow:auto;background:#f8f8f8}
"""

#: The live part: server-sent events update the figures and tables; the controls POST
#: with the token in a header and show the answer.
_SCRIPT = r"""
(function () {
  const key = document.body.dataset.runKey;
  if (!key) return;
  const byId = (id) => document.getElementById(id);
  const columnsEl = byId("columns");
  if (!columnsEl) return;
  const COLUMNS = JSON.parse(columnsEl.textContent);
  const ADOPTED_TEXT = JSON.parse(byId("adopted-text").textContent);
  const marks = JSON.parse(byId("marks").textContent);
  const points = JSON.parse(byId("equity-data").textContent);
  const MAX_ROWS = 200, MAX_POINTS = 4000;
  const MAX_CELL = Number(document.body.dataset.maxCell);
  // The server's cut (page.cut): at most MAX_CELL characters (code points, as Python
  // counts them) and, when cut, the whole length.
  function cut(v) {
    const text = v === null || v === undefined ? "" : String(v);
    if (text.length <= MAX_CELL) return [text, null];  // UTF-16 units >= code points
    // 2 * MAX_CELL + 1 units hold more than MAX_CELL code points, or the whole text
    const head = Array.from(text.slice(0, 2 * MAX_CELL + 1));
    if (head.length <= MAX_CELL) return [text, null];
    return [head.slice(0, MAX_CELL).join(""), Array.from(text).length];
  }
  const iso = (ns) => new Date(Number(ns) / 1e6).toISOString().replace("Z", "+00:00");
  // page.visible: bidi overrides and controls shown written out, never obeyed
  const visible = (s) => s.replace(
    /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  const show = (field, v) => v === null || v === undefined ? "" :
    (field.endsWith("_ns") && typeof v === "number" ? iso(v) : visible(String(v)));
  function setFigure(id, value, shown) {
    const el = byId(id);
    if (!el) return;
    el.dataset.value = cut(value)[0];
    el.textContent = visible(shown !== undefined ? cut(shown)[0] : el.dataset.value);
  }
  const pct = (f) => f === null || f === undefined ? "" : (f * 100).toFixed(2) + "%";
  function rowElement(name, r) {
    const spec = COLUMNS[name];
    const tr = document.createElement("tr");
    if (spec.key) tr.dataset.key = cut(r[spec.key])[0];
    for (const [field] of spec.cols) {
      const td = document.createElement("td");
      td.dataset.field = field;
      const [text, length] = cut(r[field]);
      td.dataset.value = text;
      if (length === null) {
        td.textContent = show(field, r[field]);
      } else {  // as page.cell: the start, then a link to the whole text
        td.dataset.length = String(length);
        const link = document.createElement("a");
        link.className = "cut";
        link.href = "/api/runs/" + encodeURIComponent(key);
        link.textContent = "(" + length.toLocaleString("en-US") + " characters: the whole text)";
        td.append(visible(text) + "… ", link);
      }
      tr.appendChild(td);
    }
    return tr;
  }
  function replaceRows(name, rows) {
    const table = byId(name);
    if (!table) return;
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map((r) => rowElement(name, r)));
  }
  function prependRows(name, rows) {  // rows oldest first; the table shows newest first
    const table = byId(name);
    if (!table) return;
    const body = table.tBodies[0];
    for (const r of rows) body.insertBefore(rowElement(name, r), body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }
  function draw() {
    const eq = byId("equity-line"), ddl = byId("drawdown-line");
    if (!eq || points.length === 0) return;
    const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
    const vals = points.map((p) => p[1]);
    const lo = Math.min(...vals), hi = Math.max(...vals);
    const x = (t) => ((t - t0) / Math.max(t1 - t0, 1)) * 800;
    eq.setAttribute("points", points.map((p) =>
      x(p[0]).toFixed(1) + "," + (155 - ((p[1] - lo) / Math.max(hi - lo, 1e-9)) * 150).toFixed(1)
    ).join(" "));
    let peak = -Infinity;
    const dds = points.map((p) => {
      peak = Math.max(peak, p[1]);
      return peak > 0 ? (peak - p[1]) / peak : 0;
    });
    const worst = Math.max(...dds, 1e-9);
    ddl.setAttribute("points", points.map((p, i) =>
      x(p[0]).toFixed(1) + "," + (2 + (dds[i] / worst) * 75).toFixed(1)).join(" "));
  }
  draw();
  function connect() {
    const live = byId("live-status");
    const q = new URLSearchParams({fills: marks.fills, equity: marks.equity,
                                   risk_events: marks.risk_events});
    const source = new EventSource("/api/runs/" + encodeURIComponent(key) + "/stream?" + q);
    source.onopen = () => { live.dataset.status = "live"; live.textContent = "live"; };
    source.onerror = () => {  // reconnect from the marks reached, never from the first
      source.close();
      live.dataset.status = "reconnecting";
      live.textContent = "reconnecting";
      setTimeout(connect, 2000);
    };
    const on = (name, fn) => source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    on("state", (d) => {
      const s = d.trading_state, el = byId("trading-state");
      el.dataset.state = s.state; el.dataset.value = s.state;
      el.className = "state state-" + s.state; el.textContent = String(s.state).toUpperCase();
      setFigure("state-reason", s.reason); setFigure("state-by", s.by);
      setFigure("state-flatten", s.flatten ? "yes" : "no");
      setFigure("state-since", s.ts_ns, s.ts_ns ? iso(s.ts_ns) : "");
      const adopted = s.adopted === null || s.adopted === undefined ? ""
        : (s.adopted ? "yes" : "no");
      setFigure("state-adopted", adopted, ADOPTED_TEXT[adopted]);
      setFigure("run-status", d.health.run_status);
      setFigure("last-write-age", d.health.last_write_age_s,
                d.health.last_write_age_s === null ? "" : d.health.last_write_age_s + " s ago");
    });
    on("summary", (d) => {
      const s = d.summary, dd = d.drawdown;
      setFigure("equity", s.equity); setFigure("cash", s.cash);
      setFigure("gross-exposure", s.gross_exposure); setFigure("fill-count", s.fills);
      setFigure("order-count", s.orders); setFigure("working-count", s.working_orders);
      setFigure("risk-event-count", s.risk_events); setFigure("peak-equity", dd.peak);
      setFigure("drawdown", dd.current, pct(dd.current));
      setFigure("max-drawdown", dd.max, pct(dd.max));
    });
    on("equity", (d) => {
      for (const p of d.points) points.push(p);
      if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
      marks.equity = d.mark; draw();
    });
    on("fills", (d) => { prependRows("fills", d.rows); marks.fills = d.mark; });
    on("risk_events", (d) => { prependRows("risk-events", d.rows); marks.risk_events = d.mark; });
    on("orders", (d) => replaceRows("working-orders", d.rows));
    on("positions", (d) => replaceRows("positions", d.rows));
    on("signals", (d) => replaceRows("signals", d.rows));
    on("audit", (d) => replaceRows("audit", d.rows));
    on("strategy_versions", (d) => replaceRows("strategy-versions", d.rows));
    // the ledger was deleted or replaced: what the page holds is another ledger's
    on("reset", () => { source.close(); location.reload(); });
  }
  connect();
  const form = byId("controls");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = e.submitter, result = byId("control-result");
    const action = button.dataset.action;
    const body = {reason: byId("reason").value};
    if (action === "promote") {
      body.version_id = byId("promote-version").value;
      body.to = byId("promote-to").value;
    }
    if (action === "rollback") body.slot = byId("rollback-slot").value;
    result.dataset.status = "pending"; result.textContent = action + "…";
    try {
      const answer = await fetch(button.getAttribute("formaction"), {method: "POST",
        headers: {"Content-Type": "application/json", "X-Argus-Token": byId("token").value},
        body: JSON.stringify(body)});
      const data = await answer.json();
      result.dataset.status = answer.ok ? "ok" : "error";
      result.dataset.action = action;
      result.textContent = !answer.ok ? (data.error || answer.statusText)
        : data.changed === false ? action + ": " + data.message
        : action + " done by " + data.by + (data.message ? " (" + data.message + ")" : "");
    } catch (err) {
      result.dataset.status = "error"; result.textContent = String(err);
    }
  });
})();
"""


def _page(title: str, nav: str, body: str, key: str, poll_s: float, reload_s: int = 0) -> str:
    refresh = f'<meta http-equiv="refresh" content="{reload_s}">' if reload_s else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{_STYLE}</style></head>
<body data-run-key="{esc(key)}" data-poll-s="{poll_s}" data-max-cell="{MAX_CELL}">
<header><h1><a href="/">Argus</a> <span id="title">{esc(title.removeprefix("Argus: "))}</span></h1>
<nav id="runs-nav">{nav}</nav></header>
<main>{body}</main>
<script>{_SCRIPT}</script>
</body></html>"""


def _source_hash(text: str) -> str:
    """A CSP hash source of an inline element's text."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


#: Sent with every answer: nothing loads or runs but the page's own script and style
#: (by their hashes: the JSON data blocks are not scripts to a browser); the script may
#: read this server (the stream, the controls' fetch), forms post only here, and no
#: page may frame this one.  An escaping slip then shows text, it does not run it.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_source_hash(_SCRIPT)}; "
    f"style-src {_source_hash(_STYLE)}; img-src data:; connect-src 'self'; "
    f"form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
