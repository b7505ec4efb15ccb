"""The allocation engine: strategy returns, forecasts and health in, capped weights out.

Each step is a pure function, tested against a closed form or an independent library:

1. covariance: scikit-learn's Ledoit-Wolf shrinkage of the sample covariance, annualised
   (``periods_per_year``); it turns a singular sample covariance positive definite;
2. risk budgets: ``b_i ∝ max(forecast_i, 0) * health_i``, normalised, no share above
   ``max_budget_share`` (the excess goes to the others in proportion);
3. weights: equal risk contribution in those budgets, ``w_i (Σw)_i = b_i w'Σw``; with a
   diagonal Σ and equal budgets that is inverse volatility, ``w_i ∝ 1/σ_i``;
4. volatility target: scale so ``sqrt(w'Σw) = target_vol``, unless the gross weight would
   pass ``max_leverage``;
5. caps, each only ever cutting: per strategy, per correlation cluster (hierarchical
   clustering of ``1 - ρ``), per family, gross; a cut leaves the excess in cash;
6. anti-churn: each weight moves at most ``max_step`` towards its target per rebalance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from argus_core import DataError
from argus_portfolio.settings import PortfolioSettings

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]


def _finite(name: str, values: ArrayLike, ndim: int) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != ndim:
        raise DataError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        raise DataError(f"{name}: {len(bad)} value(s) are NaN or infinite, first at index "
                        f"{tuple(int(i) for i in bad[0])}; clean the returns before "
                        f"allocating")
    return arr


def ledoit_wolf(returns: ArrayLike, periods_per_year: float = 1.0) -> tuple[Matrix, float]:
    """Ledoit-Wolf shrunk covariance of ``returns`` (rows: periods, columns: strategies),
    multiplied by ``periods_per_year``, and the shrinkage intensity in [0, 1]."""
    from sklearn.covariance import LedoitWolf  # type: ignore[import-untyped]

    x = _finite("returns", returns, 2)
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise DataError(f"returns: need at least 2 periods of at least 1 strategy, got "
                        f"shape {x.shape}")
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        # a negative factor made every variance negative without a word
        raise DataError(f"periods_per_year: must be a finite number > 0, got "
                        f"{periods_per_year}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            fit = LedoitWolf().fit(x)
            cov = np.asarray(fit.covariance_) * periods_per_year
    except ValueError:  # its own check of what overflowed inside it
        cov = np.full((x.shape[1], x.shape[1]), np.nan)
    if not np.all(np.isfinite(cov)):
        # returns of 1e200 overflowed inside scikit-learn ("Input contains NaN")
        raise DataError(f"returns: too large to estimate a covariance from (their squares "
                        f"overflow; largest |return| {float(np.abs(x).max()):g}); pass "
                        f"returns as fractions per period")
    return cov, float(fit.shrinkage_)


def _check_covariance(cov: ArrayLike) -> Matrix:
    sigma = _finite("covariance", cov, 2)
    n = sigma.shape[0]
    if sigma.shape != (n, n) or n == 0:
        raise DataError(f"covariance: must be square and non-empty, got shape {sigma.shape}")
    if not np.allclose(sigma, sigma.T, rtol=1e-10, atol=1e-14):
        raise DataError("covariance: must be symmetric")
    try:
        np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        raise DataError("covariance: not positive definite (a zero-variance or perfectly "
                        "correlated strategy); estimate it with ledoit_wolf") from None
    return sigma


def risk_contributions(weights: ArrayLike, cov: ArrayLike) -> Vector:
    """Each weight's share of portfolio variance: ``w_i (Σw)_i / (w'Σw)`` (sums to 1)."""
    w, sigma = np.asarray(weights, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    marginal = sigma @ w
    return np.asarray(w * marginal / float(w @ marginal))


def equal_risk_weights(cov: ArrayLike, budgets: ArrayLike | None = None, *,
                       tol: float = 1e-12, max_iter: int = 100) -> Vector:
    """Long-only weights (summing to 1) whose risk contributions equal ``budgets``
    (normalised; equal when None).

    Solved as the convex problem of Spinu (2013), ``min ½ y'Σy - Σ b_i ln y_i`` over
    ``y > 0``, whose optimum satisfies ``y_i (Σy)_i = b_i``; ``w = y / Σy``.  Newton's
    method with a backtracking line search that keeps ``y > 0`` converges quadratically,
    so the contributions match to ~1e-15 rather than a first-order solver's ~1e-6.
    """
    sigma = _check_covariance(cov)
    n = sigma.shape[0]
    b = np.full(n, 1.0 / n) if budgets is None else _finite("budgets", budgets, 1)
    if b.shape != (n,) or np.any(b <= 0):
        raise DataError(f"budgets: need {n} positive values, got {b.tolist()}")
    b = b / b.sum()
    # Solve on the correlation matrix: y_i = y'_i / sd_i keeps y_i (Σy)_i = b_i, and unit
    # variances keep Newton well conditioned whatever the strategies' scales.
    sd = np.sqrt(np.diag(sigma))
    corr = sigma / np.outer(sd, sd)
    y = np.sqrt(b)  # the exact answer when Σ is diagonal

    def objective(v: Vector) -> float:
        return float(0.5 * v @ corr @ v - b @ np.log(v))

    for _ in range(max_iter):
        grad = corr @ y - b / y
        step = np.linalg.solve(corr + np.diag(b / (y * y)), grad)
        decrement = float(grad @ step)
        if decrement / 2 <= tol * tol:
            break
        t = 1.0
        while np.any(y - t * step <= 0):
            t *= 0.5
        # Far from the optimum, backtrack on the objective; near it (a small Newton
        # decrement) the full step is the quadratic-convergence step, and the objective's
        # change falls below float resolution, so comparing it would stall the solver.
        if decrement > 0.1:
            f0 = objective(y)
            while objective(y - t * step) > f0 - 0.25 * t * decrement and t > 1e-12:
                t *= 0.5
        y_next = y - t * step
        if np.array_equal(y_next, y):
            break  # no float left to move
        y = y_next
    y = y / sd
    w = y / y.sum()
    if not np.allclose(risk_contributions(w, sigma), b, rtol=1e-8, atol=1e-12):
        raise DataError("equal_risk_weights: Newton's method did not converge")
    return np.asarray(w)


def inverse_vol_weights(vols: ArrayLike) -> Vector:
    """``w_i = (1/σ_i) / Σ_j 1/σ_j``: equal risk contribution when Σ is diagonal."""
    v = _positive_vols(vols)
    # relative to the smallest, so 1/σ cannot overflow (a vol of 1e-320 gave NaN weights)
    inv = v.min() / v
    return np.asarray(inv / inv.sum())


def _positive_vols(vols: ArrayLike) -> Vector:
    v = _finite("vols", vols, 1)
    if np.any(v <= 0):
        bad = int(np.flatnonzero(v <= 0)[0])
        raise DataError(f"vols: every volatility must be > 0, got {float(v[bad])} at index "
                        f"{bad}")
    return v


def risk_budgets(forecasts: ArrayLike, health: ArrayLike, max_share: float = 1.0) -> Vector:
    """Budgets ``∝ max(forecast, 0) * health`` summing to 1 (all 0 when none is positive;
    below 1e-12 of the largest counts as 0), none above ``max_share`` while enough
    strategies share the rest (water-filling)."""
    f, h = _finite("forecasts", forecasts, 1), _finite("health", health, 1)
    if not (isinstance(max_share, int | float) and 0 < max_share <= 1):
        raise DataError(f"max_share: must lie in (0, 1], got {max_share!r}")
    if f.shape != h.shape:
        raise DataError(f"forecasts and health differ in length ({len(f)} vs {len(h)})")
    if np.any((h < 0) | (h > 1)):
        raise DataError(f"health: every value must lie in [0, 1], got {h.tolist()}")
    raw = np.clip(f, 0.0, None) * h
    if raw.size == 0 or raw.max() <= 0:
        return np.zeros_like(raw)
    # relative to the largest, so the sum cannot overflow (two forecasts of 1e308 summed
    # to inf and both budgets came out 0)
    raw = raw / raw.max()
    # a budget a trillion times smaller than the largest is none: it would need a weight
    # whose square underflows in the solver, and it could never be traded anyway
    raw[raw < 1e-12] = 0.0
    active = raw > 0
    if int(active.sum()) * max_share < 1.0:
        # Too few strategies with a budget for any split to keep each under max_share and
        # sum to 1: b_i = min(max_share, λ raw_i) has every budget at the cap, normalised
        # equal.  (The loop below gave the whole excess to the last strategy below the cap,
        # [0.2, 0.2, 0.6] for raw [0.5, 0.3, 0.2] with a cap of 0.2: the weakest forecast
        # got the largest budget.)
        return np.where(active, 1.0 / int(active.sum()), 0.0)
    b = raw / raw.sum()
    # A budget once held to the cap stays there and takes no share of a later excess (it
    # used to be counted as free again, pushed back over the cap, and the loop ended
    # after n rounds with a budget still over it and the others short of their share):
    # the result is b_i = min(max_share, lam * raw_i) summing to 1.
    capped = np.zeros(len(b), dtype=bool)
    for _ in range(len(b)):
        over = ~capped & (b > max_share)
        free = (b > 0) & ~capped & ~over
        if not over.any() or not free.any():
            break
        capped |= over
        b[capped] = max_share
        b[free] *= (1.0 - max_share * int(capped.sum())) / float(b[free].sum())
    return b


def vol_target_scale(weights: ArrayLike, cov: ArrayLike, target_vol: float,
                     max_leverage: float) -> float:
    """Factor bringing ``sqrt(w'Σw)`` to ``target_vol``, capped so that the scaled gross
    weight stays at most ``max_leverage``; 0 for an all-zero ``weights``."""
    w = _finite("weights", weights, 1)
    sigma = _finite("covariance", cov, 2)
    for name, value in (("target_vol", target_vol), ("max_leverage", max_leverage)):
        if not (math.isfinite(value) and value > 0):
            raise DataError(f"{name}: must be a finite number > 0, got {value!r}")
    gross = float(np.abs(w).sum())
    if gross == 0:
        return 0.0
    vol = float(np.sqrt(max(float(w @ sigma @ w), 0.0)))
    return min(target_vol / vol if vol > 0 else np.inf, max_leverage / gross)


def correlation_clusters(cov: ArrayLike, max_distance: float) -> NDArray[np.int64]:
    """Cluster labels (0, 1, ...) from average-linkage hierarchical clustering of the
    correlation distance ``1 - ρ``, cut at ``max_distance``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    sigma = np.asarray(cov, dtype=np.float64)
    n = sigma.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    sd = np.sqrt(np.diag(sigma))
    corr = np.clip(sigma / np.outer(sd, sd), -1.0, 1.0)
    dist = squareform(1.0 - corr, checks=False)
    labels = fcluster(linkage(dist, method="average"), t=max_distance, criterion="distance")
    return np.asarray(labels, dtype=np.int64) - 1


@attrs.frozen
class CapGroup:
    """A cap on the sum of some weights: ``sum(w[members]) <= cap``."""

    name: str
    members: tuple[int, ...]
    cap: float


def cap_groups(n: int, settings: PortfolioSettings, clusters: Sequence[int],
               families: Sequence[str | None]) -> list[CapGroup]:
    """Every cap on ``n`` weights: per strategy, per cluster, per family and gross."""
    groups = [CapGroup(f"strategy {i}", (i,), settings.max_strategy_weight)
              for i in range(n)]
    for label in sorted(set(clusters)):
        members = tuple(i for i in range(n) if clusters[i] == label)
        if len(members) > 1:
            groups.append(CapGroup(f"cluster {label}", members, settings.cluster_cap))
    for family in sorted({f for f in families if f is not None}):
        members = tuple(i for i in range(n) if families[i] == family)
        groups.append(CapGroup(f"family {family}", members, settings.cap_of_family(family)))
    groups.append(CapGroup("gross", tuple(range(n)), settings.max_leverage))
    return groups


def enforce_caps(weights: ArrayLike, groups: Sequence[CapGroup],
                 previous: ArrayLike | None = None) -> Vector:
    """Cut ``weights`` (>= 0) until every group is within its cap; only ever cuts, so a
    later group's cut keeps the earlier groups within theirs.

    With ``previous``, an over-cap group first takes back part of its *increases* (each
    towards its previous weight, by a common factor), so a bounded step stays bounded;
    only when the previous weights were over the cap themselves is the group scaled down.
    """
    w = np.array(weights, dtype=np.float64)
    prev = None if previous is None else np.asarray(previous, dtype=np.float64)
    for group in groups:
        idx = np.array(group.members)
        total = float(w[idx].sum())
        if total <= group.cap:
            continue
        excess = total - group.cap
        if prev is not None:
            up = idx[w[idx] > prev[idx]]
            rise = float(np.sum(w[up] - prev[up]))
            if rise >= excess:
                w[up] = prev[up] + (1 - excess / rise) * (w[up] - prev[up])
                continue
        w[idx] *= group.cap / total
    return w


def bounded_step(previous: ArrayLike, target: ArrayLike, max_step: float) -> Vector:
    """Each weight moves towards its target by at most ``max_step``."""
    prev = np.asarray(previous, dtype=np.float64)
    return np.asarray(prev + np.clip(np.asarray(target) - prev, -max_step, max_step))


@attrs.frozen
class Allocation:
    """One rebalance: the weights to hold now (``weights``), where they head
    (``target``), and what produced them."""

    weights: Vector
    target: Vector
    budgets: Vector
    covariance: Matrix
    clusters: NDArray[np.int64]
    scale: float
    shrinkage: float | None = None


def allocate_on(cov: ArrayLike, forecasts: ArrayLike, health: ArrayLike,
                settings: PortfolioSettings, *, previous: ArrayLike | None = None,
                families: Sequence[str | None] | None = None) -> Allocation:
    """Steps 2-6 of the module docstring on an annualised covariance ``cov``."""
    sigma = _check_covariance(cov)
    n = sigma.shape[0]
    budgets = risk_budgets(forecasts, health, settings.max_budget_share)
    if budgets.shape != (n,):
        raise DataError(f"forecasts: {len(budgets)} given for {n} strategies")
    fams = list(families) if families is not None else [None] * n
    if len(fams) != n:
        raise DataError(f"families: {len(fams)} given for {n} strategies")
    prev = None if previous is None else _finite("previous", previous, 1)
    if prev is not None and (prev.shape != (n,) or np.any(prev < 0)):
        raise DataError(f"previous: need {n} weights >= 0, got {prev.tolist()}")
    erc = np.zeros(n)
    active = np.flatnonzero(budgets > 0)
    if len(active):
        erc[active] = equal_risk_weights(sigma[np.ix_(active, active)], budgets[active])
    scale = vol_target_scale(erc, sigma, settings.target_vol, settings.max_leverage)
    clusters = correlation_clusters(sigma, settings.cluster_distance)
    groups = cap_groups(n, settings, clusters.tolist(), fams)
    target = enforce_caps(erc * scale, groups)
    weights = target if prev is None else enforce_caps(
        bounded_step(prev, target, settings.max_step), groups, prev)
    return Allocation(weights, target, budgets, sigma, clusters, scale)


def allocate(returns: ArrayLike, forecasts: ArrayLike, health: ArrayLike,
             settings: PortfolioSettings, *, previous: ArrayLike | None = None,
             families: Sequence[str | None] | None = None) -> Allocation:
    """The whole pipeline on per-period strategy ``returns`` (rows: periods)."""
    x = _finite("returns", returns, 2)
    if x.shape[0] < settings.min_history:
        raise DataError(f"returns: {x.shape[0]} periods, fewer than min_history = "
                        f"{settings.min_history}")
    cov, shrinkage = ledoit_wolf(x, settings.periods_per_year)
    out = allocate_on(cov, forecasts, health, settings, previous=previous, families=families)
    return attrs.evolve(out, shrinkage=shrinkage)


def model_covariance(vols: ArrayLike, correlation: float) -> Matrix:
    """``Σ = D R D`` with ``D = diag(vols)`` and a constant pairwise ``correlation``."""
    v = _positive_vols(vols)
    # a negative vol turned its correlations around without a word; |ρ| >= 1 is no
    # positive definite matrix (NaN fails here too)
    if not -1.0 < correlation < 1.0:
        raise DataError(f"correlation: must lie in (-1, 1), got {correlation!r}")
    corr = np.full((len(v), len(v)), correlation)
    np.fill_diagonal(corr, 1.0)
    return np.asarray(np.outer(v, v) * corr)
