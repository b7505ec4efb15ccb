"""Regime detection: Bayesian online change-point detection and a volatility-regime classifier.

Both are causal (a value at bar ``t`` uses bars ``<= t`` only) and
deterministic, and both come in two shapes that give identical numbers:

- batch functions over a whole series (:func:`bocpd`, :func:`vol_regimes`) for
  the lab (regime-subset stress) and for research;
- online trackers (:class:`OnlineBocpd`, :class:`RegimeTracker`) that a
  strategy or a venue updates bar by bar.

How the features reach the rest of Argus: a venue runs a
:class:`RegimeTracker` over its bars (the VRP venue does) and publishes
:meth:`RegimeState.signals` as ``Signal`` events named ``bocpd_p_change``,
``bocpd_run_length``, ``vol_regime``, ``vol_percentile``, ``realised_vol``,
``vol_spike`` and ``trend``.  The runner folds them into ``MarketState``
(``market.signal("bocpd_p_change", instrument_id)``) for strategies, stores
each one in the ledger's ``signals`` table (the lab's regime-subset stress
reads them back), and risk checks read them through ``RiskContext.market``
(the VRP plugin's ``vrp_regime_guard`` does).

BOCPD follows Adams & MacKay (2007), "Bayesian Online Changepoint Detection"
(arXiv:0710.3742), with a constant hazard and a Normal-Gamma prior on the
mean and precision, whose posterior predictive is a Student-t.  With a
constant hazard ``H`` the posterior mass on ``r_t = 0`` is always exactly
``H``, so "P(change)" here is the posterior probability that the current run
started within the last ``window`` bars: ``P(r_t <= window | x_1..t)``.
The run length is truncated at ``max_run_length`` (the tail mass is kept in
the last cell), which bounds the cost per bar.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, TypeGuard

import attrs
import numba
import numpy as np

from argus_core import DataError, Signal
from argus_lab.ratios import FLAT_TOLERANCE


@attrs.frozen
class BocpdParams:
    """Hazard, Normal-Gamma prior and truncation of the change-point detector."""

    hazard_lambda: float = 250.0  # expected run length between changes, in bars
    mu0: float = 0.0
    kappa0: float = 1.0
    alpha0: float = 1.0
    beta0: float = 1e-4  # prior scale of the variance: beta0 / alpha0 ~ a typical variance
    max_run_length: int = 500
    window: int = 10  # P(change) = P(a change within the last `window` bars)

    def __attrs_post_init__(self) -> None:
        if self.hazard_lambda <= 1:
            raise DataError("bocpd hazard_lambda must be > 1 bar")
        if self.kappa0 <= 0 or self.alpha0 <= 0 or self.beta0 <= 0:
            raise DataError("bocpd kappa0, alpha0 and beta0 must be > 0")
        if self.max_run_length < 2 or not 0 <= self.window < self.max_run_length:
            raise DataError("bocpd needs max_run_length >= 2 and 0 <= window < max_run_length")

    @classmethod
    def from_warmup(cls, x: np.ndarray, **kw: float) -> BocpdParams:
        """A prior whose variance scale matches the sample variance of ``x`` (past data only)."""
        var = float(np.var(np.asarray(x, dtype=np.float64)))
        alpha0 = float(kw.pop("alpha0", 1.0))
        return cls(beta0=max(var, 1e-12) * alpha0, alpha0=alpha0, **kw)  # type: ignore[arg-type]


@numba.njit(cache=True)
def _bocpd_step(x: float, probs: np.ndarray, mu: np.ndarray, kappa: np.ndarray,
                alpha: np.ndarray, beta: np.ndarray, n_active: int, hazard: float,
                mu0: float, kappa0: float, alpha0: float, beta0: float,
                logpred: np.ndarray) -> int:
    """Fold one observation into the run-length posterior in place; returns the new support."""
    rmax = probs.shape[0] - 1
    # Student-t predictive of x under each current run length (log space).
    best = -np.inf
    for r in range(n_active):
        nu = 2.0 * alpha[r]
        scale2 = beta[r] * (kappa[r] + 1.0) / (alpha[r] * kappa[r])
        z = (x - mu[r]) ** 2 / (nu * scale2)
        lp = (math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu)
              - 0.5 * math.log(nu * math.pi * scale2) - 0.5 * (nu + 1.0) * math.log1p(z))
        logpred[r] = lp
        if lp > best:
            best = lp
    # Growth and change-point masses (relative to the best predictive, to avoid underflow).
    cp = 0.0
    new_active = n_active + 1 if n_active < rmax + 1 else n_active
    for r in range(n_active - 1, -1, -1):
        w = probs[r] * math.exp(logpred[r] - best)
        cp += w * hazard
        grow = w * (1.0 - hazard)
        # Sufficient statistics of run r+1 (Normal-Gamma update).
        k1 = kappa[r] + 1.0
        m1 = (kappa[r] * mu[r] + x) / k1
        a1 = alpha[r] + 0.5
        b1 = beta[r] + kappa[r] * (x - mu[r]) ** 2 / (2.0 * k1)
        if r + 1 > rmax:  # truncation: the tail cell absorbs the overflow
            probs[rmax] = grow
            mu[rmax], kappa[rmax], alpha[rmax], beta[rmax] = m1, k1, a1, b1
        elif r + 1 == rmax and n_active == rmax + 1:
            # Merge the grown run into the tail cell, keeping the heavier cell's statistics.
            if grow >= probs[rmax]:
                mu[rmax], kappa[rmax], alpha[rmax], beta[rmax] = m1, k1, a1, b1
            probs[rmax] = probs[rmax] + grow
        else:
            probs[r + 1] = grow
            mu[r + 1], kappa[r + 1], alpha[r + 1], beta[r + 1] = m1, k1, a1, b1
    probs[0] = cp
    mu[0], kappa[0], alpha[0], beta[0] = mu0, kappa0, alpha0, beta0
    total = 0.0
    for r in range(new_active):
        total += probs[r]
    for r in range(new_active):
        probs[r] /= total
    return new_active


@numba.njit(cache=True)
def _bocpd_batch(xs: np.ndarray, probs: np.ndarray, mu: np.ndarray, kappa: np.ndarray,
                 alpha: np.ndarray, beta: np.ndarray, n_active: int, hazard: float,
                 mu0: float, kappa0: float, alpha0: float, beta0: float, window: int,
                 n_seen: int, p_change: np.ndarray, map_rl: np.ndarray, mean_rl: np.ndarray,
                 posterior: np.ndarray, keep_posterior: bool) -> int:
    logpred = np.empty(probs.shape[0])
    for t in range(xs.shape[0]):
        n_active = _bocpd_step(xs[t], probs, mu, kappa, alpha, beta, n_active, hazard,
                               mu0, kappa0, alpha0, beta0, logpred)
        pc = 0.0
        em = 0.0
        arg = 0
        n_obs = n_seen + t + 1  # the run that started with the data has length n_obs
        for r in range(n_active):
            if r <= window and r < n_obs:
                pc += probs[r]
            em += r * probs[r]
            if probs[r] > probs[arg]:
                arg = r
        p_change[t] = pc
        map_rl[t] = arg
        mean_rl[t] = em
        if keep_posterior:
            for r in range(n_active):
                posterior[t, r] = probs[r]
    return n_active


class OnlineBocpd:
    """Bar-by-bar BOCPD; ``update`` returns (P(change), MAP run length, mean run length)."""

    def __init__(self, params: BocpdParams | None = None) -> None:
        self.params = params or BocpdParams()
        size = self.params.max_run_length + 1
        p = self.params
        self.probs = np.zeros(size)
        self.probs[0] = 1.0
        self.mu = np.full(size, p.mu0, dtype=np.float64)
        self.kappa = np.full(size, p.kappa0, dtype=np.float64)
        self.alpha = np.full(size, p.alpha0, dtype=np.float64)
        self.beta = np.full(size, p.beta0, dtype=np.float64)
        self.n_active = 1
        self.n_seen = 0

    def update_many(self, xs: np.ndarray, *, keep_posterior: bool = False) -> BocpdResult:
        """Fold a block of observations in order (the batch path uses this)."""
        xs = np.ascontiguousarray(xs, dtype=np.float64)
        if not np.all(np.isfinite(xs)):
            raise DataError("bocpd input contains NaN or infinity")
        n = xs.shape[0]
        p = self.params
        p_change, map_rl, mean_rl = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n)
        post = np.zeros((n, p.max_run_length + 1) if keep_posterior else (1, 1))
        self.n_active = _bocpd_batch(xs, self.probs, self.mu, self.kappa, self.alpha, self.beta,
                                     self.n_active, 1.0 / p.hazard_lambda, p.mu0, p.kappa0,
                                     p.alpha0, p.beta0, p.window, self.n_seen, p_change,
                                     map_rl, mean_rl, post, keep_posterior)
        self.n_seen += n
        return BocpdResult(p_change, map_rl, mean_rl, post if keep_posterior else None)

    def update(self, x: float) -> tuple[float, int, float]:
        """Fold one observation; returns its (P(change), MAP run length, mean run length)."""
        res = self.update_many(np.array([x]))
        return float(res.p_change[0]), int(res.map_run_length[0]), float(res.mean_run_length[0])

    def get_state(self) -> dict[str, object]:
        """JSON-able state (for strategy checkpoints and hot-swap)."""
        k = self.n_active
        return {"n_active": k, "n_seen": self.n_seen, "probs": self.probs[:k].tolist(),
                "mu": self.mu[:k].tolist(), "kappa": self.kappa[:k].tolist(),
                "alpha": self.alpha[:k].tolist(), "beta": self.beta[:k].tolist()}

    def set_state(self, state: object) -> None:
        """Restore :meth:`get_state` output.  A damaged state (a field missing, of the
        wrong type, out of range, or for another ``max_run_length``) is a
        :class:`RegimeStateError` naming the field, and nothing changes."""
        self._apply(self._checked_state(state, "bocpd"))

    def _apply(self, checked: tuple[Any, ...]) -> None:
        self.probs, self.mu, self.kappa, self.alpha, self.beta = checked[:5]
        self.n_active, self.n_seen = checked[5], checked[6]

    def _checked_state(self, state: object, where: str) -> tuple[Any, ...]:
        """The detector's arrays and counts from ``state``, validated; changes nothing."""
        fields = _fields(state, where, ("n_active", "n_seen", *_BOCPD_ARRAYS))
        size = self.params.max_run_length + 1
        n_seen = _count(fields, "n_seen", where, 0)
        k = _count(fields, "n_active", where, 1)
        # Each observation grows the support by one cell until the truncation.
        if k != min(n_seen + 1, size):
            raise _bad(where, "n_active", f"min(n_seen + 1, max_run_length + 1) = "
                       f"{min(n_seen + 1, size)} (a state of this detector's parameters)", k)
        out = []
        p = self.params
        for name, fill in zip(_BOCPD_ARRAYS, (0.0, p.mu0, p.kappa0, p.alpha0, p.beta0),
                              strict=True):
            values = _numbers(fields, name, where, k, positive=name in ("kappa", "alpha", "beta"))
            if name == "probs":  # a probability distribution over run lengths
                total = math.fsum(values)
                if any(v < 0 for v in values) or not abs(total - 1.0) <= 1e-9 * k:
                    raise _bad(where, name, "probabilities >= 0 summing to 1", values)
            arr = np.full(size, fill, dtype=np.float64)
            arr[:k] = values
            out.append(arr)
        return (*out, k, n_seen)


_BOCPD_ARRAYS = ("probs", "mu", "kappa", "alpha", "beta")


class RegimeStateError(DataError, ValueError):
    """A damaged :meth:`RegimeTracker.set_state` / :meth:`OnlineBocpd.set_state` state.

    A :class:`~argus_core.DataError`; a ``ValueError`` too, so a caller that wrapped
    ``set_state`` against the ``ValueError`` / ``TypeError`` it used to leak keeps working.
    """


def _bad(where: str, name: str, wanted: str, got: object) -> RegimeStateError:
    return RegimeStateError(f"regime state field {where}.{name} must be {wanted}, got "
                            f"{got!r:.200}; pass the dict that get_state() returned")


def _fields(state: object, where: str, required: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(state, dict):
        raise RegimeStateError(f"regime state {where} must be the dict that get_state() "
                               f"returned, got {type(state).__name__}")
    missing = [k for k in required if k not in state]
    if missing:
        raise RegimeStateError(f"regime state {where} has no field(s) "
                               f"{', '.join(where + '.' + k for k in missing)}; pass the "
                               f"dict that get_state() returned")
    return state


def _is_number(v: object) -> TypeGuard[int | float]:
    """A JSON number (a bool is not one)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v: object) -> TypeGuard[int | float]:
    """A JSON number that is a finite float (an integer of 400 digits is not one)."""
    try:
        return _is_number(v) and math.isfinite(v)
    except OverflowError:
        return False


def _count(fields: dict[str, object], name: str, where: str, least: int) -> int:
    v = fields[name]
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= least):
        raise _bad(where, name, f"an integer >= {least}", v)
    return v


def _numbers(fields: dict[str, object], name: str, where: str, length: int, *,
             positive: bool) -> list[float]:
    v = fields[name]
    if not (isinstance(v, list) and len(v) == length
            and all(_finite(x) and (not positive or x > 0)
                    for x in v)):
        kind = "finite numbers > 0" if positive else "finite numbers"
        raise _bad(where, name, f"a list of n_active = {length} {kind}", v)
    return [float(x) for x in v]


@attrs.frozen
class BocpdResult:
    """Per-bar outputs of BOCPD."""

    p_change: np.ndarray  # P(run length <= window)
    map_run_length: np.ndarray
    mean_run_length: np.ndarray
    posterior: np.ndarray | None = None  # (T, max_run_length + 1) when requested


def bocpd(x: np.ndarray, params: BocpdParams | None = None, *,
          keep_posterior: bool = False) -> BocpdResult:
    """Run BOCPD over a whole series (causal: output ``t`` depends on ``x[:t+1]`` only)."""
    return OnlineBocpd(params).update_many(np.asarray(x, dtype=np.float64),
                                           keep_posterior=keep_posterior)


def alarms(p_change: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Bars where ``p_change`` crosses ``threshold`` upwards (rising edges only)."""
    above = np.asarray(p_change) >= threshold
    prev = np.concatenate([[False], above[:-1]])
    return np.flatnonzero(above & ~prev)


def detection_report(alarm_idx: np.ndarray, true_changes: list[int], *,
                     max_delay: int) -> dict[str, object]:
    """Match alarms to true change points: delays, misses and false alarms.

    An alarm at bar ``a`` detects change ``c`` when ``c <= a <= c + max_delay``
    (the first such alarm counts); every other alarm is a false alarm.
    """
    used: set[int] = set()
    delays: list[int] = []
    missed: list[int] = []
    for c in true_changes:
        hit = next((int(a) for a in alarm_idx if c <= a <= c + max_delay and int(a) not in used),
                   None)
        if hit is None:
            missed.append(c)
        else:
            used.add(hit)
            delays.append(hit - c)
    # Repeated alarms inside an already detected change's window are not false alarms.
    false = [int(a) for a in alarm_idx if int(a) not in used
             and not any(c <= a <= c + max_delay for c in true_changes)]
    return {"delays": delays, "missed": missed, "false_alarms": false}


# -- volatility regimes ------------------------------------------------------------

CALM, NORMAL, STRESSED = 0, 1, 2
REGIME_NAMES = {CALM: "calm", NORMAL: "normal", STRESSED: "stressed"}


@attrs.frozen
class VolRegimeParams:
    """Windows (bars) and thresholds of the volatility-regime classifier."""

    vol_window: int = 20
    short_window: int = 5
    lookback: int = 252  # percentile of today's realised vol among the last `lookback` values
    trend_window: int = 50
    calm_percentile: float = 0.5
    stress_percentile: float = 0.8
    spike_ratio: float = 1.5  # short-window vol / vol_window vol above this is a spike
    periods_per_year: float = 252.0

    def __attrs_post_init__(self) -> None:
        if min(self.vol_window, self.short_window, self.lookback, self.trend_window) < 2:
            raise DataError("vol regime windows must be >= 2 bars")
        if not 0 < self.calm_percentile <= self.stress_percentile <= 1:
            raise DataError("need 0 < calm_percentile <= stress_percentile <= 1")

    @property
    def history_needed(self) -> int:
        """Closes needed before every feature is defined."""
        return max(self.vol_window + self.lookback, self.trend_window) + 1


@attrs.frozen
class VolRegimes:
    """Per-bar features (NaN / -1 until enough history)."""

    realised_vol: np.ndarray  # annualised, over vol_window
    short_vol: np.ndarray
    vol_percentile: np.ndarray  # in [0, 1]
    trend: np.ndarray  # close / SMA(trend_window) - 1
    vol_spike: np.ndarray  # bool
    regime: np.ndarray  # int: -1 unknown, 0 calm, 1 normal, 2 stressed


def _rolling_std(r: np.ndarray, w: int) -> np.ndarray:
    """Sample std of each window of ``w`` returns; exactly 0 where the window is flat up
    to rounding (:data:`argus_lab.ratios.FLAT_TOLERANCE` of its largest return), so a
    constant drift's ~1e-15 of noise is no volatility."""
    out = np.full(r.shape[0], np.nan)
    if r.shape[0] >= w:
        win = np.lib.stride_tricks.sliding_window_view(r, w)
        sd = win.std(axis=1, ddof=1)
        with np.errstate(invalid="ignore"):
            flat = sd <= FLAT_TOLERANCE * np.abs(win).max(axis=1)
        out[w - 1:] = np.where(flat, 0.0, sd)
    return out


def vol_regimes(close: np.ndarray, params: VolRegimeParams | None = None) -> VolRegimes:
    """Classify each bar from closes up to and including it (no lookahead)."""
    p = params or VolRegimeParams()
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1 or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise DataError("vol_regimes needs a 1-D array of positive, finite closes")
    n = c.shape[0]
    r = np.full(n, np.nan)
    r[1:] = np.diff(np.log(c))
    ann = math.sqrt(p.periods_per_year)
    rv = _rolling_std(r, p.vol_window) * ann
    sv = _rolling_std(r, p.short_window) * ann
    pct = np.full(n, np.nan)
    if n >= p.lookback:
        win = np.lib.stride_tricks.sliding_window_view(rv, p.lookback)
        last = win[:, -1:]
        valid = ~np.isnan(win).any(axis=1)
        share = (win <= last).mean(axis=1)
        pct[p.lookback - 1:] = np.where(valid, share, np.nan)
    trend = np.full(n, np.nan)
    if n >= p.trend_window:
        sma = np.lib.stride_tricks.sliding_window_view(c, p.trend_window).mean(axis=1)
        trend[p.trend_window - 1:] = c[p.trend_window - 1:] / sma - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        spike = (sv / rv) > p.spike_ratio
    regime = np.full(n, -1, dtype=np.int64)
    known = ~np.isnan(pct)
    stressed = known & ((pct >= p.stress_percentile) | spike)
    calm = known & ~stressed & (pct < p.calm_percentile)
    # No volatility at all (constant prices, a constant drift) is calm: ranked among
    # equally still windows it sat at the top of its lookback (every one ties) and was
    # classified STRESSED.
    still = known & (rv == 0.0)
    stressed &= ~still
    calm |= still
    regime[known] = NORMAL
    regime[calm] = CALM
    regime[stressed] = STRESSED
    return VolRegimes(rv, sv, pct, trend, spike & known & ~still, regime)


@attrs.frozen
class RegimeState:
    """The regime features of one instrument at one bar."""

    ts_ns: int
    p_change: float
    run_length: int
    realised_vol: float
    vol_percentile: float
    trend: float
    vol_spike: bool
    regime: int

    @property
    def regime_name(self) -> str:
        """calm / normal / stressed / unknown."""
        return REGIME_NAMES.get(self.regime, "unknown")

    def signals(self, instrument_id: str) -> list[Signal]:
        """The features as ``Signal`` events (NaNs, i.e. not yet known, are left out)."""
        values = {"bocpd_p_change": self.p_change, "bocpd_run_length": float(self.run_length),
                  "realised_vol": self.realised_vol, "vol_percentile": self.vol_percentile,
                  "trend": self.trend, "vol_spike": float(self.vol_spike),
                  "vol_regime": float(self.regime)}
        return [Signal(name, instrument_id, self.ts_ns, v)
                for name, v in values.items() if math.isfinite(v)]


class RegimeTracker:
    """Online regime features for one instrument: BOCPD on log returns + vol regime.

    ``update(ts_ns, close)`` once per bar, in time order.  Equal, bar for bar, to
    :func:`bocpd` on the log returns and :func:`vol_regimes` on the closes.
    """

    def __init__(self, bocpd_params: BocpdParams | None = None,
                 vol_params: VolRegimeParams | None = None) -> None:
        self.vol_params = vol_params or VolRegimeParams()
        self.detector = OnlineBocpd(bocpd_params)
        self.closes: deque[float] = deque(maxlen=self.vol_params.history_needed)
        self.last: RegimeState | None = None

    def update(self, ts_ns: int, close: float) -> RegimeState:
        """Fold in one close and return the features as of this bar."""
        if not (math.isfinite(close) and close > 0):
            raise DataError(f"RegimeTracker: close {close!r} at {ts_ns} is not a positive number")
        prev = self.closes[-1] if self.closes else None
        self.closes.append(float(close))
        if prev is None:
            p_change, run_length = 0.0, 0
        else:
            # Same arithmetic as np.diff(np.log(closes)) so online equals batch bit for bit.
            p_change, run_length, _ = self.detector.update(
                float(np.log(np.float64(close)) - np.log(np.float64(prev))))
        vr = vol_regimes(np.fromiter(self.closes, dtype=np.float64), self.vol_params)
        self.last = RegimeState(ts_ns, p_change, run_length, float(vr.realised_vol[-1]),
                                float(vr.vol_percentile[-1]), float(vr.trend[-1]),
                                bool(vr.vol_spike[-1]), int(vr.regime[-1]))
        return self.last

    def get_state(self) -> dict[str, object]:
        """JSON-able state: the closes kept, the detector's and the last reading (its
        not-yet-known NaN features as null, so the state is strict JSON)."""
        last = None if self.last is None else {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in attrs.asdict(self.last).items()}
        return {"closes": list(self.closes), "bocpd": self.detector.get_state(),
                "last": last}

    def set_state(self, state: object) -> None:
        """Restore :meth:`get_state` output, all or nothing: a damaged state (a field
        missing, of the wrong type or out of range) is a :class:`RegimeStateError` naming
        the field, and the tracker is left as it was.  A state written before ``last``
        was kept loads with ``last`` None (it becomes known at the next :meth:`update`)."""
        fields = _fields(state, "tracker", ("closes", "bocpd"))
        closes = fields["closes"]
        if not (isinstance(closes, list) and all(
                _finite(c) and c > 0 for c in closes)):
            raise _bad("tracker", "closes", "a list of finite numbers > 0", closes)
        detector = OnlineBocpd(self.detector.params)
        arrays = detector._checked_state(fields["bocpd"], "bocpd")
        n_seen = arrays[6]
        # One return per pair of closes; the deque keeps only the last closes needed.
        if (not closes and n_seen) or (closes and n_seen < len(closes) - 1):
            raise _bad("bocpd", "n_seen", f"the number of returns of the {len(closes)} "
                       f"closes (0 with no closes, else >= {max(len(closes) - 1, 0)})", n_seen)
        last = self._checked_last(fields.get("last"), bool(closes))
        detector._apply(arrays)
        self.detector = detector
        self.closes.clear()
        self.closes.extend(float(c) for c in closes)
        self.last = last

    @staticmethod
    def _checked_last(last: object, any_closes: bool) -> RegimeState | None:
        """The :class:`RegimeState` of a state's ``last``, validated; None for null."""
        if last is None:
            return None
        if not any_closes:
            raise _bad("tracker", "last", "null while there are no closes", last)
        f = _fields(last, "last", _LAST_FIELDS)
        ints = {}
        for name, least in (("ts_ns", None), ("run_length", 0), ("regime", -1)):
            v = f[name]
            if not (isinstance(v, int) and not isinstance(v, bool)
                    and (least is None or v >= least)):
                raise _bad("last", name, "an integer" + ("" if least is None else
                                                          f" >= {least}"), v)
            ints[name] = v
        if ints["regime"] not in (-1, *REGIME_NAMES):
            raise _bad("last", "regime", "-1 (unknown), 0, 1 or 2", ints["regime"])
        if not isinstance(f["vol_spike"], bool):
            raise _bad("last", "vol_spike", "true or false", f["vol_spike"])
        floats = {}
        # p_change is always known; the others are NaN until enough history (null in the
        # state; NaN as a json.loads of Python's own output reads it is taken too).
        for name, low, high, nullable in (("p_change", 0.0, 1.0, False),
                                          ("realised_vol", 0.0, math.inf, True),
                                          ("vol_percentile", 0.0, 1.0, True),
                                          ("trend", -math.inf, math.inf, True)):
            v = f[name]
            if nullable and (v is None or (isinstance(v, float) and math.isnan(v))):
                floats[name] = math.nan
            elif _finite(v) and low <= v <= high:
                floats[name] = float(v)
            else:
                span = "" if low == -math.inf else (
                    f" in [{low:g}, {high:g}]" if high < math.inf else f" >= {low:g}")
                raise _bad("last", name, f"a finite number{span}" + (
                    " or null (not yet known)" if nullable else ""), v)
        return RegimeState(ints["ts_ns"], floats["p_change"], ints["run_length"],
                           floats["realised_vol"], floats["vol_percentile"], floats["trend"],
                           f["vol_spike"], ints["regime"])


_LAST_FIELDS = ("ts_ns", "p_change", "run_length", "realised_vol", "vol_percentile",
                "trend", "vol_spike", "regime")
