"""``argus export``: CSV and Parquet read back equal to the ledger, Decimals exact; clear
errors for a missing run directory or ledger."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from argus_tearsheet import TABLES, export_run
from click.testing import CliRunner

from argus_core import ArgusError, Ledger
from argus_core.cli import cli

ORDER_BY = {"orders": "ts_ns, client_order_id", "fills": "ts_ns, fill_id", "equity": "ts_ns"}
#: The constructed run's trades (tearsheet_ledger), as exact text.
TRADES = [
    {"strategy": "alpha", "instrument_id": "BTC/USD", "side": "long", "quantity": "1.0",
     "entry_price": "100.6", "exit_price": "110", "pnl": "9.19", "fees": "0.21",
     "entry_reason": "fast crossed above slow", "exit_reason": "fast crossed below slow"},
    {"strategy": "beta", "instrument_id": "ETH/USD", "side": "short", "quantity": "2",
     "entry_price": "50", "exit_price": "45.5", "pnl": "8.809", "fees": "0.191",
     "entry_reason": "short signal", "exit_reason": "cover"},
    {"strategy": "alpha", "instrument_id": "BTC/USD", "side": "long", "quantity": "1",
     "entry_price": "120", "exit_price": "115", "pnl": "-5.235", "fees": "0.235",
     "entry_reason": "", "exit_reason": "stop"},
]


NUMERIC = {"quantity", "entry_price", "exit_price", "pnl", "fees"}


def same_trades(rows: list[dict[str, Any]]) -> bool:
    """Trade rows equal :data:`TRADES`, numbers compared as exact Decimals (the export
    writes each as its Decimal's text, which may carry trailing zeros)."""
    def norm(row: dict[str, Any]) -> dict[str, Any]:
        return {k: Decimal(row[k]) if k in NUMERIC else row[k] for k in TRADES[0]}
    return [norm(r) for r in rows] == [norm(r) for r in TRADES]


def ledger_rows(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The three ledger tables, straight from the ledger."""
    with Ledger.in_dir(run_dir) as ledger:
        return {t: ledger.query(f"select * from {t} order by {o}") for t, o in ORDER_BY.items()}


def test_csv_round_trip(constructed_run: Path, tmp_path: Path) -> None:
    written = export_run(constructed_run, tmp_path / "out")
    assert [p.name for p in written] == [f"{t}.csv" for t in TABLES]
    expected = ledger_rows(constructed_run)
    for table, rows in expected.items():
        with open(tmp_path / "out" / f"{table}.csv", newline="") as fh:
            back = list(csv.DictReader(fh))
        assert back == [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    with open(tmp_path / "out" / "fills.csv", newline="") as fh:
        fees = [r["fee"] for r in csv.DictReader(fh)]
    assert fees[:3] == ["0.04", "0.06", "0.10"]  # exact text, trailing zero kept
    with open(tmp_path / "out" / "trades.csv", newline="") as fh:
        trades = list(csv.DictReader(fh))
    assert same_trades(trades)
    assert trades[0]["holding_ns"] == str(4 * 3_600 * 10**9)


def test_parquet_round_trip(constructed_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "pq"
    export_run(constructed_run, out, "parquet")
    expected = ledger_rows(constructed_run)
    for table, rows in expected.items():
        back = pq.read_table(out / f"{table}.parquet")
        assert back.to_pylist() == rows
    fills = pq.read_table(out / "fills.parquet")
    assert fills.schema.field("price").type == pa.string()
    assert fills.schema.field("ts_ns").type == pa.int64()
    assert fills.column("fee").to_pylist()[:3] == ["0.04", "0.06", "0.10"]
    trades = pq.read_table(out / "trades.parquet").to_pylist()
    assert same_trades(trades)
    assert trades[1]["opened_ns"] == 1_640_995_200 * 10**9 + 3 * 3_600 * 10**9


def test_default_folder_and_empty_tables(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("empty", "replay", 0, "{}")
    written = export_run(run_dir, fmt="parquet")
    assert all(p.parent == run_dir / "export" for p in written)
    assert pq.read_table(run_dir / "export" / "fills.parquet").num_rows == 0
    assert "fee" in pq.read_table(run_dir / "export" / "fills.parquet").column_names


def test_cli_export_and_its_errors(constructed_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(constructed_run), "--format", "parquet",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "trades.parquet" in result.output
    assert (tmp_path / "x" / "equity.parquet").is_file()
    missing = runner.invoke(cli, ["export", str(tmp_path / "nope")])
    assert missing.exit_code != 0
    assert "nope: no such run directory" in missing.output
    assert not (tmp_path / "nope").exists()  # nothing created
    (tmp_path / "empty").mkdir()
    no_ledger = runner.invoke(cli, ["export", str(tmp_path / "empty")])
    assert no_ledger.exit_code != 0
    assert "no argus.db here" in no_ledger.output
    bad = runner.invoke(cli, ["export", str(constructed_run), "--format", "xlsx"])
    assert bad.exit_code == 2
    with pytest.raises(ArgusError, match="export format 'xlsx'"):
        export_run(constructed_run, fmt="xlsx")


def test_a_full_disk_leaves_the_previous_export_whole(
        constructed_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each table was written in place: a full disk left a truncated CSV, which reads as
    a complete, shorter table.  Now a file beside it is renamed over it when whole."""
    import errno

    from argus_tearsheet import export as export_module

    out = tmp_path / "out"
    export_run(constructed_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = export_module._write_csv

    def full_disk(table: Any, target: Path) -> None:
        real(table, target)
        with open(target, "r+b") as fh:  # half of it reached the disk
            fh.truncate(len(fh.read()) // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "_write_csv", full_disk)
    with pytest.raises(ArgusError, match=r"out/trades\.csv: cannot write the export: No space"):
        export_run(constructed_run, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no part file left
