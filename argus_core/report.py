"""``argus report``: a self-contained HTML page (equity, drawdown, trades, metrics).

The ledger is read once, into a :class:`ReportData` (equity series, metrics, fills,
plays) that every plugin's ``report_sections`` may take as ``report=`` instead of reading
the run again.  Plots are rendered with matplotlib's Agg backend and embedded as base64
PNG, so the report opens in any browser with no network and no extra files; a plugin
section titled :data:`EQUITY_SECTION` (an interactive chart) takes their place, and then
matplotlib is not even imported.  Long series are drawn min/max-decimated to the
figure's pixel width (:mod:`argus_core.downsample`) with numpy datetime64 stamps, so 700k
bars plot about as fast as 4,000 with every peak and trough intact; the numbers
(metrics, tables) always come from the full series.
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

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core.config import Config, parse_config
from argus_core.downsample import envelope_indices
from argus_core.errors import LedgerError
from argus_core.ledger import LEDGER_FILE, Ledger
from argus_core.metrics import (
    annualisation_note,
    basket_map,
    drawdown,
    equity_exposure_series,
    metrics_of,
    plays,
    round_trips,
)
from argus_core.plugins import PluginHost, fenced_call

REPORT_FILE = "report.html"
#: The title of the core's equity and drawdown plots: a plugin section with this title
#: (say, an interactive chart of the same series) is shown in their place.
EQUITY_SECTION = "Equity and drawdown"
log = logging.getLogger(__name__)
DPI = 110
#: Room for the title, date ticks and six-figure equity labels at the figures' sizes.
_MARGINS = {"left": 0.085, "right": 0.99, "top": 0.88, "bottom": 0.14}


@attrs.frozen(eq=False)
class ReportData:
    """What the report read from a run's ledger, in one read transaction: handed to
    every plugin's ``report_sections`` as ``report`` so that no section reads the run's
    equity rows again.  The arrays are read-only (every section shares them)."""

    #: the ``runs`` row (``run_id``, ``mode``, ``seed``, ``status``, ``config_json``, ...)
    run: dict[str, Any]
    starting_cash: Decimal
    #: equity row stamps (int64 ns since the epoch, UTC) and equity (float64), time order
    ts_ns: NDArray[np.int64]
    equity: NDArray[np.float64]
    #: per equity row: whether any position was held (gross exposure > 0)
    exposed: NDArray[np.bool_]
    #: the last equity row's exact value (``None`` with no equity rows)
    final_equity: Decimal | None
    #: :func:`argus_core.metrics.compute_metrics` of the run
    metrics: dict[str, Any]
    #: every fill, ledger rows in ledger order (``Ledger.fills``)
    fills: list[dict[str, Any]]
    #: round trips with each basket's legs joined (``metrics.plays``), by closing time
    plays: list[dict[str, Any]]

    @property
    def stamps(self) -> NDArray[np.datetime64]:
        """``ts_ns`` as numpy ``datetime64[ns]`` (a view, no copy)."""
        return self.ts_ns.view("datetime64[ns]")


def read_report_data(ledger: Ledger) -> ReportData:
    """Read a run's :class:`ReportData` in one read transaction (``LedgerError`` when
    the ledger has no run)."""
    with ledger.transaction():
        runs = ledger.query("select * from runs")
        if not runs:
            raise LedgerError(f"{ledger.path} has no run recorded")
        run = runs[0]
        start = Decimal(str(json.loads(run["config_json"]).get("run", {}).get(
            "starting_cash", Config().run.starting_cash)))
        ts, eq, exposed = equity_exposure_series(ledger)
        last = ledger.query("select equity from equity order by ts_ns desc limit 1")
        fills = ledger.fills()
        trips = plays(round_trips(fills, basket_map(ledger)))
    for array in (ts, eq, exposed):
        array.flags.writeable = False
    return ReportData(run=run, starting_cash=start, ts_ns=ts, equity=eq, exposed=exposed,
                      final_equity=Decimal(last[0]["equity"]) if last else None,
                      metrics=metrics_of(ts, eq, fills, trips, start), fills=fills,
                      plays=trips)


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, imported only when the core draws (a
    plugin's interactive chart in its place spares the import, ~0.3 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    # Fixed margins (set where the figure is made) render once; bbox_inches="tight" and a
    # layout engine each lay the figure out with a draw of their own first.
    fig.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(fig)
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
    plt = _pyplot()
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


def plugin_sections(config: Config, run_dir: Path, report: ReportData) -> dict[str, str]:
    """Every loaded plugin's ``report_sections`` (a plugin the config names that is no
    longer installed is left out, with a warning: an old run still gets its report).

    Each implementation gets the arguments it names (pluggy's rule: any subset of the
    hookspec's), so a plugin written before ``report`` existed is called as before;
    ``report`` is what the core read of the run (:class:`ReportData`)."""
    host = PluginHost()
    host.load(config.argus.plugins, tolerant=True)
    for name, why in host.broken.items():
        log.warning("report: plugin %r left out: %s", name, why)
    given = {"config": config, "run_dir": run_dir, "report": report}
    sections: dict[str, str] = {}
    for impl in host.pm.hook.report_sections.get_hookimpls():
        sections.update(fenced_call(impl.plugin_name, "report_sections", impl.function,
                                    *(given[name] for name in impl.argnames)) or {})
    return sections


def write_report(run_dir: Path, config: Config | None = None) -> Path:
    """Write ``run_dir/report.html`` with the plugins' sections (for ``config``, else the
    config the run recorded) and return its path."""
    return write_report_data(run_dir, config)[0]


def write_report_data(run_dir: Path, config: Config | None = None) -> tuple[Path, ReportData]:
    """:func:`write_report`, and the :class:`ReportData` it read (its ``metrics`` are
    the run's :func:`~argus_core.metrics.compute_metrics`: a caller printing them need
    not read the ledger again)."""
    run_dir = Path(run_dir)
    if not (run_dir / LEDGER_FILE).exists():
        raise LedgerError(f"{run_dir}: no {LEDGER_FILE} here; run `argus run` or `argus demo` "
                          f"first, or pass the run directory it printed")
    with Ledger.in_dir(run_dir) as ledger:
        data = read_report_data(ledger)
        risk_rows = ledger.query("select check_name, action, count(*) as n, min(reason) as "
                                 "example from risk_events group by 1, 2 order by n desc")
        opp_count = ledger.query("select count(*) as n from opportunities")[0]["n"]
    run, start, metrics, trips = data.run, data.starting_cash, data.metrics, data.plays
    if config is None:  # the recorded config, its relative paths against its own folder
        recorded = run.get("config_path")
        config = parse_config(json.loads(run["config_json"]),
                              Path(recorded) if recorded else None)
    extra_sections = plugin_sections(config, run_dir, data)
    # A plugin's chart of the same series replaces the core's plots: never drawn twice.
    plots = extra_sections.pop(EQUITY_SECTION, None)
    if plots is None:
        plots = _plots(data.ts_ns, data.equity)
    plots = f"<h2>{html.escape(EQUITY_SECTION)}</h2>{plots}" if plots else ""
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
    return out, data
