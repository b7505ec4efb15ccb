"""The builtin ``journal`` observer: every committed fill and every opportunity logged at
INFO through the ``argus`` logger with structured fields, and one summary line at
shutdown."""

from __future__ import annotations

import logging
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from argus_core import Leg, MarketState, Opportunity, Scanner, Side, hookimpl
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner

IID = "kraken:XBT/USD"


class OnePerScan(Scanner):
    """Reports one (never filling) opportunity per scan, named by the scan's time."""

    name = "one_per_scan"

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """A 0.001 buy limited at 1 USD: stored, observed, and never filled."""
        return [Opportunity(f"test:{ts_ns}", self.name, ts_ns, "test",
                            (Leg(IID, Side.BUY, Decimal(1), Decimal("0.001")),),
                            Decimal("0.5"), Decimal("0.001"), Decimal("0.0005"), Decimal(0),
                            reason="a test opportunity")]


@pytest.fixture
def journal_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the journal builtin (unless BUILTINS has it already) and a test scanner."""
    from argus_core import plugins

    module = types.ModuleType("argus_test_journal_scanner")
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("one_per_scan", lambda settings: OnePerScan()))
    monkeypatch.setitem(sys.modules, "argus_test_journal_scanner", module)
    journal = ("journal", "argus_core.builtins.journal")
    builtins = plugins.BUILTINS if journal in plugins.BUILTINS else (*plugins.BUILTINS, journal)
    monkeypatch.setattr(plugins, "BUILTINS", (
        *builtins, ("journal_scanner", "argus_test_journal_scanner")))


def _journal(caplog: pytest.LogCaptureFixture, kind: str) -> list[dict[str, Any]]:
    return [r.journal for r in caplog.records  # type: ignore[attr-defined]
            if r.name == "argus.journal" and r.journal["kind"] == kind]


def test_the_journal_logs_fills_opportunities_and_a_summary(
        demo_config: Path, tmp_path: Path, journal_loaded: None,
        caplog: pytest.LogCaptureFixture) -> None:
    text = demo_config.read_text().replace(
        'strategies = ["ma_cross"]', 'strategies = ["ma_cross"]\nscanners = ["one_per_scan"]\n'
        'scan_every_events = 250')
    demo_config.write_text(text)
    caplog.set_level(logging.INFO, logger="argus")
    summary = Runner(load_config(demo_config), tmp_path / "run").run_sync()

    fills = _journal(caplog, "fill")
    with Ledger.in_dir(tmp_path / "run") as ledger:
        booked = ledger.fills()
        n_opps = ledger.query("select count(*) as n from opportunities")[0]["n"]
    assert len(fills) == summary.fills == len(booked) > 0
    first = booked[0]
    assert {k: fills[0][k] for k in ("fill_id", "instrument_id", "side", "price", "fee")} == {
        k: str(first[k]) for k in ("fill_id", "instrument_id", "side", "price", "fee")}
    assert fills[0]["run_id"] == summary.run_id

    opps = _journal(caplog, "opportunity")
    assert len(opps) == n_opps == summary.events // 250
    assert opps[0]["scanner"] == "one_per_scan" and opps[0]["expected_profit"] == "0.0005"
    assert opps[0]["reason"] == "a test opportunity" and opps[0]["risk_free"] is True

    (line,) = _journal(caplog, "summary")
    assert line["fills"] == summary.fills and line["opportunities"] == n_opps
    assert Decimal(line["fees"]) == summary.fees
    assert Decimal(line["expected_profit"]) == Decimal("0.0005") * n_opps
    text_line = next(r.getMessage() for r in caplog.records
                     if getattr(r, "journal", {}).get("kind") == "summary")
    assert f"{summary.fills} fills" in text_line and f"{n_opps} opportunities" in text_line
