"""Bar history as numpy columns: what batch feature computation and labels read.

Bars are stamped at their *close* time (``ts_ns``), the instant they become known,
exactly as the core's replay venue stamps them (a Kraken OHLCVT row's time is the
bar's open, so ``ts_ns = (time + bar_seconds) * 1e9``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from argus_core import Bar, DataError

COLUMNS = ("ts_ns", "open", "high", "low", "close", "volume")


def _arr_eq(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b))


@attrs.frozen
class BarColumns:
    """Time-ordered bars of one instrument as columns (``ts_ns`` int64, the rest float64)."""

    ts_ns: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_arr_eq))
    open: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_arr_eq))
    high: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_arr_eq))
    low: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_arr_eq))
    close: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_arr_eq))
    volume: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_arr_eq))
    source_sha256: str = ""

    def __attrs_post_init__(self) -> None:
        n = self.ts_ns.size
        if any(getattr(self, c).shape != (n,) for c in COLUMNS):
            raise DataError("BarColumns: every column must be 1-d and of the same length")
        if n > 1 and np.any(np.diff(self.ts_ns) <= 0):
            raise DataError("BarColumns: bars must be in strictly increasing time order")

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def column(self, name: str) -> np.ndarray:
        """One column by name (``ts_ns``, ``open``, ``high``, ``low``, ``close``, ``volume``)."""
        if name not in COLUMNS:
            raise DataError(f"unknown bar column {name!r}; one of {COLUMNS}")
        return getattr(self, name)

    def head(self, n: int) -> BarColumns:
        """The first ``n`` bars: the history as it stood when bar ``n - 1`` closed."""
        return _columns([getattr(self, c)[:n] for c in COLUMNS], self.source_sha256)

    def slice(self, start: int, stop: int) -> BarColumns:
        """Bars ``start`` to ``stop`` (exclusive)."""
        return _columns([getattr(self, c)[start:stop] for c in COLUMNS], self.source_sha256)

    def bars(self, instrument_id: str) -> list[Bar]:
        """The rows as core :class:`~argus_core.Bar` events (for the incremental path)."""
        return [Bar(instrument_id, int(t), float(o), float(h), float(lo), float(c), float(v))
                for t, o, h, lo, c, v in zip(self.ts_ns, self.open, self.high, self.low,
                                              self.close, self.volume, strict=True)]

    @classmethod
    def from_bars(cls, bars: Sequence[Bar]) -> BarColumns:
        """Columns of core bars (one instrument, time order)."""
        return _columns([np.array([b.ts_ns for b in bars], dtype=np.int64)]
                        + [np.array([getattr(b, c) for b in bars], dtype=np.float64)
                           for c in COLUMNS[1:]])


def _columns(cols: list[np.ndarray], source_sha256: str = "") -> BarColumns:
    ts, o, h, lo, c, v = cols
    return BarColumns(ts, o, h, lo, c, v, source_sha256=source_sha256)


#: Kraken's OHLCVT files: ``time, open, high, low, close, volume`` and maybe ``trades``.
OHLCVT_WIDTHS = (6, 7)
#: A time at or above this is not seconds (milliseconds since 1970 are ~1.7e12; 1e11 s
#: is the year 5138), and ``time * 1e9`` would wrap around int64 unnoticed.
MAX_SECONDS = 10**11


def read_ohlcvt_csv(path: Path, *, bar_seconds: int = 3600, start_s: int | None = None,
                    end_s: int | None = None) -> BarColumns:
    """Read a Kraken OHLCVT CSV (``time, open, high, low, close, volume[, trades]``, no
    header, time in seconds) into columns stamped at close time; ``source_sha256`` is
    the file's hash.

    Refused with a ``DataError`` naming the file, line and what: a row that is not six or
    seven numbers (Kraken's REST OHLC layout, ``time, open, high, low, close, vwap,
    volume, count``, would read the vwap as the volume), a time not in seconds, prices
    that are not finite and > 0 or not ``low <= open, close <= high``, a negative or
    non-finite volume, and a time not after the row before (a duplicate or out of order).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read bars: {exc.strerror}") from None
    first = next((ln for ln in raw.splitlines() if ln.strip()), b"")
    if len(first.split(b",")) not in OHLCVT_WIDTHS:
        raise DataError(f"{path} line {_line_of(raw, 0)}: {len(first.split(b','))} columns; "
                        f"a Kraken OHLCVT row has 6 or 7 (time, open, high, low, close, "
                        f"volume[, trades]), no header")
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2, usecols=range(6))
    except ValueError as exc:
        raise DataError(f"{path}: malformed OHLCVT row: {exc} (rows counted from 0, "
                        f"blank lines skipped)") from None
    _check_rows(path, raw, table)
    t = table[:, 0].astype(np.int64)
    keep = np.ones(t.size, dtype=bool)
    if start_s is not None:
        keep &= t >= start_s
    if end_s is not None:
        keep &= t < end_s
    table, t = table[keep], t[keep]
    return _columns([(t + bar_seconds) * 10**9]
                    + [np.ascontiguousarray(table[:, i]) for i in range(1, 6)],
                    hashlib.sha256(raw).hexdigest())


def _check_rows(path: Path, raw: bytes, table: np.ndarray) -> None:
    """The first row breaking a rule of :func:`read_ohlcvt_csv`, as a ``DataError``."""
    t, o, h, lo, c, v = table.T
    with np.errstate(invalid="ignore"):
        rules = [
            (~((t >= 0) & (t < MAX_SECONDS) & (t == np.floor(t))),
             "time is not whole seconds since 1970 (milliseconds?)"),
            (~(np.isfinite(table[:, 1:5]).all(axis=1) & (table[:, 1:5] > 0).all(axis=1)),
             "a price is not a number > 0"),
            (~((lo <= np.minimum(o, c)) & (np.maximum(o, c) <= h)),
             "prices break low <= open, close <= high"),
            (~(np.isfinite(v) & (v >= 0)), "volume is not a number >= 0"),
            (np.r_[False, np.diff(t) <= 0],
             "time is not after the row before (duplicate or out of order)"),
        ]
    for bad, what in rules:
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{path} line {_line_of(raw, i)}: {what}: "
                            f"{','.join(f'{x:.10g}' for x in table[i])}")


def _line_of(raw: bytes, row: int) -> int:
    """1-based line number of the ``row``-th non-blank line (what ``np.loadtxt`` reads)."""
    seen = -1
    for n, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            seen += 1
            if seen == row:
                return n
    return 0
