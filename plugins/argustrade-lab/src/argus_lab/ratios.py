"""The lab's one rule for a flat return series and its per-observation Sharpe ratio.

A series is *flat* when its sample standard deviation is no more than
:data:`FLAT_TOLERANCE` of its largest absolute return.  Exact zero is not enough:
float rounding leaves a constant return (a riskless carry, equity compounding at a
fixed rate) with a standard deviation of ~1e-17, which made a Sharpe ratio of ~1e15
per bar, passed every Sharpe gate, scored a deflated Sharpe ratio of 1.0, and --
entered in the trial registry -- inflated the variance of the family's Sharpe ratios so
that every other variant deflated to nothing.  A flat series has Sharpe 0, by the
core's rule, as the report's metrics give it.  No real strategy comes near the
tolerance: it would need a per-bar Sharpe ratio of 1e9.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from argus_core import metrics

#: The core's rule (``argus_core.metrics``): flat when ``std(ddof=1) <= FLAT_TOLERANCE *
#: max |r|`` (the rounding noise of a constant), so the lab and the report agree.
FLAT_TOLERANCE = metrics.FLAT_TOLERANCE
is_flat = metrics.is_flat


def per_obs_sharpe(returns: Sequence[float] | np.ndarray) -> float:
    """``mean / std(ddof=1)`` of ``returns``; 0 when they are flat (:func:`is_flat`)."""
    r = np.asarray(returns, dtype=np.float64)
    if is_flat(r):
        return 0.0
    return float(r.mean() / r.std(ddof=1))


def effective_returns(returns: Sequence[float] | np.ndarray) -> float:
    """How many returns a record's outcome rests on: ``(sum |r|)^2 / sum r^2`` of its
    finite returns (the participation ratio; 0 for none that is non-zero).

    ``n`` returns of one size count ``n``; one large return among tiny ones counts about
    1 however many tiny ones there are.  A count of non-zero returns is no such measure:
    one winning trade beside 29 bars of ~1e-6 noise counted 30 and was judged (DSR
    0.977, past the deploy bar).  Gaussian returns count about ``2/pi`` of their number.
    """
    r = np.asarray(returns, dtype=np.float64)
    a = np.abs(r[np.isfinite(r)])
    peak = float(a.max()) if a.size else 0.0
    if peak == 0.0:
        return 0.0
    a = a / peak  # scaled, so squares of tiny returns neither underflow nor overflow
    return float(a.sum() ** 2 / (a * a).sum())
