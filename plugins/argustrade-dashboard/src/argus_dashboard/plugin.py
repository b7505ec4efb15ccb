"""Argus hooks of the dashboard plugin (entry point ``dashboard``).

The plugin's only hook adds its ledger table, ``dashboard_audit`` (migration set
``dashboard``): a run started with the plugin installed has it from the start, and
``argus serve`` adds it on the first control action otherwise.  The command itself,
``argus serve``, is :mod:`argus_dashboard.commands` (entry-point group
``argus.commands``).
"""

from __future__ import annotations

from argus_core import Migrations, hookimpl
from argus_dashboard.controls import dashboard_migrations


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The control audit trail (migration set ``dashboard``)."""
    dashboard_migrations(migrations)
