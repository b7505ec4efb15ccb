"""Red team of the trader's report on degenerate and hostile runs, written with the core's
own ``Ledger`` API and checked against figures worked out here from the rows.

What was found (each test says which failed before):

* a NaN or infinite equity row (a damaged ledger) made the chart's strict JSON raise:
  no report at all;
* money past 28 digits (a 1E+300 fill, an equity of 1E+308) raised
  ``decimal.InvalidOperation`` in ``money`` (quantize): no report at all;
* a bidi override (U+202E) or a control character (ESC, NUL) in an instrument id,
  strategy or reason went onto the page raw: the row showed reversed;
* a run with fills but no equity rows showed Net P&L 0.00, every return figure 0 and
  "fees as a share of gross P&L" 100% (of a gross P&L of 0 + fees): all unknown;
* buy-and-hold of a run whose equity rows all precede the bars' first close named
  prices from after the run as its entry and exit.
"""

from __future__ import annotations

import html
import json
import math
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_tearsheet.analytics import buy_and_hold
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.render import money

from argus_core import DataError, Fill, Ledger, Liquidity, Order, OrderStatus, Side
from argus_core.config import parse_config

HOUR_NS = 3_600 * 10**9
T0 = 1_640_995_200 * 10**9  # 2022-01-01 00:00 UTC
CASH = Decimal("10000")


def _run(run_dir: Path, fills=(), equity=(), strategy: str = "s") -> Path:
    """``fills``: (instrument, side, price, quantity, fee, hour); ``equity``: texts, hourly."""
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("r", "replay", 0, json.dumps({"run": {"starting_cash": str(CASH)}}))
        with ledger.transaction():
            for i, (inst, side, price, qty, fee, hour) in enumerate(fills):
                ts = T0 + hour * HOUR_NS
                ledger.insert_order(Order(
                    client_order_id=f"o{i}", venue="replay", instrument_id=inst, side=side,
                    quantity=Decimal(qty), strategy=strategy, ts_ns=ts,
                    status=OrderStatus.FILLED, reason=f"{strategy} {i}"), "r")
                ledger.insert_fill(Fill(
                    fill_id=f"f{i}", client_order_id=f"o{i}", venue="replay",
                    instrument_id=inst, side=side, price=Decimal(price),
                    quantity=Decimal(qty), fee=Decimal(fee), liquidity=Liquidity.TAKER,
                    ts_ns=ts))
            if equity:
                ledger.append_equity([(T0 + h * HOUR_NS, "0", e, "0")
                                      for h, e in enumerate(equity)])
        ledger.finish_run("r")
    return run_dir


def _performance(sections: dict[str, str]) -> dict[str, str]:
    """The performance table's strategy column, by label (up to its first " (")."""
    rows = re.findall(r"<tr><td>(.*?)</td><td class=n>(.*?)</td><td class=n>.*?</td></tr>",
                      sections["Trader's report: performance"])
    return {html.unescape(label).split(" (")[0]: html.unescape(v) for label, v in rows}


def test_an_empty_run_renders_with_nothing_known(tmp_path: Path) -> None:
    perf = _performance(tearsheet_sections(_run(tmp_path / "run")))
    assert perf["Net P&L"] == perf["Sharpe"] == perf["Total return"] == "—"
    assert perf["Trades"] == "0" and perf["Win rate"] == "—"


def test_fills_without_equity_rows_show_unknown_not_zero(tmp_path: Path) -> None:
    """Before: Net P&L 0.00, Sharpe 0.00 and fees 100% of a gross P&L nobody knows."""
    run = _run(tmp_path / "run", fills=[("BTC", Side.BUY, "100", "1", "0.1", 1),
                                        ("BTC", Side.SELL, "90", "1", "0.1", 2)])
    perf = _performance(tearsheet_sections(run))
    for label in ("Net P&L", "Total return", "Sharpe", "Max drawdown", "Exposure",
                  "Fees as a share of gross"):
        assert perf[label] == "—", label
    # What the fills say is still shown: one losing trade, its fees, its turnover.
    assert perf["Fees paid"] == "0.20" and perf["Trades"] == "1"
    assert perf["Win rate"] == "0.00%" and perf["Expectancy"] == "-10.20"
    assert perf["Turnover"] == f"{(100 + 90) / 10_000:.2f}×"


def test_figures_equal_an_independent_computation_from_the_rows(tmp_path: Path) -> None:
    """One fill-less span, a losing and a winning trade, irregular equity: every figure
    worked out here from the rows written (simple returns, ddof 1, obs/yr from stamps)."""
    fills = [("BTC", Side.BUY, "100", "2", "0.2", 1), ("BTC", Side.SELL, "95", "2", "0.19", 3),
             ("ETH", Side.SELL, "50", "4", "0.2", 4), ("ETH", Side.BUY, "40", "4", "0.16", 6)]
    equity = ["10000", "9999.8", "9990", "9989.61", "9989.41", "9995", "10029.25", "10029.25"]
    perf = _performance(tearsheet_sections(_run(tmp_path / "run", fills, equity)))
    eq = np.array([float(e) for e in equity])
    r = eq[1:] / eq[:-1] - 1
    obs_per_year = (len(eq) - 1) / ((len(eq) - 1) * HOUR_NS / (365.25 * 86_400e9))
    sharpe = r.mean() / r.std(ddof=1) * math.sqrt(obs_per_year)
    peak = np.maximum.accumulate(eq)
    trades = [(95 - 100) * 2 - 0.2 - 0.19, (50 - 40) * 4 - 0.2 - 0.16]
    fees = 0.2 + 0.19 + 0.2 + 0.16
    assert perf["Total return"] == f"{(eq[-1] / 10_000 - 1) * 100:,.2f}%"
    assert perf["Net P&L"] == f"{eq[-1] - 10_000:,.2f}"
    assert perf["Sharpe"] == f"{sharpe:,.2f}"
    assert perf["Volatility"] == f"{r.std(ddof=1) * math.sqrt(obs_per_year) * 100:,.2f}%"
    assert perf["Max drawdown"] == f"{((peak - eq) / peak).max() * 100:,.2f}%"
    assert perf["Turnover"] == f"{(200 + 190 + 200 + 160) / 10_000:.2f}×"
    assert perf["Fees paid"] == f"{fees:.2f}"
    assert perf["Trades"] == "2" and perf["Win rate"] == "50.00%"
    assert perf["Profit factor"] == f"{trades[1] / -trades[0]:.2f}"
    assert perf["Expectancy"] == f"{sum(trades) / 2:.2f}"
    assert perf["Fees as a share of gross"] == \
        f"{fees / (eq[-1] - 10_000 + fees) * 100:.2f}%"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_equity_row_is_a_gap_not_a_failed_report(tmp_path: Path, bad) -> None:
    """Before: ValueError (out of range float values are not JSON compliant)."""
    run = _run(tmp_path / "run", equity=["10000", "10001", bad, "10002", "10003"])
    sections = tearsheet_sections(run)
    chart = next(iter(sections.values()))
    assert "null" in chart  # the row is a gap in the line
    assert not re.search(r"\bNaN\b|Infinity", chart.split("</script>", 1)[1])


def test_money_past_the_decimal_context_is_written_not_raised(tmp_path: Path) -> None:
    """Before: decimal.InvalidOperation (quantize needs more than 28 digits)."""
    assert money(Decimal("1E+300")) == f"{10**300:,}.00"
    assert money(Decimal("-1.235")) == "-1.24" and money(Decimal("2.345")) == "2.34"
    assert money(float("nan")) == "—" and money(float("-inf")) == "-∞"
    run = _run(tmp_path / "run", fills=[("BTC", Side.BUY, "1e300", "1e3", "0", 1),
                                        ("BTC", Side.SELL, "2e300", "1e3", "0", 2)],
               equity=["10000", "10000", "1e308"])
    sections = tearsheet_sections(run)
    assert f"{10**303:,}.00" in sections["Trader's report: trades"]  # the trade's P&L


HIDDEN = ["\u202e", "\u2066", "\u200f", "\x1b", "\x00", "\x7f", "\x9b"]


def test_bidi_overrides_and_control_characters_are_written_out(tmp_path: Path) -> None:
    """Before: U+202E in an instrument id reversed the rest of its table row on the page;
    ESC and NUL went onto the page raw."""
    name = "BTC" + "".join(HIDDEN) + "<b>x</b>"
    run = _run(tmp_path / "run", fills=[(name, Side.BUY, "100", "1", "0", 1),
                                        (name, Side.SELL, "110", "1", "0", 2),
                                        (name, Side.BUY, "100", "1", "0", 3)],
               equity=["10000", "10000", "10010", "10010"], strategy=name)
    page = "".join(tearsheet_sections(run).values())
    assert not [c for c in HIDDEN if c in page]
    assert "\\u202e" in page and "\\u001b" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def _bars_config(tmp_path: Path, first_open_s: int):
    (tmp_path / "bars.csv").write_text("\n".join(
        f"{first_open_s + h * 3600},1,1,1,{c},1,1" for h, c in enumerate([100, 110, 99])))
    return parse_config({"run": {"venue": "replay"},
                         "plugins": {"replay": {"bars_csv": "bars.csv"}}},
                        tmp_path / "config.toml")


def test_buy_and_hold_holds_cash_until_the_first_close_is_known(tmp_path: Path) -> None:
    """Rows stamped before the first bar's close (1h) hold the cash; the entry is the
    first close known (100, at 1h), not one from the future."""
    config = _bars_config(tmp_path, T0 // 10**9)
    ts = (T0 + np.array([0, 0.5, 1, 2, 3]) * HOUR_NS).astype(np.int64)
    bench = buy_and_hold(config, ts, 1_000.0)
    assert bench is not None
    np.testing.assert_allclose(bench.equity, [1_000, 1_000, 1_000, 1_100, 990])
    assert (bench.entry_price, bench.exit_price) == (100.0, 99.0)


def test_buy_and_hold_with_no_close_known_during_the_run_is_refused(tmp_path: Path) -> None:
    """Before: every row priced at the bars' first close, after the run's end: a flat
    benchmark said to enter and exit at a price nobody had seen."""
    config = _bars_config(tmp_path, T0 // 10**9 + 10 * 3600)
    ts = (T0 + np.array([0, 1, 2]) * HOUR_NS).astype(np.int64)
    with pytest.raises(DataError, match="no price was known during the run"):
        buy_and_hold(config, ts, 1_000.0)
