"""Builtin plugin ``replay``: a venue that replays bars from CSV or recorded NDJSON streams.

* ``bars_csv``: Kraken's downloadable OHLCVT format (no header:
  ``unix_time_s, open, high, low, close, volume, trades``; times are bar
  *open* times) or a CSV with a header containing ``timestamp/time, open,
  high, low, close, volume``.  Each bar is emitted stamped with its *close*
  time, the first instant its values are knowable — so no strategy can act on
  a bar before it has finished.  Open times in milliseconds, microseconds or
  nanoseconds are told from seconds by magnitude; a date there is refused by
  its line and column, an ISO one (``2023-01-03T00:00Z``) and a numeric one
  (``20230103``, ``202301031530``, ``20230103153000``: read as unix seconds or
  milliseconds they were bars of 1970, 1976 or 2611) alike, so no time zone or
  daylight-saving rule is ever guessed.  Every row must have as many fields as
  the first bar row (a line cut short, or a thousands separator, would move
  values between columns), and bars may not open closer together than
  ``bar_seconds`` (they would overlap), nor the window's first 33 all further apart
  (daily bars under an hourly ``bar_seconds`` would be stamped closed 23 h early).
  A field that is not a number is named by its line and column; a file that is
  not UTF-8 text (UTF-16 from a spreadsheet) is refused by the line where that shows.
* ``ndjson``: a recording written by ``argus record`` (one serialised market
  event per line); malformed lines fail with the file and line number, so
  does a time (``ts_ns``) that is not an integer of nanoseconds in 0 .. 2**63
  (a float, text, a boolean: serde would truncate or coerce it).  Its
  header (see :mod:`argus_core.recorder`) supplies the recorded instruments and
  their fee schedules, so a replay pays what the recorded venue charged.

Trading rules come from the data's own era, not from today's exchange: unless
``tick_size`` / ``lot_size`` are configured, the tick is the finest decimal step
the replayed prices use (Kraken's 2013 bars quote 162.9811 and 5-decimal prices, so
the tick is 0.00001, not today's 0.1; its 2021 bars give 0.1) and the lot the finest
step of the volumes, at most 8 decimals (aggregated volumes carry float noise beyond
that).  The inference needs enough data to see the finest step: for a handful of
bars, configure the rules.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core.bar_runs import RUN_BARS, BarRun
from argus_core.config import BPS, GRID, NON_NEGATIVE, in_range, optional
from argus_core.errors import ConfigError, DataError
from argus_core.hookspecs import RegisterVenue, hookimpl
from argus_core.interfaces import FeeSchedule, Venue
from argus_core.models import MAX_PRICE, Bar, Instrument, MarketEvent, Trade
from argus_core.recorder import (
    FEES_KEY,
    HEADER_TYPE,
    EventRules,
    RecordingHeader,
    load_fee_schedule,
    not_utf8,
    open_data,
    read_header,
)
from argus_core.serde import load_event, loads_frame, unique_keys

log = logging.getLogger(__name__)


_SECONDS = re.compile(r"[+-]?[0-9]+")


def _to_epoch_s(value: str | int | None) -> int | None:
    """``start`` / ``end``: unix seconds (a TOML integer or text) or an ISO date, read as
    UTC unless it names its own offset (``2022-01-03T00:00+05:00`` is 19:00 UTC)."""
    if value is None or isinstance(value, int):
        return value
    text = value.strip()
    try:  # one sign and ASCII digits ("+-5" and "²" are neither a date nor seconds)
        when = int(text) if _SECONDS.fullmatch(text) else datetime.fromisoformat(text)
    except ValueError:  # (int() of more than 4,300 digits too)
        raise DataError(f"replay: {value!r} is not an ISO date or unix seconds") from None
    return when if isinstance(when, int) else int(
        when.replace(tzinfo=when.tzinfo or UTC).timestamp())


def _when(key: str, value: str | int | None) -> None:
    """``start`` / ``end`` checked where the config is read (a ``ValueError`` there names
    the key ``plugins.replay.<key>``), not when the run first reads them."""
    try:
        _to_epoch_s(value)
    except DataError:
        raise ValueError(f"{key} = {value!r} is not an ISO date (2022-01-03, 2022-01-03T09:30, "
                         f"with an optional +05:00) or unix seconds") from None


@attrs.frozen
class ReplaySettings:
    """``[plugins.replay]``: what to replay and the venue's trading rules and fees."""

    bars_csv: Path | None = None
    ndjson: Path | None = None
    venue: str = "replay"
    symbol: str = "BTC/USD"
    bar_seconds: int = attrs.field(default=3600, validator=in_range(1, 366 * 86_400))
    # ISO date or unix seconds (bar open time): start inclusive, end exclusive
    start: str | None = attrs.field(default=None, validator=lambda _s, a, v: _when(a.name, v))
    end: str | None = attrs.field(default=None, validator=lambda _s, a, v: _when(a.name, v))
    # None: inferred from the replayed prices' (volumes') decimals
    tick_size: Decimal | None = attrs.field(default=None, validator=optional(GRID))
    lot_size: Decimal | None = attrs.field(default=None, validator=optional(GRID))
    min_size: Decimal = attrs.field(default=Decimal("0.0001"), validator=NON_NEGATIVE)
    maker_bps: Decimal = attrs.field(default=Decimal("25"), validator=BPS)  # Kraken base tier
    taker_bps: Decimal = attrs.field(default=Decimal("40"), validator=BPS)

    def __attrs_post_init__(self) -> None:
        if self.bars_csv is not None and self.ndjson is not None:
            raise ValueError("set only one of bars_csv or ndjson")


#: Header names :func:`iter_bars_csv` accepts for the bar's open time (unix seconds).
TIME_COLUMNS = ("timestamp", "time", "unix_time_s", "ts")

#: Open times at or above these magnitudes are milliseconds, microseconds, nanoseconds
#: (1e11 s is the year 5138, 1e11 ms 1973): exchanges export all four (Binance klines
#: in ms, since 2025 in us).  Each value is read by its own magnitude.
_MS, _US, _NS, _TOO_BIG = 1e11, 1e14, 1e17, 1e20
_NS_ROOM = 2**63 // 10**9  # open times (s) whose close in ns fits int64


def _time_s(text: str) -> int:
    """A time column's text as unix seconds (truncated toward zero, as ``int(float)``);
    seconds, ms, us or ns by magnitude.  ``ValueError`` / ``OverflowError`` when it is
    not a finite number in range."""
    value = float(text)
    size = abs(value)
    # Toward zero, but a time before 1970 stays before it (-0.5 is refused, not 1970).
    whole: Callable[[float], int] = int if value >= 0 else math.floor
    if size < _MS:
        return whole(value)
    if size < _NS:
        return whole(value / (1e3 if size < _US else 1e6))  # as the numpy path computes it
    if size < _TOO_BIG:
        digits = text.strip()
        # Nanoseconds lie beyond a float's 53 bits: an integer is divided exactly.
        return int(digits) // 10**9 if digits.lstrip("+-").isdigit() else whole(value / 1e9)
    raise ValueError(text)


#: A time field written as a date in digits: yyyymmdd, yyyymmddHHMM or yyyymmddHHMMSS.
_DATE_DIGITS = re.compile(r"\s*((?:19|20)\d{6}(?:\d{4}(?:\d{2})?)?)(?:\.0*)?\s*")
_DATE_LAYOUTS = {8: ("%Y%m%d", "yyyymmdd"), 12: ("%Y%m%d%H%M", "yyyymmddHHMM"),
                 14: ("%Y%m%d%H%M%S", "yyyymmddHHMMSS")}
#: The magnitudes such dates of the years 1900-2099 have (half-open): the numpy path
#: sends a batch with one of these to the reference path, which tells dates apart.
_DATE_RANGES = [(19000101 * 10**(n - 8), 21000101 * 10**(n - 8)) for n in _DATE_LAYOUTS]


def _numeric_date(text: str) -> str | None:
    """The layout (``yyyymmdd``...) when ``text`` is a valid date of 1900-2099 written
    in digits, else None.  As unix seconds ``20230103`` is 1970-08-23 and, as
    milliseconds, ``20230103153000`` the year 2611: a date is never a time stamp."""
    match = _DATE_DIGITS.fullmatch(text)  # the years 1900-2099
    fmt, layout = _DATE_LAYOUTS[len(match.group(1))] if match else ("", "")
    # Digits that are no date (month 13) are unix seconds as before.
    return layout if match and _reads(lambda t: datetime.strptime(t, fmt), match.group(1)) \
        else None


def _hour_digits_hint(ts_s: int) -> str:
    """A hint when the open time ``ts_s`` is also a date written yyyymmddHH: that layout
    is the Unix seconds of 2030-2036, so it is not guessed, but its hours lie 1 s apart."""
    try:  # the years 1900-2099 written in ten digits
        when = datetime.strptime(str(ts_s), "%Y%m%d%H") if 19e8 <= ts_s < 21e8 else None
    except ValueError:
        when = None
    return "" if when is None else (
        f"; {ts_s} is read as unix seconds: if it is {when:%Y-%m-%d %H}:00 written as "
        f"yyyymmddHH, convert the times to unix seconds (UTC)")


def _is_header(fields: list[str]) -> bool:
    """Whether the first line names columns: a field with a letter that is neither a
    number (``nan``, ``inf``, ``1e-3``: data a later check refuses or reads) nor a date
    (a date where unix seconds belong is refused by its line, not as a bad header); a
    field without letters (``1,000.5``) is malformed data, refused by its line."""
    return any(any(c.isalpha() for c in f) and not _reads(float, f.strip()) and
               not _reads(datetime.fromisoformat, f.strip().rstrip("Zz")) for f in fields)


def _reads(parse: Callable[[str], object], text: str) -> bool:
    """Whether ``parse`` reads ``text`` (a number, a date, unix seconds)."""
    try:
        parse(text)
    except (ValueError, OverflowError):
        return False
    return True


def count_bars_csv(path: Path, start_s: int | None = None, end_s: int | None = None) -> int:
    """How many bars :func:`iter_bars_csv` yields in the window, from the time column alone
    (a quick pass for a progress bar's total; bad lines are skipped here, refused there)."""
    n = 0
    with open_data(path, "bars", newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(itertools.chain.from_iterable(_narrow_batches(fh)))
        try:
            first = next(reader, [])
            ts_col = next((i for i, h in enumerate(first) if h.strip(' "').lower() in
                           TIME_COLUMNS), 0) if _is_header(first) else 0
            for row in reader if _is_header(first) else itertools.chain([first], reader):
                try:
                    ts_s = _time_s(row[ts_col])
                except (ValueError, IndexError, OverflowError):
                    continue
                # (a time out of range is refused there: _time_refused)
                n += 0 <= ts_s < _NS_ROOM and (start_s is None or ts_s >= start_s) and (
                    end_s is None or ts_s < end_s)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: {not_utf8(exc)}") from None
        except csv.Error as exc:  # a field past the csv module's limit (128 KiB)
            raise DataError(f"{path}:{reader.line_num}: {_not_csv(exc)}") from None
    return n


def _not_csv(exc: csv.Error) -> str:
    return f"not a CSV row of bars ({exc})"


#: The most commas a line may hold before the csv module splits it: a bar row has six, a
#: header a few dozen.  More is no row (lines joined by a separator that is no line break,
#: ``\x1e`` or a form feed), and splitting made millions of fields of it before the
#: refusal: 17 times the file's size in memory.
_MAX_COMMAS = 1 << 12
_TOO_WIDE = (f"over {_MAX_COMMAS:,} fields: no bar row (lines joined by a separator other "
             f"than a line break, such as a form feed or \\x1e?)")


def _narrow_batches(fh: Any) -> Iterator[list[str]]:
    """``fh``'s lines in batches, a line too wide to split left out (the replay refuses
    it; only a batch's last line can be that long: readlines stops after it)."""
    while lines := fh.readlines(_BATCH_BYTES):
        if lines[-1].count(",") > _MAX_COMMAS:
            lines.pop()
        yield lines


def _shown(row: list[str]) -> str:
    """``row`` for an error message, cut short (a wrong row may hold thousands of fields)."""
    text = repr(row)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(row)} fields)"


def _csv_row(line: str, path: Path, lineno: int) -> list[str]:
    """One line's fields through the csv module (the reference parser); DataError naming
    the line for what it cannot read (a field longer than its limit: a 2 MB line)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        raise DataError(f"{path}:{lineno}: {_not_csv(exc)}") from None


def _time_refused(ts_s: int, bar_seconds: int) -> str:
    """Why the open time ``ts_s`` (unix seconds) cannot be replayed; empty when it can:
    before 1970 (a time goes backwards from there, and no exchange's data is that old),
    or a close in nanoseconds past int64 (the year 2262), as a recording's ``ts_ns``."""
    if ts_s < 0:
        return (f"open time {ts_s} is negative (before 1970): the time column holds unix "
                f"seconds (or ms, us, ns) since 1970-01-01 UTC")
    if (ts_s + bar_seconds) * 10**9 >= 2**63:
        return (f"open time {ts_s} s is past the year 2262: its close in nanoseconds does "
                f"not fit 2**63 (the time column holds unix seconds, or ms, us, ns)")
    return ""


def _columns(path: Path, header: list[str]) -> tuple[int, ...]:
    """The indices of (time, open, high, low, close, volume) a header names; DataError
    when one is missing or the time is named twice (which one would it be?)."""
    names = [h.strip(' "').lower() for h in header]  # stray spaces and quotes dropped
    times = [i for i, h in enumerate(names) if h in TIME_COLUMNS]
    if len(times) > 1:
        raise DataError(f"{path}:1: the header names {len(times)} time columns "
                        f"({', '.join(header[i].strip() for i in times)}): keep one")
    for role in _ROLES[1:]:  # two columns "open": which one holds the bar's open?
        where = [str(i + 1) for i, h in enumerate(names) if h == role]
        if len(where) > 1:
            raise DataError(f"{path}:1: the header names the column {role!r} {len(where)} "
                            f"times (columns {', '.join(where)}): keep one")
    try:
        return (times[0], *(names.index(h) for h in _ROLES[1:]))
    except (IndexError, ValueError):
        # A row of numbers with one odd field (0x10) is read as a header: say both.
        odd = [h for h in header if _what_is_wrong([h], (0,), ("open",))]
        row = f" (or, as a bar row, {odd} are not numbers)" if len(odd) < len(header) else ""
        raise DataError(f"{path}:1: header must name timestamp/time, open, high, low, "
                        f"close and volume; got {names}{row}") from None


def _longer_bars(head: list[int], stamps: Iterable[int], bar_seconds: int, path: Path) -> bool:
    """Add close times (ns) to ``head`` up to the window's first 33 bars, then refuse them
    all a multiple of a step longer than ``bar_seconds`` apart: daily bars under the
    default 3600 were each stamped closed 23 h before they closed, and only "gaps" were
    logged.  (Kraken's sparse early hours step 3600 within any 16 bars.)  Whether to go
    on judging."""
    head.extend(itertools.islice(stamps, 33 - len(head)))
    apart = math.gcd(*(b - a for a, b in itertools.pairwise(head))) // 10**9
    if len(head) == 33 and apart > bar_seconds:
        raise DataError(f"{path}: its first 33 bars open {apart} s apart or a multiple of "
                        f"that, never bar_seconds = {bar_seconds}: each would be stamped closed "
                        f"{apart - bar_seconds} s early; set [plugins.replay] bar_seconds={apart}?")
    return len(head) < 33


def read_bars_csv(path: Path, instrument_id: str, bar_seconds: int,
                  start_s: int | None = None, end_s: int | None = None) -> list[Bar]:
    """Every bar of an OHLCVT CSV (see :func:`iter_bars_csv`) as a list."""
    return list(iter_bars_csv(path, instrument_id, bar_seconds, start_s, end_s))


def iter_bars_csv(path: Path, instrument_id: str, bar_seconds: int,
                  start_s: int | None = None, end_s: int | None = None, *,
                  warn_gaps: bool = True, era: bool = False) -> Iterator[Bar]:
    """Parse an OHLCVT CSV into bars stamped at their close time (:func:`iter_bar_runs_csv`
    without runs: every bar a :class:`Bar`)."""
    yield from iter_bar_runs_csv(  # type: ignore[misc]  # runs=False: bars only
        path, instrument_id, bar_seconds, start_s, end_s, warn_gaps=warn_gaps, era=era,
        runs=False)


def iter_bar_runs_csv(path: Path, instrument_id: str, bar_seconds: int,
                      start_s: int | None = None, end_s: int | None = None, *,
                      warn_gaps: bool = True, era: bool = False, runs: bool = True
                      ) -> Iterator[Bar | BarRun]:
    """Parse an OHLCVT CSV into bars stamped at their close time, one at a time (memory
    stays flat in the number of bars); ``DataError`` names the line, including a bar out
    of time order and a row whose number of fields differs from the first bar row's;
    the number of gaps is logged once the file is read, and bars all further apart than
    ``bar_seconds`` are refused (:func:`_longer_bars`; ``warn_gaps``: the replay's first
    pass, and readers that only look, leave both to the replay).  ``runs``: a batch of
    plain numeric lines that passes every check at once comes as columns (a
    :class:`BarRun` of up to ``RUN_BARS`` bars, made into bars only where asked); any
    other batch bar by bar, the bars before a bad line first.  The time column holds unix seconds,
    or milliseconds / microseconds / nanoseconds (told apart by magnitude).  ``era``: only
    the bars that decide :func:`era_rules` (:func:`_era_picks`; the replay's first pass)."""
    try:
        with open_data(path, "bars", newline="", encoding="utf-8-sig") as fh:
            first = fh.readline(1 << 16)  # a piece: not the whole file, were it one line
            if first.count(",") <= _MAX_COMMAS and not first.endswith(("\n", "\r")):
                first += fh.readline()  # the rest of a long line (a field past csv's limit)
            if first.count(",") > _MAX_COMMAS:
                raise DataError(f"{path}:1: {_TOO_WIDE}")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:1: {not_utf8(exc)}") from None
    has_header = _is_header(_csv_row(first, path, 1))
    last_ts, gaps, step = -1, 0, bar_seconds * 10**9
    # The window's first close times (_longer_bars; the era pass skips bars)
    head, judging = list[int](), warn_gaps and not era
    window = (-np.inf if start_s is None else start_s, np.inf if end_s is None else end_s)
    with open_data(path, "bars", newline="", encoding="utf-8-sig") as fh:
        if has_header:
            header = _csv_row(fh.readline(), path, 1)
            cols, lineno = _columns(path, header), 2
            widest = (len(header), f"the {len(header)} the header names")
        else:
            cols, lineno = (0, 1, 2, 3, 4, 5), 1
            widest = (7, "the 7 a bar file without a header has at most (time, open, high, "
                         "low, close, volume and Kraken's trades)")
        pick = functools.partial(_era_picks, cols=cols, window=window, bar_seconds=bar_seconds,
                                 most=[0, 0]) if era else None
        columns: list[tuple[np.ndarray, np.ndarray]] = []  # checked, not yet yielded
        for first_line, rows, fast in _numeric_rows(fh, cols, lineno, path, widest, pick):
            checked = _checked(fast, cols, window, bar_seconds, last_ts) \
                if runs and fast is not None else None
            if checked is not None:
                stamps, table, new_gaps = checked
                judging = judging and _longer_bars(head, stamps.tolist(), bar_seconds, path)
                if columns and sum(len(c[0]) for c in columns) + len(stamps) > RUN_BARS:
                    yield _run_of(instrument_id, columns)
                    columns = []
                if len(stamps):
                    columns.append((stamps, table))
                    gaps, last_ts = gaps + new_gaps, int(stamps[-1])
                continue
            if columns:
                yield _run_of(instrument_id, columns)
                columns = []
            for lineno, row in enumerate(rows, start=first_line):
                if row is None:
                    continue  # a blank line
                ts_s, o, h, lo, c, v = row
                if (why := _time_refused(ts_s, bar_seconds)):  # in the window or not
                    raise DataError(f"{path}:{lineno}: {why}")
                if not window[0] <= ts_s < window[1]:
                    continue
                ts_ns = (ts_s + bar_seconds) * 10**9
                if ts_ns <= last_ts:
                    raise DataError(f"{path}:{lineno}: bars are not in strictly increasing "
                                    f"time order")
                if ts_ns - last_ts < step and last_ts >= 0:
                    # Stamped bar_seconds after its open, such a bar would be stamped after
                    # the next one opened: its fills would take later prices.
                    raise DataError(
                        f"{path}:{lineno}: this bar opened {(ts_ns - last_ts) / 1e9:g} s after "
                        f"the previous one, under bar_seconds = {bar_seconds}: the bars would "
                        f"overlap (set [plugins.replay] bar_seconds to the file's bar length)"
                        + _hour_digits_hint(ts_s))
                gaps += last_ts >= 0 and ts_ns - last_ts > step
                last_ts = ts_ns
                judging = judging and _longer_bars(head, (ts_ns,), bar_seconds, path)
                try:
                    yield Bar(instrument_id, ts_ns, o, h, lo, c, v)
                except DataError as exc:
                    raise DataError(f"{path}:{lineno}: {exc}") from None
        if columns:
            yield _run_of(instrument_id, columns)
    if gaps and warn_gaps:
        log.warning("%s: %d gaps in the bar series (missing intervals are not filled)", path,
                    gaps)
    if last_ts < 0 and warn_gaps:
        # An empty file, a header alone or a window past the data: a backtest of nothing
        # would otherwise report a flat equity line as if it had run.
        span = "" if start_s is None and end_s is None else \
            f" in the window [{start_s}, {end_s}) (unix seconds)"
        log.warning("%s: no bars%s: nothing to replay", path, span)


_Row = tuple[int, float, float, float, float, float]
_Fast = tuple[np.ndarray, np.ndarray]
#: Lines parsed per batch: ~32 KiB of text (~800 bars), so memory stays flat and small (a
#: streaming replay's peak doubled with batches four times larger, for 5 ms on 70k bars).
_BATCH_BYTES = 1 << 15


def _numeric_rows(fh: Any, cols: tuple[int, ...], lineno: int, path: Path,
                  widest: tuple[int, str],
                  pick: Callable[[list[str], _Fast], set[int] | None] | None = None
                  ) -> Iterator[tuple[int, Iterable[_Row | None], _Fast | None]]:
    """``(number of the batch's first line, its rows, its numpy table or None)``: each
    row ``(open time s, open, high, low, close, volume)``, a blank line as None (the
    table: of a plain numeric batch, except on the era pass).  A batch of plain numeric
    lines is parsed by numpy in C (the csv module plus six ``float()`` calls a row were
    most of a replay's reading); anything else in a batch (quotes, blank lines, a ragged
    or malformed row, a non-finite value, a row as wide as the first bar row's but not
    the file's first) sends that batch through :func:`_parsed_row`, the reference
    path, which accepts or refuses it with the line's number.  ``pick`` (the era pass,
    :func:`_era_picks`): of a numeric batch only the rows it picks, the others as None.
    ``widest``: the most fields a row may have, and what says so (for the error)."""
    width = 0  # fields of the file's first bar row: every row must have as many
    while True:
        try:
            lines = fh.readlines(_BATCH_BYTES)
        except UnicodeDecodeError as exc:  # named by the batch: ~800 lines at most
            raise DataError(f"{path}:{lineno}: at or after this line: {not_utf8(exc)}"
                            ) from None
        # Only the last line can pass _BATCH_BYTES (readlines stops there), so only it
        # can be too wide: refused after the lines before it, unsplit.
        if too_wide := bool(lines) and lines[-1].count(",") > _MAX_COMMAS:
            lines.pop()
        if not lines:
            if too_wide:
                raise DataError(f"{path}:{lineno}: {_TOO_WIDE}")
            return
        if not width:
            rows_read = csv.reader(lines)
            try:
                first = next((row for row in rows_read if "".join(row).strip()), [])
            except csv.Error as exc:
                raise DataError(f"{path}:{lineno + rows_read.line_num - 1}: {_not_csv(exc)}"
                                ) from None
            width = filled = len(first)
            while filled and not first[filled - 1].strip():  # a trailing comma says nothing
                filled -= 1
            if filled > widest[0]:  # fields no column names: lines joined by a form feed?
                raise DataError(f"{path}:{lineno + rows_read.line_num - 1}: {filled} fields "
                                f"in a bar row, more than {widest[1]} (lines joined by a "
                                f"separator other than a line break, such as a form feed?)")
        fast = _fast_batch(lines, cols) if lines[0].count(",") + 1 == width > max(cols) \
            else None
        if fast is None:  # lazily: the bars before a bad line are replayed first
            rows: Iterable[_Row | None] = (_parsed_row(line, cols, n, path, width)
                                           for n, line in enumerate(lines, start=lineno))
        else:  # lazily too: a batch the caller takes as columns never makes its rows
            rows = (row for t, table in [fast] for row in zip(
                t.tolist(), *(table[:, i].tolist() for i in cols[1:]), strict=True))
        if pick and fast and (picks := pick(lines, fast)) is not None:
            rows = (row if i in picks else None for i, row in enumerate(rows))
        yield lineno, rows, None if pick else fast
        lineno += len(lines)
        if too_wide:
            raise DataError(f"{path}:{lineno}: {_TOO_WIDE}")


def _checked(fast: _Fast, cols: tuple[int, ...], window: tuple[float, float], bar_seconds: int,
             last_ts: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A numeric batch's bars in the window as (close times in ns, their open, high, low,
    close and volume columns, the gaps before and among them), when every check the bar
    by bar path makes passes at once (time order, no overlap, the :class:`Bar`'s own);
    None sends the batch bar by bar, which names the line that fails."""
    stamps, table = fast
    if len(stamps) and (stamps.min() < 0 or stamps.max() >= _NS_ROOM - bar_seconds):
        return None  # before 1970, or nanoseconds past int64: the per-bar path refuses
    keep = (stamps >= window[0]) & (stamps < window[1])
    if not keep.all():  # (views of the whole batch otherwise: no copies)
        stamps, table = stamps[keep], table[keep]
    ts = (stamps + bar_seconds) * 10**9
    o, h, lo, c, v = (table[:, col] for col in cols[1:])
    steps = np.diff(ts, prepend=last_ts) if last_ts >= 0 else np.diff(ts)
    step = bar_seconds * 10**9
    if (steps < step).any() or not ((lo > 0) & (lo <= o) & (o <= h) & (h <= MAX_PRICE)
                                    & (lo <= c) & (c <= h) & (v >= 0) & (v < np.inf)).all():
        return None
    return ts, table[:, list(cols[1:])], int((steps > step).sum())


def _run_of(instrument_id: str, columns: list[tuple[np.ndarray, np.ndarray]]) -> Bar | BarRun:
    """Checked batches as one run (a lone bar as itself)."""
    stamps, table = (np.concatenate(parts) for parts in zip(*columns, strict=True))
    run = BarRun.of_columns(instrument_id, stamps, table)
    return run.bar(0) if len(run) == 1 else run


def _fast_batch(lines: list[str], cols: tuple[int, ...]) -> _Fast | None:
    """The batch parsed by ``numpy.loadtxt`` (in C, with ``float()``'s number syntax):
    (open times in unix seconds, the table of every field), or None when any line is
    not plainly numeric with the first line's number of fields (the caller falls back
    to the reference path, which accepts or refuses it line by line)."""
    try:
        # loadtxt refuses a row of another width (a short line beside a long one would
        # otherwise shift every value between them into the wrong column), an empty or
        # non-numeric field; comments=None: a '#' is no comment here.
        table = np.loadtxt(lines, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        return None
    stamps = table[:, cols[0]]
    if (stamps < 0).any():
        return None  # before 1970: the reference path refuses it (-0.5 would truncate to 0)
    size, text = np.abs(stamps), "".join(lines)
    # loadtxt reads "\x1c5" as 5 (float() refuses it: of every character, only these
    # four separators are blanks to one and not the other)
    if len(table) < len(lines) or not np.isfinite(table[:, list(cols)]).all() \
            or (size >= _NS).any() or any(sep in text for sep in "\x1c\x1d\x1e\x1f"):
        return None  # a blank line (loadtxt skips it), NaN or inf, ns: the reference path
    if any(((stamps >= lo) & (stamps < hi)).any() for lo, hi in _DATE_RANGES):
        return None  # maybe a date in digits: the reference path tells (and refuses)
    # _time_s as the reference path computes it: seconds, ms or us by magnitude, the
    # same float division, truncation toward zero.
    if (size >= _MS).any():
        stamps = stamps / np.where(size < _MS, 1.0, np.where(size < _US, 1e3, 1e6))
    return stamps.astype(np.int64), table


_ROLES = ("time", "open", "high", "low", "close", "volume")


def _parsed_row(line: str, cols: tuple[int, ...], lineno: int, path: Path,
                width: int) -> _Row | None:
    """One line through the csv module (the reference parser); None for a blank line.
    A row of another number of fields than ``width`` (the first bar row's) is refused:
    a line cut short, or a thousands separator that moved every value a column.  A
    field that is not a number, or a time written as a date, is refused naming its
    line and column."""
    row = _csv_row(line, path, lineno)
    t_i, o_i, h_i, l_i, c_i, v_i = cols
    if len(row) == width and len(row) > t_i:
        layout = _numeric_date(row[t_i])
        if layout is not None:
            raise DataError(f"{path}:{lineno}: column {t_i + 1} (time) holds {row[t_i]!r}, "
                            f"a date written as {layout}, not unix seconds: convert it to "
                            f"unix seconds (UTC); the replay guesses no time zone")
    try:
        if len(row) != width:
            raise ValueError(row)
        return (_time_s(row[t_i]), float(row[o_i]), float(row[h_i]), float(row[l_i]),
                float(row[c_i]), float(row[v_i]))
    except (ValueError, IndexError, OverflowError):  # Overflow: an infinite open time
        if not "".join(row).strip():
            return None
        if len(row) != width:
            raise DataError(f"{path}:{lineno}: {len(row)} fields where the first bar row "
                            f"has {width} (a line cut short, or a comma inside a number?): "
                            f"{_shown(row)}") from None
        raise DataError(f"{path}:{lineno}: malformed bar row {_shown(row)}"
                        f"{_what_is_wrong(row, cols)}") from None


def _what_is_wrong(row: list[str], cols: tuple[int, ...], roles: Sequence[str] = _ROLES
                   ) -> str:
    """`` (column N (role) = text: why)`` for the first field of ``row`` that cannot be
    read, with a hint for the usual culprits (a date, another separator, a thousands
    separator); empty when every field reads."""
    for col, role in zip(cols, roles, strict=True):
        text = row[col] if col < len(row) else ""
        if _reads(_time_s if role == "time" else float, text):
            continue
        why = next((hint for chars, only, hint in _HINTS if role in only and
                    any(c in text for c in chars)),
                   "not unix seconds" if role == "time" else "not a number")
        return f" (column {col + 1} ({role}) = {text!r}: {why})"
    return ""


#: (any of these characters, in these roles, the likely cause) for a field that fails.
_HINTS = ((";\t", _ROLES, "the fields are separated by ';' or a tab; a CSV uses ','"),
          (",", _ROLES, "a thousands separator or a decimal comma; write 1000.5"),
          ("-:T/", ("time",), "the time column holds unix seconds, not a date"))


#: era_rules per (file, size, mtime, instrument, bar seconds, window), for this process.
_ERA_CACHE: dict[tuple[object, ...], tuple[Decimal, Decimal]] = {}

#: The finest steps inferred: beyond 8 decimals a price or volume is float noise, not a rule.
MAX_DECIMALS = 8


def decimals(value: float) -> int:
    """Decimal places of ``value`` as written (its shortest repr; trailing zeros dropped)."""
    text = repr(value)
    if "e" in text:  # 1e-05 (repr writes no "E"; inf and nan have no "e")
        return max(0, -int(Decimal(text).normalize().as_tuple().exponent))
    return len(text.partition(".")[2].rstrip("0"))


def era_step(values: Iterator[float]) -> Decimal:
    """``10**-d`` for the most decimals ``d`` any value uses (capped at MAX_DECIMALS)."""
    return Decimal(1).scaleb(-min(max(map(decimals, values), default=0), MAX_DECIMALS))


def era_rules(events: Iterable[MarketEvent], instrument_id: str) -> tuple[Decimal, Decimal]:
    """``(tick, lot)`` the replayed data itself shows for ``instrument_id``: the finest
    decimal step of its prices (bars' OHLC, trades) and of its volumes / trade sizes.
    One pass, nothing kept: ``events`` may be a stream."""
    prices = sizes = -1  # the most decimals seen (-1: nothing seen)
    for ev in events:
        if type(ev) is Bar and ev.instrument_id == instrument_id:
            p: tuple[float, ...] = (ev.open, ev.high, ev.low, ev.close)
            q = ev.volume
        elif type(ev) is Trade and ev.instrument_id == instrument_id:
            p, q = (float(ev.price),), float(ev.size)
        else:
            continue
        prices, sizes = max(prices, *map(decimals, p)), max(sizes, decimals(q))
        if prices >= MAX_DECIMALS and sizes >= MAX_DECIMALS:
            break
    tick, lot = (Decimal(1).scaleb(-min(d, MAX_DECIMALS)) for d in (prices, sizes))
    # Nothing seen, nothing to learn from: no rounding
    return (tick, lot) if prices >= 0 else (Decimal("1e-8"), Decimal("1e-8"))


#: In a batch's prices or volumes, a character that makes a cell more than digits and a dot
#: (numpy reads no second dot): a sign, a space, an exponent (Kraken's volumes have
#: ``1E+1``).  That batch's bars then decide by their floats.
_ODD = re.compile(r"[^0-9.,]")
#: ``_FINER[m]`` finds a cell with more than ``m`` decimals (a non-zero digit past the m-th).
_FINER = [re.compile(rf"\.[0-9]{{{m}}}[0-9]*[1-9]") for m in range(MAX_DECIMALS)]


def _era_picks(lines: list[str], fast: _Fast, cols: tuple[int, ...], window: tuple[float, float],
               bar_seconds: int, most: list[int]) -> set[int] | None:
    """The rows of a batch of plain numbers that decide :func:`era_rules` (``most``: the
    decimals found so far, prices and volumes): its first and last bars in the window and
    the earliest with more decimals than any before, found in the numbers' text.  A cell
    of digits and a dot with at most 15 significant digits has the decimals it is written
    with (its float's repr is the same number: a double keeps 15 digits); a longer one
    may round to fewer, never more, so a row it picks is checked by its float.  None
    (every row, bar by bar) for a batch with an odd cell or a bar iter_bars_csv refuses."""
    keep = (fast[0] >= window[0]) & (fast[0] < window[1])
    times, rows = fast[0][keep], fast[1][keep][:, list(cols[1:])]
    o, h, low, c, v = rows.T
    # In bulk what iter_bars_csv checks bar by bar: time order, no overlap, Bar's rules
    if (np.diff(times) < bar_seconds).any() or not (
            (low > 0) & (low <= o) & (o <= h) & (low <= c) & (c <= h) & (v >= 0)).all():
        return None
    index, width = np.flatnonzero(keep).tolist(), lines[0].count(",") + 1
    cells = ",".join(itertools.compress(lines, keep.tolist())).replace("\r", "").replace(
        "\n", "").split(",")
    picks = set(index[:1] + index[-1:])  # the last: the next batch's order is checked on it
    for j, roles in enumerate(((0, 1, 2, 3), (4,)) if index else ()):
        # row by row: the first cell found is the earliest bar's
        text = ",".join(itertools.chain.from_iterable(
            zip(*(cells[cols[1 + r]::width] for r in roles), strict=True)))
        if _ODD.search(text):
            return None
        while most[j] < MAX_DECIMALS and (hit := _FINER[most[j]].search(text)):
            row, role = divmod(text.count(",", 0, hit.start()), len(roles))
            if decimals(float(rows[row, roles[role]])) <= most[j]:
                return None  # over 15 digits, rounded: the floats decide
            most[j] += 1
            picks.add(index[row])
    return picks


def read_ndjson(path: Path, fees: dict[str, FeeSchedule] | None = None
                ) -> Iterator[MarketEvent]:
    """Yield the events of a recording (not its header), failing with the file and line
    on bad data.  The fee schedule of an instrument listed mid-recording goes into
    ``fees`` (by instrument id) before the instrument is yielded."""
    with open_data(path, "recording", encoding="utf-8-sig") as fh:
        lineno, first, rules = 0, True, EventRules()
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    # a line nested 100,000 deep, a key named twice: refused
                    data = loads_frame(line, object_pairs_hook=unique_keys)
                except json.JSONDecodeError as exc:
                    if not line.endswith("\n"):  # the file's last line, its write cut short
                        log.warning("%s:%d: the last line is cut short (a recording stopped "
                                    "mid-write): read up to the line before", path, lineno)
                        return
                    raise DataError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
                if first and isinstance(data, dict) and data.get("type") == HEADER_TYPE:
                    first, rules = False, EventRules(_header_kinds(data))
                    continue  # instruments and fees: read_header
                first = False
                raw = data.get("ts_ns", 0) if isinstance(data, dict) else 0
                # serde would truncate 1.7e18 (a float has lost the last digits) and read
                # "10" or True as times; past 2**63 a time overflows the ledger.
                if type(raw) is not int or not 0 <= raw < 2**63:
                    raise DataError(f"{path}:{lineno}: ts_ns = {raw!r} is not an integer of "
                                    f"nanoseconds in 0 .. 2**63")
                entry = data.pop(FEES_KEY, None) if isinstance(data, dict) and \
                    data.get("type") == "instrument" else None
                event = load_event(data, where=f"{path}:{lineno}")
                if isinstance(event, Instrument) and entry is not None:
                    # checked on every pass, kept where asked
                    schedule = load_fee_schedule(entry, where=f"{path}:{lineno}")
                    if fees is not None:
                        fees[event.id] = schedule
                ts = getattr(event, "ts_ns", None)
                if (why := rules.refusal(event, ts, str(data.get("type")))) is not None:
                    raise DataError(f"{path}:{lineno}: {why}")
                rules.accept(event, ts)
                yield event
        except UnicodeDecodeError as exc:  # text is decoded in chunks: at or after the line
            raise DataError(f"{path}:{lineno + 1}: at or after this line: {not_utf8(exc)}"
                            ) from None


def _header_kinds(header: dict[str, Any]) -> dict[str, str]:
    """Instrument id -> kind of a recording header's instruments (what reads; the header
    itself is checked by :func:`~argus_core.recorder.read_header`)."""
    listed = header.get("instruments")
    return {f"{i['venue']}:{i['symbol']}": i.get("kind", "spot")
            for i in listed if isinstance(i, dict) and isinstance(i.get("venue"), str)
            and isinstance(i.get("symbol"), str) and isinstance(i.get("kind", ""), str)
            } if isinstance(listed, list) else {}


class ReplayVenue(Venue):
    """Replays bars or a recording in time order; the simulated clock follows the events.

    Serves a recording's own instruments and fee schedules when it has a header, else
    one configured instrument whose tick and lot are the data's era's (see the module
    docstring) and the configured maker/taker fees.
    """

    name = "replay"
    replays_recording = True

    def __init__(self, settings: ReplaySettings | None) -> None:
        if settings is None or (settings.bars_csv is None and settings.ndjson is None):
            raise ConfigError("the replay venue needs [plugins.replay] bars_csv = \"FILE.csv\" "
                              "or ndjson = \"FILE.ndjson\"")
        self.s = settings
        self.instrument_id = f"{settings.venue}:{settings.symbol}"
        self._instrument: Instrument | None = None
        self._header = read_header(settings.ndjson) if settings.ndjson else None
        # The settings are frozen: one schedule serves every fill (the broker asks per fill).
        self._fees = FeeSchedule(settings.maker_bps, settings.taker_bps)
        #: instruments listed mid-recording: their recorded schedules (read as they come)
        self._listed_fees: dict[str, FeeSchedule] = {}

    @property
    def header(self) -> RecordingHeader | None:
        """The recording's header (instruments, fee schedules), if it has one."""
        return self._header

    @property
    def instrument(self) -> Instrument:
        """The configured instrument, with the data's era's tick and lot unless configured."""
        if self._instrument is None:
            s = self.s
            tick, lot = s.tick_size, s.lot_size
            if tick is None or lot is None:
                era_tick, era_lot = self._era_rules()
                tick, lot = tick or era_tick, lot or era_lot
                log.info("replay %s: tick %s, lot %s (%s)", self.instrument_id, tick, lot,
                         "inferred from the data" if s.tick_size is None else "configured")
            self._instrument = Instrument(s.venue, s.symbol, "spot", tick, lot, s.min_size,
                                          base=s.symbol.split("/")[0],
                                          quote=s.symbol.split("/")[-1])
        return self._instrument

    async def instruments(self) -> Sequence[Instrument]:
        return [self.instrument] if self._header is None else list(self._header.instruments)

    def _era_rules(self) -> tuple[Decimal, Decimal]:
        """:func:`era_rules` of the data: a first pass over the file (streamed; the replay
        reads it again), remembered per file version and window for this process (a lab
        sweep or the orchestrator replays one file many times)."""
        path = self.s.bars_csv or self.s.ndjson
        assert path is not None
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"{path}: cannot read the replay's data: {exc.strerror}") from None
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, self.instrument_id,
               self.s.bar_seconds, self.s.start, self.s.end)
        if key not in _ERA_CACHE:
            _ERA_CACHE[key] = era_rules(self._data(first_pass=True), self.instrument_id)
        return _ERA_CACHE[key]

    def _data(self, *, first_pass: bool = False, runs: bool = False) -> Iterator[Any]:
        """The configured bars (on the era pass only those that decide it; ``runs``: as
        :func:`iter_bar_runs_csv` gives them) or recording, streamed from the file."""
        if self.s.bars_csv is not None:
            return iter_bar_runs_csv(self.s.bars_csv, self.instrument_id, self.s.bar_seconds,
                                     _to_epoch_s(self.s.start), _to_epoch_s(self.s.end),
                                     warn_gaps=not first_pass, era=first_pass, runs=runs)
        assert self.s.ndjson is not None
        return read_ndjson(self.s.ndjson, None if first_pass else self._listed_fees)

    def events(self) -> Iterator[MarketEvent]:
        """The replayed events, synchronously (backtests and benchmarks use this)."""
        return self._data()

    def runs(self) -> Iterator[MarketEvent | BarRun]:
        """:meth:`events` with a bar file's checked batches as :class:`BarRun` columns
        (the runner's quiet stretches; their bars are made only where one is wanted)."""
        return self._data(runs=True)

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for event in self.events():
            yield event

    def expected_events(self) -> int | None:
        """The bars in the window (:func:`count_bars_csv`); a recording's non-blank lines
        after its header."""
        if self.s.bars_csv is not None:
            return count_bars_csv(self.s.bars_csv, _to_epoch_s(self.s.start),
                                  _to_epoch_s(self.s.end))
        assert self.s.ndjson is not None
        with open_data(self.s.ndjson, "recording", mode="rb") as fh:
            return sum(1 for line in fh if line.strip()) - (self._header is not None)

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """The recorded schedule of a recorded instrument (in the header, or listed
        mid-recording), else the configured bps."""
        recorded = self._listed_fees.get(instrument_id) or (
            self._header.fee_schedules.get(instrument_id) if self._header else None)
        return self._fees if recorded is None else recorded


@hookimpl
def config_class() -> type:
    """``[plugins.replay]`` settings."""
    return ReplaySettings


@hookimpl
def register_venues(register: RegisterVenue) -> None:
    """Register the replay venue."""
    register(ReplayVenue.name, ReplayVenue)
