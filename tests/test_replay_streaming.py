"""The replay streams its bars: one bar in memory at a time, errors named by line, the
era's tick and lot found in a first pass that keeps nothing (and is remembered)."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS

from argus_core.builtins import replay_venue
from argus_core.builtins.replay_venue import (
    ReplaySettings,
    ReplayVenue,
    era_rules,
    era_step,
    iter_bars_csv,
    read_bars_csv,
)
from argus_core.errors import DataError


def _write_bars(path: Path, n: int, *, bad_line: int | None = None,
                backwards_at: int | None = None) -> Path:
    lines = []
    for i in range(n):
        ts = 1_400_000_000 + i * 60
        if backwards_at is not None and i == backwards_at:
            ts -= 120
        px = 100 + (i % 50) / 10
        lines.append(f"{ts},{px:.1f},{px + 0.5:.1f},{px - 0.5:.1f},{px:.1f},{i % 7 + 0.125},3")
    if bad_line is not None:
        lines[bad_line - 1] = "1400000000,abc,1,1,1,1,1"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bars_stream_and_a_bad_line_is_named_only_when_reached(tmp_path: Path) -> None:
    path = _write_bars(tmp_path / "bars.csv", 100, bad_line=90)
    bars = iter_bars_csv(path, "replay:X", 60)
    first = next(bars)  # the file is read lazily: the bad line is far ahead
    assert first.ts_ns == (1_400_000_000 + 60) * 10**9
    with pytest.raises(DataError, match=r"bars\.csv:90: malformed bar row"):
        list(bars)


def test_a_bar_out_of_time_order_names_its_line(tmp_path: Path) -> None:
    path = _write_bars(tmp_path / "bars.csv", 50, backwards_at=30)
    with pytest.raises(DataError, match=r"bars\.csv:31: bars are not in strictly increasing"):
        read_bars_csv(path, "replay:X", 60)


def _replay_peak(path: Path) -> int:
    venue = ReplayVenue(ReplaySettings(bars_csv=path, venue="replay", symbol="X/USD",
                                       bar_seconds=60))
    tracemalloc.start()
    try:
        assert venue.instrument.tick_size > 0  # the era pass
        n = sum(1 for _ in venue.events())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n > 0
    return peak


def test_replay_memory_does_not_grow_with_the_number_of_bars(tmp_path: Path) -> None:
    """Peak traced memory of the era pass plus a whole replay: 2,000 bars against 20,000
    (a list of bars would hold ~4 MiB more for the longer file)."""
    small = _replay_peak(_write_bars(tmp_path / "small.csv", 2_000))
    large = _replay_peak(_write_bars(tmp_path / "large.csv", 20_000))
    assert large - small < 1_000_000, (small, large)


def test_era_rules_of_a_stream_equal_the_old_two_list_inference() -> None:
    bars = read_bars_csv(BUNDLED_BARS, "replay:BTC/USD", 3600)
    prices = [v for b in bars for v in (b.open, b.high, b.low, b.close)]
    sizes = [b.volume for b in bars]
    want = (era_step(iter(prices)), era_step(iter(sizes)))
    assert era_rules(iter(bars), "replay:BTC/USD") == want
    assert era_rules(iter(()), "replay:BTC/USD") == (Decimal("1e-8"), Decimal("1e-8"))


def test_the_era_pass_is_remembered_per_file_version(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_bars(tmp_path / "bars.csv", 200)
    passes: list[int] = []
    real = replay_venue.era_rules
    monkeypatch.setattr(replay_venue, "era_rules",
                        lambda events, iid: passes.append(1) or real(events, iid))

    def tick() -> Decimal:
        return ReplayVenue(ReplaySettings(bars_csv=path, symbol="X/USD",
                                          bar_seconds=60)).instrument.tick_size

    assert tick() == tick() == Decimal("0.1") and len(passes) == 1
    _write_bars(path, 200)  # rewritten: a new version (size or mtime) is read again
    path.write_text(path.read_text().replace(",100.0,", ",100.05,", 1))
    assert tick() == Decimal("0.01") and len(passes) == 2


def test_gaps_are_reported_once_per_replay(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = _write_bars(tmp_path / "gappy.csv", 100)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:40] + lines[50:]) + "\n")  # one 10-minute hole
    venue = ReplayVenue(ReplaySettings(bars_csv=path, symbol="X/USD", bar_seconds=60))
    with caplog.at_level("WARNING"):
        assert venue.instrument.tick_size == Decimal("0.1")  # the era pass: silent
        assert sum(1 for _ in venue.events()) == 90
    assert [r.getMessage() for r in caplog.records if "gaps" in r.getMessage()] == [
        f"{path}: 1 gaps in the bar series (missing intervals are not filled)"]
