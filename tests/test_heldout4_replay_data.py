"""Fourth held-out audit of the replay's data path (bar CSVs and recordings): what it found.

1. A bar file whose lines were joined by a separator that is no line break (``\\x1e``,
   a form feed) was refused, but only after the csv module had split the whole file
   into one row of millions of fields: 17 times the file's size in memory (a 30 MB
   file took 518 MB), and a long line mid-file put the whole row into the error.
   A line of more fields than any bar row or header (``_MAX_COMMAS``) is now refused
   by its line before it is split; the progress bar's count skips it.
2. A binary contract pays at most 1, and a settlement above 1 was refused, but its
   trades, book levels, book deltas and bars at 1.5 (a feed in cents, a unit bug)
   replayed: the paper broker filled at prices the market can never show.
3. An instrument line listing a known binary contract again as a spot changed the
   rules' kind, after which its settlement at 5 replayed.  The kind of an instrument
   may not change mid-recording (its tick, lot and fees may).

Besides these, a differential test: random and adversarial files through the numpy
path, the reference path and the runner's checked columns (``BarRun``), and the era
pass, with small batches so a bad line lands on a batch boundary.
"""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from replay_files import T0, recording_header, write_csv, write_recording

from argus_core.bar_runs import BarRun
from argus_core.builtins import replay_venue
from argus_core.builtins.replay_venue import (
    count_bars_csv,
    era_rules,
    iter_bar_runs_csv,
    iter_bars_csv,
    read_ndjson,
)
from argus_core.errors import DataError
from argus_core.models import Bar, BookDelta, Instrument, OrderBook, Settlement, Side, Trade
from argus_core.recorder import EventRules
from argus_core.serde import dump_event

IID = "replay:BTC/USD"
NS = 10**9
YES = Instrument("pm", "YES", "binary", "0.01", "1", "1")

_Got = list[tuple[float, ...]] | str


def _bars(path: Path, bar_seconds: int, *, runs: bool, fast: bool, **kw: Any) -> _Got:
    """What a replay of ``path`` yields, as tuples (runs expanded), or its error."""
    real = replay_venue._fast_batch
    if not fast:
        replay_venue._fast_batch = lambda lines, cols: None  # type: ignore[assignment]
    try:
        out: list[tuple[float, ...]] = []
        for item in iter_bar_runs_csv(path, IID, bar_seconds, warn_gaps=False, runs=runs,
                                      **kw):
            got = [item.bar(i) for i in range(len(item))] if isinstance(item, BarRun) \
                else [item]
            out += [(b.ts_ns, b.open, b.high, b.low, b.close, b.volume) for b in got]
        return out
    except DataError as exc:
        return f"DataError: {exc}"
    finally:
        replay_venue._fast_batch = real  # type: ignore[assignment]


def _era(path: Path, bar_seconds: int, *, fast: bool, **kw: Any) -> object:
    real = replay_venue._fast_batch
    if not fast:
        replay_venue._fast_batch = lambda lines, cols: None  # type: ignore[assignment]
    try:
        return era_rules(iter_bars_csv(path, IID, bar_seconds, warn_gaps=False, era=fast,
                                       **kw), IID)
    except DataError:
        return "refused"
    finally:
        replay_venue._fast_batch = real  # type: ignore[assignment]


#: Fields float() and numpy may read differently, or not at all.
_ODD = ["nan", "inf", "1e400", "1_0", "+10", "10.", "\x0c10", "10\x0b", "\ufeff10", "10\x00",
        " 10", "\u0661\u0660", "\uff11\uff10", "0x0a", "1e1", "-0", "infinity", "10,", "",
        "\u200b10", "\x8510", "\u202810", "\xa010", "4.9e-324", "1e18", "1.0000000000000002e18"]
#: Time fields near the unit boundaries and in odd spellings ({t}: the open time in s).
_TIMES = ["{t}.0", "{t}.9", "+{t}", "{t}e0", "{ms}", "{us}", "{ns}", "{t}_", "0{t}",
          "{ms}.5", "-0", "99999999999", "1e11", "99999999999999", "1e14", "1e17",
          "99999999999999999", "9223372035"]


def _file(rng: random.Random) -> tuple[str, int]:
    bar_seconds = rng.choice([1, 60, 3600])
    unit = rng.choice([1, 1, 1000, 10**6, 10**9])
    t = rng.choice([1_600_000_000, 100_000_000, 9_223_370_000])
    lines = ["time,open,high,low,close,volume,count"] if rng.random() < 0.3 else []
    for _ in range(rng.randint(1, 300)):
        t += bar_seconds if rng.random() > 0.05 else rng.choice(
            [0, -bar_seconds, bar_seconds // 2, 2 * bar_seconds, bar_seconds - 1])
        p = round(rng.uniform(1, 1000), rng.choice([0, 2, 5, 8]))
        ts = str(t * unit) if rng.random() > 0.05 else rng.choice(_TIMES).format(
            t=t, ms=t * 1000, us=t * 10**6, ns=t * NS)
        fields = [ts, repr(p), repr(p + 1), repr(p - 0.5 if p > 1 else p), repr(p),
                  f"{rng.uniform(0, 5):.{rng.choice([0, 3, 8])}f}", str(rng.randint(0, 9))]
        if rng.random() < 0.02:
            fields[rng.randrange(7)] = rng.choice(_ODD)
        lines.append(",".join(fields))
    end = rng.choice(["\n", "\r\n", "\r"])
    return end.join(lines) + rng.choice(["", end]), bar_seconds


@pytest.mark.parametrize("seed", range(40))
def test_every_path_reads_the_same_bars_or_refuses_at_the_same_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The numpy path, the reference path, the runner's checked columns and the era pass
    agree on random and adversarial files, windows cutting mid-batch included."""
    rng = random.Random(seed)
    monkeypatch.setattr(replay_venue, "_BATCH_BYTES", rng.choice([64, 512, 1 << 15]))
    text, bar_seconds = _file(rng)
    path = write_csv(tmp_path, text)
    kw: dict[str, int] = {}
    if rng.random() < 0.4:
        kw["start_s"] = 1_600_000_000 + bar_seconds * rng.randint(0, 150)
        kw["end_s"] = kw["start_s"] + bar_seconds * rng.randint(0, 150)
    reference = _bars(path, bar_seconds, runs=False, fast=False, **kw)
    assert _bars(path, bar_seconds, runs=False, fast=True, **kw) == reference
    assert _bars(path, bar_seconds, runs=True, fast=True, **kw) == reference
    if isinstance(reference, list):
        assert _era(path, bar_seconds, fast=True, **kw) == _era(path, bar_seconds, fast=False,
                                                                **kw)
        assert count_bars_csv(path, kw.get("start_s"), kw.get("end_s")) == len(reference)


# -- 1. a line longer than any bar row ---------------------------------------------------------
def _peak_bytes(read: Any) -> int:
    tracemalloc.start()
    try:
        read()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_row_of_thousands_of_fields_is_refused_before_it_is_split(tmp_path: Path) -> None:
    """Bars joined by ``\\x1e`` were split into one row of 600,000 fields before the
    refusal (about 17 times the file's size in memory); a long line mid-file put the
    whole row into the error message."""
    joined = write_csv(tmp_path, "".join(f"{T0 + 60 * k},10,11,9,10.5,2.5,3\x1e"
                                         for k in range(100_000)) + "\n", "joined.csv")

    def refuse(path: Path) -> str:
        with pytest.raises(DataError) as info:
            list(iter_bars_csv(path, IID, 60))
        return str(info.value)

    size = joined.stat().st_size  # 3 MB: it took 43 MB, the count 35 MB
    assert _peak_bytes(lambda: refuse(joined)) < size / 3  # read in part
    assert refuse(joined).startswith(f"{joined}:1: over 4,096 fields: no bar row")
    assert _peak_bytes(lambda: count_bars_csv(joined)) < 3 * size  # read, not split
    mid = write_csv(tmp_path, f"{T0},10,11,9,10.5,2.5,3\n" + "1," * 200_000 + "\n", "mid.csv")
    message = refuse(mid)
    assert message.startswith(f"{mid}:2: ") and len(message) < 1_000
    assert count_bars_csv(mid) == 1


# -- 2. / 3. binary contracts ------------------------------------------------------------------
@pytest.mark.parametrize("event", [
    Trade(YES.id, T0 * NS, "1.5", "10"),
    OrderBook(YES.id, T0 * NS, [[0.5, 10]], [[0.6, 5], [1.5, 5]]),
    BookDelta(YES.id, T0 * NS, Side.SELL, "1.01", "5"),
    Bar(YES.id, T0 * NS, 0.5, 1.5, 0.4, 0.6, 10.0),
], ids=["trade", "book", "delta", "bar"])
def test_a_binary_contract_s_prices_are_at_most_1(tmp_path: Path, event: Any) -> None:
    """Only a binary contract's settlement was held to at most 1: its trades, book levels,
    deltas and bars at 1.5 replayed (and the recorder wrote them), so the paper broker
    filled at prices the contract can never trade at."""
    path = write_recording(tmp_path, [dump_event(event)], recording_header(YES))
    with pytest.raises(DataError, match=r"rec\.ndjson:2: .* of pm:YES, a binary contract: "
                                        r"its prices lie in 0 \.\. 1"):
        list(read_ndjson(path))
    assert EventRules({YES.id: "binary"}).refusal(event, T0 * NS, "x") is not None
    fine = [Trade(YES.id, T0 * NS, "1", "10"), BookDelta(YES.id, T0 * NS, Side.SELL, "1", "0"),
            OrderBook(YES.id, T0 * NS, [[0.5, 10]], [[0.6, 5], [1.0, 5]]),
            Bar(YES.id, T0 * NS, 0.5, 1.0, 0.4, 0.6, 10.0)]
    ok = write_recording(tmp_path, [dump_event(e) for e in fine], recording_header(YES),
                         "ok.ndjson")
    assert list(read_ndjson(ok)) == fine


def test_an_instrument_line_may_not_change_a_known_instrument_s_kind(tmp_path: Path) -> None:
    """A binary contract listed again as a spot became a spot to the rules: its settlement
    at 5 replayed.  A new tick (a venue's tick change at extreme prices) still does."""
    as_spot = Instrument("pm", "YES", "spot", "0.01", "1", "1")
    path = write_recording(tmp_path, [dump_event(as_spot),
                                      dump_event(Settlement(YES.id, T0 * NS, "5"))],
                           recording_header(YES))
    with pytest.raises(DataError, match=r"rec\.ndjson:2: instrument pm:YES listed as a spot, "
                                        r"was a binary"):
        list(read_ndjson(path))
    finer = Instrument("pm", "YES", "binary", "0.001", "1", "1")
    ok = write_recording(tmp_path, [dump_event(finer),
                                    dump_event(Settlement(YES.id, T0 * NS, "1"))],
                         recording_header(YES), "ok.ndjson")
    assert [type(e) for e in read_ndjson(ok)] == [Instrument, Settlement]
