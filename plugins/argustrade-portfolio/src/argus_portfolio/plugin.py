"""Argus plugin ``portfolio``: settings from ``[plugins.portfolio]``, the
``portfolio_caps`` and ``slippage_drift`` risk checks and the ``portfolio_weight`` sizer."""

from __future__ import annotations

from typing import Any

from argus_core import RegisterRiskCheck, RegisterSizer, hookimpl
from argus_portfolio.drift import SlippageDrift, check_for
from argus_portfolio.enforcement import PortfolioCaps, PortfolioWeight
from argus_portfolio.settings import PortfolioSettings


@hookimpl
def config_class() -> type:
    """The attrs class validating ``[plugins.portfolio]``."""
    return PortfolioSettings


@hookimpl
def register_risk_checks(register: RegisterRiskCheck) -> None:
    """Register ``portfolio_caps`` (position-level per-play, family and aggregate caps)
    and ``slippage_drift`` (a strategy whose slippage drifts goes to REDUCING)."""
    register(PortfolioCaps.name, PortfolioCaps)
    register(SlippageDrift.name, SlippageDrift)


@hookimpl
def register_sizers(register: RegisterSizer) -> None:
    """Register ``portfolio_weight`` (sizes towards the allocator's weight)."""
    register(PortfolioWeight.name, PortfolioWeight)


@hookimpl
def on_startup(ctx: Any) -> None:
    """Hand the run's ledger and ``[paper]`` section to this run's ``slippage_drift``
    check (the one built from this run's settings object), so that its ``on_fill`` can
    read each fill's order row."""
    for settings in ctx.settings.values():
        check = check_for(settings)
        if check is not None:
            check.attach(ctx.ledger, ctx.config.paper)
