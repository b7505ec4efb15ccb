"""``argus report``: a self-contained HTML page (equity, drawdown, trades, metrics).

Plots are rendered with matplotlib's Agg backend and embedded as base64 PNG,
so the report opens in any browser with no network and no extra files.  Long series are
drawn min/max-decimated to the figure's pixel width (:mod:`argus_core.downsample`) with
numpy datetime64 stamps, so 700k bars plot about as fast as 4,000 with every peak and
trough intact; the numbers (metrics, tables) always come from the full series.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from argus_core.config import Config, parse_config
from argus_core.downsample import envelope_indices
from argus_core.errors import LedgerError
from argus_core.ledger import LEDGER_FILE, Ledger
from argus_core.metrics import (
    annualisation_note,
    basket_map,
    compute_metrics,
    drawdown,
    equity_series,
    plays,
    round_trips,
)
from argus_core.plugins import PluginHost, fenced_call

REPORT_FILE = "report.html"
log = logging.getLogger(__name__)
DPI = 110
#: Room for the title, date ticks and six-figure equity labels at the figures' sizes.
_MARGINS = {"left": 0.085, "right": 0.99, "top": 0.88, "bottom": 0.14}


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    # Fixed margins (set where the figure is made) render once; bbox_inches="tight" and a
    # layout engine each lay the figure out with a draw of their own first.
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _envelope(fig: Any, ts_ns: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(datetime64 stamps, values)`` to draw: decimated to the figure's full width in
    pixels, an upper bound on the axes' width (finer columns only keep more points)."""
    keep = envelope_indices(ts_ns, values, int(fig.get_figwidth() * DPI))
    # datetime64 converts in one cast; matplotlib converts Python datetimes one by one.
    return ts_ns[keep].astype("datetime64[ns]"), values[keep]


def _minute(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def _plots(ts_ns: np.ndarray, equity: np.ndarray) -> str:
    """The equity and drawdown figures as ``<img>`` tags ("" with no equity rows)."""
    if not len(equity):
        return ""
    fig, ax = plt.subplots(figsize=(10, 3.6), gridspec_kw=_MARGINS)
    ax.plot(*_envelope(fig, ts_ns, equity), color="#1f6feb", lw=1.2)
    ax.set_title("Equity")
    ax.grid(alpha=0.3)
    plots = f'<img alt="equity curve" src="data:image/png;base64,{_png(fig)}">'
    fig, ax = plt.subplots(figsize=(10, 2.6), gridspec_kw=_MARGINS)
    ax.fill_between(*_envelope(fig, ts_ns, -100 * drawdown(equity)), 0, color="#d73a49",
                    alpha=0.5)
    ax.set_title("Drawdown (%)")
    ax.grid(alpha=0.3)
    return plots + f'<img alt="drawdown" src="data:image/png;base64,{_png(fig)}">'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    return html.escape(str(value))


def plugin_sections(config: Config, run_dir: Path) -> dict[str, str]:
    """Every loaded plugin's ``report_sections`` (a plugin the config names that is no
    longer installed is left out, with a warning: an old run still gets its report)."""
    host = PluginHost()
    host.load(config.argus.plugins, tolerant=True)
    for name, why in host.broken.items():
        log.warning("report: plugin %r left out: %s", name, why)
    sections: dict[str, str] = {}
    for impl in host.pm.hook.report_sections.get_hookimpls():
        sections.update(fenced_call(impl.plugin_name, "report_sections", impl.function,
                                    config, run_dir) or {})
    return sections


def write_report(run_dir: Path, config: Config | None = None) -> Path:
    """Write ``run_dir/report.html`` with the plugins' sections (for ``config``, else the
    config the run recorded) and return its path."""
    run_dir = Path(run_dir)
    if not (run_dir / LEDGER_FILE).exists():
        raise LedgerError(f"{run_dir}: no {LEDGER_FILE} here; run `argus run` or `argus demo` "
                          f"first, or pass the run directory it printed")
    with Ledger.in_dir(run_dir) as ledger:
        runs = ledger.query("select * from runs")
        if not runs:
            raise LedgerError(f"{run_dir}/{LEDGER_FILE} has no run recorded")
        run = runs[0]
        cfg = json.loads(run["config_json"])
        start = Decimal(str(cfg["run"]["starting_cash"]))
        ts, eq = equity_series(ledger)
        metrics = compute_metrics(ledger, start, series=(ts, eq))
        trips = plays(round_trips(ledger.fills(), basket_map(ledger)))
        risk_rows = ledger.query("select check_name, action, count(*) as n, min(reason) as "
                                 "example from risk_events group by 1, 2 order by n desc")
        opp_count = ledger.query("select count(*) as n from opportunities")[0]["n"]
    if config is None:  # the recorded config, its relative paths against its own folder
        recorded = run.get("config_path")
        config = parse_config(cfg, Path(recorded) if recorded else None)
    extra_sections = plugin_sections(config, run_dir)
    plots = _plots(ts, eq)
    annualisation = annualisation_note(float(metrics.get("obs_per_year", 0.0)))
    metric_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>"
                          for k, v in metrics.items())
    trade_rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{:,.2f}</td><td class=n>{:,.2f}</td>"
        "</tr>".format(html.escape(" + ".join(t["instruments"])),
                       _minute(t["opened_ns"]), _minute(t["closed_ns"]),
                       float(t["pnl"]), float(t["fees"]))
        for t in trips[-500:])
    risk_table = "".join(f"<tr><td>{html.escape(r['check_name'])}</td><td>{r['action']}</td>"
                         f"<td class=n>{r['n']}</td><td>{html.escape(r['example'])}</td></tr>"
                         for r in risk_rows) or "<tr><td colspan=4>none</td></tr>"
    extra = "".join(f"<h2>{html.escape(title)}</h2>{body}"
                    for title, body in extra_sections.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Argus report {html.escape(run['run_id'])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ddd;padding:4px 8px;
text-align:left}}td.n{{text-align:right}}img{{max-width:100%;display:block;margin:1em 0}}
.note{{color:#555}}</style></head><body>
<h1>Argus run {html.escape(run['run_id'])}</h1>
<p class=note>mode {html.escape(run['mode'])} · seed {run['seed']} · status
{html.escape(run['status'])} · starting cash {start:,} · opportunities seen {opp_count}.
Fills are simulated by the paper broker: taker orders walk displayed depth (or, with bars
only, a synthetic book around the next bar's open); fees and slippage are always applied.</p>
{plots}<h2>Metrics</h2><table>{metric_rows}</table>
<p class=note>Sharpe, Sortino and volatility are {html.escape(annualisation)} (equity
rows per year of their span); returns are simple returns between equity rows; CAGR is over
the equity rows' own span; kurtosis is non-excess (normal = 3).</p>
<h2>Risk events</h2><table><tr><th>check</th><th>action</th><th>count</th><th>example</th></tr>
{risk_table}</table>{extra}
<h2>Plays ({len(trips)}; last 500 shown)</h2>
<p class=note>A play is one round trip from flat back to flat, with the legs a basket (a
spread, an arbitrage) opened together joined into one.</p>
<table><tr><th>instrument(s)</th><th>opened</th><th>closed</th><th>P&amp;L</th><th>fees</th></tr>
{trade_rows}</table></body></html>"""
    out = run_dir / REPORT_FILE
    out.write_text(page)
    return out
