"""Held-out red team of the tearsheet: house orders, reading beside a writer, the CSV
export and the equity chart's decimation.  Each test failed before its fix:

* a settlement or flatten fill (the core's house slots ``settlement`` and ``flatten``)
  was booked as a strategy of its own: a resolved market stayed open in the strategy
  that bought it, a "settlement" strategy held the other side, the round trip never
  closed (no trade), and without a mark for the settled market the strategies' net P&L
  missed the settlement's profit;
* the report read the ledger through a read-write ``Ledger`` (``begin immediate``): beside
  a writer in a transaction it waited 5 s and failed as "a damaged file", and a zero-byte
  ``argus.db`` was turned into an empty ledger by reading it;
* CSV cells were written as they are (a reason ``=HYPERLINK(...)`` runs as a formula in
  a spreadsheet), in the locale's encoding (a non-ASCII instrument under a C locale was a
  ``UnicodeEncodeError``);
* the chart's equity line, decimated by min/max per bucket, lost a drawdown's trough and
  peak that were neither a bucket's lowest nor its highest point.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_tearsheet import export_run
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.trades import build_books
from tearsheet_ledger import HOUR_NS, T0

from argus_core import EQUITY_SECTION, Fill, Ledger, LedgerError, Liquidity, Side, metrics
from argus_core.account import Account

D = Decimal


def _fill(fill_id: str, coid: str, side: str, price: str, qty: str, *, hour: int,
          fee: str = "0", inst: str = "X", liquidity: str = "taker") -> dict[str, Any]:
    return {"fill_id": fill_id, "client_order_id": coid, "venue": "v", "instrument_id": inst,
            "side": side, "price": price, "quantity": qty, "fee": fee,
            "liquidity": liquidity, "ts_ns": T0 + hour * HOUR_NS}


def test_a_settlement_closes_the_trade_of_the_strategy_that_held_it() -> None:
    """Before: alpha held 10 YES "open" at the end, a strategy "settlement" held -10, no
    trade, and with no final mark for the settled market alpha's net was -0.01."""
    orders = {"a": {"strategy": "alpha", "reason": "cheap yes"},
              "settle-r-YES-5": {"strategy": "settlement"}}
    fills = [_fill("a-1", "a", "buy", "0.4", "10", hour=1, fee="0.01", inst="YES"),
             _fill("settle-r-YES-5-1", "settle-r-YES-5", "sell", "1", "10", hour=5,
                   inst="YES", liquidity="settlement")]
    for marks in ({"YES": D("0.97")}, {}):
        book = build_books(fills, orders, marks)
        assert [(t.strategy, t.side, t.quantity, t.entry_price, t.exit_price, t.pnl)
                for t in book.trades] == [("alpha", "long", D(10), D("0.4"), D(1), D("5.99"))]
        assert book.open_positions == []
        assert [(s.strategy, s.net) for s in book.strategies] == [("alpha", D("5.99"))]


def test_a_flatten_is_shared_by_the_books_it_closes_and_a_bust_puts_it_back() -> None:
    """Before: the kill switch's flatten sold 4 as a strategy "flatten" short 4, alpha and
    beta still long; no trade closed."""
    orders = {"a": {"strategy": "alpha"}, "b": {"strategy": "beta"},
              "fl": {"strategy": "flatten", "reason": "drawdown"}}
    fills = [_fill("a-1", "a", "buy", "10", "1", hour=1),
             _fill("b-1", "b", "buy", "11", "3", hour=2),
             _fill("fl-1", "fl", "sell", "9", "4", hour=3, fee="0.4")]
    book = build_books(fills, orders, {})
    assert [(t.strategy, t.quantity, t.pnl, t.fees, t.exit_reason) for t in book.trades] == [
        ("alpha", D(1), D("-1.1"), D("0.1"), "drawdown"),
        ("beta", D(3), D("-6.3"), D("0.3"), "drawdown")]
    assert book.open_positions == []
    # The venue busts the flatten's trade: both books hold again what they held.
    bust = _fill("fl-1:bust", "fl", "buy", "9", "4", hour=4, fee="-0.4")
    again = build_books([*fills, bust], orders, {"X": D(9)})
    assert [(p.strategy, p.quantity) for p in again.open_positions] == [
        ("alpha", D(1)), ("beta", D(3))]
    assert [s.strategy for s in again.strategies] == ["alpha", "beta"]


def test_books_equal_the_cores_books_through_house_orders() -> None:
    """Random fills of two strategies, flattens, busts and settlements: every strategy's
    position and cash equal the core's own books (``Account.apply_to_books``)."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        core = Account(D(0), {"alpha": D(0), "beta": D(0)})
        orders: dict[str, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        house: list[str] = []
        for n in range(12):
            kind = rng.choice(["alpha", "beta", "alpha", "beta", "flatten", "bust"])
            net = core.positions.get("X")
            held = net.quantity if net is not None else D(0)
            if (kind == "flatten" and held == 0) or (kind == "bust" and not house):
                continue
            coid, undo = f"o{n}", None
            if kind == "bust":
                undo = house.pop(int(rng.integers(len(house))))
                orig = next(r for r in rows if r["fill_id"] == undo)
                row = {**orig, "fill_id": f"{undo}:bust", "ts_ns": T0 + n,
                       "side": "sell" if orig["side"] == "buy" else "buy",
                       "fee": str(-D(orig["fee"]))}
                slot = "flatten"
            else:
                side = ("sell" if held > 0 else "buy") if kind == "flatten" else \
                    str(rng.choice(["buy", "sell"]))
                qty = abs(held) if kind == "flatten" else D(int(rng.integers(1, 5)))
                row = _fill(f"{coid}-1", coid, side, str(int(rng.integers(5, 15))), str(qty),
                            hour=0, fee=str(D(int(rng.integers(0, 7))) / 100))
                row["ts_ns"] = T0 + n
                slot = str(kind)
                orders[coid] = {"strategy": slot}
                if kind == "flatten":
                    house.append(row["fill_id"])
            rows.append(row)
            core.apply(_core_fill(row))
            core.apply_to_books(_core_fill(row), slot, undo=undo)
        book = build_books(rows, orders, {"X": D(10)})
        ours = {s.strategy: s.net for s in book.strategies}
        held_ours = {(p.strategy): p.quantity for p in book.open_positions}
        for slot, b in core.books.items():
            pos = b.positions.get("X")
            qty = pos.quantity if pos is not None else D(0)
            assert held_ours.get(slot, D(0)) == qty, (slot, rows)
            assert ours.get(slot, D(0)) == b.cash + qty * 10, (slot, rows)


def _core_fill(row: dict[str, Any]) -> Fill:
    return Fill(row["fill_id"], row["client_order_id"], "v", row["instrument_id"],
                Side(row["side"]), D(row["price"]), D(row["quantity"]), D(row["fee"]),
                Liquidity(row["liquidity"]), row["ts_ns"])


def test_the_report_reads_beside_a_writer_holding_the_write_lock(
        constructed_run: Path) -> None:
    """Before: 5.0 s, then 'cannot be used: BusyError: database is locked (a damaged
    file, or not an Argus ledger)'."""
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom argus_core import Ledger\n"
        f"ledger = Ledger.in_dir({str(constructed_run)!r})\n"
        "ledger.conn.execute('begin immediate')\n"
        "ledger.conn.execute(\"insert into equity values (1, '0', '1', '0')\")\n"
        "print('locked', flush=True)\nsys.stdin.readline()\n"
        "ledger.conn.execute('commit')\nprint('committed', flush=True)\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "locked"
        start = time.monotonic()
        sections = tearsheet_sections(constructed_run)
        assert time.monotonic() - start < 3
        assert "13.72" in sections["Trader's report: strategies"]  # the last commit's
    finally:
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "committed"
        writer.wait(10)


def test_a_zero_byte_ledger_is_refused_and_left_alone(tmp_path: Path) -> None:
    """Before: reading it created an empty ledger's schema in it (126,976 bytes)."""
    (tmp_path / "argus.db").write_bytes(b"")
    with pytest.raises(LedgerError, match=r"argus\.db cannot be used: not an Argus ledger"):
        tearsheet_sections(tmp_path)
    assert (tmp_path / "argus.db").stat().st_size == 0


#: Cell starts a spreadsheet reads as a formula (OWASP's list).
HOSTILE = ("=HYPERLINK(\"http://x\",\"go\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx")


def _hostile_run(run_dir: Path, instrument: str, reason: str) -> Path:
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("r", "replay", 0, json.dumps({"run": {"starting_cash": "100"}}))
        with ledger.transaction():
            for n, (side, price) in enumerate((("buy", "10"), ("sell", "8"))):
                ledger.insert("orders", {
                    "client_order_id": f"o{n}", "run_id": "r", "venue": "replay",
                    "instrument_id": instrument, "side": side, "quantity": "1",
                    "order_type": "market", "time_in_force": "ioc", "strategy": "s",
                    "ts_ns": T0 + n, "status": "filled", "filled_quantity": "1",
                    "reason": reason})
                ledger.insert("fills", {"fill_id": f"f{n}", "client_order_id": f"o{n}",
                                        "venue": "replay", "instrument_id": instrument,
                                        "side": side, "price": price, "quantity": "1",
                                        "fee": "0.5", "liquidity": "taker", "ts_ns": T0 + n})
    return run_dir


@pytest.mark.parametrize("text", HOSTILE)
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path: Path,
                                                           text: str) -> None:
    """Before: a reason or instrument ``=HYPERLINK(...)`` was written as it is."""
    run = _hostile_run(tmp_path / "run", f"{text}, \"q\"\nline", text)
    export_run(run, tmp_path / "out")
    for table in ("orders", "fills", "trades"):
        with open(tmp_path / "out" / f"{table}.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            assert row["instrument_id"] == f"'{text}, \"q\"\nline"
        if table != "fills":
            column = "reason" if table == "orders" else "entry_reason"
            assert all(r[column] == f"'{text}" for r in rows)
    with open(tmp_path / "out" / "trades.csv", newline="", encoding="utf-8") as fh:
        (trade,) = csv.DictReader(fh)
    assert D(trade["pnl"]) == D("-3.0")  # a negative number stays a number
    assert trade["pnl"].startswith("-")


def test_csv_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """Before: under LC_ALL=C a non-ASCII instrument failed: 'ascii' codec can't encode."""
    name = 'ÉTH/€ 東京, "q"\nx'  # a comma, a quote and a newline read back too
    run = _hostile_run(tmp_path / "run", name, "vente à découvert")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom argus_tearsheet import export_run\n"
        "export_run(sys.argv[1], sys.argv[2])\n"), str(run), str(tmp_path / "out")],
        env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out" / "orders.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["instrument_id"] == name
    assert rows[0]["reason"] == "vente à découvert"


def test_the_equity_chart_keeps_the_deepest_drawdown(tmp_path: Path) -> None:
    """200k rows: in one bucket the equity jumps from 120 to a peak of 200, falls to 150
    (the run's max drawdown, 25%) and recovers to 190; the bucket's lowest point is its
    first, its highest the peak.
    Before: the plotted equity's deepest fall was 20% (the trough was decimated away)."""
    n = 200_000
    eq = np.linspace(100.0, 120.0, n)  # every row a new high
    k = n // 2  # the first row of a bucket (1,500 buckets of 133 rows)
    eq[k + 10], eq[k + 11] = 200.0, 150.0
    eq[k + 12:] = np.linspace(190.0, 199.0, n - k - 12)
    ts = T0 + np.arange(n, dtype=np.int64) * 60 * 10**9
    run = tmp_path / "run"
    with Ledger.in_dir(run) as ledger:
        ledger.start_run("r", "replay", 0, json.dumps({"run": {"starting_cash": "100"}}))
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", repr(float(e)), "0")
                                  for t, e in zip(ts, eq, strict=True)])
    chart = tearsheet_sections(run)[EQUITY_SECTION]
    calls = re.findall(r'Plotly\.newPlot\("[^"]+", (\[.*?\]), \{', chart, flags=re.S)
    traces = json.loads(calls[-1])
    plotted = np.array(traces[0]["y"])
    assert len(plotted) <= 6 * 1_500  # each bucket's first, last, low, high, trough, peak
    full = float(metrics.drawdown(eq).max())
    assert full == pytest.approx(0.25)
    assert float(metrics.drawdown(plotted).max()) == pytest.approx(full, rel=1e-12)
    assert min(traces[-1]["y"]) == pytest.approx(-100 * full)  # the drawdown trace
