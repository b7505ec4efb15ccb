"""The equity version: SPY close-to-open (overnight) versus open-to-close (intraday).

Research only: the paper broker fills at the next bar's open, so a daily-bar replay can
neither buy at a close nor sell at that day's close; these figures come from the bars
directly.  Overnight return of day ``t``: ``log(open_t / close_{t-1})``; intraday:
``log(close_t / open_t)``.  The bundled Lean file is unadjusted, so each ex-dividend
drop (about 1.5-2% a year for SPY) lands in an overnight return and biases it down.

The rule, as for crypto: hold a leg in the test window only if its training mean simple
return beats the round trip's cost (``2 * cost_bps_per_side``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import attrs
import numpy as np

from argus_core import DataError
from argus_overnight.analysis import SegmentStats, stats_of

OVERNIGHT_LEG, INTRADAY_LEG = "close_to_open", "open_to_close"


def bundled_spy_path() -> Path:
    """The SPY daily file shipped in this package (see ``data/SOURCES.md``)."""
    return Path(str(resources.files("argus_overnight") / "data" / "lean_spy_daily.csv"))


@attrs.frozen
class DailyLegs:
    """Per trading day (from the second row on): date and the two legs' log returns."""

    day: np.ndarray  # int64 YYYYMMDD
    close_to_open: np.ndarray
    open_to_close: np.ndarray


def read_lean_daily(path: Path) -> DailyLegs:
    """Read a Lean daily equity CSV (``YYYYMMDD 00:00, o, h, l, c, v``, prices x 10,000)."""
    rows = np.loadtxt(path, delimiter=",", dtype=str, ndmin=2)
    day = np.array([int(d.split()[0]) for d in rows[:, 0]], dtype=np.int64)
    o = rows[:, 1].astype(np.float64) / 10_000
    c = rows[:, 4].astype(np.float64) / 10_000
    if np.any(np.diff(day) <= 0) or np.any(o <= 0) or np.any(c <= 0):
        raise DataError(f"{path}: days must increase and prices be positive")
    return DailyLegs(day[1:], np.log(o[1:] / c[:-1]), np.log(c[1:] / o[1:]))


@attrs.frozen
class LegVerdict:
    """One leg's training estimate, whether the rule holds it, and its test outcome."""

    leg: str
    train: SegmentStats
    test: SegmentStats
    held: bool
    test_net_mean_bps: float  # mean test return per day held, after the round trip


def equity_rule(legs: DailyLegs, train_end: int, cost_bps_per_side: float = 1.0,
                min_t: float = 2.0) -> list[LegVerdict]:
    """Apply the hold rule to both legs: train on days before ``train_end`` (YYYYMMDD),
    test on the days from it."""
    train = legs.day < train_end
    out = []
    hurdle = 2 * cost_bps_per_side / 1e4
    for leg in (OVERNIGHT_LEG, INTRADAY_LEG):
        x = getattr(legs, leg)
        tr, te = stats_of(leg, x[train]), stats_of(leg, x[~train])
        held = tr.n > 1 and tr.t_stat >= min_t and tr.mean_simple > hurdle
        out.append(LegVerdict(leg, tr, te, held, (te.mean_simple - hurdle) * 1e4))
    return out
