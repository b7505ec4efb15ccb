"""``[plugins.vrp]``: the venue's data/quote model and the strategy's rules (one table)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from argus_core import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    ConfigError,
    FeeSchedule,
    in_range,
)

_pos = POSITIVE
_open_unit = in_range(0, 1, lo_open=True, hi_open=True)  # a delta, a PoP, a band: (0, 1)


def _date(name: str, value: object) -> str:
    """``value`` as an ISO date; the error names the setting ``name`` (the core places a
    converter's error at the table, not the key)."""
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(f"{name} = {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _start_date(value: object) -> str:
    return _date("start", value)


def _end_date(value: object) -> str:
    return _date("end", value)


#: Most book levels per side: level sizes double at each (20 x 2^19 contracts at the
#: last), and each is a loop per quote per day (1e9 levels hung the replay building its
#: first book; 1,100 overflowed the size to float).
MAX_BOOK_LEVELS = 20
#: Most Heston paths per probability of profit (three float64 per path are kept: a
#: trillion was accepted and failed allocating 48 TB at the first scored strike).
MAX_HESTON_PATHS = 10_000_000


@attrs.frozen
class VrpSettings:
    """Every field is documented in the plugin README; money is in dollars."""

    # -- data and synthetic quotes (venue) ------------------------------------------
    symbols: list[str] = attrs.Factory(lambda: ["SPY", "QQQ"])
    start: str = attrs.field(default="2012-01-03", converter=_start_date)
    end: str = attrs.field(default="2021-03-31", converter=_end_date)
    strike_step: float = attrs.field(default=5.0, validator=_pos)
    max_dte: int = attrs.field(default=50, validator=AT_LEAST_ONE)
    # strikes down to S(1-band)
    strike_band: float = attrs.field(default=0.15, validator=_open_unit)
    # risk-free rate for pricing (annual, continuous)
    rate: float = attrs.field(default=0.01, validator=in_range(-0.2, 1))
    qqq_iv_ratio: float = attrs.field(default=1.2, validator=_pos)  # QQQ ATM vol / SPY's (no VXN)
    # x the calibrated half-spread (past 100x no quote is a market: 1e308 overflowed)
    spread_scale: float = attrs.field(default=1.0,
                                      validator=in_range(0, 100, lo_open=True))
    book_levels: int = attrs.field(default=3, validator=in_range(1, MAX_BOOK_LEVELS))
    level_size: int = attrs.field(default=20, validator=AT_LEAST_ONE)  # contracts, best level
    # Options commission, charged per contract through the core FeeSchedule.per_unit.
    commission_per_contract: float = attrs.field(default=0.65,
                                                 validator=NON_NEGATIVE)
    commission_per_fill: float = attrs.field(default=0.0,  # ticket charge per fill, if any
                                             validator=NON_NEGATIVE)
    # -- strategy ------------------------------------------------------------------
    # implied minus realised vol (annualised, absolute) needed to sell
    min_vrp: float = attrs.field(default=0.02, validator=in_range(-1, 1))
    # BOCPD P(change) ceiling
    max_p_change: float = attrs.field(default=0.3, validator=PROBABILITY)
    selection: str = attrs.field(default="delta",
                                 validator=attrs.validators.in_(("delta", "pop")))
    short_delta: float = attrs.field(default=0.20, validator=_open_unit)  # |delta|, short put
    target_pop: float = attrs.field(default=0.75, validator=_open_unit)  # PoP of the spread
    width: float = attrs.field(default=10.0, validator=_pos)  # strike distance, points
    target_dte: int = attrs.field(default=35, validator=AT_LEAST_ONE)
    min_dte: int = attrs.field(default=25, validator=AT_LEAST_ONE)
    risk_budget: float = attrs.field(default=0.02, validator=FRACTION)  # of equity per play
    max_risk_per_play: float = attrs.field(default=5000.0, validator=_pos)  # dollar cap
    max_contracts: int = attrs.field(default=50, validator=AT_LEAST_ONE)
    profit_target: float = attrs.field(default=0.5, validator=FRACTION)  # of the credit
    # close cost / credit; above 1: at entry the close already costs the credit and the
    # spread (a stop at 1 or below fired on the bar after every entry)
    stop_multiple: float = attrs.field(default=2.0, validator=in_range(1, lo_open=True))
    exit_dte: int = attrs.field(default=5, validator=NON_NEGATIVE)  # 0: to expiry
    max_rel_spread: float = attrs.field(default=0.5, validator=_pos)  # (ask-bid)/mid, short leg
    min_credit: float = attrs.field(default=10.0, validator=NON_NEGATIVE)  # $/contract
    # IOC legs' limits this many ticks past the touch (buys above the ask, sells below the
    # bid): room for the paper broker's slippage, which no fill may take past a limit
    limit_ticks: int = attrs.field(default=2, validator=NON_NEGATIVE)
    # -- risk check vrp_regime_guard (the risk layer's own reading of the regime) ------
    guard_max_p_change: float = attrs.field(default=0.5, validator=PROBABILITY)  # veto above
    guard_block_stressed: bool = True  # veto opens in a stressed vol regime or a vol spike
    # -- Heston PoP (selection = "pop" with argus-gpu-heston installed) ----------------
    heston_kappa: float = attrs.field(default=2.0, validator=_pos)  # mean-reversion speed
    heston_sigma: float = attrs.field(default=0.5, validator=_pos)  # vol of variance
    heston_rho: float = attrs.field(default=-0.7,  # spot/variance correlation
                                    validator=in_range(-1, 1, lo_open=True, hi_open=True))
    heston_paths: int = attrs.field(default=20_000, validator=in_range(2, MAX_HESTON_PATHS))

    def __attrs_post_init__(self) -> None:
        if self.start >= self.end:
            raise ConfigError(f"start {self.start} must be before end {self.end}")
        if not self.min_dte <= self.target_dte <= self.max_dte:
            raise ConfigError(f"need min_dte <= target_dte <= max_dte; got min_dte = "
                              f"{self.min_dte}, target_dte = {self.target_dte}, max_dte = "
                              f"{self.max_dte}")
        if self.exit_dte >= self.min_dte:
            raise ConfigError(f"exit_dte = {self.exit_dte} must be below min_dte = "
                              f"{self.min_dte} (else every trade exits at once)")
        bad = [s for s in self.symbols if s not in ("SPY", "QQQ")]
        if bad or not self.symbols:
            raise ConfigError(f"symbols must be a subset of SPY, QQQ (bundled data); got {bad}")
        twice = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
        if twice:
            # the venue would replay each of its bars twice into one regime tracker
            raise ConfigError(f"symbols lists {', '.join(twice)} more than once")

    def check_width_on_grid(self) -> None:
        """Refuse a ``width`` that is not a whole multiple of ``strike_step``: the long
        strike is ``width`` below the short one on the venue's strike grid, so off the grid
        it is never quoted and the strategy never trades.  Called when the venue and the
        strategy are built (the table's own check sees each field's range alone)."""
        steps = self.width / self.strike_step
        if steps < 1 - 1e-9 or abs(steps - round(steps)) > 1e-9:
            raise ConfigError(f"[plugins.vrp] width = {self.width:g} must be a whole "
                              f"multiple of strike_step = {self.strike_step:g} (the long "
                              f"strike is width below the short one on the strike grid)")


def option_fees(settings: VrpSettings) -> FeeSchedule:
    """The venue's own schedule for its options: ``commission_per_contract`` per contract
    (``FeeSchedule.per_unit``) plus ``commission_per_fill`` per fill."""
    return FeeSchedule(per_unit=Decimal(repr(settings.commission_per_contract)),
                       fixed_per_fill=Decimal(repr(settings.commission_per_fill)))
