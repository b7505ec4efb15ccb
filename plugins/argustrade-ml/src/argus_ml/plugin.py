"""Plugin ``ml`` (distribution ``argustrade-ml``): settings, ledger tables, the ``ml``
forecaster, the ``updown_replay`` venue, the ``ml_updown`` and ``ml_near_expiry``
strategies and the backtest report's binary-market section.  The ``argus ml`` commands
are declared in the ``argus.commands`` entry-point group (:mod:`argus_ml.cli`), so
``argus --help`` imports nothing heavy; scikit-learn and matplotlib load only when used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from argus_core import (
    Config,
    Migrations,
    RegisterForecaster,
    RegisterStrategy,
    RegisterVenue,
    hookimpl,
)


@hookimpl
def config_class() -> type:
    """``[plugins.ml]`` is validated by :class:`argus_ml.config.MLSettings`."""
    from argus_ml.config import MLSettings

    return MLSettings


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The ``ml`` migration set: ``ml_models`` and ``ml_model_events``."""
    from argus_ml.registry import ml_migrations

    ml_migrations(migrations)


@hookimpl
def register_forecasters(register: RegisterForecaster) -> None:
    """``ml``: the registry model named in ``[plugins.ml]`` as a core forecaster."""
    from argus_ml.forecaster import MLForecaster

    register(MLForecaster.name, MLForecaster)


@hookimpl
def register_venues(register: RegisterVenue) -> None:
    """``updown_replay``: bars plus the stated binary up/down market over them."""
    from argus_ml.venue import UpDownReplayVenue

    register(UpDownReplayVenue.name, UpDownReplayVenue)


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """``ml_updown`` (binary up/down bets) and ``ml_near_expiry`` (near-resolution
    binaries the forecaster prices above their ask and fee)."""
    from argus_ml.near_expiry import MLNearExpiry
    from argus_ml.strategy import MLUpDown

    register(MLUpDown.name, MLUpDown)
    register(MLNearExpiry.name, MLNearExpiry)


@hookimpl
def report_sections(config: Config, run_dir: Path) -> dict[str, str] | None:
    """A run on the ``updown_replay`` venue: the stated market model and the bets."""
    if config.run.venue != "updown_replay":
        return None
    from argus_ml.report import binary_market_section

    return binary_market_section(config, run_dir)


@hookimpl
def on_startup(ctx: Any) -> None:
    """Tell the ``ml`` forecaster the run it serves: the mode (a replay's drift alarm
    demotes no registry model unless ``demote_in_replay``) and the run's ledger (where
    drift alarms are recorded as ``ml_drift`` risk events)."""
    from argus_ml.forecaster import CURRENT_RUN, RunInfo

    CURRENT_RUN.set(RunInfo(str(ctx.mode), ctx.ledger))


@hookimpl
def on_shutdown(ctx: Any) -> None:
    """The run's ledger is about to close: forget it."""
    from argus_ml.forecaster import CURRENT_RUN

    CURRENT_RUN.set(None)
