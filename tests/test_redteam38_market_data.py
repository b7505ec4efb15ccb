"""Red-team round 38 on how the core reads market data for replays: what it found.

1. Bars longer than ``bar_seconds`` replayed silently: a daily file (CBOE's VIX, Yahoo
   or Lean daily bars, converted to unix seconds) under the default ``bar_seconds =
   3600`` stamped each day's bar closed at 01:00, 23 hours before its high, low and
   close were knowable; only "N gaps" was logged.  The replay now refuses a window
   whose first 33 bars all open a multiple of a longer step apart, naming the step.

Attacked and found sound (covered by earlier suites, not repeated here): a BOM, CRLF
and CR line ends, a missing or extra final newline, extra or reordered columns, a
header in other case or with spaces, ms / us / ns stamps, ISO and numeric dates,
duplicate or out-of-order stamps, gaps, short rows, quoted fields, thousands
separators, ``1e-05``, NaN / inf / negative / zero prices, high < low, zero volume,
empty and header-only files, and recordings cut mid-line, damaged, out of order,
concatenated or of another format version.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS
from replay_files import T0, write_csv

from argus_core.bar_runs import BarRun
from argus_core.builtins.replay_venue import ReplaySettings, ReplayVenue, iter_bars_csv
from argus_core.errors import DataError

DAY = 86_400


def _daily(tmp_path: Path, days: int, *, quoted: bool = False) -> Path:
    """Weekday bars (weekends skipped, as an exchange's daily file) opening at 00:00."""
    rows, t = [], T0 - T0 % DAY
    while len(rows) < days:
        if (t // DAY + 4) % 7 < 5:  # Monday .. Friday (1970-01-01 was a Thursday)
            close = f'"{10 + len(rows) % 3}"' if quoted else str(10 + len(rows) % 3)
            rows.append(f"{t},10,13,9,{close},100\n")
        t += DAY
    return write_csv(tmp_path, "time,open,high,low,close,volume\n" + "".join(rows))


def _venue(path: Path, bar_seconds: int | None = None) -> ReplayVenue:
    extra = {} if bar_seconds is None else {"bar_seconds": bar_seconds}
    return ReplayVenue(ReplaySettings(bars_csv=path, tick_size=Decimal("0.01"),
                                      lot_size=Decimal(1), **extra))  # type: ignore[arg-type]


def _bars(items: object) -> list[object]:
    out: list[object] = []
    for item in items:  # type: ignore[attr-defined]
        out += [item.bar(i) for i in range(len(item))] if isinstance(item, BarRun) else [item]
    return out


@pytest.mark.parametrize("quoted", [False, True], ids=["numpy path", "reference path"])
@pytest.mark.parametrize("read", ["events", "runs"])
def test_daily_bars_under_an_hourly_bar_seconds_are_refused(
        tmp_path: Path, quoted: bool, read: str) -> None:
    venue = _venue(_daily(tmp_path, 40, quoted=quoted))  # default bar_seconds = 3600
    with pytest.raises(DataError) as info:
        _bars(getattr(venue, read)())
    message = str(info.value)
    assert "bars.csv: its first 33 bars open 86400 s apart" in message
    assert "never bar_seconds = 3600" in message
    assert "set [plugins.replay] bar_seconds=86400?" in message


def test_daily_bars_under_a_daily_bar_seconds_replay(tmp_path: Path) -> None:
    """Weekends (three days apart) are gaps, not a longer bar."""
    bars = _bars(_venue(_daily(tmp_path, 40), DAY).runs())
    assert len(bars) == 40 and bars[0].ts_ns % (DAY * 10**9) == 0  # type: ignore[attr-defined]


def test_four_hour_bars_under_an_hour_and_forty_minutes_are_refused(tmp_path: Path) -> None:
    """The bar length need not be a multiple of ``bar_seconds`` to be refused."""
    rows = "".join(f"{T0 + 4 * 3600 * i},10,13,9,11,1\n" for i in range(40))
    with pytest.raises(DataError, match="14400 s apart"):
        _bars(_venue(write_csv(tmp_path, rows), 6000).events())


def test_sparse_hourly_bars_still_replay(tmp_path: Path) -> None:
    """Kraken's early hours are mostly gaps (82800, 21600, 10800 s apart...): the steps'
    common divisor is still the hour, so nothing is refused, in any window."""
    if not BUNDLED_BARS.exists():
        pytest.skip("bundled bars absent")
    assert len(_bars(_venue(BUNDLED_BARS).runs())) > 70_000
    rows = [f"{T0 + 3600 * k},10,13,9,11,1\n" for k in (0, 2, 5, 6, 9, 13, 17, 23)]
    assert len(_bars(_venue(write_csv(tmp_path, "".join(rows)), 3600).events())) == 8


def test_a_file_too_short_to_judge_and_looking_readers_are_not_refused(
        tmp_path: Path) -> None:
    """Under 33 bars the length is not judged; a reader that only looks (``warn_gaps``
    off: the era pass, the "nothing replayed" diagnosis) never refuses on it."""
    assert len(_bars(_venue(_daily(tmp_path, 30)).events())) == 30
    path = _daily(tmp_path, 40)
    assert len(list(iter_bars_csv(path, "replay:BTC/USD", 3600, warn_gaps=False))) == 40
