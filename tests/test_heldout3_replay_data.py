"""Third held-out audit of the replay's inputs (a red team of bar files, recordings and the
replay's settings): what it found.

1. An integer of more than 4,300 digits in a recording line (or a venue's frame) made
   ``json.loads`` raise a plain ``ValueError`` past every ``JSONDecodeError`` handler: a
   raw crash of the backtest (and of the Kraken feed's decoder, which ended its stream).
2. A lone surrogate (``"\\ud800"``) in a recording's header symbol or a signal's name
   crashed the ledger's writer (``UnicodeEncodeError``); ``loads_frame`` now replaces
   each lone half of a character with U+FFFD (a title cut mid-emoji by a JavaScript
   encoder is text, not an error).
3. A key named twice in a JSON object kept the last value: a second ``"ts_ns"`` moved a
   recorded bar, a second ``"instrument_id"`` changed its instrument.  Refused.
4. Bars of an instrument the header never listed were traded with no tick, lot or fees.
   Refused (a recording with a header; one without uses the configured instrument).
5. The same instrument twice in a header: the later silently won.  Refused.
6. A tick of ``1e-999999999`` overflowed the paper broker's rounding; a fee of 1e21 per
   fill (or 1e26 bps) its fee rounding.  An instrument's tick and lot lie in 1e-12 ..
   1e9, a recorded schedule's basis points at most 10,000 and its amounts at most 1e9,
   and the replay's settings (``tick_size``, ``lot_size``, ``maker_bps``, ``taker_bps``,
   ``bar_seconds``, ``min_size``) and ``[paper] fixed_fee`` / ``cost_multiplier`` are
   checked as the config's other values are (0 was silently taken as "infer").
7. A sell under one tick rounded to a price of 0, refused only as a fill "price 0".
8. A bar file whose lines were joined by a form feed (or another separator that is no
   line break to Python's file reader) read as one line of 61 fields, one bar from its
   first six: refused (a row wider than its header, or than 7 fields without one).
9. An open time of ``-0.5`` truncated to 0 (1970), past the "before 1970" refusal.
10. ``bars_csv = "/dev/zero"`` grew until it ran out of memory: a data file must be a
    regular file.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from replay_files import (
    IID,
    NS,
    SPOT,
    T0,
    ndjson_error,
    recording_header,
    write_csv,
    write_recording,
)

from argus_core.backtest import run_backtest
from argus_core.builtins.replay_venue import (
    ReplaySettings,
    count_bars_csv,
    iter_bar_runs_csv,
    read_bars_csv,
    read_ndjson,
)
from argus_core.config import PaperSection, load_config
from argus_core.errors import DataError
from argus_core.ledger import Ledger
from argus_core.models import Bar, Instrument, Side
from argus_core.paper import _tick_round
from argus_core.recorder import read_header
from argus_core.serde import dump_event, loads_frame, unique_keys


def _bar(k: int, iid: str = IID) -> dict[str, Any]:
    close = 100.0 + (k % 7) - 3
    return dump_event(Bar(iid, (T0 + 60 * k) * NS, 100.0, max(100.0, close) + 1,
                          min(100.0, close) - 1, close, 2.0))


# -- 1-3. JSON: huge numbers, lone surrogates, keys named twice -------------------------------
def test_a_5000_digit_number_is_malformed_json_not_a_value_error() -> None:
    with pytest.raises(json.JSONDecodeError, match="more than 4,300 digits"):
        loads_frame('{"n": ' + "1" * 5000 + "}")
    with pytest.raises(json.JSONDecodeError, match="more than 4,300 digits"):
        loads_frame(b'[' + b"2" * 5000 + b"]")


def test_a_recording_line_with_a_5000_digit_number_names_its_line(tmp_path: Path) -> None:
    line = json.dumps(_bar(0))[:-1] + ', "extra": ' + "3" * 5000 + "}"
    assert ndjson_error(write_recording(tmp_path, [line])).endswith(
        "rec.ndjson:2: not valid JSON: a number of more than 4,300 digits")


def test_lone_surrogates_become_replacement_characters_and_pairs_stay_whole() -> None:
    data = loads_frame(r'{"a\ud800": ["x\udfffy", "\ud83d\ude00", {"k": "\uDC00"}]}')
    assert data == {"a\ufffd": ["x\ufffdy", "\U0001f600", {"k": "\ufffd"}]}
    assert loads_frame(rb'"\ud800"') == "\ufffd"
    assert loads_frame(r'"\\ud800"') == "\\ud800"  # an escaped backslash: plain text


def test_a_key_named_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'ts_ns' appears twice"):
        unique_keys([("ts_ns", 1), ("open", 2.0), ("ts_ns", 5)])
    assert unique_keys([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    line = json.dumps(_bar(0))[:-1] + ', "ts_ns": 5}'
    assert "rec.ndjson:2: not valid JSON: the key 'ts_ns' appears twice" in \
        ndjson_error(write_recording(tmp_path, [line]))
    header = json.dumps(recording_header())[:-1] + ', "version": 1}'
    assert "rec.ndjson:1: not valid JSON: the key 'version' appears twice" in \
        ndjson_error(write_recording(tmp_path, [_bar(0)], header=header))  # type: ignore[arg-type]


def _config(tmp_path: Path, data: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f"""
[argus]
plugins = []
mode = "replay"

[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"
starting_cash = "100000"

[plugins.replay]
{data}
bar_seconds = 60

[plugins.example]
fast = 2
slow = 4
""")
    return path


def test_a_lone_surrogate_in_a_recorded_symbol_and_a_signal_replays_to_the_end(
        tmp_path: Path) -> None:
    odd = Instrument("replay", "BTC\ud800/USD", "spot", "0.1", "0.00000001", "0.0001")
    header = json.dumps(recording_header(odd))  # json.dumps escapes the lone half: "\ud800"
    iid = "replay:BTC\ufffd/USD"
    signal = {"type": "signal", "name": "z\ud800", "instrument_id": iid, "ts_ns": T0 * NS,
              "value": 1.0}
    rec = write_recording(tmp_path, [json.dumps(signal), *[_bar(k, iid) for k in range(40)]],
                     header=header)  # type: ignore[arg-type]
    summary = run_backtest(load_config(_config(tmp_path, f'ndjson = "{rec}"')),
                           tmp_path / "run").summary
    assert summary.events == 41 and summary.orders > 0
    with Ledger(tmp_path / "run" / "argus.db") as ledger:
        assert {r["instrument_id"] for r in ledger.query("select instrument_id from orders")
                } == {iid}


# -- 4-5. instruments a header does not list, or lists twice ----------------------------------
def test_bars_of_an_instrument_the_header_does_not_list_are_refused(tmp_path: Path) -> None:
    eth = _bar(1, "replay:ETH/USD")
    assert ndjson_error(write_recording(tmp_path, [_bar(0), eth])).endswith(
        "rec.ndjson:3: a bar of replay:ETH/USD, an instrument neither the header nor an "
        "instrument line before it lists")
    assert "a bar of replay:BTC/USD" in ndjson_error(write_recording(tmp_path, [_bar(0)],
                                                          header=recording_header(SPOT) | {
                                                              "instruments": []}))


def test_an_instrument_listed_mid_recording_may_have_events(tmp_path: Path) -> None:
    eth = Instrument("replay", "ETH/USD", "spot", "0.01", "0.0001")
    events = list(read_ndjson(write_recording(tmp_path, [_bar(0), dump_event(eth),
                                                    _bar(1, "replay:ETH/USD")])))
    assert [type(e).__name__ for e in events] == ["Bar", "Instrument", "Bar"]


def test_a_header_listing_an_instrument_twice_is_refused(tmp_path: Path) -> None:
    header = recording_header(SPOT)
    header["instruments"] = header["instruments"] * 2
    with pytest.raises(DataError, match=r"instruments\[1\] lists replay:BTC/USD again"):
        read_header(write_recording(tmp_path, [_bar(0)], header=header))


# -- 6-7. ticks, lots and fees the arithmetic cannot hold -------------------------------------
@pytest.mark.parametrize(("field", "value", "message"), [
    ("tick_size", "1e-999999999", "outside 1e-12 .. 1e+9"),
    ("tick_size", "1e10", "outside 1e-12 .. 1e+9"),
    ("lot_size", "0", "must be > 0"),
    ("lot_size", "1e-13", "outside 1e-12 .. 1e+9"),
])
def test_an_instrument_s_tick_and_lot_are_bounded(field: str, value: str, message: str
                                                 ) -> None:
    with pytest.raises(DataError, match=rf"Instrument\.{field}: .*{re.escape(message)}"):
        Instrument("replay", "X", **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("fixed_per_fill", "1e21", "above 1,000,000,000"),
    ("per_unit", "1e25", "above 1,000,000,000"),
    ("taker_bps", "1e26", "above 10,000"),
])
def test_a_recorded_fee_past_its_bound_is_refused(tmp_path: Path, field: str, value: str,
                                                  message: str) -> None:
    header = recording_header()
    header["fee_schedules"][0]["fields"][field] = value
    header["fee_schedules"][0]["checks"] = []
    with pytest.raises(DataError, match=f"field {field} = .* is {message}"):
        read_header(write_recording(tmp_path, [_bar(0)], header=header))


@pytest.mark.parametrize(("field", "value"), [
    ("tick_size", Decimal(0)), ("lot_size", Decimal(0)), ("tick_size", Decimal("1e-20")),
    ("maker_bps", Decimal(-1)), ("taker_bps", Decimal("1e26")), ("bar_seconds", 10**20),
    ("min_size", Decimal(-1)),
])
def test_the_replay_settings_refuse_values_the_order_path_cannot_hold(
        field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{field} = .* is outside the allowed range"):
        ReplaySettings(bars_csv=Path("bars.csv"), **{field: value})


@pytest.mark.parametrize(("field", "value"), [("fixed_fee", Decimal("1e21")),
                                              ("cost_multiplier", Decimal("1e30"))])
def test_paper_fees_are_bounded(field: str, value: Decimal) -> None:
    with pytest.raises(ValueError, match=f"{field} = .* is outside the allowed range"):
        PaperSection(**{field: value})


def test_a_sell_under_one_tick_is_a_data_error_naming_the_instrument() -> None:
    coarse = Instrument("replay", "X", tick_size="1000")
    with pytest.raises(DataError, match=r"replay:X: price 400 is under one tick \(1000\)"):
        _tick_round(Decimal(400), Side.SELL, coarse)
    assert _tick_round(Decimal(400), Side.BUY, coarse) == Decimal(1000)
    assert _tick_round(Decimal(1400), Side.SELL, coarse) == Decimal(1000)


# -- 8-10. bar files ----------------------------------------------------------------------------
ROW = "{t},10,11,9,10.5,1"


def _both_paths(path: Path) -> list[str]:
    """The error of the bar-by-bar path and of the columns path."""
    out = []
    for runs in (False, True):
        with pytest.raises(DataError) as info:
            list(iter_bar_runs_csv(path, IID, 3600, runs=runs))
        out.append(str(info.value))
    return out


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028"])
def test_bar_rows_joined_by_a_separator_that_is_no_line_break_are_refused(
        tmp_path: Path, separator: str) -> None:
    rows = [ROW.format(t=T0 + 3600 * k) + ",3" for k in range(3)]
    headerless = write_csv(tmp_path, separator.join(rows) + "\n")
    for error in _both_paths(headerless):
        assert "bars.csv:1: 19 fields in a bar row, more than the 7 a bar file without a " \
            "header has at most" in error
    named = write_csv(tmp_path, "time,open,high,low,close,volume,trades\n"
                 + separator.join(rows) + "\n")
    for error in _both_paths(named):
        assert "bars.csv:2: 19 fields in a bar row, more than the 7 the header names" in error


def test_a_trailing_comma_and_a_trades_column_still_read(tmp_path: Path) -> None:
    text = "".join(ROW.format(t=T0 + 3600 * k) + ",\n" for k in range(3))
    assert len(read_bars_csv(write_csv(tmp_path, "time,open,high,low,close,volume\n" + text),
                             IID, 3600)) == 3
    text = "".join(ROW.format(t=T0 + 3600 * k) + ",12\n" for k in range(3))
    assert len(read_bars_csv(write_csv(tmp_path, text), IID, 3600)) == 3


@pytest.mark.parametrize("when", ["-0.5", "-0.999", "-999.0e-3"])
def test_an_open_time_a_fraction_before_1970_is_refused(tmp_path: Path, when: str) -> None:
    for first in (True, False):
        rows = [ROW.format(t=when), ROW.format(t=T0)]
        path = write_csv(tmp_path, "\n".join(rows if first else rows[::-1]) + "\n")
        line = 1 if first else 2
        for error in _both_paths(path):
            assert f"bars.csv:{line}: open time -1 is negative (before 1970)" in error


def test_a_data_file_must_be_a_regular_file() -> None:
    for read in (lambda p: read_bars_csv(p, IID, 60), count_bars_csv,
                 lambda p: list(read_ndjson(p)), read_header):
        with pytest.raises(DataError, match=r"/dev/zero: cannot read .*: not a regular file"):
            read(Path("/dev/zero"))


def test_an_instrument_of_a_kind_argus_does_not_know_is_refused(tmp_path: Path) -> None:
    """``Instrument.kind`` was free text: a recording's "Binary" traded as a spot, so the
    binary checks (a settlement of 0 or 1, fills at most 1) were skipped unseen."""
    eth = dump_event(Instrument("replay", "ETH/USD", "spot", "0.01", "0.0001"))
    assert ndjson_error(write_recording(tmp_path, [dict(eth, kind="Binary")])).endswith(
        "rec.ndjson:2: invalid instrument: Instrument.kind: 'Binary' is not one of spot, "
        "binary, option, perp")
    header = recording_header()
    header["instruments"][0]["kind"] = "weird"
    with pytest.raises(DataError, match=r"Instrument\.kind: 'weird' is not one of"):
        read_header(write_recording(tmp_path, [], header=header, name="h.ndjson"))


def test_a_recording_whose_last_line_was_cut_mid_write_reads_up_to_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A recording stopped mid-write (a power cut: the page cache lost) ends in part of a
    line, with no line break.  The recorder promises a file valid up to its last whole
    line, and the replay refused all of it ("not valid JSON").  A broken line that ends
    in a line break is still refused."""
    import logging

    path = write_recording(tmp_path, [_bar(0), _bar(1)])
    whole = list(read_ndjson(path))
    path.write_text(path.read_text() + json.dumps(_bar(2))[:25])
    with caplog.at_level(logging.WARNING):
        assert list(read_ndjson(path)) == whole
    assert "rec.ndjson:4: the last line is cut short" in caplog.text
    path.write_text(path.read_text() + "\n")
    assert ndjson_error(path).startswith(f"{path}:4: not valid JSON")
