"""Held-out audit of the replay's data path: bar CSVs and NDJSON recordings the other
tests do not use.  A file either replays exactly what it says, or fails with a
``DataError`` naming the file and the line; never a silent misreading.

Every CSV is read twice, by the numpy path and by the reference path (csv module), and
both must agree (see test_replay_csv_parse.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from replay_files import write_ndjson

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
from argus_core.models import Bar, BookDelta, Event, OrderBook, Outcome, Side, Trade
from argus_core.serde import dump_event

IID = "replay:BTC/USD"
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def _read(path: Path, monkeypatch: pytest.MonkeyPatch, **kw: int
          ) -> list[tuple[int, float, float, float, float, float]] | str:
    """The bars both paths read (``(open time s, o, h, l, c, v)``), or both paths' error."""
    out = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(replay_venue, "_fast_batch", lambda lines, cols: None)
            try:
                got: list[tuple[int, float, float, float, float, float]] | str = [
                    (b.ts_ns // 10**9 - 60, b.open, b.high, b.low, b.close, b.volume)
                    for b in iter_bars_csv(path, IID, 60, **kw)]
            except DataError as exc:
                got = str(exc)
        out.append(got)
    assert out[0] == out[1], "the numpy and reference paths disagree"
    return out[0]


def _write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, newline="")
    return path


def _rows(times: list[str]) -> str:
    return "".join(f"{t},10,11,9,10.5,2.5,3\n" for t in times)


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6),
                                             ("ns", 10**9)])
def test_millisecond_microsecond_and_nanosecond_times_are_read_as_such(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unit: str, scale: int) -> None:
    """Binance exports klines in ms (since 2025 in us): read as seconds they were bars
    in the year 55,000 (ns overflowed the ledger's integers)."""
    path = _write(tmp_path, _rows([str((T0 + 60 * k) * scale + scale // 2)
                                   for k in range(5)]))
    bars = _read(path, monkeypatch)
    assert [b[0] for b in bars] == [T0 + 60 * k for k in range(5)], unit
    assert count_bars_csv(path, T0 + 60, T0 + 240) == 3
    assert len(_read(path, monkeypatch, start_s=T0 + 60, end_s=T0 + 240)) == 3


def test_a_short_line_and_a_long_line_are_refused_not_shifted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6-field line then an 8-field one fill the numpy table's total exactly: the old
    fast path read every value between them a column off."""
    text = (f"{T0},1,2,0.5,1.5,10,3\n{T0 + 60},1,2,0.5,1.5,10\n"
            f"{T0 + 120},1,2,0.5,1.5,10,3,9\n{T0 + 180},1,2,0.5,1.5,10,3\n")
    msg = _read(_write(tmp_path, text), monkeypatch)
    assert isinstance(msg, str)
    assert "bars.csv:2: 6 fields where the first bar row has 7" in msg


def test_a_row_wider_than_the_first_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An unquoted thousands separator moves every later value a column."""
    text = f"{T0},1000,1001,999,1000,1,3\n{T0 + 60},1,000.5,1,001,999,1,000,2,3\n"
    msg = _read(_write(tmp_path, text), monkeypatch)
    assert isinstance(msg, str) and "bars.csv:2: 10 fields where the first bar row has 7" in msg
    quoted = f'{T0},1000,1001,999,1000,1,3\n{T0 + 60},"1,000.5",1001,999,1000,2,3\n'
    msg = _read(_write(tmp_path, quoted), monkeypatch)
    assert isinstance(msg, str) and "bars.csv:2: malformed bar row" in msg


def test_a_trailing_partial_line_is_named(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    text = _rows([str(T0 + 60 * k) for k in range(3)]) + f"{T0 + 180},10,11"
    msg = _read(_write(tmp_path, text), monkeypatch)
    assert isinstance(msg, str) and "bars.csv:4: 3 fields where" in msg and "cut short" in msg
    # The bars before it are replayed first (streamed), then the cut line fails.
    bars = iter_bars_csv(_write(tmp_path, text), IID, 60)
    assert [next(bars).ts_ns for _ in range(3)] == [(T0 + 60 * k) * 10**9 for k in (1, 2, 3)]
    with pytest.raises(DataError, match=r"bars\.csv:4: "):
        next(bars)


def test_bars_closer_than_bar_seconds_are_refused(tmp_path: Path) -> None:
    """Minute bars replayed with the default ``bar_seconds = 3600`` were each stamped 59
    minutes after their real close, after the next bars had opened: an order decided on
    one filled at a price from before its stamp (and other instruments' events in
    between were seen first)."""
    path = _write(tmp_path, _rows([str(T0 + 60 * k) for k in range(3)]))
    with pytest.raises(DataError, match=r"bars\.csv:2: this bar opened 60 s after the "
                       r"previous one, under bar_seconds = 3600: the bars would overlap"):
        list(iter_bars_csv(path, IID, 3600))
    assert len(list(iter_bars_csv(path, IID, 60))) == 3  # the file's own bar length


def test_hours_written_as_yyyymmddhh_get_a_hint(tmp_path: Path) -> None:
    """yyyymmddHH (2024010111) is also the Unix seconds of 2034 and is not guessed, but its
    hours lie 1 s apart: the overlap refusal says what the digits may be; Unix seconds
    that are no such date (or of the years before 1900) get no hint."""
    path = _write(tmp_path, _rows(["2024010110", "2024010111"]))
    with pytest.raises(DataError, match=r"bars\.csv:2: this bar opened 1 s after .*; "
                       r"2024010111 is read as unix seconds: if it is 2024-01-01 11:00 "
                       r"written as yyyymmddHH, convert the times to unix seconds \(UTC\)$"):
        list(iter_bars_csv(path, IID, 3600))
    for times in (["2024013210", "2024013211"], ["1712011510", "1712011511"]):
        with pytest.raises(DataError) as refused:
            list(iter_bars_csv(_write(tmp_path, _rows(times)), IID, 3600))
        assert "yyyymmddHH" not in str(refused.value)


@pytest.mark.parametrize("text", ["", "timestamp,open,high,low,close,volume\n",
                                  _rows([str(T0)])])
def test_a_replay_of_no_bars_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     text: str) -> None:
    """An empty file, a header alone, a window past the data: a backtest of nothing used
    to report a flat equity line without a word."""
    path = _write(tmp_path, text)
    with caplog.at_level("WARNING", logger=replay_venue.__name__):
        assert list(iter_bars_csv(path, IID, 60, start_s=T0 + 60)) == []
    assert "bars.csv: no bars" in caplog.text and "nothing to replay" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger=replay_venue.__name__):
        list(iter_bars_csv(path, IID, 60, start_s=T0 + 60, warn_gaps=False))  # first pass
    assert "no bars" not in caplog.text


@pytest.mark.parametrize(("first", "expected"), [
    (f"{T0},1e2,1.1e2,9e1,1e2,1e-3,1", [(T0, 100.0, 110.0, 90.0, 100.0, 0.001)]),
    (f"{T0},nan,11,9,10,1,1", "bars.csv:1: Bar.open: nan is not finite"),
    (f"{T0},10,inf,9,10,1,1", "bars.csv:1: Bar.high: inf is not finite"),
    (f"{T0},10,11,9,10,NaN,1", "bars.csv:1: Bar.volume: nan is not finite"),
])
def test_a_first_row_in_scientific_notation_or_nan_is_data_not_a_header(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str,
        expected: list[tuple[int, float, float, float, float, float]] | str) -> None:
    """The old test for a header was 'any letter': ``1e2`` or ``nan`` in the first row
    made it a header and the file failed with 'header must name ...'."""
    got = _read(_write(tmp_path, first + "\n"), monkeypatch)
    if isinstance(expected, str):
        assert isinstance(got, str) and got.endswith(expected)
    else:
        assert got == expected
    assert count_bars_csv(_write(tmp_path, first + "\n")) == 1


def test_a_dated_first_row_is_named_by_its_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    msg = _read(_write(tmp_path, "2023-11-14T22:13:20Z,10,11,9,10.5,2.5,3\n"), monkeypatch)
    assert isinstance(msg, str) and "bars.csv:1:" in msg and "not a date" in msg


def test_start_and_end_keep_their_utc_offset() -> None:
    """``2022-01-03T00:00+05:00`` is 19:00 UTC on the 2nd; the offset used to be dropped
    (five more hours of bars replayed)."""
    assert _to_epoch_s("2022-01-03T00:00:00+05:00") == int(
        datetime(2022, 1, 2, 19, tzinfo=UTC).timestamp())
    assert _to_epoch_s("2022-01-03") == int(datetime(2022, 1, 3, tzinfo=UTC).timestamp())
    assert _to_epoch_s("2022-01-03T00:00:00Z") == _to_epoch_s("2022-01-03")
    assert _to_epoch_s(1_640_995_200) == 1_640_995_200  # a TOML integer
    assert _to_epoch_s(" 1640995200 ") == 1_640_995_200
    with pytest.raises(DataError, match="not an ISO date or unix seconds"):
        _to_epoch_s("yesterday")


@pytest.mark.parametrize("kind", ["bars_csv", "ndjson"])
def test_a_missing_data_file_is_a_data_error_naming_it(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "nope.data"
    if kind == "ndjson":
        with pytest.raises(DataError, match=r"nope\.data: cannot read recording"):
            ReplayVenue(ReplaySettings(ndjson=missing))
        return
    venue = ReplayVenue(ReplaySettings(bars_csv=missing))
    with pytest.raises(DataError, match=r"nope\.data: cannot read"):
        venue.instrument  # noqa: B018  (the property reads the file: the error under test)
    with pytest.raises(DataError, match=r"nope\.data: cannot read"):
        list(venue.events())
    with pytest.raises(DataError, match=r"nope\.data: cannot read"):
        venue.expected_events()  # the progress bar's count


# -- the same checks as before, on inputs no other test feeds -------------------------------
HELD: list[tuple[str, str, list[tuple[int, float, float, float, float, float]] | str]] = [
    ("duplicate", _rows([str(T0), str(T0)]), "bars.csv:2: bars are not in strictly "
                                              "increasing time order"),
    ("backwards", _rows([str(T0 + 60), str(T0)]), "bars.csv:2: bars are not in strictly "
                                                   "increasing time order"),
    ("high<low", f"{T0},10,9,11,10,1,1\n", "high/low do not bound open/close"),
    ("open>high", f"{T0},12,11,9,10,1,1\n", "high/low do not bound open/close"),
    ("close<low", f"{T0},10,11,9,8,1,1\n", "high/low do not bound open/close"),
    ("zero price", f"{T0},0,11,0,10,1,1\n", "prices must be > 0"),
    ("negative price", f"{T0},-10,11,-10,10,1,1\n", "prices must be > 0"),
    ("negative volume", f"{T0},10,11,9,10,-1,1\n", "negative volume"),
    ("zero volume", f"{T0},10,10,10,10,0,1\n", [(T0, 10.0, 10.0, 10.0, 10.0, 0.0)]),
    ("gap", _rows([str(T0), str(T0 + 600)]), [(T0, 10.0, 11.0, 9.0, 10.5, 2.5),
                                              (T0 + 600, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("crlf + BOM + header", "\ufeffTime,Open,High,Low,Close,Volume\r\n"
                            f"{T0},10,11,9,10.5,2.5\r\n", [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("reordered + extra", "vwap,volume,close,low,high,open,count,ts\n"
                          f"10.2,2.5,10.5,9,11,10,7,{T0}\n", [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("empty", "", []),
    ("only a header", "timestamp,open,high,low,close,volume\n", []),
    ("one row, no newline", f"{T0},10,11,9,10.5,2.5,3", [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("blank lines", f"\n{T0},10,11,9,10.5,2.5,3\n\n\n", [(T0, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("old Mac line ends", f"{T0},10,11,9,10.5,2.5,3\r{T0 + 60},10,11,9,10.5,2.5,3\r",
     [(T0, 10.0, 11.0, 9.0, 10.5, 2.5), (T0 + 60, 10.0, 11.0, 9.0, 10.5, 2.5)]),
    ("no volume column", "DATE,OPEN,HIGH,LOW,CLOSE\n2020-01-02,17.2,17.3,17.1,17.2\n",
     "header must name timestamp/time, open, high, low, close and volume"),
    ("semicolons", f"{T0};10;11;9;10.5;2.5;3\n", "bars.csv:1: malformed bar row"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in HELD],
                         ids=[name for name, _, _ in HELD])
def test_held_out_bar_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                            expected: list[tuple[int, float, float, float, float, float]] | str
                            ) -> None:
    got = _read(_write(tmp_path, text), monkeypatch)
    if isinstance(expected, str):
        assert isinstance(got, str) and expected in got, got
        assert "bars.csv" in got  # the file is always named
    else:
        assert got == expected


# -- recordings -----------------------------------------------------------------------------


def _line(event: object) -> str:
    return json.dumps(dump_event(event))  # type: ignore[arg-type]  # any MarketEvent


def test_a_recording_with_market_metadata_mid_stream_replays(tmp_path: Path) -> None:
    """An ``Event`` has no time of its own: it was read as time 0, so one recorded after
    the first timed event failed the replay with 'event time goes backwards'."""
    meta = Event("v", "e1", "Who wins?", (Outcome("A", "v:A-YES", "v:A-NO"),))
    path = write_ndjson(tmp_path, [
        _line(Trade("v:A-YES", 10, "0.5", "1")), _line(meta),
        _line(Trade("v:A-YES", 20, "0.6", "1"))])
    assert [type(e).__name__ for e in read_ndjson(path)] == ["Trade", "Event", "Trade"]
    # Time order is still enforced around it.
    back = write_ndjson(tmp_path, [_line(Trade("v:A-YES", 20, "0.5", "1")), _line(meta),
                                 _line(Trade("v:A-YES", 10, "0.6", "1"))])
    with pytest.raises(DataError, match=r"rec\.ndjson:3: event time goes backwards"):
        list(read_ndjson(back))


def test_held_out_recordings(tmp_path: Path) -> None:
    snap = OrderBook("v:X", 20, [[99.0, 1.0]], [[101.0, 1.0]])
    delta = BookDelta("v:X", 10, Side.BUY, "100", "2")
    # A snapshot after deltas replaces the book; a delta for an instrument nobody
    # announced is still a well-formed event.
    ok = write_ndjson(tmp_path, [_line(delta), _line(snap), _line(BookDelta(
        "v:UNKNOWN", 30, Side.SELL, "5", "1"))])
    assert len(list(read_ndjson(ok))) == 3
    # Malformed lines mid-file are named by line, after the lines before them.
    bad = write_ndjson(tmp_path, [_line(snap), '{"type": "book_delta", "instrument_id": "v:X"',
                                _line(delta)])
    events = read_ndjson(bad)
    assert next(events) == snap
    with pytest.raises(DataError, match=r"rec\.ndjson:2: not valid JSON"):
        next(events)
    crossed = json.loads(_line(snap))
    crossed["bids"] = [[102.0, 1.0]]
    with pytest.raises(DataError, match=r"rec\.ndjson:1: .*crossed book"):
        list(read_ndjson(write_ndjson(tmp_path, [json.dumps(crossed)])))
    nan_delta = json.loads(_line(delta))
    nan_delta["price"] = "NaN"
    with pytest.raises(DataError, match=r"rec\.ndjson:1"):
        list(read_ndjson(write_ndjson(tmp_path, [json.dumps(nan_delta)])))
    backwards = write_ndjson(tmp_path, [_line(snap), _line(delta)])
    with pytest.raises(DataError, match=r"rec\.ndjson:2: event time goes backwards"):
        list(read_ndjson(backwards))
    # Two bars of one instrument at one time (a repeated line): refused by line; another
    # instrument's bar at that time is fine.
    twice = write_ndjson(tmp_path, [_line(Bar("v:X", 60, 10.0, 11.0, 9.0, 10.5, 1.0)),
                                  _line(Bar("v:Y", 60, 10.0, 11.0, 9.0, 10.5, 1.0)),
                                  _line(Bar("v:X", 60, 10.0, 11.0, 9.0, 10.5, 1.0))])
    with pytest.raises(DataError, match=r"rec\.ndjson:3: a second bar of v:X at 60"):
        list(read_ndjson(twice))
    bar = json.loads(_line(Bar("v:X", 60, 10.0, 11.0, 9.0, 10.5, 1.0)))
    bar["high"] = 8.0
    with pytest.raises(DataError, match=r"rec\.ndjson:1: .*high/low"):
        list(read_ndjson(write_ndjson(tmp_path, [json.dumps(bar)])))
