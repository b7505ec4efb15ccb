"""``[plugins.lab]``: validated settings of sweeps, walk-forward, bootstrap, gates and the executor.

Example::

    [plugins.lab]
    family = "vrp_put_spread"      # trials are counted per family
    dir = "lab"                    # lab ledger + per-point run folders (relative to the config)
    backtest_gates = true          # `argus backtest` also runs the gates (once per config)

    [plugins.lab.executor]
    kind = "local"                 # local | serial | dask
    max_workers = 2
    # address = "tcp://127.0.0.1:8786"   (kind = "dask")

    [plugins.lab.sweep]
    engine = "auto"                # auto (compiled where the strategy qualifies) | event_loop

    [plugins.lab.sweep.params]
    "plugins.vrp.min_vrp" = { linear = [0.0, 0.04, 3] }       # start, stop, count
    "plugins.vrp.stop_multiple" = { log = [1.5, 3.0, 2] }      # geometric
    "plugins.vrp.short_delta" = { choices = [0.15, 0.25] }

    [plugins.lab.walkforward]
    mode = "rolling"               # rolling | anchored | purged_kfold
    train_bars = 504
    test_bars = 126
    label_horizon = 30             # bars a trade's outcome looks ahead (purging)
    embargo = 5

    [plugins.lab.bootstrap]
    n_paths = 10000
    method = "stationary"
    mean_block = 5

    [plugins.lab.gates]
    cost_multipliers = ["1", "1.25", "1.5"]
    scale_with_costs = ["plugins.vrp.spread_scale"]
    regime_instrument = "vrp_options:SPY"
    max_pbo = 0.5                  # hold unless PBO is below this (0.5 itself holds)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from argus_core import (
    AT_LEAST_ONE,
    FINITE,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    Config,
    ConfigError,
    RangeError,
    in_range,
    optional,
    structure,
)
from argus_lab.executor import ExecutorSettings
from argus_lab.walkforward import MODES

if TYPE_CHECKING:
    from argus_lab.bootstrap import BootstrapSpec

#: Bootstrap resampling methods.  Named here, not in :mod:`argus_lab.bootstrap`, so that
#: validating a config (every run that loads the lab) does not import numba.
STATIONARY, BLOCK = "stationary", "block"
BOOTSTRAP_METHODS = (STATIONARY, BLOCK)

#: Ceilings of the work a config may ask for (memory grows with paths and reps).
MAX_BOOTSTRAP_PATHS = 10_000_000
MAX_BOOTSTRAP_TRADES = 1_000_000
MAX_RC_REPS = 100_000


def _positive_members(instance: Any, attribute: attrs.Attribute, value: list[Decimal]) -> None:
    """A non-empty list of numbers > 0 (cost multipliers)."""
    if not value:
        raise RangeError(attribute.name, "[]", "a non-empty list of numbers in (0, inf)")
    for i, member in enumerate(value):
        if not POSITIVE.contains(member):
            raise RangeError(f"{attribute.name}[{i}]", member, str(POSITIVE))
    if not value[0] >= 1:
        # The first is the base run every other gate judges: below 1 every gate (DSR,
        # walk-forward, bootstrap, PBO...) judged a world cheaper than the configured one.
        raise RangeError(f"{attribute.name}[0]", value[0],
                         "[1, inf) (the base point every gate judges: the configured costs "
                         "or dearer)")


def _even_blocks(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    """An even number of blocks from 2 to 24 (CSCV halves them; C(24, 12) is 2.7M splits)."""
    if not (isinstance(value, int) and 2 <= value <= 24 and value % 2 == 0):
        raise RangeError(attribute.name, value, "an even whole number from 2 to 24")


def _once(values: list[Any]) -> list[Any]:
    """``values`` without repeats (equal as JSON, as point ids are), first kept."""
    seen: set[str] = set()
    out = []
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


@attrs.frozen
class ParamRange:
    """One swept parameter: exactly one of ``linear``/``log`` ([start, stop, count]) or
    ``choices``; ``integer`` rounds linear/log values to whole numbers."""

    linear: list[float] | None = None
    log: list[float] | None = None
    choices: list[Any] | None = None
    integer: bool = False

    def __attrs_post_init__(self) -> None:
        given = [k for k in ("linear", "log", "choices") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of linear = [start, stop, count], "
                             "log = [start, stop, count] or choices = [...]")
        spec = self.linear if self.linear is not None else self.log
        if spec is not None:
            if len(spec) != 3 or not all(math.isfinite(v) for v in spec):
                # NaN / inf ends were swept as NaN / inf parameters
                raise ValueError(f"a range is [start, stop, count] of finite numbers "
                                 f"(got {spec})")
            if int(spec[2]) != spec[2] or spec[2] < 1:
                raise ValueError("a range is [start, stop, count] with a whole count >= 1")
            if spec[2] == 1 and spec[0] != spec[1]:
                # one value from start to stop: stop was silently never swept
                raise ValueError(f"a range of count 1 is one value: start and stop must be "
                                 f"equal (got {spec}); give a count >= 2 or use choices")
            if self.log is not None and (spec[0] <= 0 or spec[1] <= 0):
                raise ValueError("a log range needs start and stop > 0")
        elif not self.choices:
            raise ValueError("choices must not be empty")

    def declared_count(self) -> int:
        """How many values the range asks for (``count``, or the number of choices): an
        upper bound on :meth:`values` (integer ranges drop repeats)."""
        if self.choices is not None:
            return len(self.choices)
        spec = self.linear if self.linear is not None else self.log
        return int(spec[2])  # type: ignore[index]

    def values(self) -> list[Any]:
        """The grid values, in order, each once (a repeat made two tasks of one point id:
        two backtests in one run folder)."""
        return _once(self._all_values())

    def _all_values(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        start, stop, count = self.linear if self.linear is not None else self.log  # type: ignore[misc]
        count = int(count)
        if self.linear is not None:
            vals = np.linspace(start, stop, count)
        else:
            vals = np.geomspace(start, stop, count)
        if self.integer:
            return sorted({round(v) for v in vals})
        # Round away binary noise so overrides and point ids are stable.
        return [float(f"{v:.12g}") for v in vals]


@attrs.frozen
class SweepSettings:
    """``[plugins.lab.sweep]``: the parameter grid (dotted config keys -> ranges)."""

    params: dict[str, ParamRange] = attrs.Factory(dict)
    max_points: int = attrs.field(default=1000, validator=AT_LEAST_ONE)
    # auto: a strategy that declares a kernel runs compiled (argus_lab.compiled), with
    # results identical to the event loop's; event_loop: always a full backtest per point
    engine: str = attrs.field(default="auto",
                              validator=attrs.validators.in_(("auto", "event_loop")))

    def grid(self) -> list[dict[str, Any]]:
        """Cartesian product of the ranges, in a deterministic order (keys sorted).

        The size is checked against ``max_points`` before anything is built: the product of
        the ranges' sizes (each range's values are at most ``max_points`` plus a million,
        so a ``[start, stop, 1e12]`` range is refused before numpy allocates it).  It used
        to build every point first, so a grid of a billion points ran out of memory
        rather than being refused."""
        keys = sorted(self.params)
        ceiling = self.max_points + 1_000_000
        for key in keys:
            declared = self.params[key].declared_count()
            if declared > ceiling:
                raise ConfigError(f"[plugins.lab.sweep] {key} has {declared:,} values, more "
                                  f"than max_points = {self.max_points}; narrow the range")
        values = [self.params[k].values() for k in keys]
        size = math.prod(len(v) for v in values)
        if size > self.max_points:
            raise ConfigError(f"[plugins.lab.sweep] grid has {size:,} points, more than "
                              f"max_points = {self.max_points}; narrow the ranges or raise it")
        points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
        return points or [{}]


@attrs.frozen
class WalkForwardSettings:
    """``[plugins.lab.walkforward]``: fold layout, purging and the stability bars for the gate."""

    mode: str = attrs.field(default="rolling", validator=attrs.validators.in_(MODES))
    train_bars: int = attrs.field(default=504, validator=in_range(2))
    test_bars: int = attrs.field(default=126, validator=AT_LEAST_ONE)
    n_folds: int = attrs.field(default=5, validator=in_range(2))
    label_horizon: int = attrs.field(default=0, validator=NON_NEGATIVE)
    embargo: int = attrs.field(default=0, validator=NON_NEGATIVE)
    # gate: share of folds with positive OOS return
    min_positive_share: float = attrs.field(default=0.5, validator=PROBABILITY)
    # gate: per-bar Sharpe of the stitched OOS record
    min_oos_sharpe: float = attrs.field(default=0.0, validator=FINITE)


@attrs.frozen
class BootstrapSettings:
    """``[plugins.lab.bootstrap]``: trade resampling and the survival bars."""

    # Ceilings on the work asked for: 1e12 paths died with a MemoryError, 1e11 trades a
    # path ran for hours.
    n_paths: int = attrs.field(default=10_000, validator=in_range(1, MAX_BOOTSTRAP_PATHS))
    n_trades: int | None = attrs.field(default=None, validator=in_range(
        1, MAX_BOOTSTRAP_TRADES, optional=True))
    method: str = attrs.field(default=STATIONARY,
                              validator=attrs.validators.in_(BOOTSTRAP_METHODS))
    mean_block: float = attrs.field(default=5.0, validator=in_range(1))
    # ruined when equity falls to (1 - ruin_fraction) x the starting capital
    ruin_fraction: float = attrs.field(default=0.5, validator=FRACTION)
    seed: int = attrs.field(default=0, validator=in_range(0, 2**63 - 1))
    batches: int = attrs.field(default=4, validator=AT_LEAST_ONE)
    min_survival: float = attrs.field(default=0.8, validator=PROBABILITY)
    max_ruin: float = attrs.field(default=0.05, validator=PROBABILITY)

    def spec(self, initial_capital: float) -> BootstrapSpec:
        """The kernel's spec."""
        from argus_lab.bootstrap import BootstrapSpec

        return BootstrapSpec(self.n_paths, self.n_trades, self.method, self.mean_block,
                             initial_capital, self.ruin_fraction, self.seed)


@attrs.frozen
class GateSettings:
    """``[plugins.lab.gates]``: thresholds of the deploy gates."""

    # Each point multiplies [paper] cost_multiplier (fees and slippage) by one of these;
    # the first (at least 1) is the base run every other gate judges, the largest the one
    # the cost-sensitivity gate judges.
    cost_multipliers: list[Decimal] = attrs.field(
        factory=lambda: [Decimal("1"), Decimal("1.25"), Decimal("1.5")],
        validator=_positive_members)
    # Dotted config keys of further costs scaled by each multiplier, e.g. a quote model's
    # bid/ask spread ("plugins.vrp.spread_scale"): on a venue whose spread is the main cost,
    # scaling fees alone would make the gate toothless.
    scale_with_costs: list[str] = attrs.Factory(list)
    # annualised; kill below
    min_sharpe_at_max_cost: float = attrs.field(default=0.0, validator=FINITE)
    # deflated Sharpe ratios are probabilities; deploy at or above, kill below dsr_kill
    dsr_deploy: float = attrs.field(default=0.95, validator=PROBABILITY)
    dsr_kill: float = attrs.field(default=0.5, validator=PROBABILITY)
    # White RC / SPA p-value needed to deploy
    rc_alpha: float = attrs.field(default=0.10, validator=FRACTION)
    rc_reps: int = attrs.field(default=1000, validator=in_range(1, MAX_RC_REPS))
    rc_block: int | None = attrs.field(default=None, validator=optional(AT_LEAST_ONE))
    regime_signal: str = "vol_regime"  # Signal name the run records (else: classify bars)
    regime_instrument: str = ""  # whose regime labels the returns; empty: gate not run (hold)
    regime_min_bars: int = attrs.field(default=20, validator=in_range(2))
    # kill when any regime subset draws down more
    max_regime_drawdown: float = attrs.field(default=0.35, validator=FRACTION)
    # kill when any regime subset's Sharpe is lower (-inf: never)
    min_regime_sharpe: float = attrs.field(default=-math.inf, validator=in_range(-math.inf))
    # fewer realised trades: hold (too little evidence)
    min_trades: int = attrs.field(default=20, validator=NON_NEGATIVE)
    # probability of backtest overfitting of taking the sweep's best variant (CSCV over
    # pbo_blocks blocks of the aligned returns): pass only below, hold at or above (a
    # choice as likely as not to be overfit must not pass)
    max_pbo: float = attrs.field(default=0.5, validator=PROBABILITY)
    pbo_blocks: int = attrs.field(default=16, validator=_even_blocks)

    def __attrs_post_init__(self) -> None:
        if self.dsr_kill > self.dsr_deploy:
            raise ValueError(f"dsr_kill ({self.dsr_kill}) must not exceed dsr_deploy "
                             f"({self.dsr_deploy})")


@attrs.frozen
class LabSettings:
    """The whole ``[plugins.lab]`` table."""

    family: str = ""
    dir: str = "lab"
    periods_per_year: float = attrs.field(default=252.0, validator=POSITIVE)
    # `argus backtest` runs the deploy gates when no verdict is stored for this exact
    # config, so its report carries the verdict (off: the report shows the stored one).
    backtest_gates: bool = False
    executor: ExecutorSettings = attrs.Factory(ExecutorSettings)
    sweep: SweepSettings = attrs.Factory(SweepSettings)
    walkforward: WalkForwardSettings = attrs.Factory(WalkForwardSettings)
    bootstrap: BootstrapSettings = attrs.Factory(BootstrapSettings)
    gates: GateSettings = attrs.Factory(GateSettings)


def lab_settings(config: Config) -> LabSettings:
    """Validate ``[plugins.lab]``; errors name the file and the ``plugins.lab.*`` key."""
    where = str(config.path) if config.path else "<config>"
    settings: LabSettings = structure(config.plugins.get("lab", {}), LabSettings, where,
                                      prefix="plugins.lab", overrides=config.overrides)

    def given(key: str) -> str:  # a `--set` names itself, not the file it did not come from
        return config.overrides.get(key, where)

    # ExecutorSettings lives with the executors; its one number is checked here.
    workers = settings.executor.max_workers
    if workers is not None and workers < 1:
        raise ConfigError(f"{given('plugins.lab.executor.max_workers')}: max_workers = "
                          f"{workers} is outside the allowed range [1, inf) or unset @ "
                          f"plugins.lab.executor")
    for key in settings.gates.scale_with_costs:
        if "." not in key:
            raise ConfigError(f"{given('plugins.lab.gates.scale_with_costs')}: "
                              f"plugins.lab.gates.scale_with_costs: {key!r} is not a "
                              f"dotted config key (e.g. 'plugins.vrp.spread_scale')")
    for key in settings.sweep.params:
        if "." not in key:
            raise ConfigError(f"{given('plugins.lab.sweep.params')}: plugins.lab.sweep.params: "
                              f"{key!r} is not a dotted config key (e.g. 'plugins.vrp.min_vrp')")
    return settings


def judging_fingerprint(settings: LabSettings) -> str:
    """A short hash of every ``[plugins.lab]`` setting that changes a verdict (the sweep,
    walk-forward, bootstrap and gate tables and the family), so a verdict is shown only
    under the thresholds it was judged by: the gate tables are not part of the config hash
    a verdict is stored under, so one judged under ``dsr_deploy = 0`` was shown as the
    verdict of a config asking for 0.95.  Where the work runs (executor, dir) is left out."""
    judged = {"family": settings.family, **{
        name: attrs.asdict(getattr(settings, name))
        for name in ("sweep", "walkforward", "bootstrap", "gates")}}
    text = json.dumps(judged, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def family_of(config: Config, settings: LabSettings) -> str:
    """The strategy family: ``[plugins.lab] family`` or the first configured strategy's name."""
    if settings.family:
        return settings.family
    if config.run.strategies:
        return config.run.strategies[0]
    raise ConfigError(f"{config.path or '<config>'}: set [plugins.lab] family "
                      f"(no [run] strategies)")


def lab_dir(config: Config, settings: LabSettings) -> Path:
    """Absolute lab folder."""
    return config.resolve_path(settings.dir)
