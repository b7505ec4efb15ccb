"""Hooks of the ``vrp`` plugin: settings, the ``vrp_options`` venue, the ``vrp_put_spread``
strategy and a report section stating the quote model plainly."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from argus_core.config import Config
from argus_core.hookspecs import hookimpl
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
def report_sections(config: Config, run_dir: Path) -> dict[str, str] | None:
    """How the option quotes were made (only for runs on this venue)."""
    if config.run.venue != VENUE:
        return None
    from argus_strategy_vrp.pricing import calibrated_model

    m = calibrated_model()
    s = VrpSettings() if "vrp" not in config.plugins else None
    fee = (s.commission_per_fill if s else config.plugins["vrp"].get("commission_per_fill",
                                                                        0.65))
    text = (
        "<p><b>No historical SPY/QQQ option chains were used.</b> Every put quote in this "
        "backtest is synthetic: the at-the-money implied volatility is the CBOE VIX close x "
        f"{m.vix_to_atm:.3f} (QQQ: x a further qqq_iv_ratio), each strike's volatility follows "
        f"iv/atm = 1 {m.skew_b1:+.3f} m {m.skew_b2:+.3f} m<sup>2</sup> with "
        "m = ln(K/F)/sqrt(T), prices are Black-Scholes, and the bid/ask half-spread is "
        f"{m.spread_a:.6f} x S + {m.spread_b:.4f} x mid (x spread_scale), rounded outwards to "
        f"$0.01 per share. Every coefficient was fitted by least squares on {m.n_rows} "
        "quoted SPX puts of the iVolatility sample 2011-01-03..07 (MIT; see SOURCES.md). "
        "Books show three levels per side (level_size contracts, doubling per level). "
        f"Commission: ${float(fee):.2f} per fill (the core's fee schedule charges per fill, "
        "not per contract). Expiring puts settle at intrinsic value at the close.</p>")
    return {"VRP quote model": text if "<" in text else html.escape(text)}
