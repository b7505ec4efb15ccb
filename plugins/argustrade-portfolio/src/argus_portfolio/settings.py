"""``[plugins.portfolio]``: every setting of the allocator and its caps, range-checked.

Fractions are of current equity; volatilities are annualised.  An out-of-range value is
refused at start-up with a :class:`argus_core.RangeError` naming the key (dict entries as
``key.entry``), before any order can exist.
"""

from __future__ import annotations

from typing import Any

import attrs

from argus_core import FRACTION, POSITIVE, PROBABILITY, RangeError, in_range

#: A cap on a sum of weights or of position notionals: a multiple of equity, above 0.
_MULTIPLE = in_range(0, 100, lo_open=True)


def _each(rng: Any) -> Any:
    """An attrs validator applying ``rng`` to every value of a dict, naming ``key.entry``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: dict[str, Any]) -> None:
        for entry, item in value.items():
            if isinstance(item, bool) or not isinstance(item, int | float) \
                    or not rng.contains(item):
                raise RangeError(f"{attribute.name}.{entry}", item, str(rng))

    return check


@attrs.frozen
class StrategyModel:
    """``[plugins.portfolio.strategies.NAME]``: what the allocator assumes of one strategy
    until observed returns replace it: its annualised volatility, its forecast (expected
    Sharpe ratio; negative counts as 0), its health in [0, 1] and an optional family."""

    vol: float = attrs.field(default=0.2, validator=in_range(0, 10, lo_open=True))
    forecast: float = attrs.field(default=1.0, validator=in_range(-100, 100))
    health: float = attrs.field(default=1.0, validator=PROBABILITY)
    family: str | None = None


@attrs.frozen
class DriftSettings:
    """``[plugins.portfolio.drift]``: the live-vs-backtest slippage drift monitor (the
    ``slippage_drift`` risk check; see :mod:`argus_portfolio.drift` and the README).

    A strategy is moved to REDUCING when, over its last ``window`` taker fills (at least
    ``min_fills``), the mean slippage beyond the half-spread exceeds the assumed slippage
    by more than ``k`` standard errors and by more than ``min_excess_bps``.
    """

    min_fills: int = attrs.field(default=20, validator=in_range(2, 100_000))
    window: int = attrs.field(default=50, validator=in_range(2, 100_000))
    # k >= 1: one outlier alone can never trip the guard (its t-statistic tends to 1).
    k: float = attrs.field(default=3.0, validator=in_range(1, 100))
    min_excess_bps: float = attrs.field(default=1.0, validator=in_range(0, 10_000))
    # None: the run's [paper] slippage_bps x cost_multiplier (what the replay charges)
    assumed_slippage_bps: float | None = attrs.field(default=None,
                                                     validator=in_range(0, 10_000,
                                                                        optional=True))
    # per strategy slot, overriding assumed_slippage_bps
    strategy_slippage_bps: dict[str, float] = attrs.field(factory=dict,
                                                          validator=_each(in_range(0, 10_000)))
    # None: the run's [paper] bar_spread_bps, the half-spread a bar replay charges; used
    # for fills whose order had no quoted spread at arrival (bar data, one-sided book)
    bar_half_spread_bps: float | None = attrs.field(default=None,
                                                    validator=in_range(0, 10_000,
                                                                       optional=True))

    def __attrs_post_init__(self) -> None:
        if self.window < self.min_fills:
            raise RangeError("window", self.window,
                             f"[{self.min_fills}, 100000] (at least min_fills)")


_VERDICTS = ("pass", "fail", "unknown", "deploy", "hold", "kill")


def _verdicts(instance: Any, attribute: attrs.Attribute[Any], value: dict[str, str]) -> None:
    for slot, verdict in value.items():
        if verdict not in _VERDICTS:
            raise RangeError(f"{attribute.name}.{slot}", verdict, " / ".join(_VERDICTS))


@attrs.frozen
class LeagueSettings:
    """``[plugins.portfolio.league]``: the strategy league (the ``league`` risk check; see
    :mod:`argus_portfolio.league` and the README).

    Eligibility: each slot's lab verdict (``verdicts`` pins one by hand, else the newest
    stored in ``lab_dir``'s ``lab.db`` for the slot's family); ``unknown`` passes only with
    ``allow_unknown``.  Degradation: a slot's rolling Sharpe and drawdown from its own book
    against its reference (``references``, written by ``argus league reference``).
    """

    allow_unknown: bool = True
    # slot -> pass / fail / unknown (or the lab's deploy / hold / kill), overriding the lab
    verdicts: dict[str, str] = attrs.field(factory=dict, validator=_verdicts)
    # the lab folder ([plugins.lab] dir) or its lab.db, relative to the config file
    lab_dir: str | None = None
    # slot -> the lab family its verdicts are stored under (default: the slot's name)
    lab_families: dict[str, str] = attrs.field(factory=dict)
    # slot -> reference JSON (argus league reference), relative to the config file
    references: dict[str, str] = attrs.field(factory=dict)
    # > 0: a slot without a reference file takes its first N periods in this run as one
    baseline_periods: int = attrs.field(default=0, validator=in_range(0, 10_000_000))
    # rolling window (periods = book-equity rows) of a baseline taken in-run
    window: int = attrs.field(default=168, validator=in_range(5, 1_000_000))
    # QUARANTINE: rolling Sharpe at least z_quarantine reference SDs below its mean AND the
    # drawdown past max(dd_multiple x the reference's dd_quantile, min_drawdown)
    z_quarantine: float = attrs.field(default=3.0, validator=in_range(0.5, 100))
    dd_quantile: float = attrs.field(default=0.99, validator=FRACTION)
    dd_multiple: float = attrs.field(default=1.0, validator=in_range(0.1, 100))
    # ... on this many consecutive rows (a chance dip is brief; a lost edge persists)
    confirm_rows: int = attrs.field(default=48, validator=in_range(1, 1_000_000))
    min_drawdown: float = attrs.field(default=0.01, validator=FRACTION)
    # KILL: drawdown past kill_dd_multiple x max(the reference's deepest, min_drawdown)
    kill_dd_multiple: float = attrs.field(default=4.0, validator=in_range(1, 100))
    # a reference SD of rolling Sharpe below this counts as this (a near-constant backtest)
    min_sharpe_std: float = attrs.field(default=0.25, validator=in_range(0, 1000,
                                                                         lo_open=True))
    # smoothed health: h += clip(alpha x (score - h), +-max_health_step) per period
    alpha: float = attrs.field(default=0.05, validator=FRACTION)
    max_health_step: float = attrs.field(default=0.02, validator=FRACTION)
    # periods between health-driven re-allocations of the portfolio_weight sizer
    rebalance_every: int = attrs.field(default=24, validator=in_range(1, 1_000_000))

    def __attrs_post_init__(self) -> None:
        if 0 < self.baseline_periods < 2 * self.window:
            raise RangeError("baseline_periods", self.baseline_periods,
                             f"0 or at least 2 x window = {2 * self.window}")


@attrs.frozen
class PortfolioSettings:
    """``[plugins.portfolio]``: the allocator's targets and every cap (see the README)."""

    # Position caps, enforced by the ``portfolio_caps`` risk check on the resulting position.
    per_play_fraction: float = attrs.field(default=0.07, validator=FRACTION)
    instrument_caps: dict[str, float] = attrs.field(factory=dict, validator=_each(FRACTION))
    max_gross_fraction: float = attrs.field(default=1.0, validator=_MULTIPLE)
    # instrument id or strategy name -> family; a family's positions (or weights) sum to at
    # most family_caps[family], else family_cap
    families: dict[str, str] = attrs.field(factory=dict)
    family_cap: float = attrs.field(default=0.25, validator=_MULTIPLE)
    family_caps: dict[str, float] = attrs.field(factory=dict, validator=_each(_MULTIPLE))
    # Strategy weights, computed by the allocator and used by the ``portfolio_weight`` sizer.
    target_vol: float = attrs.field(default=0.10, validator=in_range(0, 5, lo_open=True))
    max_leverage: float = attrs.field(default=1.0, validator=_MULTIPLE)
    max_strategy_weight: float = attrs.field(default=0.5, validator=_MULTIPLE)
    max_budget_share: float = attrs.field(default=1.0, validator=FRACTION)
    # strategies closer than this correlation distance (1 - rho, average linkage) cluster
    cluster_distance: float = attrs.field(default=0.3, validator=in_range(0, 2))
    cluster_cap: float = attrs.field(default=0.6, validator=_MULTIPLE)
    max_step: float = attrs.field(default=0.1, validator=FRACTION)
    periods_per_year: float = attrs.field(default=252.0, validator=POSITIVE)
    # the model the sizer allocates on until observed returns are fed to it
    strategies: dict[str, StrategyModel] = attrs.field(factory=dict)
    correlation: float = attrs.field(default=0.0, validator=in_range(-1, 1, lo_open=True,
                                                                       hi_open=True))
    min_history: int = attrs.field(default=20, validator=in_range(2))
    # the slippage drift monitor (the ``slippage_drift`` risk check)
    drift: DriftSettings = attrs.field(factory=DriftSettings)
    # the strategy league (the ``league`` risk check)
    league: LeagueSettings = attrs.field(factory=LeagueSettings)

    def cap_of_family(self, family: str) -> float:
        """The cap of ``family`` (its own entry, else ``family_cap``)."""
        return self.family_caps.get(family, self.family_cap)

    def __attrs_post_init__(self) -> None:
        n = len(self.strategies)
        if n > 1 and self.correlation <= -1.0 / (n - 1):
            # a constant correlation matrix is positive definite only above -1/(n-1)
            raise RangeError("correlation", self.correlation, f"(-1/{n - 1}, 1) for {n} "
                                                              f"strategies")
