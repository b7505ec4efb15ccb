"""Second held-out audit of the replay's data path: bar CSVs and NDJSON recordings in the
shapes real exports take (Lean's and spreadsheets' dates, Polymarket price histories,
UTF-16, semicolons, quoted numbers and headers, times as floats or text).  A file either
replays exactly what it says, or fails with a ``DataError`` naming the file, the line
and, for a field, its column; never a silent misreading.

Every CSV is read twice, by the numpy path and by the reference path (csv module), and
both must agree.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from replay_files import write_csv, write_ndjson

from argus_core.builtins import replay_venue
from argus_core.builtins.replay_venue import (
    ReplaySettings,
    ReplayVenue,
    _to_epoch_s,
    count_bars_csv,
    iter_bars_csv,
    read_ndjson,
)
from argus_core.errors import DataError
from argus_core.models import OrderBook, Side, Trade
from argus_core.serde import dump_event

IID = "replay:BTC/USD"
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
LEAN_SPY = SHARED / "equity" / "lean_spy_daily.csv"
PM_HISTORY = SHARED / "polymarket" / "fomc_timeseries" / "Fed_Interest_Rates_2024_03_March.csv"

_Bars = list[tuple[int, float, float, float, float, float]]


def _read(path: Path, monkeypatch: pytest.MonkeyPatch, bar_seconds: int = 60) -> _Bars | str:
    """The bars both paths read (``(open time s, o, h, l, c, v)``), or both paths' error."""
    out = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(replay_venue, "_fast_batch", lambda lines, cols: None)
            try:
                got: _Bars | str = [
                    (b.ts_ns // 10**9 - bar_seconds, b.open, b.high, b.low, b.close, b.volume)
                    for b in iter_bars_csv(path, IID, bar_seconds)]
            except DataError as exc:
                got = str(exc)
        out.append(got)
    assert out[0] == out[1], "the numpy and reference paths disagree"
    return out[0]


def _error(path: Path, monkeypatch: pytest.MonkeyPatch, bar_seconds: int = 60) -> str:
    got = _read(path, monkeypatch, bar_seconds)
    assert isinstance(got, str), got
    return got


# -- 4. a date written in digits where unix seconds belong ------------------------------------
@pytest.mark.parametrize(("stamps", "layout", "bar_seconds"), [
    (["20230103", "20230104", "20230105"], "yyyymmdd", 86_400),
    (["202301031530", "202301031531"], "yyyymmddHHMM", 60),
    (["20230103153000", "20230103153100"], "yyyymmddHHMMSS", 60),
    (["20230103.0", "20230104.0"], "yyyymmdd", 86_400),
])
def test_a_date_in_digits_is_refused_naming_file_line_and_column(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamps: list[str], layout: str,
        bar_seconds: int) -> None:
    """``20230103`` read as unix seconds was 1970-08-23 (daily bars one 'second' apart
    failed as overlapping, or with bar_seconds = 1 replayed as 1970);
    ``20230103153000`` read as milliseconds was the year 2611."""
    text = "".join(f"{t},10,11,9,10.5,2.5,3\n" for t in stamps)
    msg = _error(write_csv(tmp_path, text), monkeypatch, bar_seconds)
    assert f"bars.csv:1: column 1 (time) holds '{stamps[0]}', a date written as {layout}, " \
           "not unix seconds" in msg
    assert "the replay guesses no time zone" in msg
    assert _error(write_csv(tmp_path, text), monkeypatch, 1).startswith(msg.split(":")[0])


def test_a_date_in_digits_deep_in_a_file_is_named_by_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the numpy path's first batch (~500 lines), under a header that puts the time
    in the third column."""
    rows = [f"10,11,{T0 + 60 * k},9,10.5,2.5" for k in range(2_000)]
    rows[1_500] = "10,11,20231114,9,10.5,2.5"
    text = "open,high,timestamp,low,close,volume\n" + "\n".join(rows) + "\n"
    msg = _error(write_csv(tmp_path, text), monkeypatch)
    assert "bars.csv:1502: column 3 (time) holds '20231114'" in msg


def test_unix_seconds_near_the_date_ranges_still_read(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a date: 20231399 has no month 13; 1_900_000_000 (2030) is ten digits."""
    text = "20231399,10,11,9,10.5,2.5,3\n1900000000,10,11,9,10.5,2.5,3\n"
    assert [b[0] for b in _read(write_csv(tmp_path, text), monkeypatch)] == [
        20_231_399, 1_900_000_000]


@pytest.mark.skipif(not LEAN_SPY.exists(), reason="../shared/data absent")
def test_lean_daily_bars_are_refused_at_their_first_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """QuantConnect Lean's daily equity CSV: ``19980102 00:00`` and deci-cent prices."""
    msg = _error(LEAN_SPY, monkeypatch, 86_400)
    assert "lean_spy_daily.csv:1: malformed bar row" in msg
    assert "column 1 (time) = '19980102 00:00': the time column holds unix seconds, " \
           "not a date" in msg


@pytest.mark.skipif(not PM_HISTORY.exists(), reason="../shared/data absent")
def test_a_polymarket_price_history_is_refused_as_not_bars(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """timestamp, asset, price, tokenVolume: prints, not bars; no OHLC to replay."""
    msg = _error(PM_HISTORY, monkeypatch)
    assert "Fed_Interest_Rates_2024_03_March.csv:1: header must name timestamp/time, open, " \
           "high, low, close and volume" in msg


# -- separators, quotes, headers, encodings ---------------------------------------------------
HELD: list[tuple[str, str, _Bars | str]] = [
    ("quoted numbers", f'"{T0}","10","11","9","10.5","2.5","3"\n',
     [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("quoted header with spaces", f'" Time ", "Open","High","Low","Close","Volume"\n'
                                  f"{T0},10,11,9,10.5,2.5\n", [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("semicolons, decimal commas", f"{T0};10,5;11;9;10,5;2,5;3\n",
     "bars.csv:1: malformed bar row"),
    ("tabs", f"{T0}\t10\t11\t9\t10.5\t2.5\t3\n", "the fields are separated by ';' or a tab"),
    ("quoted thousands", f'{T0},"1,000.5",1001,999,1000,2,3\n',
     "column 2 (open) = '1,000.5': a thousands separator or a decimal comma"),
    ("empty volume", f"{T0},10,11,9,10.5,,3\n", "column 6 (volume) = '': not a number"),
    ("text in a price", f"{T0},10,11,9,10,2.5,3\n{T0 + 60},10,11,9,n/a,2.5,3\n",
     "bars.csv:2: malformed bar row ['1700000060', '10', '11', '9', 'n/a', '2.5', '3'] "
     "(column 5 (close) = 'n/a': not a number)"),
    ("two time columns", f"time,timestamp,open,high,low,close,volume\n5,{T0},10,11,9,10.5,2.5\n",
     "bars.csv:1: the header names 2 time columns (time, timestamp): keep one"),
    ("hex in the first row", f"{T0},0x10,11,9,10.5,2.5,3\n",
     "bars.csv:1: header must name timestamp/time, open, high, low, close and volume; got "
     "['1700000000', '0x10', '11', '9', '10.5', '2.5', '3'] (or, as a bar row, ['0x10'] are "
     "not numbers)"),
    ("a time past the ns range", "1e30,10,11,9,10.5,2.5,3\n",
     "column 1 (time) = '1e30': not unix seconds"),
    ("ISO time with an offset", "2023-11-14T22:13:20+01:00,10,11,9,10.5,2.5,3\n",
     "the time column holds unix seconds, not a date"),
    ("fractional seconds", f"{T0}.75,10,11,9,10.5,2.5,3\n", [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in HELD],
                         ids=[name for name, _, _ in HELD])
def test_held_out_bar_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                            expected: _Bars | str) -> None:
    got = _read(write_csv(tmp_path, text), monkeypatch)
    if isinstance(expected, str):
        assert isinstance(got, str) and expected in got, got
        assert "bars.csv" in got  # the file is always named
    else:
        assert got == expected


def test_a_utf16_export_is_a_data_error_not_a_traceback(tmp_path: Path) -> None:
    """Spreadsheets save 'Unicode text' as UTF-16: it raised UnicodeDecodeError (exit 1,
    a traceback) from the parser, the progress count and the recording's header."""
    csv_path = tmp_path / "bars.csv"
    csv_path.write_bytes(f"{T0},10,11,9,10.5,2.5,3\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"bars\.csv:1: not UTF-8 text"):
        list(iter_bars_csv(csv_path, IID, 60))
    with pytest.raises(DataError, match=r"bars\.csv: not UTF-8 text"):
        count_bars_csv(csv_path)
    rec = tmp_path / "rec.ndjson"
    rec.write_bytes(json.dumps(dump_event(Trade("v:X", 10, "0.5", "1"))).encode("utf-16"))
    with pytest.raises(DataError, match=r"rec\.ndjson:1: .*not UTF-8 text"):
        list(read_ndjson(rec))
    with pytest.raises(DataError, match=r"rec\.ndjson:1: not UTF-8 text"):
        ReplayVenue(ReplaySettings(ndjson=rec))


def test_a_bad_byte_deep_in_a_file_is_named_near_its_line(tmp_path: Path) -> None:
    rows = [f"{T0 + 60 * k},10,11,9,10.5,2.5,3\n".encode() for k in range(3_000)]
    rows[2_000] = b"\xff\xfe" + rows[2_000]
    path = tmp_path / "bars.csv"
    path.write_bytes(b"".join(rows))
    bars = iter_bars_csv(path, IID, 60)
    assert sum(1 for _ in zip(range(1_000), bars, strict=False)) == 1_000  # streamed
    with pytest.raises(DataError, match=r"bars\.csv:(\d+): at or after this line: not UTF-8") \
            as info:
        list(bars)
    line = int(str(info.value).split(":")[1])
    assert 1_000 < line <= 2_001


# -- start/end: time zones and daylight saving -------------------------------------------------
def test_start_and_end_ignore_the_machine_time_zone_and_dst(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A naive start is UTC on any machine; an offset is honoured on either side of the
    European switch to summer time (2022-03-27 01:00 UTC)."""
    utc = int(datetime(2022, 3, 27, 1, 30, tzinfo=UTC).timestamp())
    for zone in ("Europe/Berlin", "America/New_York", "UTC"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        assert _to_epoch_s("2022-03-27T01:30") == utc
        assert _to_epoch_s("2022-03-27T02:30+01:00") == utc  # winter time, CET
        assert _to_epoch_s("2022-03-27T03:30+02:00") == utc  # summer time, CEST
    monkeypatch.delenv("TZ")
    time.tzset()
    with pytest.raises(DataError, match="not an ISO date or unix seconds"):
        _to_epoch_s("2022-03-27 02:30 Europe/Berlin")


# -- recordings --------------------------------------------------------------------------------


def _trade_line(**changes: object) -> str:
    data = dump_event(Trade("v:X", 10, "0.5", "1"))
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize("ts", [10.0, 1.7e18, "10", True, -5, 2**63])
def test_a_recorded_time_that_is_not_integer_nanoseconds_is_refused(
        tmp_path: Path, ts: object) -> None:
    """serde truncated 10.5 to 10 and read "10" and True as times; 1.7e18 as a float has
    lost its last digits; -5 failed as 'time goes backwards (-5 < -1)'; 2**63 overflowed
    the ledger's integers later."""
    path = write_ndjson(tmp_path, [_trade_line(), _trade_line(ts_ns=ts)])
    events = read_ndjson(path)
    assert next(events).ts_ns == 10
    with pytest.raises(DataError, match=r"rec\.ndjson:2: ts_ns = .* is not an integer of "
                       r"nanoseconds in 0 \.\. 2\*\*63"):
        next(events)


def test_prints_at_one_time_with_different_prices_replay_in_file_order(
        tmp_path: Path) -> None:
    """A sweep prints several trades at one instant: all are kept, in the file's order;
    two snapshots of one book at one instant: both replay, the later one wins."""
    lines = [_trade_line(price="0.5"), _trade_line(price="0.52"), _trade_line(price="0.49")]
    snaps = [OrderBook("v:X", 20, [[0.4, 1.0]], [[0.6, 1.0]]),
             OrderBook("v:X", 20, [[0.45, 1.0]], [[0.55, 1.0]])]
    lines += [json.dumps(dump_event(s)) for s in snaps]
    events = list(read_ndjson(write_ndjson(tmp_path, lines)))
    assert [str(e.price) for e in events if isinstance(e, Trade)] == ["0.5", "0.52", "0.49"]
    assert events[-1] == snaps[1]


def test_a_recording_with_a_trade_of_zero_size_or_price_is_refused_by_line(
        tmp_path: Path) -> None:
    for field, value in (("size", "0"), ("price", "0"), ("price", "NaN"), ("size", "-1")):
        path = write_ndjson(tmp_path, [_trade_line(), _trade_line(**{field: value})])
        with pytest.raises(DataError, match=rf"rec\.ndjson:2: invalid trade: .*{field}"):
            list(read_ndjson(path))


def _prints(n: int) -> Iterator[str]:
    for k in range(n):
        yield json.dumps(dump_event(Trade("v:X", 10 + k, f"{0.4 + (k % 50) / 1000:.3f}", "2",
                                          Side.SELL if k % 2 else Side.BUY)))


def _recording_peak(path: Path) -> int:
    tracemalloc.start()
    try:
        n = sum(1 for _ in read_ndjson(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n > 0
    return peak


def test_recording_memory_does_not_grow_with_its_length(tmp_path: Path) -> None:
    """Peak traced memory of reading 2,000 prints against 20,000 (a list would hold
    several MiB more)."""
    small, large = tmp_path / "small.ndjson", tmp_path / "large.ndjson"
    small.write_text("\n".join(_prints(2_000)) + "\n")
    large.write_text("\n".join(_prints(20_000)) + "\n")
    assert _recording_peak(large) - _recording_peak(small) < 1_000_000


def test_only_the_first_line_may_be_the_header(tmp_path: Path) -> None:
    """Blank lines before the header keep it the header; a header line after an event
    is not skipped silently as one (it is no event either: refused by line)."""
    header = json.dumps({"type": "recording", "version": 1,
                         "instruments": [{"venue": "v", "symbol": "X"}]})
    path = write_ndjson(tmp_path, ["", header, _trade_line()])
    assert [type(e).__name__ for e in read_ndjson(path)] == ["Trade"]
    late = write_ndjson(tmp_path, [_trade_line(), header])
    with pytest.raises(DataError, match=r"rec\.ndjson:2"):
        list(read_ndjson(late))


@pytest.fixture(autouse=True)
def _restore_tz() -> Iterator[None]:
    """The time-zone test changes TZ; every test leaves the process as it found it."""
    before = os.environ.get("TZ")
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()
