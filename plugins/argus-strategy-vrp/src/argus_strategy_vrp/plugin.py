"""Hooks of the ``vrp`` plugin: settings, the ``vrp_options`` venue, the ``vrp_put_spread``
strategy, the ``vrp_regime_guard`` risk check and a report section stating the quote model
plainly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from argus_core import Config, hookimpl
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import STRATEGY, VENUE


@hookimpl
def config_class() -> type:
    """``[plugins.vrp]`` is validated by :class:`VrpSettings`."""
    return VrpSettings


@hookimpl
def register_venues(register: Callable[[str, Callable[[Any], Any]], None]) -> None:
    """The replay venue over the bundled SPY/QQQ/VIX data with synthetic put books."""
    from argus_strategy_vrp.data import VrpVenue

    register(VENUE, VrpVenue)


@hookimpl
def register_strategies(register: Callable[[str, Callable[[Any], Any]], None]) -> None:
    """The put-credit-spread strategy."""
    from argus_strategy_vrp.strategy import VrpPutSpread

    register(STRATEGY, VrpPutSpread)


@hookimpl
def register_risk_checks(register: Callable[[str, Callable[[Any], Any]], None]) -> None:
    """``vrp_regime_guard``: the risk layer's own regime veto on new option risk."""
    from argus_strategy_vrp.risk import VrpRegimeGuard

    register(VrpRegimeGuard.name, VrpRegimeGuard)


@hookimpl
def report_sections(config: Config, run_dir: Path) -> dict[str, str] | None:
    """How the option quotes were made (only for runs on this venue)."""
    if config.run.venue != VENUE:
        return None
    from argus_core import plugin_settings
    from argus_strategy_vrp.pricing import calibrated_model

    m = calibrated_model()
    s: VrpSettings = plugin_settings(config, "vrp", VrpSettings)
    ticket = (f" plus ${s.commission_per_fill:.2f} per fill" if s.commission_per_fill else "")
    text = (
        "<p><b>No historical SPY/QQQ option chains were used.</b> Every put quote in this "
        "backtest is synthetic: the at-the-money implied volatility is the CBOE VIX close x "
        f"{m.vix_to_atm:.3f} (QQQ: x a further qqq_iv_ratio = {s.qqq_iv_ratio:g}), each "
        f"strike's volatility follows iv/atm = 1 {m.skew_b1:+.3f} m {m.skew_b2:+.3f} "
        "m<sup>2</sup> with m = ln(K/F)/sqrt(T), prices are Black-Scholes, and the bid/ask "
        f"half-spread is {m.spread_a:.6f} x S + {m.spread_b:.4f} x mid, x spread_scale = "
        f"{s.spread_scale:g}, bid rounded down and ask up to $0.01 per share. Every "
        f"coefficient was fitted by least squares on {m.n_rows} quoted SPX puts of the "
        "iVolatility sample 2011-01-03..07 (MIT; see SOURCES.md). Books show "
        f"{s.book_levels} levels per side ({s.level_size} contracts at the best, doubling "
        "per level); orders are IOC limits at the touch, so they pay the half-spread. "
        f"Commission: ${s.commission_per_contract:.2f} per contract{ticket} "
        "(FeeSchedule.per_unit), times [paper] cost_multiplier. Expiring puts settle at "
        "intrinsic value at the close (worthless ones at $0).</p>")
    return {"VRP quote model": text}
