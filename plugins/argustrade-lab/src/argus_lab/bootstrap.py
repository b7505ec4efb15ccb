"""Trade-level resampling: stationary (Politis-Romano) and circular block bootstrap of P&L.

Realised round-trip P&L (net of fees) is resampled into ``n_paths`` synthetic
trade sequences; each path is replayed from the starting capital to give the
distributions of maximum drawdown, final equity, ruin and per-trade Sharpe.

Why a hand-written kernel rather than ``arch.bootstrap.StationaryBootstrap``:
``arch`` draws one resample per Python-level iteration (10,000 paths would
take seconds) and keeps the whole index matrix; here the index draw and the
drawdown replay are fused in one numba loop, parallel over paths, with no
(paths x trades) temporaries.  Each path has its own counter-based random
stream (SplitMix64 seeded by ``seed`` and the *global* path number), so the
result is identical whatever the thread count, and a run split into batches
(on local processes or a Dask cluster) concatenates to exactly the single-run
answer.  :func:`bootstrap_numpy` is a plain numpy reference used by tests and
``benchmarks/lab/bench_bootstrap.py``.
"""

from __future__ import annotations

import itertools
import math

import attrs
import numba
import numpy as np

from argus_core import DataError
from argus_lab.config import BOOTSTRAP_METHODS, STATIONARY

METHODS = BOOTSTRAP_METHODS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
#: A resampled path is flat (Sharpe 0) when its P&L's standard deviation is at most this
#: share of its root mean square: the kernel's one-pass variance of n equal P&Ls is not
#: 0 but rounding noise of ~1e-8 of their size (a per-trade Sharpe of ~1e8 was reported).
_FLAT_SD = 1e-5


@numba.njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _uniform(state: np.uint64) -> tuple[np.uint64, float]:
    state = state + _GOLDEN
    return state, float(_mix(state) >> np.uint64(11)) * _INV53


@numba.njit(cache=True, inline="always")
def _path_seed(seed: np.uint64, path: np.uint64) -> np.uint64:
    # Decorrelate neighbouring paths: hash (seed, path) once.
    return _mix(seed ^ _mix(path * _GOLDEN + np.uint64(1)))


@numba.njit(cache=True, inline="always")
def _next_index(state: np.uint64, t: int, prev: int, n: int, p_new: float, block_len: int,
                stationary: bool) -> tuple[np.uint64, int]:
    if stationary:
        state, u = _uniform(state)
        new_block = t == 0 or u < p_new
    else:
        new_block = t % block_len == 0
    if new_block:
        state, u2 = _uniform(state)
        idx = int(u2 * n)
        if idx >= n:
            idx = n - 1
        return state, idx
    nxt = prev + 1
    return state, 0 if nxt >= n else nxt  # circular wrap (Politis-Romano)


@numba.njit(cache=True, parallel=True)
def _bootstrap_kernel(pnl: np.ndarray, n_paths: int, n_trades: int, p_new: float,
                      block_len: int, stationary: bool, seed: np.uint64, path_offset: int,
                      initial: float, ruin_level: float, max_dd: np.ndarray, final: np.ndarray,
                      ruined: np.ndarray, sharpe: np.ndarray) -> None:
    n = pnl.shape[0]
    for i in numba.prange(n_paths):
        state = _path_seed(seed, np.uint64(path_offset + i))
        eq = initial
        peak = initial
        worst = 0.0
        ruin = False
        s1 = 0.0
        s2 = 0.0
        idx = 0
        for t in range(n_trades):
            state, idx = _next_index(state, t, idx, n, p_new, block_len, stationary)
            x = pnl[idx]
            s1 += x
            s2 += x * x
            eq += x
            if eq > peak:
                peak = eq
            dd = (peak - eq) / peak if peak > 0 else 1.0
            if dd > worst:
                worst = dd
            if eq <= ruin_level:
                ruin = True
        max_dd[i] = worst
        final[i] = eq
        ruined[i] = ruin
        mean = s1 / n_trades
        var = (s2 - n_trades * mean * mean) / (n_trades - 1) if n_trades > 1 else 0.0
        # Flat paths (sd within rounding of the one-pass sums) have Sharpe 0, not ~1e8.
        flat = var <= _FLAT_SD * _FLAT_SD * (s2 / n_trades)
        sharpe[i] = 0.0 if flat else mean / math.sqrt(var)


@numba.njit(cache=True, parallel=True)
def _indices_kernel(n: int, n_paths: int, n_trades: int, p_new: float, block_len: int,
                    stationary: bool, seed: np.uint64, path_offset: int, out: np.ndarray) -> None:
    for i in numba.prange(n_paths):
        state = _path_seed(seed, np.uint64(path_offset + i))
        idx = 0
        for t in range(n_trades):
            state, idx = _next_index(state, t, idx, n, p_new, block_len, stationary)
            out[i, t] = idx


@attrs.frozen
class BootstrapPaths:
    """Per-path statistics of a trade bootstrap (arrays of length ``n_paths``)."""

    max_drawdown: np.ndarray  # fraction of the running peak, 0..1
    final_equity: np.ndarray
    ruined: np.ndarray  # bool: equity touched the ruin level
    sharpe: np.ndarray  # per-trade Sharpe of the resampled P&L

    @classmethod
    def concat(cls, parts: list[BootstrapPaths]) -> BootstrapPaths:
        """Join batches in order (batches of one seed concatenate to the single-run result)."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("max_drawdown", "final_equity", "ruined", "sharpe")))


@attrs.frozen
class BootstrapSpec:
    """What to resample and how."""

    n_paths: int = 10_000
    n_trades: int | None = None  # None: as many as were realised
    method: str = STATIONARY
    mean_block: float = 5.0  # stationary: expected block length; block: the fixed length
    initial_capital: float = 100_000.0
    ruin_fraction: float = 0.5  # ruined when equity falls to (1 - ruin_fraction) x initial
    seed: int = 0


def _validate(pnl: np.ndarray, spec: BootstrapSpec) -> tuple[np.ndarray, int]:
    arr = np.ascontiguousarray(pnl, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError("trade P&L must be a non-empty 1-D array (no trades to resample?)")
    if not np.all(np.isfinite(arr)):
        raise DataError("trade P&L contains NaN or infinity")
    if spec.method not in METHODS:
        raise DataError(f"bootstrap method {spec.method!r} is not one of {METHODS}")
    if not 1 <= spec.mean_block < math.inf:  # NaN and infinity too (round() raised)
        raise DataError(f"bootstrap mean_block must be a finite number >= 1 "
                        f"(got {spec.mean_block})")
    if spec.n_paths < 1:
        raise DataError("bootstrap n_paths must be >= 1")
    if spec.n_trades is not None and spec.n_trades < 1:  # 0 silently meant "as realised"
        raise DataError(f"bootstrap n_trades must be >= 1 or unset (got {spec.n_trades})")
    if not 0 < spec.ruin_fraction <= 1:
        raise DataError("bootstrap ruin_fraction must be in (0, 1]")
    if not 0 < spec.initial_capital < math.inf:  # else every path was "ruined" at once
        raise DataError(f"bootstrap initial_capital must be a finite number > 0 "
                        f"(got {spec.initial_capital})")
    n_trades = arr.size if spec.n_trades is None else spec.n_trades
    return arr, int(n_trades)


def _block_len(mean_block: float, n_trades: int) -> int:
    """The block method's fixed block length: ``mean_block`` rounded, at most
    ``n_trades`` (a block as long as the path is the whole path, so a longer one changes
    nothing; ``mean_block = 1e300`` -- a valid setting -- overflowed the kernel's int64 and
    died with a numba TypingError)."""
    return max(1, min(round(mean_block), n_trades))


def bootstrap_paths(pnl: np.ndarray, spec: BootstrapSpec, *, path_offset: int = 0,
                    n_paths: int | None = None) -> BootstrapPaths:
    """Resample ``pnl`` into paths ``path_offset .. path_offset + n_paths`` (numba, parallel)."""
    arr, n_trades = _validate(pnl, spec)
    count = spec.n_paths if n_paths is None else n_paths
    max_dd = np.empty(count)
    final = np.empty(count)
    ruined = np.empty(count, dtype=np.bool_)
    sharpe = np.empty(count)
    _bootstrap_kernel(arr, count, n_trades, 1.0 / spec.mean_block,
                      _block_len(spec.mean_block, n_trades), spec.method == STATIONARY,
                      np.uint64(spec.seed % 2**64), path_offset, spec.initial_capital,
                      spec.initial_capital * (1.0 - spec.ruin_fraction),
                      max_dd, final, ruined, sharpe)
    return BootstrapPaths(max_dd, final, ruined, sharpe)


def bootstrap_batch(task: tuple[np.ndarray, BootstrapSpec, int, int]) -> BootstrapPaths:
    """One batch ``(pnl, spec, path_offset, n_paths)``: the executor's unit of bootstrap work."""
    pnl, spec, offset, count = task
    return bootstrap_paths(pnl, spec, path_offset=offset, n_paths=count)


def batch_tasks(pnl: np.ndarray, spec: BootstrapSpec,
                batches: int) -> list[tuple[np.ndarray, BootstrapSpec, int, int]]:
    """Split ``spec.n_paths`` into ``batches`` contiguous path ranges."""
    edges = np.linspace(0, spec.n_paths, max(1, min(batches, spec.n_paths)) + 1).astype(int)
    return [(pnl, spec, int(a), int(b - a)) for a, b in itertools.pairwise(edges)]


def bootstrap_indices(n: int, spec: BootstrapSpec, n_trades: int, *, path_offset: int = 0,
                      n_paths: int | None = None) -> np.ndarray:
    """The (paths x trades) resample indices the kernel uses (for tests and audits)."""
    count = spec.n_paths if n_paths is None else n_paths
    out = np.empty((count, n_trades), dtype=np.int64)
    _indices_kernel(n, count, n_trades, 1.0 / spec.mean_block,
                    _block_len(spec.mean_block, n_trades), spec.method == STATIONARY,
                    np.uint64(spec.seed % 2**64), path_offset, out)
    return out


def path_stats_numpy(pnl: np.ndarray, indices: np.ndarray, initial: float,
                     ruin_level: float) -> BootstrapPaths:
    """Plain numpy statistics of resampled paths given their indices (reference)."""
    draws = np.asarray(pnl, dtype=np.float64)[indices]
    equity = initial + np.cumsum(draws, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), initial)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - equity) / peak, 1.0)
    max_dd = np.maximum(dd.max(axis=1), 0.0)
    ruined = np.asarray((equity <= ruin_level).any(axis=1))
    sd = draws.std(axis=1, ddof=1) if draws.shape[1] > 1 else np.zeros(draws.shape[0])
    rms = np.sqrt(np.mean(draws * draws, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > _FLAT_SD * rms, draws.mean(axis=1) / sd, 0.0)
    return BootstrapPaths(max_dd, equity[:, -1].copy(), ruined, sharpe)


def stationary_indices_numpy(n: int, n_paths: int, n_trades: int, mean_block: float,
                             rng: np.random.Generator) -> np.ndarray:
    """Vectorised numpy stationary-bootstrap indices (reference; numpy's own RNG)."""
    new_block = rng.random((n_paths, n_trades)) < 1.0 / mean_block
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(n_paths, n_trades))
    t = np.broadcast_to(np.arange(n_trades), (n_paths, n_trades))
    block_start_t = np.maximum.accumulate(np.where(new_block, t, 0), axis=1)
    start_idx = np.take_along_axis(starts, block_start_t, axis=1)
    return (start_idx + (t - block_start_t)) % n


def bootstrap_numpy(pnl: np.ndarray, spec: BootstrapSpec) -> BootstrapPaths:
    """The whole bootstrap in plain numpy (the benchmark's reference; stationary only)."""
    arr, n_trades = _validate(pnl, spec)
    idx = stationary_indices_numpy(arr.size, spec.n_paths, n_trades, spec.mean_block,
                                   np.random.default_rng(spec.seed))
    return path_stats_numpy(arr, idx, spec.initial_capital,
                            spec.initial_capital * (1.0 - spec.ruin_fraction))


@attrs.frozen
class BootstrapSummary:
    """Distribution summary and the fragility verdict of a trade bootstrap."""

    n_paths: int
    n_trades: int
    method: str
    ruin_probability: float
    survival: float  # share of paths neither ruined nor below the starting capital
    max_drawdown_q: dict[str, float]  # quantiles p05/p50/p95/p99
    final_equity_q: dict[str, float]
    sharpe_q: dict[str, float]
    fragile: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return attrs.asdict(self)


_QUANTILES = {"p05": 0.05, "p50": 0.50, "p95": 0.95, "p99": 0.99}


def summarise(paths: BootstrapPaths, spec: BootstrapSpec, n_trades: int, *,
              min_survival: float = 0.8, max_ruin: float = 0.05) -> BootstrapSummary:
    """Quantiles, ruin probability and survival; fragile when survival or ruin miss the bars."""
    def q(a: np.ndarray) -> dict[str, float]:
        return {k: float(np.quantile(a, v)) for k, v in _QUANTILES.items()}

    ruin = float(paths.ruined.mean())
    survival = float(np.mean(~paths.ruined & (paths.final_equity > spec.initial_capital)))
    reasons = []
    if survival < min_survival:
        reasons.append(f"only {survival:.1%} of {len(paths.ruined)} resampled paths end above "
                       f"the starting capital without ruin (need {min_survival:.0%})")
    if ruin > max_ruin:
        reasons.append(f"ruin probability {ruin:.1%} exceeds {max_ruin:.0%} "
                       f"(ruin = losing {spec.ruin_fraction:.0%} of capital)")
    return BootstrapSummary(len(paths.ruined), n_trades, spec.method, ruin, survival,
                            q(paths.max_drawdown), q(paths.final_equity), q(paths.sharpe),
                            bool(reasons), "; ".join(reasons) or "robust")
