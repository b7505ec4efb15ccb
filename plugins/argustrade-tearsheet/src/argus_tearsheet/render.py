"""The trader's report as HTML sections for the core's report page.

Plotly draws the charts; plotly.js itself (from the ``plotly`` package) is embedded once,
in a ``<script>`` block at the top of the first section, and every figure is written as a
``<div>`` plus a ``Plotly.newPlot`` call without it, so the page opens with no network
and carries the library once however many charts it has.  The first section is the
interactive equity and drawdown chart, titled as the core's own plots
(:data:`EQUITY_SECTION`) so that the core shows it in their place, at the top of the
page, and draws no static copy of the same series.
"""

from __future__ import annotations

import html
import json
import math
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any, cast

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core import (
    EQUITY_SECTION,  # the core's title: a section so titled replaces its plots
    Config,
    DataError,
    metrics,
    visible_text,
)
from argus_tearsheet.analytics import (
    Benchmark,
    buy_and_hold,
    drawdown_duration_ns,
    exposure,
    fee_share,
    monthly_returns,
    profit_factor,
    series_stats,
)
from argus_tearsheet.downsample import envelope, equity_envelope
from argus_tearsheet.opportunities import follow
from argus_tearsheet.run_data import RunData
from argus_tearsheet.trades import RunBook, build_books

TITLE = "Trader's report"
SECTIONS = ("performance", "strategies", "trades", "open positions", "monthly returns",
            "opportunities")
MAX_TRADES_SHOWN = 500
#: A text from the ledger (a reason, an instrument, a strategy's name) longer than
#: TEXT_PREVIEW characters shows its start and opens (a ``<details>``) on the first
#: MAX_TEXT_SHOWN: a 1 MB reason would be a 1 MB table cell, and 500 of them a 500 MB page.
TEXT_PREVIEW = 200
MAX_TEXT_SHOWN = 10_000
DASH = "—"
CENT = Decimal("0.01")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@attrs.frozen(eq=False)
class Report:
    """The analysed run: what the sections show."""

    data: RunData
    book: RunBook
    benchmark: Benchmark | None
    benchmark_note: str


def analyse(data: RunData, config: Config | None) -> Report:
    """Trades, per-strategy P&L and the buy-and-hold benchmark of a loaded run."""
    book = build_books(data.fills, data.orders, data.marks)
    try:
        bench = buy_and_hold(config, data.ts_ns, float(data.starting_cash))
    except DataError as exc:
        # The run's numbers stand without a benchmark: say why there is none.
        return Report(data, book, None, f"No buy-and-hold benchmark: {exc}.")
    if bench is not None:
        note = (f"Buy-and-hold: the starting cash in the replayed instrument at the first "
                f"close known at an equity row ({bench.entry_price:,.2f}; cash until "
                f"then), held to the last "
                f"({bench.exit_price:,.2f}); prices from {bench.source.name}; no fees.")
    elif config is not None and config.run.venue == "replay" and len(data.ts_ns) >= 2:
        note = ("No buy-and-hold benchmark: this replay has no bars CSV (a recorded stream "
                "carries no single price series).")
    else:
        note = ("No buy-and-hold benchmark: no price series of the traded instrument is "
                "available for this run (only a replay of a bars CSV has one).")
    return Report(data, book, bench, note)


def sections(report: Report) -> dict[str, str]:
    """``{title: html}`` for the core's report, in page order: the equity chart
    (:data:`EQUITY_SECTION`), then the trader's report (:data:`SECTIONS`)."""
    from plotly.offline import get_plotlyjs

    # One inline copy of plotly.js for the whole page, in its first section (the core puts
    # the equity section at the top); every figure omits it.
    library = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    bodies = (_performance(report), _strategies(report), _trades(report),
              _open_positions(report), _monthly(report), _opportunities(report))
    return {EQUITY_SECTION: library + _equity_chart(report),
            **{f"{TITLE}: {name}": body for name, body in zip(SECTIONS, bodies, strict=True)}}


# -- formatting ----------------------------------------------------------------------
def _e(value: object) -> str:
    """``value`` as HTML text: escaped, its bidi overrides and control characters written
    out (``\\u202e``, the core's :func:`~argus_core.visible_text`: an instrument id holding
    U+202E showed the rest of its table row reversed), and cut when long (see
    :data:`TEXT_PREVIEW`)."""
    text = visible_text(str(value))
    if len(text) <= TEXT_PREVIEW:
        return html.escape(text)
    rest = "" if len(text) <= MAX_TEXT_SHOWN else (
        f"<p class=note>… cut at {MAX_TEXT_SHOWN:,} of {len(text):,} characters: the "
        f"whole text is in the run's ledger (and <code>argus export</code>).</p>")
    return (f'<details style="max-width:40em;overflow-wrap:anywhere"><summary>'
            f"{html.escape(text[:TEXT_PREVIEW])}… ({len(text):,} characters)</summary>"
            f"{html.escape(text[:MAX_TEXT_SHOWN])}{rest}</details>")


def script_json(value: Any) -> str:
    """``value`` as JSON for a ``<script>`` element: ``<``, ``>`` and ``&`` as ``\\u``
    escapes (no text can close the element, nor open a comment that keeps it open past
    its own ``</script>``), and no raw U+2028/U+2029 (line ends to older JavaScript)."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals ("—" for None/NaN)."""
    if value is None or math.isnan(value):
        return DASH
    return "∞" if math.isinf(value) else f"{value * 100:,.2f}%"


def num(value: float | None, places: int = 2) -> str:
    """A plain number ("—" for None/NaN, "∞" for infinity)."""
    if value is None or math.isnan(value):
        return DASH
    return "∞" if math.isinf(value) else f"{value:,.{places}f}"


def money(value: Decimal | float) -> str:
    """Money to the cent, half-even like the ledger's Decimals ("—" for NaN, "∞" for
    infinity).  Formatted, not quantized: quantizing 1E+300 needs 302 digits, past the
    decimal context's 28, and raised ``InvalidOperation`` (the whole report failed)."""
    amount = Decimal(str(value))
    if amount.is_nan():
        return DASH
    if amount.is_infinite():
        return "-∞" if amount < 0 else "∞"
    return format(amount, ",.2f")


def duration(ns: int) -> str:
    """``3d 4h 5m`` (minutes dropped past a week, seconds shown under a minute)."""
    seconds = ns // 1_000_000_000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if not days and not hours and not minutes:
        return f"{secs}s"
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}m" if minutes and days < 7 else ""]
    return " ".join(p for p in parts if p) or "0m"


def stamp(ts_ns: int) -> str:
    """A UTC minute, ``2022-01-03 14:00``."""
    return str(np.datetime64(int(ts_ns), "ns").astype("datetime64[m]")).replace("T", " ")


def dec(value: Decimal) -> str:
    """An exact Decimal in plain notation without trailing zeros (``110``, not ``1.1E+2``)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """An HTML table; cells are HTML already.  The first ``text_columns`` columns and the
    last column when it holds reasons are left-aligned, the rest are numbers."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    left = set(range(text_columns)) | ({len(header) - 1} if header[-1].startswith("reason")
                                       else set())
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" if i in left else f"<td class=n>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# -- performance ---------------------------------------------------------------------
def _performance(report: Report) -> str:
    data, bench = report.data, report.benchmark
    m, ts, eq = data.core_metrics, data.ts_ns, data.equity
    b = series_stats(ts, bench.equity) if bench is not None else None
    per_year = float(m.get("obs_per_year", 0.0))
    ann = (f"annualised, {per_year:,.0f} obs/yr measured from timestamps" if per_year > 0
           else "not annualised: the equity rows span no time")
    fees = sum((s.fees for s in report.book.strategies), Decimal(0))
    # No equity rows: no net P&L nor any return figure is known (0 was shown, and the
    # fees' share of a gross P&L of "0 + fees" as 100%).
    net = (data.final_equity - data.starting_cash) if data.final_equity is not None \
        else None
    plays = data.plays
    pnls = [float(p["pnl"]) for p in plays]

    def both(key: str, fmt: Any = pct) -> list[str]:
        return [fmt(float(m.get(key, 0.0))) if len(eq) else DASH,
                fmt(b[key]) if b is not None else DASH]

    bench_dd = drawdown_duration_ns(ts, bench.equity) if bench is not None else None
    rows = [
        ["Period (UTC)", f"{stamp(ts[0])} → {stamp(ts[-1])}" if len(ts) else DASH,
         "same span" if bench is not None else DASH],
        ["Total return", *both("total_return")],
        ["Net P&L", money(net) if net is not None else DASH,
         money(float(bench.equity[-1]) - float(data.starting_cash))
         if bench is not None else DASH],
        ["CAGR (compound annual growth over the span)", *both("cagr")],
        [f"Volatility ({ann})", *both("volatility")],
        [f"Sharpe ({ann}, risk-free 0)", *both("sharpe", num)],
        [f"Sortino ({ann}, target 0)", *both("sortino", num)],
        ["Calmar (CAGR ÷ max drawdown)", *both("calmar", num)],
        ["Max drawdown (from the running peak)", *both("max_drawdown")],
        ["Longest drawdown (peak to recovery)",
         duration(drawdown_duration_ns(ts, eq)) if len(eq) else DASH,
         duration(bench_dd) if bench_dd is not None else DASH],
        ["Exposure (share of time with a position)",
         pct(exposure(ts, data.exposed)) if len(eq) else DASH,
         pct(1.0) if bench is not None else DASH],
        ["Turnover (traded notional ÷ starting cash)",
         f"{num(float(m.get('turnover', 0.0)))}×", "1.00×" if bench is not None else DASH],
        ["Fees paid", money(fees), "0.00" if bench is not None else DASH],
        ["Fees as a share of gross (pre-fee) P&L", pct(fee_share(fees, net)) if net is not None
         else DASH, DASH],
        ["Trades (round trips, basket legs joined)", f"{len(plays):,}", DASH],
        ["Win rate (share of trades with net P&L > 0)", pct(m.get("win_rate", 0.0))
         if plays else DASH, DASH],
        ["Profit factor (gross profit ÷ gross loss)", num(profit_factor(pnls)), DASH],
        ["Expectancy (mean net P&L per trade)", money(m.get("expectancy", 0.0))
         if plays else DASH, DASH],
    ]
    table = _table(["", "Strategy", "Buy & hold"], [[_e(row[0]), *row[1:]] for row in rows])
    note = (f"<p class=note>Returns are simple returns between consecutive equity rows "
            f"({len(eq):,} rows); {_e(metrics.annualisation_note(per_year))}. "
            f"{_e(report.benchmark_note)} Money in the run's quote currency.</p>")
    return table + note


def _baskets(data: RunData) -> dict[str, str | None]:
    return {k: v.get("basket_id") for k, v in data.orders.items()}


def _epoch_ms(ts_ns: NDArray[np.int64]) -> list[int]:
    """Stamps as epoch milliseconds: a Plotly date axis reads them as UTC instants."""
    return cast(list[int], (ts_ns // 1_000_000).tolist())


def plot_div(data: list[dict[str, Any]], layout: dict[str, Any], height_px: int) -> str:
    """A Plotly chart as a ``<div>`` and the ``<script>`` that draws it with the page's one
    plotly.js.  The figure goes straight to JSON (plotly's Python figure classes validate
    every point, ~10x slower for a few thousand points), through :func:`script_json`."""
    div_id = f"argus-tearsheet-{uuid.uuid4().hex[:12]}"
    args = ", ".join(script_json(part)
                     for part in (data, {**layout, "height": height_px}, _PLOT_CONFIG))
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:{height_px}px; '
            f'width:100%;"></div><script type="text/javascript">'
            f'Plotly.newPlot("{div_id}", {args});</script>')


def _line(ts: NDArray[np.int64], values: NDArray[np.float64], *, equity: bool = False,
          **style: Any) -> dict[str, Any]:
    """A scatter trace of ``values``, min/max-decimated for the chart's width (an
    ``equity`` line keeps each bucket's deepest drawdown and its peak too)."""
    keep = equity_envelope(ts, values) if equity else envelope(ts, values)
    y = values[keep]
    # A NaN or infinite row (a damaged ledger) is a gap in the line: JSON has no NaN.
    points: list[float | None] = y.tolist()
    if not np.isfinite(y).all():  # at most 9,000 points: decimated already
        points = [v if math.isfinite(v) else None for v in y.tolist()]
    return {"type": "scatter", "mode": "lines", "x": _epoch_ms(ts[keep]), "y": points,
            **style}


def _equity_chart(report: Report) -> str:
    """Equity, buy-and-hold and drawdown, min/max-decimated (numbers use every row): the
    core's own plots plus buy-and-hold, interactive."""
    ts, eq = report.data.ts_ns, report.data.equity
    if len(eq) < 2:
        return "<p class=note>No equity rows to chart.</p>"
    traces = [_line(ts, eq, equity=True, name="strategy equity",
                    line={"color": "#1f6feb", "width": 1.3})]
    if report.benchmark is not None:
        traces.append(_line(ts, report.benchmark.equity, equity=True, name="buy & hold",
                            line={"color": "#8a8a8a", "width": 1.0}))
    traces.append(_line(ts, -100.0 * metrics.drawdown(eq), name="drawdown %", yaxis="y2",
                        fill="tozeroy", line={"color": "#d73a49", "width": 0.8}))
    layout = {"margin": {"l": 60, "r": 20, "t": 30, "b": 30}, "hovermode": "x unified",
              "legend": {"orientation": "h", "y": 1.08},
              "xaxis": {"type": "date", "anchor": "y2"},
              "yaxis": {"title": {"text": "equity"}, "domain": [0.34, 1.0]},
              "yaxis2": {"title": {"text": "drawdown %"}, "domain": [0.0, 0.28]}}
    return plot_div(traces, layout, 520)


# -- per strategy --------------------------------------------------------------------
def _strategies(report: Report) -> str:
    data, book = report.data, report.book
    if not book.strategies:
        return "<p class=note>No fills: no strategy traded.</p>"
    baskets = _baskets(data)
    rows = []
    for s in book.strategies:
        plays = metrics.plays(metrics.round_trips(book.fills_by_strategy[s.strategy], baskets))
        pnls = [float(p["pnl"]) for p in plays]
        rows.append([_e(s.strategy), f"{s.n_fills:,}", money(s.traded_notional),
                     f"{len(plays):,}",
                     pct(float(np.mean(np.array(pnls) > 0))) if pnls else DASH,
                     num(profit_factor(pnls)),
                     money(float(np.mean(pnls))) if pnls else DASH,
                     money(s.realised), money(s.unrealised), money(s.fees), money(s.net)])
    t = book.total
    rows.append(["<b>total</b>", f"{t.n_fills:,}", money(t.traded_notional), "", "", "", "",
                 money(t.realised), money(t.unrealised), money(t.fees),
                 f"<b>{money(t.net)}</b>"])
    table = _table(["strategy", "fills", "traded notional", "trades", "win rate",
                    "profit factor", "expectancy", "realised P&L (before fees)",
                    "unrealised P&L", "fees", "net P&L"], rows)
    account = (data.final_equity - data.starting_cash) if data.final_equity is not None \
        else None
    if account is None:
        check = "The ledger has no equity rows to compare with."
    elif abs(account - t.net) < CENT / 2:
        check = f"The strategies' net P&L adds up to the account's: final equity − " \
                f"starting cash = {money(account)}."
    else:
        check = (f"The strategies' net P&L ({money(t.net)}) differs from final equity − "
                 f"starting cash ({money(account)}): the last equity row was not marked at "
                 f"the final marks.")
    return table + (
        "<p class=note>Each strategy's own book per instrument (the strategy on the fill's "
        "order). Realised P&L is average-cost and before fees; unrealised is open quantity "
        "× (final mark − average price); net P&L = realised + unrealised − fees. Trades, "
        f"win rate, profit factor and expectancy count round trips flat to flat. {check}</p>")


# -- trades --------------------------------------------------------------------------
def _reason(text: str, has_column: bool) -> str:
    return _e(text) if has_column and text else DASH


def _trades(report: Report) -> str:
    data, trades = report.data, report.book.trades
    if not trades:
        return "<p class=note>No closed trades.</p>"
    shown = sorted(trades, key=lambda t: (t.closed_ns, t.opened_ns))[-MAX_TRADES_SHOWN:]
    rows = []
    for t in shown:
        reason = _reason(t.entry_reason, data.has_reason)
        if data.has_reason and t.exit_reason and t.exit_reason != t.entry_reason:
            reason = f"{reason} → {_e(t.exit_reason)}"
        rows.append([_e(t.strategy), _e(t.instrument_id), t.side, dec(t.quantity),
                     stamp(t.opened_ns), dec(t.entry_price), stamp(t.closed_ns),
                     dec(t.exit_price), pct(float(t.return_fraction)),
                     duration(t.holding_ns), money(t.fees), money(t.pnl), reason])
    header = ["strategy", "instrument", "side", "quantity", "entry time", "entry price",
              "exit time", "exit price", "return", "holding time", "fees", "net P&L",
              "reason (entry → exit)"]
    table = _table(header, rows, text_columns=3)
    missing = "" if data.has_reason else (" This ledger's orders carry no reason column, "
                                          "so reasons show —.")
    return (f"<p class=note>{len(trades):,} round trips; the last {len(shown):,} by exit "
            f"time shown (all of them: <code>argus export</code>). Prices are volume-"
            f"weighted over the opening and the closing fills; return is net P&L over the "
            f"entry notional.{missing}</p>" + table)


# -- open positions ------------------------------------------------------------------
def _open_positions(report: Report) -> str:
    data, positions = report.data, report.book.open_positions
    if not positions:
        return "<p class=note>No open positions at the end of the run.</p>"
    rows = [[_e(p.strategy), _e(p.instrument_id), "long" if p.quantity > 0 else "short",
             dec(abs(p.quantity)), dec(p.avg_price),
             dec(p.mark) + ("" if p.marked else " (no mark: average price)"),
             money(p.unrealised), stamp(p.opened_ns), _reason(p.entry_reason, data.has_reason)]
            for p in positions]
    rows.append(["<b>total</b>", "", "", "", "", "",
                 f"<b>{money(sum((p.unrealised for p in positions), Decimal(0)))}</b>",
                 "", ""])
    return _table(["strategy", "instrument", "side", "quantity", "average price",
                   "mark", "unrealised P&L", "opened", "reason"], rows, text_columns=3) + (
        "<p class=note>Marked at the account's last marks (the runner's final "
        "checkpoint), the prices of the last equity row.</p>")


# -- opportunities -------------------------------------------------------------------
def _opportunities(report: Report) -> str:
    found = follow(report.data)
    if not found:
        return "<p class=note>No scanner findings in this run.</p>"
    shown = found[-MAX_TRADES_SHOWN:]
    rows = []
    for o in shown:
        pnl = DASH if o.pnl is None else money(o.pnl) + (
            f" (open: {', '.join(_e(i) for i in o.open_instruments)} at the last mark)"
            if o.open_instruments else "")
        rows.append([stamp(o.ts_ns), _e(o.scanner), _e(o.kind), _e(o.lane), _e(o.status),
                     money(o.expected_profit), str(o.orders), str(o.fills), money(o.fees),
                     pnl, _e(o.opportunity_id)])
    traded = [o for o in found if o.pnl is not None]
    made = sum((o.pnl for o in traded if o.pnl is not None), Decimal(0))
    expected = sum((o.expected_profit for o in traded), Decimal(0))
    return (f"<p class=note>{len(found):,} findings, {len(traded):,} traded: expected "
            f"{money(expected)}, made {money(made)} (fills' cash, fees included, plus what a "
            f"basket still holds at its settlement price, or at the last mark while open). "
            f"Research findings are never traded.</p>"
            + _table(["found", "scanner", "kind", "lane", "status", "expected profit",
                      "orders", "fills", "fees", "P&L", "opportunity"], rows,
                     text_columns=5))


# -- monthly returns -----------------------------------------------------------------
def _monthly(report: Report) -> str:
    monthly = monthly_returns(report.data.ts_ns, report.data.equity)
    if not len(monthly.returns):
        return "<p class=note>Not enough equity rows for monthly returns.</p>"
    years = monthly.months.astype("datetime64[Y]").astype(np.int64) + 1970
    month_index = monthly.months.astype(np.int64) % 12
    first = int(years.min())
    grid = np.full((int(years.max()) - first + 1, 12), np.nan)
    grid[years - first, month_index] = monthly.returns * 100.0
    text = [[DASH if math.isnan(v) else f"{v:.1f}%" for v in row] for row in grid]
    by_year: dict[int, float] = defaultdict(lambda: 1.0)
    for year, r in zip(years.tolist(), monthly.returns.tolist(), strict=True):
        by_year[year] *= 1.0 + r
    labels = [str(first + i) for i in range(grid.shape[0])]
    z = [[None if math.isnan(v) else round(float(v), 4) for v in row] for row in grid]
    heatmap = {"type": "heatmap", "z": z, "x": list(_MONTHS), "y": labels, "text": text,
               "texttemplate": "%{text}", "colorscale": "RdYlGn", "zmid": 0,
               "colorbar": {"title": {"text": "%"}},
               "hovertemplate": "%{y} %{x}: %{text}<extra></extra>"}
    layout = {"yaxis": {"autorange": "reversed", "type": "category"},
              "margin": {"l": 60, "r": 20, "t": 20, "b": 30}}
    chart = plot_div([heatmap], layout, 120 + 40 * len(labels))
    yearly = ", ".join(f"{y}: {pct(v - 1.0)}" for y, v in sorted(by_year.items()))
    return chart + (f"<p class=note>Each calendar month (UTC): its last equity over the "
                    f"previous month's last (the first month over the first row). Year "
                    f"totals, compounded: {yearly}.</p>")
