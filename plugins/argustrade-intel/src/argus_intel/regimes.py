"""Regimes and change points of a close series, by the lab's own detectors.

Nothing is re-implemented here: :func:`argus_lab.regime.bocpd` (Bayesian online change
point detection on log returns) gives each bar's ``P(change)`` (posterior probability
that the current run started within the last ``window`` bars) and its most likely run
length; :func:`argus_lab.regime.vol_regimes` gives the volatility regime (calm / normal /
stressed / unknown until enough history), realised vol and its percentile; a change
point is a bar where ``P(change)`` rises through ``threshold``
(:func:`argus_lab.regime.alarms`).  Bar ``i``'s figures use closes ``0..i`` only, exactly
as a :class:`~argus_lab.regime.RegimeTracker` fed bar by bar would give them (bar 0
has no return yet: ``P(change)`` 0, run length 0).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
from argus_lab.regime import (
    REGIME_NAMES,
    BocpdParams,
    VolRegimeParams,
    alarms,
    bocpd,
    vol_regimes,
)
from numpy.typing import NDArray

from argus_core import DataError


@attrs.frozen
class RegimeParams:
    """The detectors' knobs the API exposes (the rest are the lab's defaults)."""

    hazard_lambda: float = 250.0
    window: int = 10
    threshold: float = 0.5
    #: 0: the lab's default prior; N: a prior whose variance matches the first N returns
    #: (:meth:`BocpdParams.from_warmup`; those N bars' figures then saw their own data)
    warmup_bars: int = 0
    vol_window: int = 20
    lookback: int = 252
    periods_per_year: float = 252.0


@attrs.frozen
class RegimeSeries:
    """Per-bar regime figures and the change points."""

    p_change: NDArray[np.float64]
    run_length: NDArray[np.int64]
    realised_vol: NDArray[np.float64]
    vol_percentile: NDArray[np.float64]
    regime: NDArray[np.int64]
    change_points: NDArray[np.int64]

    def row(self, i: int, ts_ns: int | None, close: float) -> dict[str, Any]:
        """Bar ``i`` as a JSON-ready dict (NaN, i.e. not yet known, as null)."""
        return {"index": i, "ts_ns": ts_ns, "close": close,
                "p_change": float(self.p_change[i]), "run_length": int(self.run_length[i]),
                "realised_vol": _finite(self.realised_vol[i]),
                "vol_percentile": _finite(self.vol_percentile[i]),
                "regime": REGIME_NAMES.get(int(self.regime[i]), "unknown")}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def regimes(close: NDArray[np.float64], params: RegimeParams) -> RegimeSeries:
    """Regime figures of each bar of ``close`` (positive, finite, in time order)."""
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1 or c.shape[0] < 2:
        raise DataError("regimes need at least 2 closes")
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise DataError("closes must be positive, finite numbers")
    returns = np.diff(np.log(c))
    if params.warmup_bars and not 2 <= params.warmup_bars <= returns.shape[0]:
        # One return has variance 0 (a prior that calls every move a change); more than
        # the series has were silently cut to what there was.
        raise DataError(f"warmup_bars = {params.warmup_bars}: the prior needs 2 to "
                        f"{returns.shape[0]} returns of this series (or 0: the lab's default)")
    try:
        if params.warmup_bars > 0:
            bp = BocpdParams.from_warmup(returns[:params.warmup_bars],
                                         hazard_lambda=params.hazard_lambda,
                                         window=params.window)
        else:
            bp = BocpdParams(hazard_lambda=params.hazard_lambda, window=params.window)
        vp = VolRegimeParams(vol_window=params.vol_window, lookback=params.lookback,
                             periods_per_year=params.periods_per_year)
    except (TypeError, ValueError) as exc:
        raise DataError(f"regime parameters: {exc}") from None
    det = bocpd(returns, bp)
    vr = vol_regimes(c, vp)
    p_change = np.concatenate([[0.0], det.p_change])
    run_length = np.concatenate([[0], det.map_run_length]).astype(np.int64)
    return RegimeSeries(p_change, run_length, vr.realised_vol, vr.vol_percentile,
                        vr.regime.astype(np.int64),
                        alarms(p_change, params.threshold).astype(np.int64))
