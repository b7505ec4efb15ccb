"""``[plugins.vrp]``: the venue's data/quote model and the strategy's rules (one table)."""

from __future__ import annotations

import datetime as dt

import attrs

from argus_core.errors import ConfigError

_pos = attrs.validators.gt(0)
_frac = attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(1))


def _date(value: object) -> str:
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


@attrs.frozen
class VrpSettings:
    """Every field is documented in the plugin README; money is in dollars."""

    # -- data and synthetic quotes (venue) ------------------------------------------
    symbols: list[str] = attrs.Factory(lambda: ["SPY", "QQQ"])
    start: str = attrs.field(default="2010-01-04", converter=_date)
    end: str = attrs.field(default="2021-03-31", converter=_date)
    strike_step: float = attrs.field(default=5.0, validator=_pos)
    max_dte: int = attrs.field(default=50, validator=_pos)
    strike_band: float = attrs.field(default=0.15, validator=_frac)  # strikes down to S(1-band)
    rate: float = 0.01  # risk-free rate for pricing
    qqq_iv_ratio: float = attrs.field(default=1.2, validator=_pos)  # QQQ ATM vol / SPY's (no VXN)
    spread_scale: float = attrs.field(default=1.0, validator=_pos)  # x the calibrated half-spread
    book_levels: int = attrs.field(default=3, validator=_pos)
    level_size: int = attrs.field(default=20, validator=_pos)  # contracts at the best level
    # Options commission, charged per contract through the core FeeSchedule.per_unit.
    commission_per_contract: float = attrs.field(default=0.65,
                                                 validator=attrs.validators.ge(0))
    commission_per_fill: float = attrs.field(default=0.0,  # ticket charge per fill, if any
                                             validator=attrs.validators.ge(0))
    # -- strategy ------------------------------------------------------------------
    min_vrp: float = 0.02  # implied minus realised vol (annualised, absolute) needed to sell
    max_p_change: float = attrs.field(default=0.3, validator=_frac)  # BOCPD P(change) ceiling
    selection: str = attrs.field(default="delta",
                                 validator=attrs.validators.in_(("delta", "pop")))
    short_delta: float = attrs.field(default=0.20, validator=_frac)  # |delta| of the short put
    target_pop: float = attrs.field(default=0.75, validator=_frac)  # PoP of the spread
    width: float = attrs.field(default=10.0, validator=_pos)  # strike distance, points
    target_dte: int = attrs.field(default=35, validator=_pos)
    min_dte: int = attrs.field(default=25, validator=_pos)
    risk_budget: float = attrs.field(default=0.02, validator=_frac)  # of equity per play
    max_risk_per_play: float = attrs.field(default=5000.0, validator=_pos)  # dollar cap
    max_contracts: int = attrs.field(default=50, validator=_pos)
    profit_target: float = attrs.field(default=0.5, validator=_frac)  # of the credit
    stop_multiple: float = attrs.field(default=2.0, validator=_pos)  # close cost / credit
    exit_dte: int = attrs.field(default=5, validator=attrs.validators.ge(0))  # 0: to expiry
    max_rel_spread: float = attrs.field(default=0.5, validator=_pos)  # (ask-bid)/mid, short leg
    min_credit: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))  # $/contract
    # -- risk check vrp_regime_guard (the risk layer's own reading of the regime) ------
    guard_max_p_change: float = attrs.field(default=0.5, validator=_frac)  # veto opens above
    guard_block_stressed: bool = True  # veto opens in a stressed vol regime or a vol spike
    # -- Heston PoP (selection = "pop" with argus-gpu-heston installed) ----------------
    heston_kappa: float = 2.0
    heston_sigma: float = 0.5
    heston_rho: float = -0.7
    heston_paths: int = 20_000

    def __attrs_post_init__(self) -> None:
        if self.start >= self.end:
            raise ConfigError(f"start {self.start} must be before end {self.end}")
        if not self.min_dte <= self.target_dte <= self.max_dte:
            raise ConfigError("need min_dte <= target_dte <= max_dte")
        if self.exit_dte >= self.min_dte:
            raise ConfigError("exit_dte must be below min_dte (else every trade exits at once)")
        bad = [s for s in self.symbols if s not in ("SPY", "QQQ")]
        if bad or not self.symbols:
            raise ConfigError(f"symbols must be a subset of SPY, QQQ (bundled data); got {bad}")
