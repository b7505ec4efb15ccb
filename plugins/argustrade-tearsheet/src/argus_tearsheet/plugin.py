"""Argus hooks of the tearsheet plugin (entry point ``tearsheet``).

``report_sections`` adds the trader's report to a run's ``report.html``: performance
against buy-and-hold, per-strategy P&L, trades, open positions, monthly returns and
interactive charts (see :mod:`argus_tearsheet.render`).  The ``argus export`` command
is declared separately, in the ``argus.commands`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

from argus_core import LEDGER_FILE, Config, hookimpl
from argus_tearsheet.render import analyse, sections
from argus_tearsheet.run_data import load_run


@hookimpl
def report_sections(config: Config, run_dir: Path) -> dict[str, str] | None:
    """The trader's report sections for ``run_dir`` (none without a ledger: the core's
    report says what is missing)."""
    if not (Path(run_dir) / LEDGER_FILE).is_file():
        return None
    return tearsheet_sections(Path(run_dir), config)


def tearsheet_sections(run_dir: Path, config: Config | None = None) -> dict[str, str]:
    """``{title: html}`` of the trader's report for ``run_dir``; ``config`` (the run's)
    locates the replay's bars for the buy-and-hold benchmark."""
    return sections(analyse(load_run(run_dir), config))
