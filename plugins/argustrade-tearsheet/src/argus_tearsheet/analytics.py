"""The report's figures: the core's metrics plus the few it lacks, each defined once here.

Sharpe, Sortino, volatility, CAGR, Calmar, max drawdown, turnover, win rate and
expectancy are the core's (:mod:`argus_core.metrics`, checked against empyrical), for
the strategy and for buy-and-hold alike, with the core's one annualisation rule
(observations per year measured from the equity rows' timestamps).  Added here:

* :func:`drawdown_duration_ns` -- the longest time from a peak to regaining it;
* :func:`exposure` -- the share of the span with any position held;
* :func:`profit_factor` -- gross profit over gross loss of trades;
* :func:`fee_share` -- fees over gross (pre-fee) P&L;
* :func:`monthly_returns` -- calendar-month (UTC) returns of the equity;
* :func:`buy_and_hold` -- the traded instrument held over the run's span.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core import Config, DataError, metrics

#: Header names accepted for a bars CSV's bar-open time (unix seconds), as the replay does.
TIME_COLUMNS = ("timestamp", "time", "unix_time_s", "ts")
KRAKEN_CLOSE_COLUMN = 4  # headerless Kraken OHLCVT: time, open, high, low, close, ...


def drawdown_duration_ns(ts_ns: NDArray[np.int64], equity: NDArray[np.float64]) -> int:
    """The longest drawdown's duration: from a peak to the first later row at or above
    it, or to the last row when it never recovers (0 with no drawdown).  Peaks are the
    rows where the core's :func:`~argus_core.metrics.drawdown` is zero."""
    if len(equity) < 2:
        return 0
    peaks = np.flatnonzero(metrics.drawdown(equity) == 0)
    if not len(peaks):
        return int(ts_ns[-1] - ts_ns[0])
    # Underwater stretches lie between peaks that are not neighbours.
    gaps = np.diff(peaks) > 1
    spans = ts_ns[peaks[1:][gaps]] - ts_ns[peaks[:-1][gaps]]
    longest = int(spans.max()) if len(spans) else 0
    if peaks[-1] != len(equity) - 1:  # still under water at the end
        longest = max(longest, int(ts_ns[-1] - ts_ns[peaks[-1]]))
    return longest


def exposure(ts_ns: NDArray[np.int64], exposed: NDArray[np.bool_]) -> float:
    """Time-weighted share of the span with a position held: each interval between
    equity rows counts as exposed when its opening row had gross exposure > 0."""
    if len(ts_ns) < 2 or ts_ns[-1] <= ts_ns[0]:
        return 0.0
    dt = np.diff(ts_ns).astype(np.float64)
    return float(dt[exposed[:-1]].sum() / float(ts_ns[-1] - ts_ns[0]))


def profit_factor(pnls: Sequence[float] | NDArray[np.float64]) -> float | None:
    """Gross profit / gross loss over trades' net P&L; ``inf`` with winners and no
    losers, ``None`` with no trades or none that won or lost."""
    values = np.asarray(pnls, dtype=np.float64)
    gain = float(values[values > 0].sum())
    loss = float(-values[values < 0].sum())
    if loss > 0:
        return gain / loss
    return float("inf") if gain > 0 else None


def fee_share(fees: Decimal, net_pnl: Decimal) -> float | None:
    """Fees as a share of gross P&L (``net P&L + fees``, what the trading made before
    fees); ``None`` when gross P&L is not positive (the share means nothing then)."""
    gross = net_pnl + fees
    return float(fees / gross) if gross > 0 else None


@attrs.frozen(eq=False)
class MonthlyReturns:
    """Calendar-month returns (UTC): ``returns[i]`` for ``months[i]`` (datetime64[M])."""

    months: NDArray[np.datetime64]
    returns: NDArray[np.float64]


def monthly_returns(ts_ns: NDArray[np.int64], equity: NDArray[np.float64]) -> MonthlyReturns:
    """Each month's last equity over the previous month's last (the first month over the
    first row): compounding them gives the total return exactly."""
    if len(equity) < 2:
        return MonthlyReturns(np.empty(0, "datetime64[M]"), np.empty(0))
    month = ts_ns.astype("datetime64[ns]").astype("datetime64[M]")
    last = np.flatnonzero(np.append(month[1:] != month[:-1], True))
    closes = equity[last]
    base = np.concatenate(([equity[0]], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(base != 0, closes / base - 1.0, np.nan)
    return MonthlyReturns(month[last], returns)


@attrs.frozen(eq=False)
class Benchmark:
    """Buy-and-hold of the traded instrument over the run's span."""

    source: Path
    equity: NDArray[np.float64]  # at the run's equity stamps, from the same starting cash
    entry_price: float
    exit_price: float


def bars_csv_of(config: Config | None) -> Path | None:
    """The replay's bars CSV when ``config`` is a replay of one (else ``None``)."""
    if config is None or config.run.venue != "replay":
        return None
    raw = (config.plugins.get("replay") or {}).get("bars_csv")
    if not raw:
        return None
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else config.base_dir / path


def read_closes(path: Path, bar_seconds: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``(close-time stamps ns, closes)`` of a bars CSV in either format the replay reads
    (headerless Kraken OHLCVT, or a header naming the time and ``close`` columns).  Bars
    are stamped at their close (open + ``bar_seconds``), as the replay emits them."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with open(path) as fh:
            first = fh.readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read bars for the buy-and-hold benchmark: "
                        f"{exc.strerror}") from None
    has_header = any(c.isalpha() for c in first)
    if has_header:
        header = next(csv.reader([first]))
        names = [n.strip().lower() for n in header]
        time_name = next((h for h, n in zip(header, names, strict=True)
                          if n in TIME_COLUMNS), None)
        close_name = next((h for h, n in zip(header, names, strict=True) if n == "close"),
                          None)
        if time_name is None or close_name is None:
            raise DataError(f"{path}: a header needs a time column ({', '.join(TIME_COLUMNS)}) "
                            f"and a close column; it has {', '.join(header)}")
    else:
        time_name, close_name = "f0", f"f{KRAKEN_CLOSE_COLUMN}"
    try:
        # Only the two columns: parsing the other five costs more than reading the file.
        table = pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(autogenerate_column_names=not has_header),
            convert_options=pacsv.ConvertOptions(include_columns=[time_name, close_name]))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot parse bars: {exc}") from None
    opened_s = table.column(time_name).to_numpy().astype(np.float64)
    closes = table.column(close_name).to_numpy().astype(np.float64)
    stamps = (opened_s.astype(np.int64) + bar_seconds) * 1_000_000_000
    order = np.argsort(stamps, kind="stable")
    return stamps[order], closes[order]


def buy_and_hold(config: Config | None, ts_ns: NDArray[np.int64],
                 starting_cash: float) -> Benchmark | None:
    """Starting cash in the replayed instrument at the first close known at an equity
    row, held to the last (no fees, fractional units), valued at the equity rows' stamps
    with the last close known at each; a row stamped before the first bar's close holds
    the cash (no price is known yet: pricing it at that close was lookahead).  ``None``
    without a bars CSV or equity rows; ``DataError`` when no close is known by the run's
    last row, or the entry close is not positive."""
    path = bars_csv_of(config)
    if path is None or len(ts_ns) < 2 or config is None:
        return None
    settings: dict[str, Any] = config.plugins.get("replay") or {}
    stamps, closes = read_closes(path, int(settings.get("bar_seconds", 3600)))
    if not len(stamps):
        return None
    at = np.searchsorted(stamps, ts_ns, side="right") - 1  # -1: no bar closed yet
    known = at >= 0
    if not known[-1]:
        raise DataError(f"{path}: its first bar closes after the run's last equity row, so "
                        f"no price was known during the run")
    first = int(np.argmax(known))
    prices = closes[at[first:]]
    if not prices[0] > 0:
        raise DataError(f"{path}: non-positive close {prices[0]} at the run's start")
    equity = np.full(len(ts_ns), starting_cash, dtype=np.float64)
    equity[first:] = starting_cash * prices / prices[0]
    return Benchmark(path, equity, float(prices[0]), float(prices[-1]))


def series_stats(ts_ns: NDArray[np.int64], equity: NDArray[np.float64]) -> dict[str, float]:
    """The core's return-ratio and growth statistics of an equity series, plus drawdown
    depth and total return (used for buy-and-hold; the strategy's come from
    ``compute_metrics`` and these same functions).  No skew or kurtosis: the report shows
    none for buy-and-hold, and their powers are most of the cost on 700k rows."""
    returns = metrics.simple_returns(equity)
    max_dd = float(metrics.drawdown(equity).max()) if len(equity) else 0.0
    out: dict[str, float] = {"total_return": float(equity[-1] / equity[0] - 1)
                             if len(equity) else 0.0, "max_drawdown": max_dd}
    out.update(metrics.ratio_stats(returns, ts_ns))
    out.update(metrics.growth_stats(equity, ts_ns, max_dd))
    return out
