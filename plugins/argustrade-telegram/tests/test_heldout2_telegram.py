"""Second held-out red team of the bot, on the plugin's Bot API stand-in.

Found (each test failed before its fix):

* ``/resume`` while a ``/flatten`` was under way answered only "Done: trading ACTIVE":
  it did not say which positions the stopped flatten leaves open (``argus resume`` does);
* one ``401``/``404`` answer to ``getUpdates`` stopped the poller for good: a ``/kill``
  sent next was never obeyed, and nobody in the chats was told commands had stopped;
* ``409 Conflict`` (another process polls this token: a second run with the same bot)
  was retried in silence: the other process took the commands, and the chats never knew;
* an answer to ``sendMessage`` that is not JSON (a proxy's page, HTTP 200) was taken as a
  refusal: the critical HALTED alert was dropped, never sent again;
* that page quoted the request's path, and PTB logged it on ``telegram.request.*``, a
  child of the masked ``telegram`` logger (a logger's filter does not apply to its
  children's records): the token reached the logs;
* ``/kill`` while the loop held the ledger's write lock past SQLite's 5 s wait answered
  "/kill FAILED ... (a damaged file, or not an Argus ledger)" and the kill never landed;
* a command in a forum topic was answered in the group's General topic, where the person
  asking does not look.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.outbox import Notice
from argus_telegram.testing import BotApiStandIn

from argus_core import Ledger, Position, open_read_only

ALLOWED, GROUP = 4242, -1001234
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def latch(run_dir: Path) -> dict[str, Any] | None:
    """The trading-state latch as stored."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select value from control where key = 'trading_state'"
                           ).fetchone()
    finally:
        conn.close()
    return None if row is None else dict(json.loads(row[0]))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A ledger with a running run."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "1"}}))
    return run_dir


def texts(api: BotApiStandIn, chat_id: int = ALLOWED) -> list[str]:
    """What the bot sent to ``chat_id``."""
    return [m.text or "" for m in api.messages(chat_id)]


def said(api: BotApiStandIn, contains: str, chat_id: int = ALLOWED,
         timeout_s: float = 8.0) -> str:
    """The first message to ``chat_id`` holding ``contains``."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [t for t in texts(api, chat_id) if contains in t]
        return bool(found)

    assert api.wait_for(seen, timeout_s), texts(api, chat_id)
    return found[0]


def test_resume_during_a_flatten_names_the_positions_it_leaves_open(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: "Done: trading ACTIVE (...)" and nothing about the two positions the
    stopped flatten leaves open; ``argus resume`` names them."""
    with Ledger.in_dir(run_dir) as ledger:
        for instrument, quantity in (("BTC-USD", "0.5"), ("ETH-USD", "-2"), ("SOL-USD", "0")):
            ledger.upsert_position(Position(instrument, Decimal(quantity), Decimal("100"),
                                            Decimal(0)), 1)
    start_bot()
    api.send_command(ALLOWED, "/flatten close it all")
    said(api, "Done")
    api.send_command(ALLOWED, "/resume changed my mind")
    reply = said(api, "ACTIVE")
    assert "the flatten under way stops: 2 position(s) stay open (BTC-USD, ETH-USD)" in reply
    assert "/flatten closes them" in reply
    assert latch(run_dir)["state"] == "active"  # type: ignore[index]  # written above


def test_a_401_from_getupdates_does_not_stop_commands_and_the_chats_are_told(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: the poller returned on the first 401 (PTB's InvalidToken, also a 404):
    the /kill below was never obeyed and the chats heard nothing."""
    start_bot()
    api.fail_next("getUpdates", "401")
    assert "Commands are not received" in said(api, "Commands are not received")
    api.send_command(ALLOWED, "/kill after a 401")
    assert api.wait_for(lambda: latch(run_dir) is not None, 8.0), texts(api)
    said(api, "Commands are received again")


def test_another_getupdates_consumer_is_told_to_the_chats(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: 409 Conflict was retried with only a log line: the chats never learned that
    another process (a second run with this token) takes their commands."""
    start_bot()
    api.fail_next("getUpdates", "409", times=2)
    warning = said(api, "Commands are not received")
    assert "another process" in warning and "run-1" in warning
    api.send_command(ALLOWED, "/kill after the conflict")
    assert api.wait_for(lambda: latch(run_dir) is not None, 8.0), texts(api)
    assert "run <code>run-1</code>" in said(api, "Done")  # which run, with two in play


def test_an_answer_that_is_not_json_does_not_lose_a_critical_alert(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: PTB's "Invalid server response" (a TelegramError of no subclass) counted
    as a refusal: the HALTED alert was dropped after the plain-text try."""
    bot = start_bot()
    said(api, "started")
    api.fail_next("sendMessage", "garbled", status=200, times=2)
    bot.notify(Notice("states", "🚦 Trading <b>HALTED</b> (test)", critical=True))
    said(api, "HALTED")


def test_the_token_in_an_answer_that_is_not_json_never_reaches_the_logs(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot],
        caplog: pytest.LogCaptureFixture) -> None:
    """Before: PTB logged the page ('Can not load invalid JSON data: ".../bot<token>/...')
    on ``telegram.request.BaseRequest``, a child logger the mask was not on."""
    caplog.set_level(logging.DEBUG)
    bot = start_bot()
    said(api, "started")
    api.fail_next("sendMessage", "garbled", status=502)
    api.fail_next("getUpdates", "garbled", status=200)
    bot.notify(Notice("states", "🚦 alert", critical=True))
    said(api, "alert")
    assert api.wait_for(lambda: any("Can not load" in r.getMessage()
                                    for r in caplog.records), 5.0)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert api.token.split(":")[1] not in logged and "<token>" in logged


def test_a_kill_while_the_loop_holds_the_write_lock_lands_when_it_is_freed(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: "/kill FAILED: LedgerError: ... BusyError: database is locked (a damaged
    file, or not an Argus ledger)" after 5 s, and nothing was written."""
    start_bot()
    said(api, "started")
    holder = apsw.Connection(str(run_dir / "argus.db"))
    holder.execute("begin immediate")  # what a stalled loop's commit holds
    try:
        api.send_command(ALLOWED, "/kill while it is locked")
        # held until the bot says it is busy (a timer of 6 s freed it before the bot's
        # 5 s wait had run out whenever a loaded machine started the command late)
        assert "busy" in said(api, "busy", timeout_s=20.0)
        holder.execute("rollback")
        assert api.wait_for(lambda: latch(run_dir) is not None, 15.0), texts(api)
        said(api, "Done")
    finally:
        holder.close()
    assert not [t for t in texts(api) if "FAILED" in t or "damaged" in t]


def test_a_command_in_a_forum_topic_is_answered_in_that_topic(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: the answer went to the group's General topic (no ``message_thread_id``)."""
    start_bot(chat_ids=[GROUP])
    api.push_update({"message": api.make_message(
        GROUP, "/status", chat_type="supergroup", message_thread_id=77,
        is_topic_message=True)})
    said(api, "Trading", GROUP)
    answer = next(m for m in api.messages(GROUP) if "Trading" in (m.text or ""))
    assert answer.thread_id == 77
    said(api, "started", GROUP)
    started = next(m for m in api.messages(GROUP) if "started" in (m.text or ""))
    assert started.thread_id is None  # alerts still go to the chat itself

