"""What the bot reads from a ledger, without any network: state changes, risk events
(a run of vetoes as one line), drift alarms and rollbacks past high-water marks, a
resumed run's history not replayed, and /thoughts from the orchestrator's own tables."""

from __future__ import annotations

import json
from pathlib import Path

from argus_orchestrator.plugin import register_migrations
from argus_telegram import commands, ledger_view
from argus_telegram.ledger_view import LedgerWatcher

from argus_core import Ledger, Migrations


def orchestrator_ledger(run_dir: Path) -> Ledger:
    """A ledger with the orchestrator's tables, as its plugin migrates them."""
    migrations = Migrations()
    register_migrations(migrations)
    return Ledger.in_dir(run_dir, migrations)


def test_the_watcher_reports_what_was_committed_since_its_last_read(tmp_path: Path) -> None:
    with orchestrator_ledger(tmp_path) as ledger:
        with ledger.transaction():
            ledger.record_risk_event(1, "max_drawdown", "veto", "old news")
        watcher = LedgerWatcher(tmp_path)
        watcher.prime()
        assert watcher.poll() == []  # history is not replayed
        with ledger.transaction():
            ledger.record_risk_event(2, "max_position", "shrink", "cap <5%> & more",
                                     instrument_id="BTC/USD", strategy="ma_cross")
            for i in range(40):  # every intent while HALTED is vetoed: one line
                ledger.record_risk_event(3 + i, "trading_state", "veto", f"halted {i}")
            ledger.record_risk_event(50, "ml_drift", "demote", "model m1 -> shadow: PSI 0.4")
            ledger.put_control("trading_state", json.dumps(
                {"state": "halted", "reason": "drawdown", "flatten": True}), 51)
            ledger.insert("strategy_events", {
                "version_id": "v7", "ts_ns": 52, "from_status": "full",
                "to_status": "rolled_back", "reason": "loss limit", "actor": "monitor"})
            ledger.insert("strategy_events", {
                "version_id": "v8", "ts_ns": 53, "from_status": "shadow",
                "to_status": "canary", "reason": "gates passed", "actor": "orchestrator"})
        notices = watcher.poll()
        assert [(n.kind, n.critical) for n in notices] == [
            ("states", True), ("risk", False), ("risk", False), ("drift", True),
            ("rollbacks", True)]
        state, shrink, vetoes, drift, rollback = (n.html for n in notices)
        assert state == ("🚦 Trading <b>HALTED</b> (drawdown; flattening every position)")
        assert "cap &lt;5%&gt; &amp; more" in shrink and "[BTC/USD, ma_cross]" in shrink
        assert "trading_state veto ×40" in vetoes and "last: halted 39" in vetoes
        assert "Drift alarm" in drift and "PSI 0.4" in drift
        assert "v7 rolled back (loss limit; by monitor)" in rollback
        assert watcher.poll() == []  # each thing once


def test_the_loops_adoption_of_a_persons_latch_is_announced_and_shown_by_status(
        tmp_path: Path) -> None:
    with Ledger.in_dir(tmp_path) as ledger:
        watcher = LedgerWatcher(tmp_path)
        watcher.prime()
        assert ledger_view.status(tmp_path)["adopted"] is None  # nobody set a state
        assert "adopted" not in commands.status_text(tmp_path)
        # A person's /kill: written, not yet taken up by the loop.
        latch = {"state": "halted", "reason": "spreads", "flatten": False,
                 "by": "telegram:1/alice"}
        ledger.set_control("trading_state", json.dumps(latch), 77)
        assert ledger_view.status(tmp_path)["adopted"] is False
        assert "HALTED</b> (spreads; by telegram:1/alice), not yet adopted by the loop" in \
            commands.status_text(tmp_path)
        assert [n.kind for n in watcher.poll()] == ["states"]
        # The loop's record at its next commit (as the runner writes it), and its vetoes.
        with ledger.transaction():
            ledger.record_control_adopted("trading_state", "halted", "telegram:1/alice: spreads")
            ledger.record_risk_event(78, "trading_state", "veto", "trading is HALTED")
        adoption, veto = watcher.poll()
        assert (adoption.kind, adoption.critical) == ("states", True)
        assert adoption.html == ("☑️ The loop adopted <b>HALTED</b> "
                                 "(telegram:1/alice: spreads)")
        assert (veto.kind, veto.critical) == ("risk", False)
        assert ledger_view.status(tmp_path)["adopted"] is True
        assert "(spreads; by telegram:1/alice), adopted by the loop" in \
            commands.status_text(tmp_path)
        # A later /resume is a new latch: not adopted until the loop records it too.
        ledger.set_control("trading_state", json.dumps(
            {"state": "active", "reason": "go", "by": "telegram:1/alice"}), 79)
        assert ledger_view.status(tmp_path)["adopted"] is False
        # A state the loop wrote itself (a check escalated) holds by construction.
        ledger.set_control("trading_state", json.dumps(
            {"state": "reducing", "reason": "8 losing trades", "flatten": False,
             "by": "argus"}), 80)
        assert ledger_view.status(tmp_path)["adopted"] is True


def test_thoughts_come_from_the_orchestrators_spool_or_say_it_is_not_running(
        tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    Ledger.in_dir(plain).close()
    assert "not running" in commands.thoughts_text(plain)
    with orchestrator_ledger(tmp_path / "orch") as ledger, ledger.transaction():
        ledger.insert("thoughts", {
            "thought_id": "t1", "cycle_id": "c1", "seq": 1, "purpose": "generate",
            "model": "claude-x", "system_prompt": "s", "prompt": "p", "prompt_hash": "h",
            "response_text": "Widen the <band> & wait", "status": "ok",
            "ts_ns": 1_700_000_000_000_000_000})
    text = commands.thoughts_text(tmp_path / "orch")
    assert "generate (claude-x, ok): Widen the &lt;band&gt; &amp; wait" in text


def test_command_parsing() -> None:
    kill = commands.parse("/kill spreads blew out", 1, "alice", "argus_bot")
    assert kill == commands.Command("kill", "spreads blew out", 1, "alice")
    assert kill.by == "telegram:1/alice"
    assert commands.parse("/Status@Argus_Bot", 1, "a", "argus_bot") == commands.Command(
        "status", "", 1, "a")
    assert commands.parse("/status@other_bot", 1, "a", "argus_bot") is None
    assert commands.parse("kill it", 1, "a", "argus_bot") is None
