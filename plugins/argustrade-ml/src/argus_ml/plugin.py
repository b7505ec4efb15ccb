"""Plugin ``ml`` (distribution ``argustrade-ml``): settings, ledger tables, strategy and the
``argus ml`` commands.  Heavy modules (scikit-learn, matplotlib) load only when used."""

from __future__ import annotations

from argus_core import hookimpl


@hookimpl
def config_class() -> type:
    """``[plugins.ml]`` is validated by :class:`argus_ml.config.MLSettings`."""
    from argus_ml.config import MLSettings

    return MLSettings
