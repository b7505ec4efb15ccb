"""Held-out audit of the bot's control surface: who may command it (chats, people,
edits, channel posts, buttons, forwards, other bots), what a bad command does (look-alike
names, control characters, 100 kB reasons, HTML, secrets), and that each command is
handled once (a second /kill, /resume while ACTIVE, a replayed update, updates left from
before a restart)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argus_telegram import commands
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.testing import BOT_USERNAME, BotApiStandIn

from argus_core import MAX_REASON, Ledger, Secret, open_read_only

ALLOWED, STRANGER, GROUP = 4242, 6666, -1001234
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


def query(run_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql``, read independently (apsw, read-only)."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def latch(run_dir: Path) -> dict[str, Any] | None:
    """The trading-state latch as stored."""
    found = query(run_dir, "select value from control where key = 'trading_state'")
    return json.loads(found[0][0]) if found else None


def latch_writes(run_dir: Path) -> int:
    """How many times the latch was written (the core's control_log keeps every write)."""
    return int(query(run_dir, "select count(*) from control_log where key = "
                              "'trading_state'")[0][0])


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A ledger with a running run."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "10000"}}))
    return run_dir


def texts(api: BotApiStandIn, chat_id: int) -> list[str]:
    """What the bot sent to ``chat_id``."""
    return [m.text or "" for m in api.messages(chat_id)]


def answer(api: BotApiStandIn, chat_id: int, contains: str, before: int = 0,
           timeout_s: float = 10.0) -> str:
    """The first message to ``chat_id`` after the first ``before`` holding ``contains``."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [t for t in texts(api, chat_id)[before:] if contains in t]
        return bool(found)

    assert api.wait_for(seen, timeout_s), texts(api, chat_id)
    return found[0]


def ask(api: BotApiStandIn, chat_id: int, text: str, contains: str, *,
        timeout_s: float = 10.0, **kw: Any) -> str:
    """Send ``text`` from ``chat_id``; the reply holding ``contains``."""
    before = len(api.messages(chat_id))
    api.send_command(chat_id, text, **kw)
    return answer(api, chat_id, contains, before, timeout_s)


def settle(api: BotApiStandIn, chat_id: int = ALLOWED) -> None:
    """Wait until everything sent so far was handled: a /help sent last is answered."""
    ask(api, chat_id, "/help", "/resume [reason]")


# -- who may command the bot ------------------------------------------------------------------
def test_a_group_not_on_the_list_is_refused_even_when_the_sender_is(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot()
    text = ask(api, GROUP, "/kill from the group", "may not use", user_id=ALLOWED,
               chat_type="supergroup")
    assert text == "This chat may not use this bot."
    settle(api)
    assert latch(run_dir) is None and bot.refused[0][0] == GROUP
    # Nothing about the run reached the group: no alert, no figure.
    assert texts(api, GROUP) == ["This chat may not use this bot."]


def test_user_ids_limit_who_may_command_in_an_allowed_group(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot(chat_ids=[GROUP], user_ids=[ALLOWED])
    refused = ask(api, GROUP, "/kill I joined the group", "may not", username="mallory",
                  user_id=STRANGER, chat_type="supergroup")
    assert refused == "You may not use this bot."
    done = ask(api, GROUP, "/kill spreads blew out", "Done", user_id=ALLOWED,
               chat_type="supergroup")
    assert "HALTED" in done
    stored = latch(run_dir)
    assert stored is not None and stored["by"] == f"telegram:{GROUP}/alice"
    assert latch_writes(run_dir) == 1  # the stranger's wrote nothing


def test_an_empty_user_list_obeys_nobody(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot(user_ids=[])
    assert ask(api, ALLOWED, "/kill", "may not") == "You may not use this bot."
    assert latch(run_dir) is None


def test_user_ids_are_integers_and_an_empty_chat_list_allows_nobody(
        api: BotApiStandIn, make_settings: Callable[..., TelegramSettings]) -> None:
    with pytest.raises(ValueError, match="user_ids"):
        make_settings(api, user_ids=["alice"])
    # A token with no chat would obey nobody and tell nobody: refused up front.
    with pytest.raises(ValueError, match="chat_ids"):
        TelegramSettings(token=Secret("$env:X"), chat_ids=[])


def test_edits_channel_posts_and_button_presses_are_never_commands(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="argus_telegram")
    start_bot(chat_ids=[ALLOWED, GROUP])
    edited = api.make_message(ALLOWED, "/kill edited in", edit_date=1)
    post = api.make_message(GROUP, "/kill from the channel", chat_type="channel")
    del post["from"]  # channel posts have no sender
    button = {"id": "1", "from": edited["from"], "chat_instance": "x", "data": "/kill",
              "message": api.make_message(ALLOWED, "/kill on a button")}
    api.push_update({"edited_message": edited}, {"channel_post": post},
                    {"edited_channel_post": post}, {"callback_query": button})
    settle(api)
    assert latch(run_dir) is None
    assert not [t for t in texts(api, ALLOWED) if t.startswith("Done")]
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 4 and any("edited_message" in m for m in ignored)


def test_a_forwarded_command_is_not_obeyed(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    origin = {"type": "user", "date": 1700000000,
              "sender_user": {"id": 9, "is_bot": False, "first_name": "Eve"}}
    before = len(api.messages(ALLOWED))
    api.push_update({"message": api.make_message(ALLOWED, "/resume", forward_origin=origin)})
    assert "Forwarded commands are not obeyed" in answer(api, ALLOWED, "Forwarded", before)
    assert latch(run_dir) is None


def test_a_command_for_another_bot_is_ignored_and_ours_is_obeyed_in_any_case(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    api.send_command(ALLOWED, "/kill@otherbot now")
    settle(api)
    assert latch(run_dir) is None
    ask(api, ALLOWED, f"/kill@{BOT_USERNAME.upper()} ours", "Done")
    assert latch(run_dir) == {"state": "halted", "reason": "ours", "flatten": False,
                              "by": f"telegram:{ALLOWED}/alice"}


# -- bad commands ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "/ｋｉｌｌ now",        # fullwidth letters
    "/\u212aILL now",      # KELVIN SIGN: str.lower() makes it "kill"
    "/kіll now",           # Cyrillic і
    "/kill\u200b now",     # a zero-width space glued to the name
    "/ kill now",          # no name at all
])
def test_look_alike_commands_are_unknown_and_change_nothing(
        text: str, api: BotApiStandIn, run_dir: Path,
        start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    reply = ask(api, ALLOWED, text, "Unknown command")
    assert "/kill [reason]" in reply
    assert latch(run_dir) is None


def test_parse_is_strict_about_names_and_splits_on_any_white_space() -> None:
    assert commands.parse("/kill\nspreads\tblew out", 1, "alice", "bot") == \
        commands.Command("kill", "spreads\tblew out", 1, "alice")
    assert commands.parse("/\u212aill x", 1, "alice", "bot") == \
        commands.Command("", "x", 1, "alice")
    assert commands.parse("/status@Other_Bot", 1, "alice", "bot") is None
    assert commands.parse("kill", 1, "alice", "bot") is None


def test_a_hostile_reason_is_stored_clean_short_and_without_secrets_and_still_answered(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    start_bot()
    secret = "sk-ant-api03-" + "Q" * 40
    reason = ("<b>bold</b> & <a href='x'>link</a>\x1b[31m red\x00 nul \u202eevil "
              f"{api.token} {secret} " + "blah " * 20_000)
    reply = ask(api, ALLOWED, "/kill " + reason, "Done", timeout_s=20)
    stored = latch(run_dir)
    assert stored is not None and stored["state"] == "halted"
    kept = stored["reason"]
    assert len(kept) <= MAX_REASON and kept.endswith("…")
    assert kept.startswith("<b>bold</b> & <a href='x'>link</a> [31m red nul evil ")
    assert not any(ch in kept for ch in "\x1b\x00\u202e")
    assert api.token not in kept and secret not in kept and "[REDACTED]" in kept
    # The answer arrived as HTML Telegram accepts, the person's markup shown as text.
    sent = next(m for m in api.messages(ALLOWED) if (m.text or "").startswith("Done"))
    assert sent.parse_mode == "HTML" and len(reply) <= 4096
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href=&#x27;x&#x27;&gt;" in reply
    assert api.token not in reply and secret not in reply
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert api.token not in logged and secret not in logged and "\x1b" not in logged


def test_a_person_named_with_a_newline_cannot_forge_log_lines_or_the_latch(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="argus_telegram")
    start_bot()
    ask(api, STRANGER, "/kill x", "may not", username="mallory\nWARNING forged")
    evil = "eve\n<b>\x1b"
    before = len(api.messages(ALLOWED))
    api.push_update({"message": api.make_message(ALLOWED, "/kill named", username=evil)})
    answer(api, ALLOWED, "Done", before)
    assert all("\n" not in r.getMessage() for r in caplog.records)
    stored = latch(run_dir)
    assert stored is not None and stored["by"] == f"telegram:{ALLOWED}/eve <b>"


# -- handled once ---------------------------------------------------------------------------
def test_resume_while_active_and_a_second_kill_or_flatten_write_nothing(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    assert "already <b>ACTIVE</b>" in ask(api, ALLOWED, "/resume", "Nothing changed")
    assert latch(run_dir) is None and latch_writes(run_dir) == 0
    ask(api, ALLOWED, "/kill first", "Done")
    again = ask(api, ALLOWED, "/kill second", "Nothing changed")
    assert "already <b>HALTED</b> (first;" in again
    assert latch(run_dir)["reason"] == "first" and latch_writes(run_dir) == 1  # type: ignore[index]  # set above
    ask(api, ALLOWED, "/flatten close it", "Done")  # HALTED -> HALTED and flattening
    ask(api, ALLOWED, "/flatten close it again", "Nothing changed")
    ask(api, ALLOWED, "/kill downgrade?", "Nothing changed")  # never un-flattens
    stored = latch(run_dir)
    assert stored is not None and stored["flatten"] is True and stored["reason"] == "close it"
    assert latch_writes(run_dir) == 2
    ask(api, ALLOWED, "/resume", "Done")
    assert latch_writes(run_dir) == 3


def test_an_update_delivered_twice_is_handled_once(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    uid = api.next_update_id()
    message = api.make_message(ALLOWED, "/flatten once")
    api.push_update({"update_id": uid, "message": message},
                    {"update_id": uid, "message": message})
    settle(api)
    assert latch_writes(run_dir) == 1
    assert sum(t.startswith("Done") for t in texts(api, ALLOWED)) == 1


def test_updates_left_from_before_a_restart_are_not_obeyed_and_the_person_is_told(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    first = start_bot()
    kill = api.make_message(ALLOWED, "/kill before the restart")
    uid = api.push_update({"message": kill})[0]
    answer(api, ALLOWED, "Done")
    first.stop()
    # The process stopped before confirming the kill (Telegram sends it again), and a
    # /resume was typed while no bot ran: the next process must obey neither.
    Ledger.in_dir(run_dir).close()
    api.push_update({"update_id": uid, "message": kill})
    api.send_command(ALLOWED, "/resume typed while it was down")
    written = latch_writes(run_dir)
    before = len(api.messages(ALLOWED))
    start_bot()
    assert "Not obeyed: 2 command(s)" in answer(api, ALLOWED, "Not obeyed", before)
    assert latch_writes(run_dir) == written
    assert latch(run_dir)["state"] == "halted"  # type: ignore[index]  # set above
    assert "HALTED" in ask(api, ALLOWED, "/status", "Trading")  # new commands are obeyed
