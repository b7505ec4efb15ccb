"""A real replay (two months of the bundled Kraken bars, the example ma_cross strategy)
through ``argus backtest``: the report carries the trader's report, buy-and-hold comes
from the replay's own bars, the strategies add up to the account, and ``argus export``
writes the run's tables."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import pytest
from argus_tearsheet.render import TITLE
from argus_tearsheet.run_data import load_run
from argus_tearsheet.trades import build_books
from click.testing import CliRunner

from argus_core import Ledger
from argus_core.cli import cli

ROOT = Path(__file__).resolve().parents[3]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
CONFIG = f"""
[argus]
plugins = ["tearsheet"]

[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"

[plugins.replay]
bars_csv = "{BARS}"
start = "2022-01-01"
end = "2022-03-01"

[plugins.example]
fast = 5
slow = 20
"""


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``argus backtest`` of the replay: its run directory and report page."""
    base = tmp_path_factory.mktemp("e2e")
    (base / "replay.toml").write_text(CONFIG)
    run_dir = base / "run"
    result = CliRunner().invoke(cli, ["backtest", "--config", str(base / "replay.toml"),
                                      "--run-dir", str(run_dir), "--no-progress"])
    assert result.exit_code == 0, result.output
    return run_dir, (run_dir / "report.html").read_text()


def test_backtest_report_has_the_trader_sections(backtest: tuple[Path, str]) -> None:
    _, page = backtest
    for name in ("performance", "strategies", "trades", "open positions", "monthly returns"):
        assert f"<h2>{TITLE.replace(chr(39), '&#x27;')}: {name}</h2>" in page
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    visible = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    # Buy-and-hold of XBT/USD over the span, from the replay's own bars.
    assert "prices from kraken_XBTUSD_60.csv" in visible
    assert "<td class=n>100.00%</td>" in visible  # buy-and-hold's exposure
    assert "fast SMA crossed" in visible  # the example strategy's order reasons


def test_replay_strategies_add_up_to_the_account(backtest: tuple[Path, str]) -> None:
    run_dir, _ = backtest
    data = load_run(run_dir)
    book = build_books(data.fills, data.orders, data.marks)
    assert len(book.trades) >= 3
    assert data.final_equity is not None
    assert abs(book.total.net - (data.final_equity - data.starting_cash)) < Decimal("0.005")
    assert book.total.fees == sum((Decimal(f["fee"]) for f in data.fills), Decimal(0))


def test_replay_export_matches_the_ledger(backtest: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = backtest
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with Ledger.in_dir(run_dir) as ledger:
        fills = ledger.query("select * from fills order by ts_ns, fill_id")
        n_equity = ledger.query("select count(*) as n from equity")[0]["n"]
    with open(tmp_path / "fills.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == [{k: str(v) for k, v in f.items()} for f in fills]
    with open(tmp_path / "equity.csv", newline="") as fh:
        assert sum(1 for _ in fh) == n_equity + 1


def test_argus_report_includes_the_sections(backtest: tuple[Path, str]) -> None:
    run_dir, _ = backtest
    (run_dir / "report.html").unlink()
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert f"{TITLE.replace(chr(39), '&#x27;')}: performance" in (
        run_dir / "report.html").read_text()
