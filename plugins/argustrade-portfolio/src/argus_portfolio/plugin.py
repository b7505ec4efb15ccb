"""Argus plugin ``portfolio``: settings from ``[plugins.portfolio]``, the
``portfolio_caps``, ``slippage_drift`` and ``league`` risk checks, the ``portfolio_weight``
sizer and the ``league_events`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from argus_core import (
    Config,
    Migrations,
    RegisterRiskCheck,
    RegisterSizer,
    ReportData,
    hookimpl,
)
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
    read each fill's order row; the ledger to this run's ``portfolio_weight`` sizer (when
    it is the run's sizer: each strategy's own position and working orders); and the
    ledger, config and that sizer to this run's ``league`` check."""
    for settings in ctx.settings.values():
        check = check_for(settings)
        if check is not None:
            check.attach(ctx.ledger, ctx.config.paper)
        sizer = sizer_for(settings) if ctx.config.run.sizer == PortfolioWeight.name else None
        if sizer is not None:
            sizer.ledger = ctx.ledger
        league = league_for(settings)
        if league is not None:
            league.attach(ctx.ledger, ctx.config, sizer)


@hookimpl
def report_sections(config: Config, run_dir: Path, report: ReportData | None
                    ) -> dict[str, str] | None:
    """The per-strategy and portfolio views (each book's figures and league standing)
    of a run that kept several books (``report``: the core report's read of the run,
    whose account series the portfolio row uses)."""
    from argus_portfolio.books import report_section

    return report_section(run_dir, report)
