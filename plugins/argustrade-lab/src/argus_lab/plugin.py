"""Plugin ``lab`` (distribution ``argustrade-lab``): the lab's settings and ledger tables
and the deploy-gate section of ``argus backtest`` reports.  The ``argus lab`` commands
are :mod:`argus_lab.commands` (entry point group ``argus.commands``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from argus_core import Config, Migrations, hookimpl


@hookimpl
def config_class() -> type:
    """``[plugins.lab]`` is validated by :class:`argus_lab.config.LabSettings` (and further
    by :func:`argus_lab.config.lab_settings` when a lab command runs)."""
    from argus_lab.config import LabSettings

    return LabSettings


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The ``lab`` migration set (trials, sweep points, summaries, verdicts)."""
    from argus_lab.trials import lab_migrations

    lab_migrations(migrations)


@hookimpl
def report_sections(config: Config, run_dir: Path) -> dict[str, str] | None:
    """The deploy-gate verdict of this exact config: the stored one, or -- with
    ``[plugins.lab] backtest_gates = true`` and none stored yet -- one run now."""
    if not config.plugins.get("lab"):
        return None
    from argus_lab.commands import StageProgress, headline_figures
    from argus_lab.config import family_of, judging_fingerprint, lab_dir, lab_settings
    from argus_lab.gates import canonical_hash, evaluate_config
    from argus_lab.inputs import input_fingerprint
    from argus_lab.trials import open_lab_ledger

    settings = lab_settings(config)
    path = lab_dir(config, settings) / "lab.db"
    family, tag = family_of(config, settings), canonical_hash(config)

    # "variant": "" is the config's own strategies; a verdict stored under the same config
    # hash for injected code (the orchestrator's AI-written candidates) was shown as this
    # config's.
    identity = {"inputs": input_fingerprint(config), "judged_by": judging_fingerprint(settings),
                "variant": ""}

    def stored() -> dict[str, Any] | None:
        """The newest verdict of this config judged on the files as they are now (one of
        an edited bars file was shown as this config's) and by the lab settings it has
        now (one judged under other thresholds was shown too)."""
        if not path.exists():
            return None
        with open_lab_ledger(path) as ledger:
            rows = ledger.query("select * from lab_gate_verdicts where family = ? and "
                                "config_hash = ? order by id desc", (family, tag))
        for row in rows:  # the newest of this identity (a candidate's may be newer)
            details = json.loads(row["details_json"])
            if all(details.get(k, "") == v for k, v in identity.items()):
                return row
        return None

    row = stored()
    if row is None and settings.backtest_gates:
        with StageProgress() as bar:
            evaluate_config(config, progress=bar)
        row = stored()
    if row is None:
        return {"Deploy gates": "<p>No verdict stored for this config: run <code>argus lab "
                               f"gates --config {html.escape(str(config.path))}</code> (or set "
                               "<code>[plugins.lab] backtest_gates = true</code>).</p>"}
    items = "".join(f"<li>{html.escape(r)}</li>" for r in json.loads(row["reasons_json"]))
    figures = "".join(f"<li>{html.escape(x)}</li>"
                      for x in headline_figures(json.loads(row["details_json"])))
    return {"Deploy gates": f"<p><b>verdict: {html.escape(row['verdict'])}</b> (config "
                            f"{tag}, family {html.escape(family)})</p>"
                            f"<ul>{items}</ul><p>Figures:</p><ul>{figures}</ul>"}
