"""Argus plugin ``portfolio``: settings from ``[plugins.portfolio]``, the
``portfolio_caps``, ``slippage_drift`` and ``league`` risk checks, the ``portfolio_weight``
sizer and the ``league_events`` table."""

from __future__ import annotations

from typing import Any

from argus_core import Migrations, RegisterRiskCheck, RegisterSizer, hookimpl
from argus_portfolio.drift import SlippageDrift, check_for
from argus_portfolio.enforcement import PortfolioCaps, PortfolioWeight, sizer_for
from argus_portfolio.league import League, league_for, league_migrations
from argus_portfolio.settings import PortfolioSettings


@hookimpl
def config_class() -> type:
    """The attrs class validating ``[plugins.portfolio]``."""
    return PortfolioSettings


@hookimpl
def register_risk_checks(register: RegisterRiskCheck) -> None:
    """Register ``portfolio_caps`` (position-level per-play, family and aggregate caps),
    ``slippage_drift`` (a strategy whose slippage drifts goes to REDUCING) and ``league``
    (eligibility, health, quarantine and kill per strategy slot)."""
    register(PortfolioCaps.name, PortfolioCaps)
    register(SlippageDrift.name, SlippageDrift)
    register(League.name, League)


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The ``portfolio`` migration set: the league's ``league_events`` table."""
    league_migrations(migrations)


@hookimpl
def register_sizers(register: RegisterSizer) -> None:
    """Register ``portfolio_weight`` (sizes towards the allocator's weight)."""
    register(PortfolioWeight.name, PortfolioWeight)


@hookimpl
def on_startup(ctx: Any) -> None:
    """Hand the run's ledger and ``[paper]`` section to this run's ``slippage_drift``
    check (the one built from this run's settings object), so that its ``on_fill`` can
    read each fill's order row; and the ledger, config and ``portfolio_weight`` sizer to
    this run's ``league`` check (the sizer only when it is the run's sizer)."""
    for settings in ctx.settings.values():
        check = check_for(settings)
        if check is not None:
            check.attach(ctx.ledger, ctx.config.paper)
        league = league_for(settings)
        if league is not None:
            sizer = sizer_for(settings) if ctx.config.run.sizer == PortfolioWeight.name \
                else None
            league.attach(ctx.ledger, ctx.config, sizer)
