"""Held-out red team of the updates the bot reads (on the plugin's Bot API stand-in).

Found (each failed before its fix):

* a message from the allowed chat with a field of the wrong type (``"date":
  "not-a-date"``) raised out of the library's parsing past the poller, which stopped for
  good: a ``/kill`` sent next was never obeyed (alerts went on, so nothing looked wrong);
* the same update waiting at start-up made ``start()`` raise, so the run could not start
  for as long as Telegram kept it (a day);
* more than 20 pages of updates waiting at start-up (a stranger can pad the queue): the
  skip stopped after 20 and a ``/kill`` from before the start was obeyed after it;
* a chat id of ``4242.0`` passed the allow-list (``4242.0 in [4242]``);
* every refusal was kept and every new stranger told: many accounts grew both without end.

An unreadable update is now skipped by its raw id (confirmed, never obeyed) and logged;
past the pages the Bot API is asked to forget the rest (a negative offset); ids must be
integers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argus_telegram.bot as bot_module
import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.testing import BotApiStandIn

from argus_core import Ledger, Secret, open_read_only

TOKEN = "7000000001:AAHk3vQbE9sX2mZr8TtYq4LwPnC6dUfGhJk"
ALLOWED = 4242
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _latch(run_dir: Path) -> Any:
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select value from control where key = 'trading_state'").fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


@pytest.fixture
def api() -> Iterator[BotApiStandIn]:
    with BotApiStandIn(TOKEN) as server:
        yield server


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELDOUT_TG_TOKEN", TOKEN)
    d = tmp_path / "run"
    with Ledger.in_dir(d) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "1"}}))
    return d


@pytest.fixture
def start(api: BotApiStandIn, run_dir: Path) -> Iterator[Callable[[], TelegramBot]]:
    bots: list[TelegramBot] = []

    def go() -> TelegramBot:
        bot = TelegramBot(TelegramSettings(
            token=Secret("$env:HELDOUT_TG_TOKEN"), chat_ids=[ALLOWED], base_url=api.base_url,
            base_file_url=api.base_file_url, batch_interval_s=0.3, poll_timeout_s=1,
            ledger_poll_s=0.1, shutdown_flush_s=2.0, startup_timeout_s=5.0,
            min_message_interval_s=0.05,
            confirm_within_s=0),  # (the update path; test_kill_confirm_r40.py: the asking)
            run_dir, run_id="run-1", mode="paper")
        bot.start()
        bots.append(bot)
        return bot

    yield go
    for bot in bots:
        bot.stop()


def _unreadable(api: BotApiStandIn) -> None:
    bad = api.make_message(ALLOWED, "/kill from an update that cannot be read")
    bad["date"] = "not-a-date"
    api.push_update({"message": bad})


def test_an_unreadable_update_is_skipped_and_the_next_kill_is_obeyed(
        api: BotApiStandIn, run_dir: Path, start: Callable[[], TelegramBot]) -> None:
    start()
    _unreadable(api)
    assert api.wait_for(lambda: api.pending_updates() == 0, 6.0)
    assert _latch(run_dir) is None  # the unreadable /kill is not obeyed
    api.send_command(ALLOWED, "/kill after an unreadable update")
    assert api.wait_for(lambda: _latch(run_dir) is not None, 6.0), "the poller stopped"


def test_an_unreadable_update_waiting_at_start_up_does_not_stop_the_start(
        api: BotApiStandIn, run_dir: Path, start: Callable[[], TelegramBot]) -> None:
    _unreadable(api)
    start()  # raised TypeError before
    api.send_command(ALLOWED, "/kill after the start")
    assert api.wait_for(lambda: _latch(run_dir) is not None, 6.0)


def test_a_kill_waiting_past_the_skipped_pages_is_not_obeyed(
        api: BotApiStandIn, run_dir: Path, start: Callable[[], TelegramBot]) -> None:
    for i in range(2000):  # 20 pages of a stranger's commands
        api.send_command(6666, f"/status {i}")
    api.send_command(ALLOWED, "/kill stale from a previous run")
    start()
    assert api.wait_for(lambda: api.pending_updates() == 0, 6.0)
    time.sleep(0.5)  # the poller's next round
    assert _latch(run_dir) is None, "a /kill from before start-up was obeyed"
    api.send_command(ALLOWED, "/kill now")
    assert api.wait_for(lambda: _latch(run_dir) is not None, 6.0)


@pytest.mark.parametrize("chat_id", [float(ALLOWED), str(ALLOWED)], ids=["float", "text"])
def test_a_chat_id_that_is_not_an_integer_is_refused(
        api: BotApiStandIn, run_dir: Path, start: Callable[[], TelegramBot],
        chat_id: Any) -> None:
    bot = start()
    message = api.make_message(ALLOWED, "/kill")
    message["chat"] = dict(message["chat"], id=chat_id)
    api.push_update({"message": message})
    assert api.wait_for(lambda: bool(bot.refused), 6.0)
    assert _latch(run_dir) is None


def test_strangers_cannot_grow_the_bots_memory_or_its_replies_without_end(
        api: BotApiStandIn, run_dir: Path, start: Callable[[], TelegramBot],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refused command was kept, and every new (chat, user) told once: a stranger
    with many accounts grew both lists (and the replies) for the whole run.  Now the newest
    ``MAX_REFUSED`` refusals are kept and at most ``MAX_TOLD`` strangers are told; the
    allowed chat is still obeyed."""
    monkeypatch.setattr(bot_module, "MAX_REFUSED", 10)
    monkeypatch.setattr(bot_module, "MAX_TOLD", 5)
    bot = start()
    for i in range(30):
        api.send_command(7000 + i, f"/status {i}")
    assert api.wait_for(lambda: api.pending_updates() == 0 and len(bot.refused) == 10, 8.0)
    assert bot.refused[-1][2] == "status" and bot.refused[0][0] == 7020  # the newest kept
    assert len({m.chat_id for m in api.messages() if m.chat_id >= 7000}) == 5
    api.send_command(ALLOWED, "/kill after the strangers")
    assert api.wait_for(lambda: _latch(run_dir) is not None, 6.0)
