"""Row types of the bundled data files."""

from __future__ import annotations

import datetime as dt

import attrs


@attrs.frozen
class DailyBar:
    """One Lean daily bar in dollars (the file stores 1/10,000 dollars)."""

    day: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float
