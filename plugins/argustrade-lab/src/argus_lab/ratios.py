"""The lab's one rule for a flat return series and its per-observation Sharpe ratio.

A series is *flat* when its sample standard deviation is no more than
:data:`FLAT_TOLERANCE` of its largest absolute return.  Exact zero is not enough:
float rounding leaves a constant return (a riskless carry, equity compounding at a
fixed rate) with a standard deviation of ~1e-17, which made a Sharpe ratio of ~1e15
per bar, passed every Sharpe gate, scored a deflated Sharpe ratio of 1.0, and --
entered in the trial registry -- inflated the variance of the family's Sharpe ratios so
that every other variant deflated to nothing.  A flat series has Sharpe 0, as the
core's metrics give an exactly constant one.  No real strategy comes near the
tolerance: it would need a per-bar Sharpe ratio of 1e9.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Flat when ``std(ddof=1) <= FLAT_TOLERANCE * max |r|`` (rounding noise of a constant).
FLAT_TOLERANCE = 1e-9


def is_flat(returns: Sequence[float] | np.ndarray) -> bool:
    """Whether ``returns`` has no variation beyond float rounding (or fewer than two
    values).  NaN anywhere makes the answer False: the caller sees the NaN."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return True
    sd = float(r.std(ddof=1))
    return sd <= FLAT_TOLERANCE * float(np.max(np.abs(r)))


def per_obs_sharpe(returns: Sequence[float] | np.ndarray) -> float:
    """``mean / std(ddof=1)`` of ``returns``; 0 when they are flat (:func:`is_flat`)."""
    r = np.asarray(returns, dtype=np.float64)
    if is_flat(r):
        return 0.0
    return float(r.mean() / r.std(ddof=1))
