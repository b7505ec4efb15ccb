"""The bot on real replay runs: a /kill from an allowed chat halts the running loop (the
run ends HALTED), one from another chat is refused; fills and the HALTED notice arrive
batched; the bot changes nothing the loop does; /report sends the run's HTML report; a
bad token stops the run before it trades."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.testing import BotApiStandIn
from argus_testkit import run_and_collect

from argus_core import ArgusError, hookimpl, open_read_only

STRANGER = 6666
ConfigFor = Callable[[dict[str, Any] | None], dict[str, Any]]


def latch(run_dir: Path) -> dict[str, Any] | None:
    """The trading state latch, read independently (apsw, read-only)."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select value from control where key = 'trading_state'").fetchone()
    finally:
        conn.close()
    return None if row is None else dict(json.loads(row[0]))


def texts(api: BotApiStandIn, chat_id: int) -> list[str]:
    """Texts of the messages sent to ``chat_id``."""
    return [m.text or "" for m in api.messages(chat_id)]


def test_a_kill_from_telegram_halts_a_running_replay_and_a_strangers_is_refused(
        api: BotApiStandIn, tmp_path: Path, make_table: Callable[..., dict[str, Any]],
        make_replay_config: ConfigFor) -> None:
    run_dir, seen = tmp_path / "run", {}

    def on_fill(fill: Any, ctx: Any) -> None:
        # On the loop's thread, between two events: the bot answers from its own thread
        # while the loop waits here, and the loop adopts the latch at its next commit.
        n = seen["fills"] = seen.get("fills", 0) + 1
        if n != 3:
            return
        api.send_command(STRANGER, "/kill I am not on the list", username="mallory")
        assert api.wait_for(lambda: any("may not" in t for t in texts(api, STRANGER)))
        seen["after_stranger"] = latch(run_dir)
        api.send_command(4242, "/kill spreads blew out")
        assert api.wait_for(lambda: any(t.startswith("Done") for t in texts(api, 4242)))
        seen["after_kill"] = latch(run_dir)

    observer = types.SimpleNamespace(on_fill=hookimpl(on_fill))
    config = make_replay_config(make_table(api))
    # A replay commits (and reads the latch) every checkpoint_every_events events, and
    # observers see fills after a commit: commit each event, as paper and live do.
    config["run"]["checkpoint_every_events"] = 1
    result = run_and_collect(config, run_dir, plugins={"kill_observer": observer})

    assert seen["after_stranger"] is None or seen["after_stranger"]["state"] != "halted"
    assert seen["after_kill"] == {"state": "halted", "reason": "spreads blew out",
                                  "flatten": False, "by": "telegram:4242/alice"}
    assert result.summary.trading_state == "halted"  # the run ends HALTED
    assert latch(run_dir) == seen["after_kill"]  # the loop never overwrote the kill
    # No order was opened after the kill: every later intent was vetoed.
    killed_at = result.fills[2].ts_ns
    assert all(o["reduce_only"] for o in result.orders if o["ts_ns"] > killed_at)
    assert result.risk_events_of("trading_state")

    sent = texts(api, 4242)
    fill_lines = [line for t in sent for line in t.splitlines() if line.startswith("✅ Fill")]
    # every fill, once: three before the kill, then only the exit HALTED still lets out
    assert len(fill_lines) == len(result.fills) == 4
    assert len(fill_lines) > sum(any(line.startswith("✅ Fill") for line in t.splitlines())
                                 for t in sent)  # batched: fewer messages than fills
    first = result.fills[0]
    assert fill_lines[0] == (f"✅ Fill {first.side.upper()} {first.quantity} "
                             f"{first.instrument_id} @ {first.price} (fee {first.fee}, "
                             f"{first.liquidity})")
    halted = [t for t in sent if "🚦 Trading <b>HALTED</b> (spreads blew out; by "
              "telegram:4242/alice)" in t]
    assert halted, sent
    assert "started" in sent[0] or any("started" in t for t in sent)
    assert "stopped" in sent[-1]
    assert all(len(t) <= 4096 for t in sent)
    # The stranger got the refusal and nothing else: no alert, no figure.
    assert texts(api, STRANGER) == ["This chat may not use this bot."]


def _traded(result: Any) -> list[tuple[Any, ...]]:
    return [(f.instrument_id, f.side, f.price, f.quantity, f.fee, f.ts_ns)
            for f in result.fills]


def test_the_bot_changes_nothing_the_loop_does(
        api: BotApiStandIn, tmp_path: Path, make_table: Callable[..., dict[str, Any]],
        make_replay_config: ConfigFor) -> None:
    with_bot = run_and_collect(make_replay_config(make_table(api)), tmp_path / "bot")
    plain = run_and_collect(make_replay_config(None), tmp_path / "plain")
    assert _traded(with_bot) == _traded(plain) and len(plain.fills) > 5
    assert with_bot.summary.final_equity == plain.summary.final_equity
    lines = [line for t in texts(api, 4242) for line in t.splitlines()]
    assert sum(line.startswith("✅ Fill") for line in lines) == len(plain.fills)
    if plain.summary.trading_state != "active":  # a check escalated: announced
        assert any(line.startswith("🚦 Trading <b>" + plain.summary.trading_state.upper())
                   for line in lines)


def test_report_and_read_commands_on_a_finished_run(
        api: BotApiStandIn, tmp_path: Path, make_settings: Callable[..., TelegramSettings],
        make_replay_config: ConfigFor) -> None:
    run_dir = tmp_path / "run"
    result = run_and_collect(make_replay_config(None), run_dir)
    bot = TelegramBot(make_settings(api), run_dir, run_id=result.summary.run_id,
                      mode="replay")
    bot.start()
    try:
        api.send_command(4242, "/report")
        assert api.wait_for(lambda: any(s.method == "sendDocument" for s in api.sent), 120)
        doc = next(s for s in api.sent if s.method == "sendDocument")
        assert doc.chat_id == 4242 and doc.filename and doc.filename.endswith(".html")
        assert doc.document is not None and b"<html" in doc.document.lower()
        assert doc.document == (run_dir / "report.html").read_bytes()
        api.send_command(4242, "/status")
        assert api.wait_for(lambda: any("Equity" in t for t in texts(api, 4242)))
        status = next(t for t in texts(api, 4242) if "Equity" in t)
        assert result.summary.run_id in status
        assert f"fills {len(result.fills)}" in status
        assert f"{float(result.summary.final_equity):,.2f}" in status
    finally:
        bot.stop()


def test_a_bad_token_stops_the_run_before_it_trades(
        api: BotApiStandIn, tmp_path: Path, make_table: Callable[..., dict[str, Any]],
        make_replay_config: ConfigFor, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "7000000001:WRONGwrongWRONGwrongWRONGwrong12345"
    monkeypatch.setenv("ARGUS_TEST_TELEGRAM_TOKEN", wrong)
    with pytest.raises(ArgusError, match=r"\[plugins.telegram\] token") as err:
        run_and_collect(make_replay_config(make_table(api)), tmp_path / "run")
    assert wrong not in str(err.value) and "401" in str(err.value)
    assert not api.messages()
