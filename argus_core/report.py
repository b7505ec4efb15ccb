"""``argus report``: a self-contained HTML page (equity, drawdown, trades, metrics).

The ledger is read once, into a :class:`ReportData` (equity series, metrics, fills,
plays) that every plugin's ``report_sections`` may take as ``report=`` instead of reading
the run again.  The equity and drawdown plots are inline SVG written here by hand: they
are two line charts, matplotlib cost ~0.5 CPU s and ~35 MiB per report to render them as
PNGs, and a browser draws SVG natively, crisp at any zoom, with no network and no extra
files.  Long series are drawn min/max-decimated to the plots' width in pixels
(:mod:`argus_core.downsample`), a few thousand points with every peak and trough intact;
the numbers (metrics, tables) always come from the full series.  A plugin section titled
:data:`EQUITY_SECTION` (an interactive chart) takes the plots' place.
"""
from __future__ import annotations

import html
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core.config import Config, parse_config
from argus_core.control import visible_text
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
#: The plots' width in SVG user units (CSS pixels at the page's full width), which is
#: also the decimation's column count: an upper bound on the plot box's width in pixels.
WIDTH = 1100
#: The plot box's left and right edges, and its room above (title) and below (dates).
_LEFT, _RIGHT, _TOP, _BOTTOM = 72.0, 1064.0, 28.0, 24.0
#: Date tick steps: fixed ones in seconds, then calendar months (aligned to January).
_STEPS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
            7 * 86400, 14 * 86400)
_STEPS_MONTHS = (1, 2, 3, 6, 12, 24, 60, 120, 240)


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


def _value_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Three to seven round values in ``[lo, hi]`` (steps 1, 2, 2.5 or 5 times a power of
    ten), labelled with as many decimals as the step needs."""
    raw = (hi - lo) / 6  # the step is raw to 2 x raw: 3 to 7 ticks in the range
    exponent = math.floor(math.log10(raw))
    mantissa, power = next((m, p) for p in (exponent, exponent + 1) for m in (1, 2, 2.5, 5)
                           if m * 10.0**p >= raw)
    step = mantissa * 10.0**power
    decimals = max(0, (mantissa == 2.5) - power)  # 0.25 takes two, 2,500 none
    return [(k * step, f"{k * step:,.{decimals}f}")
            for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _date_ticks(t0: int, t1: int, most: int = 7) -> list[tuple[int, str]]:
    """At most ``most`` round UTC times (ns) in ``[t0, t1]``, labelled to their step."""
    span_s = (t1 - t0) / 1e9
    for step in _STEPS_S:
        if span_s / step <= most:
            fmt = "%m-%d %H:%M" if step < 86400 else "%Y-%m-%d"
            step_ns = step * 10**9
            return [(t, datetime.fromtimestamp(t / 1e9, UTC).strftime(fmt))
                    for t in range(-(-t0 // step_ns) * step_ns, t1 + 1, step_ns)]
    months = next((m for m in _STEPS_MONTHS if span_s / (m * 30.44 * 86400) <= most), 480)
    first, last = (np.datetime64(t, "ns").astype("datetime64[M]") for t in (t0, t1))
    stamps = np.arange(first + 1, last + 1)  # month starts after t0, up to t1
    stamps = stamps[stamps.astype(np.int64) % months == 0]
    width = 4 if months % 12 == 0 else 7  # "2024" or "2024-03"
    return [(int(m.astype("datetime64[ns]").astype(np.int64)), str(m)[:width]) for m in stamps]


def _chart(label: str, title: str, ts_ns: np.ndarray, values: np.ndarray, height: float,
           fill: bool) -> str:
    """One chart as inline SVG: ``values`` over ``ts_ns`` min/max-decimated to
    :data:`WIDTH` columns, as a line, or (``fill``) as an area hanging from zero."""
    keep = envelope_indices(ts_ns, values, WIDTH)
    t0, t1 = int(ts_ns[0]), int(ts_ns[-1])
    lo, hi = float(values.min()), float(values.max())
    if fill:  # the drawdown: from its deepest point up to zero, at the top
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.01, 1.0)  # a flat series still gets a box
    lo, hi = lo - pad, hi + pad
    bottom = height - _BOTTOM
    x_scale = (_RIGHT - _LEFT) / max(t1 - t0, 1)
    y_scale = (bottom - _TOP) / (hi - lo)
    xs = _LEFT + (ts_ns[keep] - t0).astype(np.float64) * x_scale
    ys = _TOP + (hi - values[keep]) * y_scale  # SVG's y grows downwards
    points = " ".join(map("{:.1f},{:.1f}".format, xs.tolist(), ys.tolist()))
    if fill:
        zero = f"{_TOP + hi * y_scale:.1f}"
        shape = (f'<polygon fill="#d73a49" fill-opacity="0.5" points="{xs[0]:.1f},{zero} '
                 f'{points} {xs[-1]:.1f},{zero}"/>')
    else:
        shape = f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.2" points="{points}"/>'
    y_ticks = [(_TOP + (hi - v) * y_scale, text) for v, text in _value_ticks(lo, hi)]
    x_ticks = [(_LEFT + (t - t0) * x_scale, text) for t, text in _date_ticks(t0, t1)]
    grid = "".join(f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   for y, _ in y_ticks) + "".join(
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{bottom}"/>' for x, _ in x_ticks)
    y_text = "".join(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}">{text}</text>'
                     for y, text in y_ticks)
    x_text = "".join(f'<text x="{x:.1f}" y="{bottom + 16}">{text}</text>'
                     for x, text in x_ticks)
    return (f'<svg class="plot" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} '
            f'{height}" xmlns="http://www.w3.org/2000/svg" font-size="11" fill="#444">'
            f'<text x="{(_LEFT + _RIGHT) / 2}" y="18" font-size="14" text-anchor="middle" '
            f'fill="#222">{title}</text><g stroke="#e5e5e5">{grid}</g>{shape}'
            f'<rect x="{_LEFT}" y="{_TOP}" width="{_RIGHT - _LEFT}" height="{bottom - _TOP}" '
            f'fill="none" stroke="#999"/><g text-anchor="end">{y_text}</g>'
            f'<g text-anchor="middle">{x_text}</g></svg>')


def _minute(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def _plots(ts_ns: np.ndarray, equity: np.ndarray) -> str:
    """The equity and drawdown charts as inline SVG ("" with no equity rows)."""
    if not len(equity):
        return ""
    equity_chart = _chart("equity curve", "Equity", ts_ns, equity, 396, fill=False)
    below = drawdown(equity)
    below *= -100  # in place: one series-sized array fewer at the report's peak
    return equity_chart + _chart("drawdown", "Drawdown (%)", ts_ns, below, 286, fill=True)


#: The most characters of one ledger text (a risk reason, an instrument id) the page
#: shows: a 1 MB reason was a 1 MB table cell.
MAX_TEXT = 500


def _text(value: Any) -> str:
    """Ledger text as escaped HTML, cut to :data:`MAX_TEXT` characters saying so."""
    text = visible_text(str(value))
    if len(text) <= MAX_TEXT:
        return html.escape(text)
    return (f"{html.escape(text[:MAX_TEXT])}… <span class=note>({len(text):,} characters; "
            f"the whole text is in the run's ledger)</span>")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    return html.escape(visible_text(str(value)))


def plugin_sections(config: Config, run_dir: Path, report: ReportData) -> dict[str, str]:
    """Every loaded plugin's ``report_sections`` (a plugin the config names that is no
    longer installed is left out, with a warning: an old run still gets its report).

    Each implementation gets the arguments it names (pluggy's rule: any subset of the
    hookspec's), so a plugin written before ``report`` existed is called as before;
    ``report`` is what the core read of the run (:class:`ReportData`)."""
    host = PluginHost()
    host.load(config.argus.plugins, tolerant=True)  # one uninstalled since: left out
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
    # read-only: a running paper run's report never waits on its writer, and a file that
    # is no ledger is refused, not made one
    with _rows_of(run_dir / LEDGER_FILE):
        data, risk_rows, opp_count = Ledger.reading(run_dir, _read_page_rows)
        page = _page(data, risk_rows, opp_count, run_dir, config)
    out = run_dir / REPORT_FILE
    # (the page says charset utf-8, whatever the locale)
    write_atomically(out, lambda part: part.write_text(page, encoding="utf-8"))
    return out, data


def _read_page_rows(ledger: Ledger) -> tuple[ReportData, list[dict[str, Any]], int]:
    """What the page shows, read from ``ledger``: the report's data, the risk events by
    check and action, and the count of opportunities."""
    data = read_report_data(ledger)
    risk_rows = ledger.query("select check_name, action, count(*) as n, min(reason) as "
                             "example from risk_events group by 1, 2 order by n desc")
    return data, risk_rows, ledger.query("select count(*) as n from opportunities")[0]["n"]


@contextmanager
def _rows_of(path: Path) -> Iterator[None]:
    """A row the report cannot read (text where a number belongs, a recorded config that
    is not JSON: a damaged or hand-edited ledger) is a ``LedgerError`` naming the file
    (exit 7), not a traceback.  Plugins' sections are fenced: their errors pass as they are."""
    try:
        yield
    except (ArithmeticError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"{path}: a row the report needs cannot be read ({type(exc).__name__}: "
                          f"{exc}); a damaged or hand-edited ledger") from exc


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(part)`` to a file beside ``path``, then rename it over ``path``: a full disk
    or a crash leaves the previous file whole, never a half page or a truncated table
    (which reads as a complete, shorter one).  The ``OSError`` of a failure names ``path``
    (a bare ENOSPC did not); the file beside it is removed."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(part)
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _page(data: ReportData, risk_rows: list[dict[str, Any]], opp_count: int, run_dir: Path,
          config: Config | None) -> str:
    """The report page of a run (``config``: None for the one it recorded)."""
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
        "</tr>".format(_text(" + ".join(t["instruments"])),
                       _minute(t["opened_ns"]), _minute(t["closed_ns"]),
                       float(t["pnl"]), float(t["fees"]))
        for t in trips[-500:])
    risk_table = "".join(f"<tr><td>{_text(r['check_name'])}</td><td>{_text(r['action'])}</td>"
                         f"<td class=n>{r['n']}</td><td>{_text(r['example'])}</td></tr>"
                         for r in risk_rows) or "<tr><td colspan=4>none</td></tr>"
    extra = "".join(f"<h2>{html.escape(title)}</h2>{body}"
                    for title, body in extra_sections.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Argus report {html.escape(run['run_id'])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ddd;padding:4px 8px;
text-align:left}}td.n{{text-align:right}}img{{max-width:100%;display:block;margin:1em 0}}
svg.plot{{width:100%;height:auto;display:block;margin:1em 0}}
.note{{color:#555}}</style></head><body>
<h1>Argus run {html.escape(run['run_id'])}</h1>
<p class=note>mode {html.escape(run['mode'])} · seed {html.escape(str(run['seed']))} · status
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
    return page
