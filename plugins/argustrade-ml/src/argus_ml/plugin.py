"""Plugin ``ml`` (distribution ``argustrade-ml``): settings, ledger tables and the
``ml_updown`` strategy.  The ``argus ml`` commands are declared in the ``argus.commands``
entry-point group (:mod:`argus_ml.cli`), so ``argus --help`` imports nothing heavy;
scikit-learn and matplotlib load only when used."""

from __future__ import annotations

from argus_core import Migrations, RegisterStrategy, hookimpl


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
def register_strategies(register: RegisterStrategy) -> None:
    """``ml_updown``: binary up/down bets from a registered model's P(up)."""
    from argus_ml.strategy import MLUpDown

    register(MLUpDown.name, MLUpDown)
