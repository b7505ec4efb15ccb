"""The optional global risk-flow input: a CSV of other markets' returns (Asia, Europe, FX).

Argus bundles no such data; a user who has it supplies a file with this contract:

- a header row; column ``available_utc`` (required): the ISO 8601 time, in UTC (``Z`` or
  ``+00:00``, or naive meaning UTC), at which the row's figures became known;
- one or more of ``asia_return``, ``europe_return``, ``fx_return``: simple returns as
  decimals (``0.004`` = +0.4%), e.g. the Nikkei's, the Euro Stoxx 50's and a risk-on FX
  pair's (AUD/JPY) session return; an empty cell means not known;
- no other columns; ``available_utc`` strictly increasing; values finite.

A decision at time ``t`` reads only the latest row with ``available_utc <= t`` that is at
most ``max_age_s`` old (stale flow is no flow); its *score* is the mean of its known
returns.  So a row stamped after the decision can never influence it.
"""

from __future__ import annotations

import bisect
import csv
import math
from pathlib import Path

import attrs

from argus_core import DataError
from argus_overnight.config import utc_seconds

TIME_COLUMN = "available_utc"
RETURN_COLUMNS = ("asia_return", "europe_return", "fx_return")


@attrs.frozen
class RiskFlow:
    """Rows of a risk-flow CSV, looked up as of a time."""

    times_s: list[int]
    rows: list[dict[str, float]]  # known returns only, per row

    def as_of(self, ts_s: int, max_age_s: float) -> dict[str, float] | None:
        """The latest row known at ``ts_s`` and at most ``max_age_s`` old, else ``None``."""
        i = bisect.bisect_right(self.times_s, ts_s) - 1
        if i < 0 or ts_s - self.times_s[i] > max_age_s:
            return None
        return self.rows[i]

    def score(self, ts_s: int, max_age_s: float) -> float | None:
        """Mean of the known returns of :meth:`as_of`'s row; ``None`` when there is none."""
        row = self.as_of(ts_s, max_age_s)
        if not row:
            return None
        return sum(row.values()) / len(row)


def read_risk_flow(path: Path) -> RiskFlow:
    """Read and validate a risk-flow CSV; a broken contract is a :class:`DataError` that
    names the file, the line and the rule."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if TIME_COLUMN not in header:
            raise DataError(f"{path}: no {TIME_COLUMN!r} column (header: {header})")
        extra = [c for c in header if c != TIME_COLUMN and c not in RETURN_COLUMNS]
        if extra or len(header) < 2:
            raise DataError(f"{path}: columns must be {TIME_COLUMN!r} and one or more of "
                            f"{list(RETURN_COLUMNS)}; unexpected: {extra or 'none given'}")
        times: list[int] = []
        rows: list[dict[str, float]] = []
        for line, raw in enumerate(reader, start=2):
            try:
                ts = utc_seconds(raw[TIME_COLUMN].replace("Z", "+00:00"))
            except (ValueError, AttributeError) as exc:
                raise DataError(f"{path}:{line}: {TIME_COLUMN} {raw[TIME_COLUMN]!r} is not "
                                f"an ISO 8601 time") from exc
            if times and ts <= times[-1]:
                raise DataError(f"{path}:{line}: {TIME_COLUMN} must strictly increase")
            row: dict[str, float] = {}
            for col in (c for c in header if c != TIME_COLUMN):
                cell = (raw[col] or "").strip()
                if not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError as exc:
                    raise DataError(f"{path}:{line}: {col} {cell!r} is not a number") from exc
                if not math.isfinite(value):
                    raise DataError(f"{path}:{line}: {col} is not finite")
                row[col] = value
            times.append(ts)
            rows.append(row)
    return RiskFlow(times, rows)
