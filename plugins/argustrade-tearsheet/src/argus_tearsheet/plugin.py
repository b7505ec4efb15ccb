"""Argus hooks of the tearsheet plugin (entry point ``tearsheet``).

``report_sections`` adds the trader's report to a run's ``report.html``: the interactive
equity and drawdown chart (in place of the core's static plots), performance against
buy-and-hold, per-strategy P&L, trades, open positions, monthly returns and
opportunities (see :mod:`argus_tearsheet.render`).  The ``argus export`` command is
declared separately, in the ``argus.commands`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

from argus_core import LEDGER_FILE, Config, ReportData, hookimpl
from argus_tearsheet.render import analyse, sections
from argus_tearsheet.run_data import from_report, load_run


@hookimpl
def report_sections(config: Config, run_dir: Path, report: ReportData | None
                    ) -> dict[str, str] | None:
    """The trader's report sections for ``run_dir`` (none without a ledger: the core's
    report says what is missing).  ``report`` is the core's ``ReportData`` (what it read
    of the run: the equity series, metrics, fills); ``None`` from a caller that read
    nothing, and then the sections read the run themselves."""
    if not (Path(run_dir) / LEDGER_FILE).is_file():
        return None
    data = load_run(run_dir) if report is None else from_report(report, Path(run_dir))
    return sections(analyse(data, config))


def tearsheet_sections(run_dir: Path, config: Config | None = None) -> dict[str, str]:
    """``{title: html}`` of the trader's report for ``run_dir``, read from its ledger;
    ``config`` (the run's) locates the replay's bars for the buy-and-hold benchmark."""
    return sections(analyse(load_run(Path(run_dir)), config))
