"""Held-out fuzzing of the replay's inputs (recordings and bar CSVs): what it found.

1. A recording's values of the wrong JSON type were coerced by cattrs' defaults (only
   ``ts_ns`` was type-checked): ``"live": "false"`` read as True, a bid ``[true, 5]`` as a
   bid at 1.0, ``"instrument_id": 5`` as "5", ``"low": true`` as 1.0, ``"high": "16900"``
   as a number.  A recording is now read as ``argus record`` writes it: a bool only from
   a JSON boolean, a float or int field only from a JSON number, a text only from a JSON
   string (a Decimal from the string the recorder writes, or a number).
2. A negative fee in a recording's fee schedule (header or an instrument listed
   mid-stream) was accepted, where the config refuses one.
3. A malformed header (``fee_schedule_of`` a list, a fee check of two values or of junk,
   ``fields`` a list, ``instruments`` not a list) raised a raw TypeError / ValueError /
   InvalidOperation / AttributeError out of the venue's factory.
4. A line nested 100,000 deep raised RecursionError (``read_ndjson`` called json.loads).
5. ``"type": ["bar"]`` raised TypeError (unhashable) looking up the event class.
6. A NaN signal went through, and the run died on the ledger's NOT NULL constraint
   reported as "a damaged file": refused in a recording; one published in a run (a
   scanner's non-finite reading is no reading, by design) is not written to the ledger.
7. A settlement was unbounded: a binary contract settling at 5, one at 1e30.
8. Prices at 1e300 (a bar) or 1e30 (a settlement) crashed the equity computation with
   decimal.InvalidOperation: market data is refused above ``MAX_PRICE`` (1e18).
9. Bar CSVs: negative open times passed the backtest's run path, and open times past
   the year 2262 overflowed int64 nanoseconds (OverflowError in the bar runs).
10. A field longer than the csv module's limit raised ``_csv.Error``.
11. A header naming a column twice (``open``) silently used the first.

Each is now a ``DataError`` naming the file and line (and the field).  And an equity of
1e20 or more (a huge position on prices the cap allows) no longer crashes its row's
rounding (a context wider than the default 28 digits).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from replay_files import (
    IID,
    NS,
    SPOT,
    T0,
    HeaderVenue,
    ndjson_error,
    recording_header,
    write_csv,
    write_recording,
)

from argus_core.bar_runs import BarRun
from argus_core.builtins import replay_venue
from argus_core.builtins.replay_venue import (
    ReplaySettings,
    ReplayVenue,
    count_bars_csv,
    iter_bar_runs_csv,
    iter_bars_csv,
    read_bars_csv,
    read_ndjson,
)
from argus_core.errors import DataError
from argus_core.models import (
    Bar,
    BookDelta,
    BookStatus,
    Event,
    Instrument,
    OrderBook,
    Outcome,
    Settlement,
    Side,
    Signal,
    Trade,
)
from argus_core.recorder import FEES_KEY, fee_entry, read_header
from argus_core.serde import dump_event, load_event

YES = Instrument("replay", "YES", "binary", "0.01", "1", "1")


def _bar(ts: int = T0 * NS, **change: Any) -> dict[str, Any]:
    data = dump_event(Bar(IID, ts, 100.0, 101.0, 99.0, 100.5, 2.0))
    data.update(change)
    return data


def _events() -> list[Any]:
    """One event of every kind, as ``argus record`` writes them."""
    t = T0 * NS
    return [Bar(IID, t, 100.0, 101.0, 99.0, 100.5, 2.0), Trade(IID, t + 1, "100.5", "0.25"),
            OrderBook(IID, t + 2, [[100.0, 1.5], [99.5, 2.0]], [[101.0, 1.0]]),
            BookDelta(IID, t + 3, Side.SELL, "101.5", "0"),
            BookStatus(IID, t + 4, False, "gap"), Signal("z", IID, t + 5, -1.25),
            Event("replay", "e1", "Who wins?", (Outcome("A", "replay:A", "replay:NA"),),
                  end_ts_ns=t + 10**12),
            Instrument("replay", "ETH/USD", "spot", "0.01", "0.0001", meta={"k": [1, None]}),
            Settlement(IID, t + 6, "99.5", "expiry"), Settlement(IID, t + 7, None, "void")]


# -- 1. strict JSON types ------------------------------------------------------------------------
def test_what_the_recorder_writes_reads_back_unchanged(tmp_path: Path) -> None:
    lines: list[Any] = []
    for event in _events():
        line = dump_event(event)
        if isinstance(event, Instrument):
            line[FEES_KEY] = fee_entry(HeaderVenue(), event)  # type: ignore[arg-type]
        lines.append(json.dumps(line, separators=(",", ":")))
    path = write_recording(tmp_path, lines)
    assert read_header(path) is not None
    assert list(read_ndjson(path)) == _events()


@pytest.mark.parametrize(("event", "field", "value", "said"), [
    ("book_status", "live", "false", "expected true or false, got the text 'false'"),
    ("book_status", "live", 0, "expected true or false, got the number 0"),
    ("bar", "instrument_id", 5, "expected a text, got the number 5"),
    ("bar", "low", True, "expected a number, got true"),
    ("bar", "high", "16900", "expected a number, got the text '16900'"),
    ("bar", "volume", None, "expected a number, got null"),
    ("signal", "value", "1.5", "expected a number, got the text '1.5'"),
    ("trade", "price", True, "expected a number, got a bool"),
    ("trade", "aggressor", True, "expected a text, got true"),
    ("book", "bids", [[True, 5]], "level 0: expected numbers, got true"),
    ("book", "bids", [["100", 5]], "level 0: expected numbers, got the text '100'"),
    ("book", "asks", "[[101, 1]]", "expected a list of [price, size] levels"),
    ("event", "outcomes", "AB", "expected a list, got the text 'AB'"),
    ("instrument", "meta", [1], "expected an object, got a list"),
    ("instrument", "kind", ["binary"], "expected a text, got a list"),
])
def test_a_value_of_the_wrong_json_type_is_refused_by_line_and_field(
        tmp_path: Path, event: str, field: str, value: Any, said: str) -> None:
    lines = [dump_event(e) for e in _events()]
    (line,) = [x for x in lines if x["type"] == event][:1]
    line[field] = value
    path = write_recording(tmp_path, [line])
    message = ndjson_error(path)
    assert message.startswith(f"{path}:2: invalid {event}: ")
    assert said in message and message.endswith(f"@ $.{field}")


def test_a_header_instrument_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    header = recording_header()
    header["instruments"][0]["symbol"] = 5
    with pytest.raises(DataError, match=r"rec\.ndjson:header: invalid instruments\[0\].*"
                                        r"expected a text, got the number 5 @ \$\.symbol"):
        read_header(write_recording(tmp_path, [], header))
    header = recording_header()
    header["version"] = True  # True == 1
    with pytest.raises(DataError, match="format version true is not supported"):
        read_header(write_recording(tmp_path, [], header))


# -- 2. negative fees --------------------------------------------------------------------------
def test_a_negative_fee_in_the_header_is_refused(tmp_path: Path) -> None:
    header = recording_header()
    entry = header["fee_schedules"][0]
    entry["fields"]["maker_bps"] = "-40"
    del entry["checks"]  # nothing to check it against
    with pytest.raises(DataError, match=r"header: fee_schedules\[0\]: .*maker_bps = -40 is "
                                        r"negative"):
        read_header(write_recording(tmp_path, [], header))
    entry["fields"]["maker_bps"] = "25"
    entry["checks"] = [["1", "1", True, "-0.0025"]]
    with pytest.raises(DataError, match=r"checks\[0\] records a negative fee"):
        read_header(write_recording(tmp_path, [], header))


def test_a_negative_fee_of_an_instrument_listed_mid_stream_is_refused(tmp_path: Path) -> None:
    listed = dump_event(Instrument("replay", "ETH/USD"))
    listed[FEES_KEY] = {"class": "argus_core.interfaces:FeeSchedule",
                        "fields": {"maker_bps": "0", "taker_bps": "-5"}}
    path = write_recording(tmp_path, [_bar(), listed])
    assert "rec.ndjson:3: argus_core.interfaces:FeeSchedule field taker_bps = -5 is " \
           "negative" in ndjson_error(path)
    with pytest.raises(DataError, match=r"rec\.ndjson:3: .*taker_bps = -5"):
        list(read_ndjson(path, {}))


# -- 3. a malformed header ---------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "said"), [
    ("fee_schedule_of", [1], "'fee_schedule_of' must be an object"),
    ("fee_schedule_of", {IID: True}, r"fee_schedule_of\['replay:BTC/USD'\] = true names no"),
    ("instruments", {"a": 1}, "'instruments' must be a list of instruments, got dict"),
    ("instruments", ["BTC"], r"instruments\[0\] must be an object, got str"),
    ("fee_schedules", {"a": 1}, "'fee_schedules' must be a list"),
    ("venue", 5, "'venue' must be a text"),
    ("checks", [["1", "1"]], r"checks\[0\] must be \[price, quantity, maker \(true/false\), "
                             r"fee\], got \[\"1\", \"1\"\]"),
    ("checks", [["a", "b", False, "c"]], r"checks\[0\]: 'a' is not a number"),
    ("checks", [["1", "1", "no", "0.004"]], r"checks\[0\] must be"),
    ("checks", "all", "'checks' must be a list"),
    ("fields", [1, 2], "the 'fields' of 'argus_core.interfaces:FeeSchedule' must be an "
                       "object"),
    ("fields", {"maker_bps": True}, "do not fit the installed class"),
])
def test_a_malformed_header_is_a_data_error(tmp_path: Path, key: str, value: Any,
                                            said: str) -> None:
    header = recording_header()
    target = header["fee_schedules"][0] if key in ("checks", "fields") else header
    target[key] = value
    path = write_recording(tmp_path, [_bar()], header)
    with pytest.raises(DataError, match=rf"rec\.ndjson:header: .*{said}"):
        read_header(path)
    with pytest.raises(DataError, match=said):
        ReplayVenue(ReplaySettings(ndjson=path))


# -- 4. / 5. deep nesting, a type that is not a text -------------------------------------------
def test_a_line_nested_too_deep_is_a_data_error(tmp_path: Path) -> None:
    deep = '{"type": "bar", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = write_recording(tmp_path, [_bar(), deep])
    assert ndjson_error(path) == f"{path}:3: not valid JSON: nested deeper than 200 levels"
    head = tmp_path / "head.ndjson"
    head.write_text('{"type": "recording", "x": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    assert read_header(head) is None  # read_ndjson says which line is bad
    with pytest.raises(DataError, match=r"head\.ndjson:1: not valid JSON: nested deeper"):
        list(read_ndjson(head))


@pytest.mark.parametrize("tag", [["bar"], {"bar": 1}, 5, None, "x" * 500])
def test_an_event_type_that_is_not_a_known_text_is_a_data_error(tmp_path: Path,
                                                                tag: Any) -> None:
    path = write_recording(tmp_path, [_bar(type=tag)])
    assert "rec.ndjson:2: unknown or missing event type" in ndjson_error(path)
    with pytest.raises(DataError, match="unknown or missing event type"):
        load_event({"type": tag})


# -- 6. a signal that is not finite ------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_recorded_signal_must_be_finite(tmp_path: Path, value: float) -> None:
    line = json.dumps(dump_event(Signal("z", IID, T0 * NS, 1.0))).replace(
        '"value": 1.0', f'"value": {json.dumps(value)}')
    assert "NaN" in line or "Infinity" in line
    assert "rec.ndjson:2: invalid signal: Signal z" in \
        ndjson_error(write_recording(tmp_path, [line]))


# -- 7. / 8. settlements and prices out of range -----------------------------------------------
def test_a_binary_contract_settles_at_most_at_1(tmp_path: Path) -> None:
    yes_iid = YES.id
    at = T0 * NS
    over = write_recording(tmp_path, [dump_event(Settlement(yes_iid, at, "5"))],
                           recording_header(YES))
    assert ndjson_error(over) == (f"{over}:2: settlement price 5 of replay:YES, a binary contract: "
                                  f"it settles at 0 or 1 (at most 1)")
    listed = write_recording(tmp_path,
                             [dump_event(YES), dump_event(Settlement(yes_iid, at, "1.01"))],
                             name="listed.ndjson")
    assert "listed.ndjson:3: settlement price 1.01 of replay:YES" in ndjson_error(listed)
    fine = [Settlement(yes_iid, at, "1"), Settlement(yes_iid, at, "0"),
            Settlement(yes_iid, at, None), Settlement(IID, at, "5")]  # a spot's: any price
    ok = write_recording(tmp_path, [dump_event(e) for e in fine], recording_header(SPOT, YES),
                         "ok.ndjson")
    assert list(read_ndjson(ok)) == fine


@pytest.mark.parametrize("make", [
    lambda p: Bar(IID, 1, 100.0, p, 99.0, 100.0, 1.0),
    lambda p: Bar(IID, 1, p, p, p, p, 1.0),
    lambda p: Trade(IID, 1, p, "1"),
    lambda p: BookDelta(IID, 1, Side.BUY, p, "1"),
    lambda p: BookDelta(IID, 1, Side.BUY, str(p), "1"),
    lambda p: OrderBook(IID, 1, [[p, 1.0]], []),
    lambda p: OrderBook(IID, 1, [], [[100.0, 1.0], [p, 1.0]]),
    lambda p: Settlement(IID, 1, str(p)),
])
def test_a_price_above_max_price_is_refused(make: Any) -> None:
    make(1e18)  # the highest price market data may carry
    for price in (1.01e18, 1e30, 1e300):
        with pytest.raises(DataError, match="above 1e\\+18"):
            make(price)


def test_a_recorded_settlement_at_1e30_names_its_line(tmp_path: Path) -> None:
    line = dump_event(Settlement(IID, T0 * NS, "1"))
    line["price"] = "1e30"
    assert ndjson_error(write_recording(tmp_path, [_bar(), line])).startswith(
        f"{tmp_path / 'rec.ndjson'}:3: invalid settlement: Settlement.price: 1E+30 is above")


# -- bar CSVs: both readers, the run path's columns and the reference path ----------------------


def _rows(times: list[int], high: str = "11") -> str:
    return "".join(f"{t},10,{high},9,10.5,2.5,3\n" for t in times)


def _csv_error(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every reader's error for ``path``: bars, runs, and the reference path; all agree."""
    said = set()
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(replay_venue, "_fast_batch", lambda lines, cols: None)
            for read in (lambda: list(iter_bars_csv(path, IID, 60)),
                         lambda: list(iter_bar_runs_csv(path, IID, 60)),
                         lambda: read_bars_csv(path, IID, 60)):
                with pytest.raises(DataError) as info:
                    read()
                said.add(str(info.value))
    assert len(said) == 1, said
    return said.pop()


def test_a_huge_price_in_a_bar_csv_names_its_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    times = [T0 + 60 * i for i in range(100)]
    text = _rows(times[:40]) + _rows(times[40:41], "1e300") + _rows(times[41:])
    path = write_csv(tmp_path, text)
    assert _csv_error(path, monkeypatch) == (
        f"{path}:41: Bar {IID}@{(times[40] + 60) * NS}: a price above 1e+18, the highest "
        f"price market data may carry")


def test_negative_open_times_are_refused(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path, _rows([-3600 * (10 - i) for i in range(10)]))
    assert _csv_error(path, monkeypatch) == (
        f"{path}:1: open time -36000 is negative (before 1970): the time column holds unix "
        f"seconds (or ms, us, ns) since 1970-01-01 UTC")
    later = write_csv(tmp_path, _rows([T0 + 60 * i for i in range(30)] + [-60]))
    assert _csv_error(later, monkeypatch).startswith(f"{later}:31: open time -60 is negative")
    # Outside the window too: the file is wrong, whatever part of it is replayed
    with pytest.raises(DataError, match=":31: open time -60"):
        list(iter_bar_runs_csv(later, IID, 60, start_s=T0))
    assert count_bars_csv(later) == 30


@pytest.mark.parametrize("first", [9_300_000_000, 10**10, 99_999_999_000])
def test_open_times_past_int64_nanoseconds_are_refused(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       first: int) -> None:
    times = [T0 + 60 * i for i in range(40)] + [first + 60 * i for i in range(5)]
    path = write_csv(tmp_path, _rows(times))
    assert _csv_error(path, monkeypatch) == (
        f"{path}:41: open time {first} s is past the year 2262: its close in nanoseconds "
        f"does not fit 2**63 (the time column holds unix seconds, or ms, us, ns)")
    assert count_bars_csv(path) == 40


def test_the_last_open_time_whose_close_fits_int64_replays(tmp_path: Path) -> None:
    last = 2**63 // NS - 60  # its close: 9223372036 s, under 2**63 ns
    (bar,) = read_bars_csv(write_csv(tmp_path, _rows([last])), IID, 60)
    assert bar.ts_ns == (last + 60) * NS < 2**63
    with pytest.raises(DataError, match="past the year 2262"):
        read_bars_csv(write_csv(tmp_path, _rows([last + 1])), IID, 60)


def test_a_field_past_the_csv_limit_names_its_line(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    times = [T0 + 60 * i for i in range(60)]
    long = f'{times[40]},"{"1" * 2_000_000}",11,9,10.5,2.5,3\n'
    path = write_csv(tmp_path, _rows(times[:40]) + long + _rows(times[41:]))
    assert _csv_error(path, monkeypatch) == (
        f"{path}:41: not a CSV row of bars (field larger than field limit (131072))")
    with pytest.raises(DataError, match=r"bars\.csv:41: not a CSV row"):
        count_bars_csv(path)
    first = write_csv(tmp_path, long + _rows(times[41:]))
    assert _csv_error(first, monkeypatch).startswith(f"{first}:1: not a CSV row of bars")
    header = write_csv(tmp_path, f'time,open,high,low,close,"{"v" * 200_000}"\n' + _rows(times))
    assert _csv_error(header, monkeypatch).startswith(f"{header}:1: not a CSV row of bars")


@pytest.mark.parametrize("header", ["time,open,open,low,close,volume",
                                    "timestamp,open,high,low,close,volume,Close",
                                    'time,open,high,low,close,volume," volume "'])
def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   header: str) -> None:
    width = header.count(",") + 1
    rows = "".join(",".join([str(T0 + 60 * i), "10", "11", "9", "10.5", "2.5", "3"][:width])
                   + "\n" for i in range(5))
    path = write_csv(tmp_path, header + "\n" + rows)
    message = _csv_error(path, monkeypatch)
    assert message.startswith(f"{path}:1: the header names the column ")
    assert "2 times" in message and message.endswith("keep one")


def test_clean_bars_still_come_as_checked_columns(tmp_path: Path) -> None:
    times = [T0 + 60 * i for i in range(2000)]
    path = write_csv(tmp_path, _rows(times, "1e18"))
    runs = list(iter_bar_runs_csv(path, IID, 60))
    assert all(isinstance(r, BarRun) for r in runs)
    assert sum(len(r) for r in runs) == 2000  # type: ignore[arg-type]


def _bare_runner(tmp_path: Path) -> Any:
    """A replay of three bars with no strategy and no risk checks."""
    from argus_core.config import parse_config
    from argus_core.runner import Runner

    path = write_csv(tmp_path, _rows([T0 + 60 * i for i in range(3)]))
    config = parse_config({
        "argus": {"plugins": [], "mode": "replay"},
        "run": {"venue": "replay", "strategies": [], "risk_checks": []},
        "plugins": {"replay": {"bars_csv": str(path), "symbol": "X/USD", "bar_seconds": 60}},
    }, tmp_path / "c.toml")
    return Runner(config, tmp_path / "run")


def test_an_equity_past_28_digits_at_1e_8_is_written_not_a_crash(tmp_path: Path) -> None:
    """An equity of 1e20 or more has more digits at 1e-8 than the default Decimal
    context's 28: rounding its row raised InvalidOperation and the run died."""
    from argus_core.models import Fill, Liquidity

    runner = _bare_runner(tmp_path)
    runner.account.apply(Fill("f1", "o1", "replay", IID, Side.BUY, Decimal(1),
                              Decimal("1e12"), Decimal(0), Liquidity.TAKER, 1))
    runner.account.mark(IID, Decimal("1e9"))  # 1e21 of equity
    runner._equity_row(1)
    (_, _, equity, gross) = runner._equity_rows[-1]
    assert Decimal(equity) > Decimal("1e20") and equity.endswith(".00000000")
    assert Decimal(gross) == Decimal("1e21")


def test_a_book_s_equity_past_28_digits_is_written_not_a_crash(tmp_path: Path) -> None:
    """The same for a strategy's book row (a run of several books): its rounding ran
    in the default 28-digit context and the run died at the first mark of 1e20."""
    from argus_core.models import Fill, Liquidity

    runner = _bare_runner(tmp_path)
    runner.account.books = {"a": type(runner.account)(Decimal(0)),
                            "b": type(runner.account)(Decimal(5))}
    fill = Fill("f1", "o1", "replay", IID, Side.BUY, Decimal(1), Decimal("1e12"), Decimal(0),
                Liquidity.TAKER, 1)
    runner.account.apply(fill)
    runner.account.apply_to_books(fill, "a")
    runner.account.mark(IID, Decimal("1e9"))  # 1e21 of equity in book "a"
    runner._equity_row(1)
    (_, books), = runner._book_rows
    a_cash, a_equity = json.loads(books)["a"]
    assert Decimal(a_cash) == -Decimal("1e12")
    assert Decimal(a_equity) == Decimal("1e21") - Decimal("1e12")
    assert a_equity.endswith(".00000000")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_signal_in_a_run_is_not_written_to_the_ledger(tmp_path: Path,
                                                                    value: float) -> None:
    from argus_core.ledger import Ledger

    runner = _bare_runner(tmp_path)
    events = [Signal("z", IID, (T0 + 30) * NS, value), Signal("z", IID, (T0 + 40) * NS, 2.0)]
    runner.asm.venue.events = lambda: iter(events)  # type: ignore[method-assign]
    runner.run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert [r["value"] for r in ledger.query("select value from signals")] == [2.0]
