"""The bar CSV reader parses plain numeric batches with numpy and everything else line by
line through the csv module (issue 14: reading the CSV was a third of a replay).  Both
paths must give the same bars, and the same error with the same line number, for any
file: checked here against the reference path alone (numpy switched off)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS

from argus_core.builtins import replay_venue
from argus_core.builtins.replay_venue import iter_bars_csv
from argus_core.errors import DataError
from argus_core.models import Bar

IID = "replay:BTC/USD"


def _read(path: Path, **kw: object) -> list[Bar] | str:
    try:
        return list(iter_bars_csv(path, IID, 60, warn_gaps=False, **kw))  # type: ignore[arg-type]
    except DataError as exc:
        return f"DataError: {exc}"


def _both(path: Path, monkeypatch: pytest.MonkeyPatch, **kw: object
          ) -> tuple[list[Bar] | str, list[Bar] | str]:
    fast = _read(path, **kw)
    with monkeypatch.context() as m:
        m.setattr(replay_venue, "_fast_batch", lambda lines, cols: None)
        reference = _read(path, **kw)
    return fast, reference


def test_the_bundled_bars_parse_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    if not BUNDLED_BARS.exists():
        pytest.skip("bundled bars absent")
    fast, reference = _both(BUNDLED_BARS, monkeypatch)
    assert isinstance(fast, list) and len(fast) > 70_000
    assert fast == reference
    window = {"start_s": 1_500_000_000, "end_s": 1_600_000_000}
    assert _both(BUNDLED_BARS, monkeypatch, **window)[0] == _both(
        BUNDLED_BARS, monkeypatch, **window)[1]


def _price(rng: random.Random) -> str:
    p = rng.uniform(1, 50_000)
    return rng.choice([f"{p:.1f}", f"{p:.5f}", repr(p), f"{p:.3e}", f"{round(p)}"])


_ODD = ["nan", "nan(1)", "inf", "-inf", "1e400", "1_000", '"123.5"', "", " 12.5 ", "abc",
        "0x10", "-5", "0", "1e-3", "+7.25", ".5", "5.",
        # what float() reads and numpy's parsers may not, or the other way round: a blank
        # field (numpy.fromstring read " " as -1), a figure space, Arabic-Indic digits,
        # a '#' (not a comment), a NUL, a lone carriage return inside the line
        " ", "\t", "\u20071.5", "\u0661\u0662", "#5", "5\x00", "5\r", "1e5 ", "-0",
        # separators str.isspace() counts and float() refuses: numpy.loadtxt read "\x1c5"
        "\x1c5", "5\x1f", "\x1d1.5", "\x1e"]


def _csv(rng: random.Random, n: int, *, odd: float, header: bool, crlf: bool) -> str:
    lines = ["volume,close,low,high,open,timestamp,extra"] if header else []
    t = 1_600_000_000
    for _ in range(n):
        t += rng.choice([60, 60, 60, 120, 3600]) if rng.random() > 0.002 else -60
        o, c = float(_price(rng)), float(_price(rng))
        fields = [repr(t) if rng.random() > 0.1 else f"{t}.0", repr(o), repr(max(o, c) + 1),
                  repr(min(o, c) - 0.5), repr(c), f"{rng.uniform(0, 9):.4f}",
                  str(rng.randint(1, 50))]
        if rng.random() < odd:
            fields[rng.randrange(7)] = rng.choice(_ODD)
        if header:  # the header's column order
            fields = [fields[5], fields[4], fields[3], fields[2], fields[1], fields[0],
                      fields[6]]
        if rng.random() < odd / 2:
            fields = fields[:rng.randint(1, 6)] if rng.random() < 0.5 else [*fields, "9"]
        line = ",".join(fields)
        if rng.random() < odd / 3:
            line = ""  # a blank line
        lines.append(line)
    return ("\r\n" if crlf else "\n").join(lines) + rng.choice(["", "\n", "\n\n"])


@pytest.mark.parametrize("seed", range(60))
def test_random_files_parse_identically_or_fail_identically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    # Small batches: many per file, so a bad line lands in a later batch too.
    monkeypatch.setattr(replay_venue, "_BATCH_BYTES", rng.choice([64, 1024, 1 << 15]))
    path = tmp_path / "bars.csv"
    odd = [0.0, 0.0005, 0.003, 0.05][seed % 4]
    path.write_text(_csv(rng, rng.randint(50, 3_000), odd=odd, header=seed % 3 == 0,
                         crlf=seed % 5 == 0), newline="")
    fast, reference = _both(path, monkeypatch)
    assert fast == reference
    if odd == 0.0 and isinstance(fast, str):
        assert "strictly increasing" in fast  # only the planted time reversals fail
    kw = {"start_s": 1_600_030_000}
    assert _both(path, monkeypatch, **kw)[0] == _both(path, monkeypatch, **kw)[1]


def test_a_bad_value_deep_in_the_file_names_its_line(tmp_path: Path) -> None:
    rows = [f"{1_600_000_000 + 60 * k},10,11,9,10.5,1,1" for k in range(20_000)]
    rows[15_000] = rows[15_000].replace("10.5", "ten")
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"bars\.csv:15001: malformed bar row"):
        list(iter_bars_csv(path, IID, 60))


def test_a_byte_order_mark_is_not_data_and_a_date_is_named(tmp_path: Path) -> None:
    rows = [f"{1_600_000_000 + 60 * k},10,11,9,10.5,1,1" for k in range(5)]
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows) + "\r\n").encode())
    assert len(list(iter_bars_csv(path, IID, 60))) == 5
    with_header = tmp_path / "header.csv"
    with_header.write_bytes(b"\xef\xbb\xbftimestamp,open,high,low,close,volume\n"
                            b"1600000000,10,11,9,10.5,1\n")
    assert len(list(iter_bars_csv(with_header, IID, 60))) == 1
    dated = tmp_path / "dated.csv"
    dated.write_text("time,open,high,low,close,volume\n2021-01-01 00:00:00,10,11,9,10.5,1\n")
    with pytest.raises(DataError, match=r"dated\.csv:2: .*unix seconds, not a date"):
        list(iter_bars_csv(dated, IID, 60))


def test_a_recording_with_a_byte_order_mark_replays(tmp_path: Path) -> None:
    import json

    from argus_core.builtins.replay_venue import read_ndjson
    from argus_core.recorder import read_header
    from argus_core.serde import dump_event

    bars = [Bar(IID, (1_600_000_000 + 60 * k) * 10**9, 10.0, 11.0, 9.0, 10.5, 1.0)
            for k in range(3)]
    path = tmp_path / "rec.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(dump_event(b)) + "\n"
                                              for b in bars).encode())
    assert read_header(path) is None
    assert list(read_ndjson(path)) == bars


@pytest.mark.parametrize("char", ["\x1c", "\x1d", "\x1e", "\x1f", "\u2007", "\xa0", "\x0b",
                                  "\u3000", "\u0661"])
@pytest.mark.parametrize("col", range(6))
def test_a_blank_like_character_around_a_valid_value_parses_as_the_reference_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, char: str, col: int) -> None:
    """A character planted beside an otherwise valid value keeps the bar valid, so no
    later check hides a parser that reads what ``float()`` refuses (numpy.loadtxt takes
    the four separators \\x1c-\\x1f for blanks: "\\x1c101.5" was read as 101.5, a bar the
    reference path refuses) or refuses what it reads (a figure space, Arabic-Indic
    digits)."""
    rows = [[str(1_600_000_000 + 60 * k), "101.5", "102", "100", "101", "2.5", "7"]
            for k in range(50)]
    rows[20][col] = char + rows[20][col] if col % 2 else rows[20][col] + char
    path = tmp_path / "bars.csv"
    path.write_text("".join(",".join(r) + "\n" for r in rows), newline="")
    fast, reference = _both(path, monkeypatch)
    assert fast == reference


_WRAPS = [chr(c) for c in range(0x21)] + list("+-._#\"'eEinfINFxX;:/") + [
    "\u00a0", "\u2007", "\u3000", "\u2028", "\u0661", "\uff15", "\ufeff", "\u200b", "\x85"]


@pytest.mark.parametrize("seed", range(150))
def test_a_valid_value_wrapped_in_odd_characters_parses_as_the_reference_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Small files whose values stay valid but gain a character before, after or around
    them, or become one or two of it: the planted text reaches the number parser instead
    of a bar check that refuses the bar either way.  (The old numpy.fromstring path
    failed 29 of 2,000 such seeds: a field of blanks read as -1.)"""
    rng = random.Random(seed)
    rows = []
    for k in range(rng.randint(5, 40)):
        p = round(rng.uniform(10, 1000), rng.choice([0, 1, 2, 5]))
        rows.append([str(1_600_000_000 + 60 * k), str(p), str(p + 1), str(p - 1), str(p),
                     f"{rng.uniform(0, 5):.3f}", str(rng.randint(1, 9))])
    for _ in range(rng.choice([1, 2, 3])):
        fields, ch = rng.choice(rows), rng.choice(_WRAPS)
        c = rng.randrange(len(fields))
        fields[c] = rng.choice([ch + fields[c], fields[c] + ch, ch + fields[c] + ch, ch,
                                ch * 2])
    path = tmp_path / "bars.csv"
    path.write_bytes("".join(",".join(r) + "\n" for r in rows).encode())
    fast, reference = _both(path, monkeypatch)
    assert fast == reference
