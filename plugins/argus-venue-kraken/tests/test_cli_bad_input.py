"""``argus kraken-bars`` refuses an ``--out`` in a missing folder as a usage error naming
the option, before the CSV is read (it failed after, exit 1); a malformed CSV stays a
DataError naming the file and line (exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_test_helpers import invoke_argus

CSV = Path(__file__).parent / "fixtures" / "kraken_XBTUSD_60_head400.csv"


def test_out_in_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke_argus(["kraken-bars", str(CSV), "--out", str(tmp_path / "no" / "o.ndjson")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: argus kraken-bars: Invalid value for '--out': folder '{tmp_path / 'no'}' "
        f"does not exist")


@pytest.mark.parametrize(("text", "said"), [
    ("", "no bars"), ("a,b\n1,2\n", ":1: expected 7 columns"),
    ("1381093200,nan,1,1,1,1,1\n1381096800,1,1,1,1,1,1\n", "not finite")])
def test_a_malformed_csv_is_a_data_error_naming_it(tmp_path: Path, text: str,
                                                   said: str) -> None:
    (tmp_path / "bars.csv").write_text(text)
    result = invoke_argus(["kraken-bars", str(tmp_path / "bars.csv"), "--out",
                      str(tmp_path / "o.ndjson")])
    assert result.exit_code == 4 and "Traceback" not in result.output, result.output
    assert said in result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("symbol", ["", "BTCUSD", "btc/usd", "BTC/USD/EUR", "BTC /USD"])
def test_a_symbol_that_is_not_a_pair_name_is_a_usage_error(tmp_path: Path, symbol: str
                                                           ) -> None:
    result = invoke_argus(["kraken-bars", str(CSV), "--symbol", symbol, "--out",
                      str(tmp_path / "o.ndjson")])
    assert result.exit_code == 2, result.output
    assert "'--symbol'" in result.output and "not a Kraken pair name" in result.output
    assert not (tmp_path / "o.ndjson").exists()


def test_the_interval_of_a_file_named_otherwise_is_given_by_option(tmp_path: Path) -> None:
    """One bar and a file name without the minutes: nothing to infer the interval from;
    the error says how to give it, and ``--interval`` does."""
    (tmp_path / "bars.csv").write_text("1381093200,1,2,0.5,1.5,10,3\n")
    args = ["kraken-bars", str(tmp_path / "bars.csv"), "--out", str(tmp_path / "o.ndjson")]
    refused = invoke_argus(args)
    assert refused.exit_code == 4 and "--interval 60" in refused.output, refused.output
    done = invoke_argus([*args, "--interval", "60"])
    assert done.exit_code == 0, done.output
    assert "1 bars of 3600s" in done.output
    assert invoke_argus([*args, "--interval", "7"]).exit_code == 2  # not an interval Kraken has


@pytest.mark.parametrize("time", ["1e20", "1381093200000", "-5", "inf"])
def test_a_time_that_is_not_unix_seconds_is_a_data_error_naming_the_line(
        tmp_path: Path, time: str) -> None:
    """1e20 seconds (or milliseconds written as seconds) was accepted as a bar's time."""
    (tmp_path / "bars_60.csv").write_text(f"1381093200,1,2,0.5,1.5,10,3\n{time},1,2,0.5,1.5,10,3\n")
    result = invoke_argus(["kraken-bars", str(tmp_path / "bars_60.csv"), "--out",
                      str(tmp_path / "o.ndjson")])
    assert result.exit_code == 4, result.output
    assert ":2: time" in result.output and "between 1990 and 2100" in result.output
