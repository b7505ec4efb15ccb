"""Historical Kraken bars: the downloadable OHLCVT CSVs and REST OHLC pages -> replayable bars.

Kraken's OHLCVT archive has no header and seven columns
``unix_time_s, open, high, low, close, volume, trade_count`` where the time is
the bar's *open*.  Kraken omits intervals without trades; those gaps are
reported, never filled, so a backtest cannot trade on invented prices.
Bars are stamped at their *close* time (open + interval) so nothing is
visible before it could have been known.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import attrs

from argus_core import Bar, DataError
from argus_venue_kraken.schemas import OhlcRow

_NS = 1_000_000_000


@attrs.frozen
class Gap:
    """Missing bars between two present ones: bars opening in ``[start_ns, end_ns)``."""

    start_ns: int  # open time of the first missing bar
    end_ns: int  # open time of the next present bar
    missing: int


@attrs.frozen
class GapReport:
    """What a loader found: interval, how many bars, and every hole."""

    instrument_id: str
    interval_s: int
    bars: int
    gaps: tuple[Gap, ...]
    duplicates: int = 0
    first_open_ns: int | None = None
    last_open_ns: int | None = None

    @property
    def missing(self) -> int:
        """Total bars missing inside the covered range."""
        return sum(g.missing for g in self.gaps)

    def summary(self) -> str:
        """One line for logs and CLI output."""
        return (f"{self.instrument_id}: {self.bars} bars of {self.interval_s}s, "
                f"{len(self.gaps)} gaps ({self.missing} missing bars), "
                f"{self.duplicates} duplicates dropped")


def _gaps(open_times: Sequence[int], interval_ns: int) -> tuple[Gap, ...]:
    gaps = []
    for prev, cur in pairwise(open_times):
        step = cur - prev
        if step > interval_ns:
            gaps.append(Gap(prev + interval_ns, cur, step // interval_ns - 1))
    return tuple(gaps)


#: The Unix times (seconds) an OHLCVT row may carry: Kraken's files start in 2013.
_FIRST_S, _LAST_S = 631_152_000, 4_102_444_800  # 1990-01-01, 2100-01-01


def _infer_interval_s(path: Path, open_times: Sequence[int]) -> int:
    match = re.search(r"_(\d+)\.csv$", path.name)
    if match:  # Kraken names its files PAIR_<minutes>.csv
        return int(match.group(1)) * 60
    diffs = Counter(b - a for a, b in pairwise(open_times) if b > a)
    if not diffs:
        raise DataError(f"{path}: cannot infer the bar interval (name the file like "
                        f"XBTUSD_60.csv, or give it: `argus kraken-bars --interval 60`)")
    return diffs.most_common(1)[0][0] // _NS


def load_ohlcvt_csv(path: str | Path, instrument_id: str, interval_s: int | None = None
                    ) -> tuple[list[Bar], GapReport]:
    """Load a Kraken OHLCVT CSV into close-stamped bars and a gap report.

    ``interval_s`` defaults to the minutes in Kraken's file name
    (``XBTUSD_60.csv`` -> 3600 s) or the most common spacing.  Rows must be in
    time order; a malformed row raises ``DataError`` naming file and line.
    """
    path = Path(path)
    rows: list[tuple[int, float, float, float, float, float]] = []
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for lineno, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 6:
                raise DataError(f"{path}:{lineno}: expected 7 columns "
                                f"(time, open, high, low, close, volume, trades), got {len(row)}")
            try:
                t = int(float(row[0]))
                o, h, lo, c, v = (float(x) for x in row[1:6])
            except ValueError:
                if lineno == 1:  # tolerate a header line
                    continue
                raise DataError(f"{path}:{lineno}: not a number in {row[:6]}") from None
            except OverflowError:  # int(float("inf")), int(float("1e999"))
                t = -1
            if not _FIRST_S <= t < _LAST_S:  # 1e20 s (or ms) read as a date far from any
                raise DataError(f"{path}:{lineno}: time {row[0]!r} is not a Unix time in "
                                f"seconds between 1990 and 2100")
            rows.append((t * _NS, o, h, lo, c, v))
    if not rows:
        raise DataError(f"{path}: no bars")
    open_times = [r[0] for r in rows]
    interval = interval_s or _infer_interval_s(path, open_times)
    interval_ns = interval * _NS
    bars: list[Bar] = []
    kept: list[int] = []
    duplicates = 0
    for lineno, (t, o, h, lo, c, v) in enumerate(rows, start=1):
        if kept and t <= kept[-1]:
            if t == kept[-1]:
                duplicates += 1
                continue
            raise DataError(f"{path}: row {lineno} goes back in time "
                            f"({t // _NS} after {kept[-1] // _NS}); sort the file")
        try:
            bars.append(Bar(instrument_id, t + interval_ns, o, h, lo, c, v))
        except DataError as exc:
            raise DataError(f"{path}: row {lineno}: {exc}") from None
        kept.append(t)
    report = GapReport(instrument_id, interval, len(bars), _gaps(kept, interval_ns), duplicates,
                       kept[0], kept[-1])
    return bars, report


def bars_from_ohlc_pages(pages: Iterable[Sequence[OhlcRow]], instrument_id: str,
                         interval_s: int, *, now_ns: int | None = None
                         ) -> tuple[list[Bar], GapReport]:
    """Merge REST OHLC pages (overlapping, in any order) into close-stamped bars.

    Kraken's last row of a page is the current, uncommitted bar: a row is kept
    only if it closed by ``now_ns`` or a later row exists, so a bar is never
    stamped before it was complete.
    """
    by_open: dict[int, OhlcRow] = {}
    duplicates = 0
    for page in pages:
        for row in page:
            if row.interval_s != interval_s:
                raise DataError(f"{instrument_id}: OHLC row of {row.interval_s}s in a "
                                f"{interval_s}s series")
            if row.begin_ns in by_open:
                duplicates += 1
            by_open[row.begin_ns] = row  # later pages carry the more final values
    opens = sorted(by_open)
    if opens:
        last = by_open[opens[-1]]
        if now_ns is None or last.close_ns > now_ns:
            opens.pop()
    bars = []
    for t in opens:
        row = by_open[t]
        if row.volume == 0 and row.count == 0 and row.open == 0:
            continue
        bars.append(row.bar(instrument_id))
    interval_ns = interval_s * _NS
    kept = [b.ts_ns - interval_ns for b in bars]
    report = GapReport(instrument_id, interval_s, len(bars), _gaps(kept, interval_ns),
                       duplicates, kept[0] if kept else None, kept[-1] if kept else None)
    return bars, report
