"""Argus plugin ``portfolio``: settings from ``[plugins.portfolio]``, the
``portfolio_caps`` risk check and the ``portfolio_weight`` sizer."""

from __future__ import annotations

from argus_core import RegisterRiskCheck, RegisterSizer, hookimpl
from argus_portfolio.enforcement import PortfolioCaps, PortfolioWeight
from argus_portfolio.settings import PortfolioSettings


@hookimpl
def config_class() -> type:
    """The attrs class validating ``[plugins.portfolio]``."""
    return PortfolioSettings


@hookimpl
def register_risk_checks(register: RegisterRiskCheck) -> None:
    """Register ``portfolio_caps`` (position-level per-play, family and aggregate caps)."""
    register(PortfolioCaps.name, PortfolioCaps)


@hookimpl
def register_sizers(register: RegisterSizer) -> None:
    """Register ``portfolio_weight`` (sizes towards the allocator's weight)."""
    register(PortfolioWeight.name, PortfolioWeight)
