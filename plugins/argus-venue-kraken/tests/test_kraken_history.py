"""Kraken OHLCVT CSVs and REST OHLC pages -> close-stamped bars with gaps reported."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from argus_venue_kraken.history import bars_from_ohlc_pages, load_ohlcvt_csv
from argus_venue_kraken.schemas import parse_rest_ohlc_row

from argus_core.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"
CSV = FIXTURES / "kraken_XBTUSD_60_head400.csv"


def test_csv_bars_are_stamped_at_close_and_gaps_reported():
    bars, report = load_ohlcvt_csv(CSV, "kraken:BTC/USD")
    rows = list(csv.reader(CSV.open()))
    assert len(bars) == len(rows) == report.bars == 400
    assert report.interval_s == 3600  # from Kraken's file name ..._60.csv
    first = rows[0]
    assert bars[0].ts_ns == (int(first[0]) + 3600) * 10**9
    assert (bars[0].open, bars[0].close, bars[0].volume) == (float(first[1]), float(first[4]),
                                                             float(first[5]))
    # Independent count of the holes: consecutive open times more than an hour apart.
    opens = [int(r[0]) for r in rows]
    holes = [(a, b) for a, b in itertools.pairwise(opens) if b - a > 3600]
    assert len(report.gaps) == len(holes) == 136
    assert report.missing == sum((b - a) // 3600 - 1 for a, b in holes) == 690
    gap = report.gaps[0]
    assert gap.start_ns == (holes[0][0] + 3600) * 10**9 and gap.end_ns == holes[0][1] * 10**9
    # Nothing was filled in: every bar comes from a row.
    assert {b.ts_ns for b in bars} == {(t + 3600) * 10**9 for t in opens}


def test_csv_errors_name_file_and_line(tmp_path: Path):
    bad = tmp_path / "XBTUSD_60.csv"
    bad.write_text("1381093200,122.0,122.0,122.0,122.0,0.1,1\n1381096800,1,2,x,1,1,1\n")
    with pytest.raises(DataError, match=r"XBTUSD_60.csv:2"):
        load_ohlcvt_csv(bad, "kraken:BTC/USD")
    back = tmp_path / "XBTUSD_60b.csv"
    back.write_text("1381096800,1,1,1,1,1,1\n1381093200,1,1,1,1,1,1\n")
    with pytest.raises(DataError, match="back in time"):
        load_ohlcvt_csv(back, "kraken:BTC/USD", interval_s=3600)
    with pytest.raises(DataError, match="cannot read"):
        load_ohlcvt_csv(tmp_path / "missing.csv", "kraken:BTC/USD")


def test_rest_pages_merge_and_drop_the_unfinished_bar(load):
    raw = load("kraken_rest_ohlc_1m_XBTUSDT_slice.json")["result"]["XBTUSDT"]
    rows = [parse_rest_ohlc_row(r, 60, f"row{i}") for i, r in enumerate(raw)]
    page1, page2 = rows[:50], rows[40:]  # overlapping pages
    bars, report = bars_from_ohlc_pages([page1, page2], "kraken:BTC/USDT", 60)
    assert len(bars) == len(rows) - 1  # the newest row is the uncommitted current bar
    assert report.duplicates == 10 and report.gaps == ()
    assert bars[0].ts_ns == (raw[0][0] + 60) * 10**9
    assert bars[-1].ts_ns == (raw[-2][0] + 60) * 10**9
    # Once the clock has passed the last bar's close it is complete and kept.
    done, _ = bars_from_ohlc_pages([rows], "kraken:BTC/USDT", 60,
                                   now_ns=(raw[-1][0] + 60) * 10**9)
    assert len(done) == len(rows)


def test_rest_pages_report_holes(load):
    raw = load("kraken_rest_ohlc_1m_XBTUSDT_slice.json")["result"]["XBTUSDT"]
    rows = [parse_rest_ohlc_row(r, 60, "r") for r in raw]
    del rows[10:13]
    _, report = bars_from_ohlc_pages([rows], "kraken:BTC/USDT", 60)
    assert len(report.gaps) == 1 and report.gaps[0].missing == 3


def test_kraken_bars_command_writes_replayable_ndjson(tmp_path: Path):
    import json

    from argus_venue_kraken.commands import kraken_bars
    from click.testing import CliRunner

    from argus_core.serde import load_event

    out = tmp_path / "btc.ndjson"
    result = CliRunner().invoke(kraken_bars, [str(CSV), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "400 bars of 3600s, 136 gaps (690 missing bars)" in result.output
    events = [load_event(json.loads(line)) for line in out.read_text().splitlines()]
    bars, _ = load_ohlcvt_csv(CSV, "kraken:BTC/USD")
    assert events == bars
