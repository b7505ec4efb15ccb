"""The compiled sweep path: a whole parameter grid of a vectorisable strategy in one
numba call, fill for fill the event loop's.

**Declaration.**  :data:`VECTORISABLE` maps a registered strategy name to its kernel
(today ``ma_cross`` -> :mod:`argus_lab.sma_kernel`); a strategy class may also say
``vectorisable = "<kernel>"``.  Each kernel in :data:`KERNELS` names the one class whose
behaviour it reproduces, so a subclass or a look-alike registered under the same name
never borrows it.  Anything else runs on the event loop.

**When a config qualifies** (:func:`plan`; otherwise the reason is given):
one strategy slot, a declared strategy (the core's own class), no scanners, no
``[run] capital``; the ``replay`` venue over ``bars_csv``; tick and lot powers of
ten, every close on the tick; the ``fixed_fraction`` sizer; a plain bps fee schedule
(no fixed or per-unit fee); latency shorter than the bar spacing; a
``bar_depth_fraction`` of at most 1/5 (above it the bar's volume caps the five synthetic
levels); and risk checks the kernel models:

* ``per_play_cap`` -- exactly (the shrink to ``cap / price`` at 1e-8, then the
  broker's lot floor);
* ``consecutive_losses`` -- exactly (groups of fills per timestamp, the REDUCING latch);
* ``max_position`` -- only with no limit set (it then never binds);
* ``order_rate`` -- when bars are at least a minute apart (one order per bar can then
  never reach the limit);
* ``max_drawdown``, ``daily_loss_limit``, ``gross_exposure`` -- watched: a point that
  comes within reach of one is run on the event loop instead (the kill switch's
  flattening is the loop's business).

**Why the fills are exact.**  Fill prices depend on the bar, not on the grid point:
each bar's synthetic ladder (the broker's float arithmetic, then ``Decimal(repr())``,
slippage and the tick rounding against the trader) is priced once per sweep, in
floats where the tick is clearly decided and with the broker's own Decimal steps
where it is not (:func:`_ladder`); each bar's depth is the broker's
``lot_floor(Decimal(repr(volume * fraction)))``.  In the kernel, quantities are whole
1e-8 units, cash whole units of ``10**-(tick decimals + 8)``, so every notional, fee
(rounded half-even to 1e-8, like ``quantize``) and equity row is the loop's Decimal
value exactly; the sizer's and the cap's ``floor(equity x fraction / price)`` is
computed in integers (Decimal's 28 digits cannot round a quotient of this size across
a 1e-8 step unless it is exact).  Equity rows convert to float like the ledger's text
does (correctly rounded), so returns and every metric are the loop's bit for bit.
The tests compare both paths' fill lists, final equity and metrics
(``tests/test_lab_compiled.py``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core import (
    Bar,
    Config,
    FeeSchedule,
    Runner,
    Side,
    apply_overrides,
    canonical_json,
    metrics,
    plugin_settings,
)

#: Registered strategy name -> kernel name.  A strategy class can declare itself too,
#: with a class attribute ``vectorisable = "<kernel>"`` (honoured for the class the
#: kernel names in KERNELS).
VECTORISABLE: dict[str, str] = {"ma_cross": "sma_cross"}
#: Kernels this lab has: the strategy class each one reproduces (module, class) and the
#: settings table its (fast, slow) live in.
KERNELS: dict[str, tuple[str, str, str]] = {
    "sma_cross": ("argus_core.builtins.example_strategies", "MovingAverageCross", "example")}

COMPILED, EVENT_LOOP = "compiled", "event loop"
_FAST, _SLOW = "fast", "slow"
_LEVELS = 5
_MODELLED_CHECKS = {"per_play_cap", "consecutive_losses", "max_position", "order_rate",
                    "max_drawdown", "daily_loss_limit", "gross_exposure"}
_MAX_I64 = 2**62


class NotVectorisable(Exception):
    """A config or point the kernel cannot reproduce; the message says why."""


@attrs.frozen
class Prepared:
    """One bar series and everything about a config that does not vary with (fast, slow)."""

    strategy_table: str  # the strategy's settings table, e.g. "example"
    settings_class: type
    ts: np.ndarray
    close: np.ndarray
    close_t: np.ndarray
    buy_px: np.ndarray
    sell_px: np.ndarray
    depth8: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    pt: int
    starting_cash: Decimal


def _runner_parts(config: Config) -> dict[str, Any]:
    """Build the run's components the way a backtest would (in a throwaway folder) and
    keep what the kernel needs."""
    with tempfile.TemporaryDirectory(prefix="argus-lab-plan-") as tmp:
        runner = Runner(config, Path(tmp))
        try:
            asm = runner.asm
            venue = asm.venue
            strategies = dict(asm.strategies)
            host_plugin = {name: asm.ctx.host.get("strategy", name).plugin
                           for name in strategies}
            instrument = getattr(venue, "instrument", None)
            fees = runner.broker.fees(instrument.id) if instrument else None
            return {"venue": venue, "strategies": strategies, "plugins": host_plugin,
                    "sizer": asm.sizer, "checks": list(asm.risk_checks),
                    "scanners": list(asm.scanners), "instrument": instrument, "fees": fees}
        finally:
            runner.close()  # a Runner that never runs: give its folder back


def _power_of_ten(step: Decimal, what: str) -> int:
    """Decimals of a tick or lot that is ``10**-d`` (d >= 0)."""
    sign, digits, exponent = step.normalize().as_tuple()
    if sign or digits != (1,) or not isinstance(exponent, int) or exponent > 0:
        raise NotVectorisable(f"the {what} {step} is not a power of ten at most 1")
    return -exponent


def _ratio(value: Decimal, scale: int = 1) -> tuple[int, int]:
    """``value / scale`` as a reduced integer fraction."""
    f = Fraction(value) / scale
    return f.numerator, f.denominator


def _tick_round(price: Decimal, side: Side, tick: Decimal) -> Decimal:
    """The paper broker's rounding onto the tick, against the trader (its ``_tick_round``)."""
    steps = price / tick
    nearest = steps.to_integral_value()
    if abs(steps - nearest) <= Decimal("1e-9"):
        return nearest * tick
    return steps.to_integral_value(rounding=ROUND_CEILING if side is Side.BUY
                                   else ROUND_FLOOR) * tick


def _ladder(opens: np.ndarray, half_spread: float, slip: Decimal, pt: int,
            side: Side) -> np.ndarray:
    """Fill prices in ticks of every bar's synthetic levels for ``side``: floats where the
    tick is clearly decided, the broker's Decimal steps where it is not."""
    sign = 1.0 if side is Side.BUY else -1.0
    tick = Decimal(1).scaleb(-pt)
    out = np.empty((opens.size, _LEVELS), dtype=np.int64)
    factor = 1 + slip if side is Side.BUY else 1 - slip  # slippage is adverse
    slip_f = float(factor)
    for k in range(_LEVELS):
        level = opens * (1.0 + sign * half_spread * (2 * k + 1))  # the broker's floats
        steps = level * slip_f * 10.0**pt
        nearest = np.rint(steps)
        if side is Side.BUY:
            decided = np.where(np.abs(steps - nearest) <= 1e-9, nearest, np.ceil(steps))
        else:
            decided = np.where(np.abs(steps - nearest) <= 1e-9, nearest, np.floor(steps))
        # Float error in `steps` is ~1e-15 relative; near a tick or the 1e-9 band, redo
        # it with the broker's Decimals.
        unsure = np.abs(steps - nearest) <= 1e-9 + np.abs(steps) * 4e-15 + 1e-12
        out[:, k] = decided.astype(np.int64)
        for i in np.flatnonzero(unsure):
            px = _tick_round(Decimal(repr(float(level[i]))) * factor, side, tick)
            out[i, k] = int(px.scaleb(pt))
    return out


def _depths(volumes: np.ndarray, fraction: float, lot8: int) -> np.ndarray:
    """Each bar's depth per level in 1e-8 units, floored to the lot (the broker's
    ``_lot_floor(Decimal(repr(volume * fraction)))``)."""
    out = np.empty(volumes.size, dtype=np.int64)
    lot = Decimal(lot8).scaleb(-8)
    for i, v in enumerate((volumes * fraction).tolist()):
        lots = (Decimal(repr(v)) / lot).to_integral_value(rounding=ROUND_FLOOR)
        out[i] = int(lots) * lot8
    return out


def declared_kernel(strategy: object, name: str) -> str | None:
    """The kernel a strategy is vectorisable by (its class attribute, else the registry),
    or None."""
    kernel = getattr(type(strategy), "vectorisable", None) or VECTORISABLE.get(name)
    if kernel not in KERNELS:
        return None
    module, cls, _table = KERNELS[kernel]
    kind = type(strategy)
    if (kind.__module__, kind.__name__) != (module, cls):
        return None  # a different class under the same name: not what the kernel mirrors
    return kernel


def prepare(config: Config) -> Prepared:
    """Check that ``config`` qualifies and load its bars and rules for the kernel;
    :class:`NotVectorisable` says why not."""
    if sys.version_info >= (3, 12):
        raise NotVectorisable("Python 3.12+ sums floats with compensation; the kernel "
                              "mirrors 3.11's plain sum")
    run = config.run
    if config.argus.mode not in ("replay", "paper"):
        raise NotVectorisable(f"mode {config.argus.mode!r} is not a backtest")
    if len(run.strategies) != 1:
        raise NotVectorisable(f"{len(run.strategies)} strategy slots (the kernel runs one)")
    if run.scanners:
        raise NotVectorisable("scanners are configured")
    if run.capital:
        raise NotVectorisable("[run] capital splits the account into books")
    if run.venue != "replay":
        raise NotVectorisable(f"venue {run.venue!r} (the kernel replays bars_csv only)")
    parts = _runner_parts(config)
    name = run.strategies[0]
    strategy = parts["strategies"][name]
    kernel = declared_kernel(strategy, name)
    if kernel is None or parts["plugins"][name] != KERNELS[kernel][2]:
        raise NotVectorisable(f"strategy {name!r} declares no kernel")
    settings = strategy.s
    venue = parts["venue"]
    if type(venue).__module__ != "argus_core.builtins.replay_venue":
        raise NotVectorisable(f"venue {run.venue!r} is not the core's replay venue")
    if getattr(venue.s, "bars_csv", None) is None:
        raise NotVectorisable("the replay is not of bars_csv")
    instrument = parts["instrument"]
    if settings.instrument_id not in (None, instrument.id):
        raise NotVectorisable("the strategy is limited to another instrument")
    sizer = parts["sizer"]
    if (type(sizer).__module__, type(sizer).__name__) != (
            "argus_core.builtins.sizers", "FixedFraction"):
        raise NotVectorisable(f"sizer {run.sizer!r} (the kernel sizes fixed_fraction only)")
    fees: FeeSchedule = parts["fees"]
    if type(fees) is not FeeSchedule or fees.fixed_per_fill or fees.per_unit:
        raise NotVectorisable("the fee schedule is not plain basis points")
    pt = _power_of_ten(instrument.tick_size, "tick")
    lt = _power_of_ten(instrument.lot_size, "lot")
    if lt > 8:
        raise NotVectorisable(f"the lot {instrument.lot_size} is finer than 1e-8")
    lot8 = 10 ** (8 - lt)
    min8_exact = instrument.min_size.scaleb(8)
    min8 = int(min8_exact.to_integral_value(rounding=ROUND_CEILING))
    bars = [ev for ev in venue.events()]
    if not bars or any(type(b) is not Bar for b in bars):
        raise NotVectorisable("the replay has events other than bars, or none")
    ts = np.array([b.ts_ns for b in bars], dtype=np.int64)
    close = np.array([b.close for b in bars], dtype=np.float64)
    opens = np.array([b.open for b in bars], dtype=np.float64)
    volume = np.array([b.volume for b in bars], dtype=np.float64)
    close_t = np.rint(close * 10.0**pt).astype(np.int64)
    if np.any(close_t / 10.0**pt != close) or np.any(close_t >= 10**15):
        raise NotVectorisable("a close is not on the tick")
    paper = config.paper
    latency_ns = paper.latency_ms * 1_000_000
    if ts.size > 1 and latency_ns >= int(np.diff(ts).min()):
        raise NotVectorisable("latency reaches past the next bar")
    if paper.bar_depth_fraction * _LEVELS > 1:
        # The broker caps a bar's fills at its volume; the kernel's five levels of
        # volume x fraction reach it only above 1/5, which it does not model.
        raise NotVectorisable(f"bar_depth_fraction {paper.bar_depth_fraction} over "
                              f"1/{_LEVELS}: the bar's volume caps the synthetic ladder")
    cash0 = run.starting_cash.scaleb(pt + 8)
    if cash0 != cash0.to_integral_value() or cash0 > 10**18:
        raise NotVectorisable("starting cash beyond the kernel's integer headroom")
    fee_num, fee_den = _ratio(fees.taker_bps * paper.cost_multiplier, 10 ** (pt + 4))
    frac_num, frac_den = _ratio(sizer.s.fraction)
    per_play, pp_num, pp_den, consec, max_losses = 0, 0, 1, 0, 0
    floats = [-1.0, -1.0, -1.0]  # watched limits; -1: check not enabled
    for check in parts["checks"]:
        cname = check.name
        if type(check).__module__ != "argus_core.builtins.risk_checks" or \
                cname not in _MODELLED_CHECKS:
            raise NotVectorisable(f"risk check {cname!r} is not modelled by the kernel")
        s = check.s
        if cname == "per_play_cap":
            per_play = 1
            pp_num, pp_den = _ratio(s.per_play_fraction)
        elif cname == "consecutive_losses":
            consec, max_losses = 1, s.max_consecutive_losses
        elif cname == "max_position" and (s.max_position_qty is not None
                                          or s.max_position_notional is not None):
            raise NotVectorisable("max_position has a limit set")
        elif cname == "order_rate" and ts.size > 1 and int(np.diff(ts).min()) < 60 * 10**9:
            raise NotVectorisable("bars less than a minute apart (order_rate could bind)")
        elif cname == "max_drawdown":
            floats[0] = float(s.max_drawdown_fraction)
        elif cname == "daily_loss_limit":
            floats[1] = float(s.daily_loss_fraction)
        elif cname == "gross_exposure":
            floats[2] = float(s.max_gross_exposure_fraction)
    max_t = int(close_t.max())
    if (fee_num * fee_den >= _MAX_I64 or frac_num * frac_den * max_t >= _MAX_I64
            or pp_num * pp_den * max_t >= _MAX_I64 or fee_num > 10**6):
        raise NotVectorisable("fee or fractions beyond the kernel's integer headroom")
    slip = paper.slippage_bps * paper.cost_multiplier / Decimal(10_000)
    half_spread = float(paper.bar_spread_bps) / 10_000.0
    return Prepared(
        parts["plugins"][name], type(settings), ts, close, close_t,
        _ladder(opens, half_spread, slip, pt, Side.BUY),
        _ladder(opens, half_spread, slip, pt, Side.SELL),
        _depths(volume, paper.bar_depth_fraction, lot8),
        np.array([int(cash0), lot8, min8, 10**pt, fee_num, fee_den, frac_num, frac_den,
                  per_play, pp_num, pp_den, consec, max_losses,
                  latency_ns], dtype=np.int64),
        np.array(floats, dtype=np.float64), pt, run.starting_cash)


def point_params(prep: Prepared, config: Config) -> tuple[int, int]:
    """(fast, slow) of one point's config, validated by the strategy's own settings class."""
    settings = plugin_settings(config, prep.strategy_table, prep.settings_class)
    return int(getattr(settings, _FAST)), int(getattr(settings, _SLOW))


@attrs.frozen
class KernelPoint:
    """One point's kernel result: fills, trips, equity rows and totals (integers)."""

    status: int
    fills: np.ndarray  # (k, 5): bar, side, price ticks, q8, fee in 1e-8
    trips_u: np.ndarray  # per round trip, P&L in U
    equity8: np.ndarray | None
    totals: np.ndarray


def run_kernel(prep: Prepared, params: Sequence[tuple[int, int]], *,
               want_equity: bool = True, chunk: int = 64) -> list[KernelPoint]:
    """Run the kernel for every (fast, slow), ``chunk`` points per call (bounded
    memory); points whose fill buffers filled up run again with room."""
    out: list[KernelPoint] = []
    cap = max(64, prep.ts.size // 8)
    for lo in range(0, len(params), chunk):
        part = list(params[lo:lo + chunk])
        got = _kernel_call(prep, part, want_equity, cap)
        full = [i for i, kp in enumerate(got) if kp is None]
        if full:
            room = max(int(got_n) for got_n in _counts(prep, [part[i] for i in full])) + 1
            again = _kernel_call(prep, [part[i] for i in full], want_equity, room)
            for i, kp in zip(full, again, strict=True):
                got[i] = kp
        out.extend(kp for kp in got if kp is not None)
    return out


def _counts(prep: Prepared, params: list[tuple[int, int]]) -> list[int]:
    """Fills and trips each point needs (a run without equity rows and no buffer)."""
    from argus_lab.sma_kernel import simulate_grid

    m = len(params)
    n_fills = np.zeros(m, dtype=np.int64)
    n_trips = np.zeros(m, dtype=np.int64)
    simulate_grid(prep.close, prep.close_t, prep.ts, prep.buy_px, prep.sell_px, prep.depth8,
                  np.array([p[0] for p in params], dtype=np.int64),
                  np.array([p[1] for p in params], dtype=np.int64), prep.ints, prep.floats,
                  False, 0, np.zeros((m, 0), dtype=np.int64),
                  np.zeros((m, 0, 5), dtype=np.int64), n_fills,
                  np.zeros((m, 0), dtype=np.int64), n_trips,
                  np.zeros((m, 5), dtype=np.int64), np.zeros(m, dtype=np.int64))
    return [max(int(a), int(b)) for a, b in zip(n_fills, n_trips, strict=True)]


def _kernel_call(prep: Prepared, params: list[tuple[int, int]], want_equity: bool,
                 cap: int) -> list[KernelPoint | None]:
    """One kernel call; None for a point whose buffers were too small."""
    from argus_lab.sma_kernel import FULL, simulate_grid

    m, n = len(params), prep.ts.size
    equity8 = np.zeros((m, n) if want_equity else (m, 0), dtype=np.int64)
    fills = np.zeros((m, cap, 5), dtype=np.int64)
    trips = np.zeros((m, cap), dtype=np.int64)
    n_fills = np.zeros(m, dtype=np.int64)
    n_trips = np.zeros(m, dtype=np.int64)
    totals = np.zeros((m, 5), dtype=np.int64)
    status = np.zeros(m, dtype=np.int64)
    simulate_grid(prep.close, prep.close_t, prep.ts, prep.buy_px, prep.sell_px, prep.depth8,
                  np.array([p[0] for p in params], dtype=np.int64),
                  np.array([p[1] for p in params], dtype=np.int64), prep.ints, prep.floats,
                  want_equity, cap, equity8, fills, n_fills, trips, n_trips, totals, status)
    return [None if status[i] == FULL else KernelPoint(
        int(status[i]), fills[i, :n_fills[i]].copy(), trips[i, :n_trips[i]].copy(),
        equity8[i].copy() if want_equity else None, totals[i].copy()) for i in range(m)]


def point_metrics(prep: Prepared, kp: KernelPoint) -> tuple[dict[str, Any], np.ndarray,
                                                            np.ndarray, np.ndarray]:
    """(metrics, returns, return stamps, play P&Ls) of a kernel point, computed as
    :func:`argus_core.metrics.compute_metrics` computes them from a ledger."""
    assert kp.equity8 is not None
    eq = kp.equity8.astype(np.float64) / 1e8  # = float(equity text), correctly rounded
    ts = prep.ts
    scale = 10 ** (prep.pt + 8)
    pnls = np.array([int(t) / scale for t in kp.trips_u], dtype=np.float64)
    fees = Decimal(int(kp.totals[2])).scaleb(-8)
    traded = Decimal(int(kp.totals[3]) * 10**12 + int(kp.totals[4])).scaleb(-(prep.pt + 8))
    start = prep.starting_cash
    out: dict[str, Any] = {
        "n_fills": int(kp.fills.shape[0]), "n_trades": int(pnls.size), "fees": float(fees),
        "turnover": float(traded / start) if start else 0.0,
        "win_rate": float(np.mean(pnls > 0)) if len(pnls) else 0.0,
        "expectancy": float(np.mean(pnls)) if len(pnls) else 0.0,
        "total_pnl": float(eq[-1] - float(start)) if len(eq) else 0.0,
        "total_return": float(eq[-1] / float(start) - 1) if len(eq) else 0.0,
        "max_drawdown": float(metrics.drawdown(eq).max()) if len(eq) else 0.0,
    }
    returns = metrics.simple_returns(eq)
    out.update(metrics.return_stats(returns, ts))
    out.update(metrics.growth_stats(eq, ts, out["max_drawdown"]))
    return out, returns, ts[1:].copy(), pnls


def fill_rows(prep: Prepared, kp: KernelPoint) -> list[tuple[int, str, Decimal, Decimal,
                                                             Decimal]]:
    """The kernel's fills as (ts_ns, side, price, quantity, fee) Decimals, for comparing
    with a ledger's."""
    rows = []
    for bar, side, px, q8, fee8 in kp.fills.tolist():
        rows.append((int(prep.ts[bar]), "buy" if side > 0 else "sell",
                     Decimal(px).scaleb(-prep.pt), Decimal(q8).scaleb(-8),
                     Decimal(fee8).scaleb(-8)))
    return rows


def final_equity(prep: Prepared, kp: KernelPoint) -> Decimal:
    """Cash plus the position at the last close, exactly."""
    cash_u, pos8 = int(kp.totals[0]), int(kp.totals[1])
    return Decimal(cash_u + pos8 * int(prep.close_t[-1])).scaleb(-(prep.pt + 8))


# -- planning a sweep -----------------------------------------------------------------

_PREPARED: dict[str, Prepared] = {}  # per process: a worker prepares a series once


def group_key(overrides: dict[str, Any], strategy_table: str) -> str:
    """Overrides other than the strategy's (fast, slow): points sharing them share a
    prepared series."""
    rest = {k: v for k, v in overrides.items()
            if k not in (f"plugins.{strategy_table}.{_FAST}",
                         f"plugins.{strategy_table}.{_SLOW}")}
    return json.dumps(rest, sort_keys=True, default=str) if rest else ""


def prepared(config: Config) -> Prepared:
    """:func:`prepare`, remembered per config and content of its files in this process
    (a worker kept the bars of a file since edited for the next sweep of the config)."""
    from argus_lab.inputs import input_fingerprint

    key = hashlib.sha256((canonical_json(config.without_plugins("lab", "orchestrator"))
                          + input_fingerprint(config)).encode()).hexdigest()
    if key not in _PREPARED:
        if len(_PREPARED) >= 4:  # a few series at a time is plenty
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = prepare(config)
    return _PREPARED[key]


def base_config(config: Config, overrides: dict[str, Any]) -> Config:
    """What :func:`argus_lab.sweep.run_point` backtests for a point: the config without
    the lab's tables, with the overrides, in replay mode."""
    cfg = apply_overrides(config.without_plugins("lab", "orchestrator"), overrides)
    if cfg.argus.mode == "paper":
        cfg = apply_overrides(cfg, {"argus.mode": "replay"})
    return cfg


# -- the sweep's compiled path ----------------------------------------------------------


@attrs.frozen
class CompiledChunk:
    """Points of one sweep that share a bar series and every setting but (fast, slow)
    (picklable: a Dask worker prepares the series once and runs the chunk)."""

    config: Config
    overrides: dict[str, Any]  # the group's overrides (fast/slow aside)
    points: list[tuple[str, int, int]]  # (point id, fast, slow)


@attrs.frozen
class ChunkResult:
    """Outcomes of a chunk's points the kernel vouches for, and the others with why."""

    outcomes: list[Any]  # argus_lab.sweep.PointOutcome
    refused: list[tuple[str, str]]  # (point id, reason): run these on the event loop


def run_compiled_chunk(chunk: CompiledChunk) -> ChunkResult:
    """Run a chunk through the kernel (top level, so executors can ship it)."""
    from argus_lab.sma_kernel import OK, STATUS_REASONS
    from argus_lab.sweep import RESULTS_VERSION, PointOutcome

    prep = prepared(base_config(chunk.config, chunk.overrides))
    kps = run_kernel(prep, [(f, s) for _pid, f, s in chunk.points])
    outcomes, refused = [], []
    for (pid, _f, _s), kp in zip(chunk.points, kps, strict=True):
        if kp.status != OK:
            refused.append((pid, STATUS_REASONS.get(kp.status, f"status {kp.status}")))
            continue
        m, returns, ts, pnls = point_metrics(prep, kp)
        metrics_out: dict[str, Any] = {k: (float(v) if isinstance(v, int | float | Decimal)
                                           else v) for k, v in m.items()}
        metrics_out["results_version"] = RESULTS_VERSION
        metrics_out["engine"] = COMPILED
        outcomes.append(PointOutcome(pid, metrics_out, returns, ts, pnls))
    return ChunkResult(outcomes, refused)


@attrs.frozen
class SweepPlan:
    """Which points of a sweep run compiled (in chunks) and which on the event loop."""

    chunks: list[CompiledChunk]
    loop_ids: dict[str, str]  # point id -> why it runs on the event loop

    @property
    def n_compiled(self) -> int:
        """Points planned for the kernel."""
        return sum(len(c.points) for c in self.chunks)


def plan_sweep(config: Config, points: Sequence[tuple[str, dict[str, Any]]], *,
               chunk_size: int = 64) -> SweepPlan:
    """Split a sweep's ``(point id, overrides)`` into kernel chunks and event-loop points."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    loop_ids: dict[str, str] = {}
    table = _strategy_table(config)
    for pid, overrides in points:
        groups.setdefault(group_key(overrides, table), []).append((pid, overrides))
    chunks: list[CompiledChunk] = []
    for members in groups.values():
        rest = {k: v for k, v in members[0][1].items()
                if k not in (f"plugins.{table}.{_FAST}", f"plugins.{table}.{_SLOW}")}
        try:
            prep = prepared(base_config(config, rest))
        except NotVectorisable as exc:
            loop_ids.update((pid, str(exc)) for pid, _ in members)
            continue
        except Exception as exc:  # an invalid base config: the loop records each point's error
            loop_ids.update((pid, f"the config does not build: {exc}") for pid, _ in members)
            continue
        todo: list[tuple[str, int, int]] = []
        for pid, overrides in members:
            try:
                fast, slow = point_params(prep, base_config(config, overrides))
            except Exception as exc:  # the loop runs it and records the error
                loop_ids[pid] = f"invalid parameters: {exc}"
                continue
            todo.append((pid, fast, slow))
        chunks += [CompiledChunk(config, rest, todo[i:i + chunk_size])
                   for i in range(0, len(todo), chunk_size)]
    return SweepPlan(chunks, loop_ids)


def _strategy_table(config: Config) -> str:
    """The settings table of the config's strategy's declared kernel ("" when none)."""
    names = list(config.run.strategies)
    kernel = VECTORISABLE.get(names[0]) if len(names) == 1 else None
    return KERNELS[kernel][2] if kernel in KERNELS else ""


def engine_note(plan: SweepPlan, refused: dict[str, str], total: int) -> str:
    """One line saying which engine ran how many points, and why any fell back."""
    compiled = plan.n_compiled - len(refused)
    why = {**plan.loop_ids, **refused}
    if not why:
        return f"engine: {COMPILED} for all {total} points"
    reasons: dict[str, int] = {}
    for reason in why.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    listed = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
    return (f"engine: {COMPILED} for {compiled} of {total} points, {EVENT_LOOP} for "
            f"{len(why)} ({listed})")
