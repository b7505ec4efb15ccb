"""Argus dashboard: ``argus serve RUN_DIR...``, a local live web dashboard over run
directories, with token-guarded kill, resume, promote and roll-back controls.

:func:`argus_dashboard.app.create_app` builds the Starlette app (for embedding and
tests); :mod:`argus_dashboard.ledger_view` reads a ledger read-only;
:mod:`argus_dashboard.controls` writes a control and its audit row.
"""

from __future__ import annotations

from argus_dashboard.app import RunDir, create_app
from argus_dashboard.controls import ACTIONS, Tokens, apply_control

__all__ = ["ACTIONS", "RunDir", "Tokens", "apply_control", "create_app"]
