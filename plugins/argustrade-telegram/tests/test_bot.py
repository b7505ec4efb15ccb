"""The bot against the local Bot API stand-in, on a real ledger: commands from allowed and
other chats, the latch /kill, /flatten and /resume write, 429s honoured after
retry_after, 5xx and dropped connections retried, a burst under the cap, a bad token
refused at start-up naming the key and never the token."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.outbox import Notice
from argus_telegram.testing import BotApiStandIn

from argus_core import ConfigError, Ledger, open_read_only

STRANGER = 6666
# PTB itself reads RetryAfter.retry_after as an int when it builds the error's message.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


def latch(run_dir: Path) -> dict[str, Any] | None:
    """The trading state latch, read independently (apsw, read-only)."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select value from control where key = 'trading_state'").fetchone()
    finally:
        conn.close()
    return None if row is None else dict(json.loads(row[0]))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A ledger with a run, a position, two fills and an equity row."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "10000"}}))
        with ledger.transaction() as conn:
            conn.execute("insert into orders (client_order_id, run_id, venue, instrument_id, "
                         "side, quantity, order_type, time_in_force, strategy, ts_ns, status) "
                         "values ('o1','run-1','paper','XBT/USD','buy','0.1','limit','gtc',"
                         "'s',1,'open')")
            conn.execute("insert into fills values ('f1','o1','paper','XBT/USD','buy',"
                         "'40000','0.1','1.5','taker',1700000000000000000)")
            conn.execute("insert into positions values ('XBT/USD','0.1','40000','25',1)")
            conn.execute("insert into equity values (1700000000000000000,'5998.5','10198.5',"
                         "'4200')")
    return run_dir


def reply_to(api: BotApiStandIn, chat_id: int, command: str, contains: str,
             timeout_s: float = 10.0) -> str:
    """Send ``command`` from ``chat_id`` and return the bot's reply holding ``contains``."""
    before = len(api.messages(chat_id))
    api.send_command(chat_id, command)
    found: list[str] = []

    def answered() -> bool:
        found[:] = [m.text or "" for m in api.sent[before:]
                    if m.chat_id == chat_id and contains in (m.text or "")]
        return bool(found)

    assert api.wait_for(answered, timeout_s), [m.text for m in api.messages(chat_id)]
    return found[0]


def test_kill_from_an_allowed_chat_writes_the_latch_argus_kill_writes_and_resume_clears_it(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot()
    text = reply_to(api, 4242, "/kill spreads blew out", "Done")
    assert "HALTED" in text and "spreads blew out" in text
    assert latch(run_dir) == {"state": "halted", "reason": "spreads blew out",
                              "flatten": False, "by": "telegram:4242/alice"}
    reply_to(api, 4242, f"/flatten@{bot.username} close it all", "Done")
    assert latch(run_dir) == {"state": "halted", "reason": "close it all", "flatten": True,
                              "by": "telegram:4242/alice"}
    reply_to(api, 4242, "/resume", "ACTIVE")
    stored = latch(run_dir)
    assert stored is not None and stored["state"] == "active"
    assert stored["by"] == "telegram:4242/alice"
    # Every state change was also announced as a notification, HALTED included.
    assert api.wait_for(lambda: sum((m.text or "").count("🚦 Trading")
                                    for m in api.messages(4242)) >= 2)
    assert all(m.parse_mode == "HTML" for m in api.messages())


def test_commands_from_another_chat_are_refused_logged_and_change_nothing(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot],
        caplog: pytest.LogCaptureFixture) -> None:
    bot = start_bot()
    caplog.set_level(logging.WARNING, logger="argus_telegram")
    reply_to(api, STRANGER, "/kill take over", "may not use this bot")
    for _ in range(20):  # a flood: refused and logged, answered once
        api.send_command(STRANGER, "/status")
    assert api.wait_for(lambda: len(bot.refused) == 21)
    assert latch(run_dir) is None  # still ACTIVE: nothing written
    assert list(bot.refused) == [(STRANGER, "alice", "kill")] + [(STRANGER, "alice", "status")] * 20
    assert [m.text for m in api.messages(STRANGER)] == ["This chat may not use this bot."]
    assert any(f"refused /kill from chat {STRANGER}" in r.getMessage() for r in caplog.records)
    # The refusal says nothing about the run.
    assert all("Equity" not in (m.text or "") for m in api.messages(STRANGER))
    # A command addressed to another bot in a group is not ours to answer.
    api.send_command(4242, "/kill@some_other_bot now")
    reply_to(api, 4242, "/help", "/kill")
    assert latch(run_dir) is None


def test_read_commands_answer_from_the_ledger(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    status = reply_to(api, 4242, "/status", "Equity")
    assert "ACTIVE" in status and "10,198.50" in status and "Open orders 1, fills 1" in status
    assert "2023-11-14 22:13:20 UTC" in status  # the last fill / equity row
    positions = reply_to(api, 4242, "/positions", "XBT/USD")
    assert "0.1 @ 40000" in positions
    pnl = reply_to(api, 4242, "/pnl", "Realised")
    # realised 25; market value 10198.5 - 5998.5 = 4200 against cost 4000; fees 1.5
    assert "Realised 25.00" in pnl and "Unrealised 200.00" in pnl and "Fees 1.50" in pnl
    assert "Total 198.50" in pnl
    thoughts = reply_to(api, 4242, "/thoughts", "orchestrator")
    assert "not running" in thoughts
    unknown = reply_to(api, 4242, "/frobnicate", "Unknown command")
    assert "/status" in unknown


def test_a_429_is_retried_after_retry_after_and_the_message_still_arrives(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot()
    assert api.wait_for(lambda: bool(api.messages(4242)))  # the "run started" message
    api.fail_next("sendMessage", "429", retry_after=2)
    bot.notify(Notice("states", "HALTED now", critical=True))
    assert api.wait_for(lambda: any("HALTED now" in (m.text or "")
                                    for m in api.messages(4242)), 10)
    refused_at = [at for method, at, params in api.calls
                  if method == "sendMessage" and "HALTED now" in str(params.get("text"))]
    assert len(refused_at) == 2  # the refused try and the retry
    assert refused_at[1] - refused_at[0] >= 2.0  # not before retry_after
    assert ("sendMessage", 429) in api.refusals


def test_5xx_answers_and_dropped_connections_are_retried(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot()
    assert api.wait_for(lambda: bool(api.messages(4242)))
    api.fail_next("sendMessage", "5xx", status=502)
    api.fail_next("sendMessage", "drop")
    bot.notify(Notice("states", "HALTED again", critical=True))
    assert api.wait_for(lambda: any("HALTED again" in (m.text or "")
                                    for m in api.messages(4242)), 15)
    api.fail_next("getUpdates", "drop")
    api.fail_next("getUpdates", "5xx", status=500)
    reply_to(api, 4242, "/status", "Equity", timeout_s=15)  # polling recovered


def test_html_the_api_refuses_is_sent_again_as_plain_text(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot()
    bot.notify(Notice("states", "🚦 Trading <b>HALTED (a tag left open", critical=True))
    assert api.wait_for(lambda: any("HALTED (a tag left open" in (m.text or "")
                                    for m in api.messages(4242)))
    plain = next(m for m in api.messages(4242) if "left open" in (m.text or ""))
    assert plain.parse_mode is None
    assert (plain.text or "").startswith("🚦 Trading HALTED (a tag left open\n")
    assert ("sendMessage", 400) in api.refusals


def test_a_burst_is_batched_and_the_per_minute_cap_holds(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot(max_messages_per_minute=3, batch_interval_s=0.3,
                    min_message_interval_s=0.2, events=["fills", "states"],
                    shutdown_flush_s=0.5)
    t0 = time.monotonic()
    padding = "x" * 90  # 200 lines of ~100 characters: six full messages' worth
    for i in range(200):
        bot.notify(Notice("fills", f"fill {i:03d} {padding}"))
        if i % 50 == 49:
            time.sleep(0.3)
    assert api.wait_for(lambda: len(api.messages(4242)) >= 3, 10)
    time.sleep(1.5)  # ten times the spacing: a fourth message would have gone by now
    messages = api.messages(4242)
    assert len(messages) == 3  # the cap: no fourth message inside the minute
    assert all(len(m.text or "") <= 4096 for m in messages)
    delivered = [line[:8] for m in messages for line in (m.text or "").splitlines()]
    assert delivered == [f"fill {i:03d}" for i in range(len(delivered))]  # in order, once
    assert len(delivered) > 100  # batched: dozens of fills a message
    # A state change still goes out at once, past the cap (and first in its message).
    bot.notify(Notice("states", "🚦 Trading HALTED", critical=True))
    assert api.wait_for(lambda: len(api.messages(4242)) == 4, 5)
    assert (api.messages(4242)[-1].text or "").startswith("🚦 Trading HALTED")
    assert time.monotonic() - t0 < 30


def test_the_end_of_a_run_delivers_what_is_pending_past_the_per_minute_cap(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot(max_messages_per_minute=2, batch_interval_s=0.1,
                    min_message_interval_s=0.05, shutdown_flush_s=5.0)
    assert api.wait_for(lambda: len(api.messages(4242)) == 1)  # "started": one of two
    bot.notify(Notice("fills", "fill 1"))
    assert api.wait_for(lambda: len(api.messages(4242)) == 2)  # the cap is spent
    bot.notify(Notice("fills", "fill 2"))
    time.sleep(0.6)
    assert len(api.messages(4242)) == 2  # held back by the cap while the run goes on
    bot.stop()
    # The run is over: what it said goes out now, in order, then that it stopped (the
    # cap would have held both for a minute, long past shutdown_flush_s).
    texts = [m.text or "" for m in api.messages(4242)]
    assert texts[2:] == ["fill 2", "⏹ Argus run <code>run-1</code> stopped"]


def test_the_stopped_notice_is_not_lost_when_its_first_send_fails(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot(shutdown_flush_s=5.0)
    assert api.wait_for(lambda: len(api.messages(4242)) == 1)  # "started"
    # The last message's first try is lost: the retry (after a back-off) still goes out
    # before the bot ends, although nothing is queued any more meanwhile.
    api.fail_next("sendMessage", "drop")
    bot.stop()
    texts = [m.text or "" for m in api.messages(4242)]
    assert texts[-1] == "⏹ Argus run <code>run-1</code> stopped"


def test_a_bad_token_fails_at_start_up_naming_the_key_never_the_token(
        api: BotApiStandIn, run_dir: Path, make_settings: Callable[..., TelegramSettings],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "7000000001:WRONGwrongWRONGwrongWRONGwrong12345"
    monkeypatch.setenv("ARGUS_TEST_TELEGRAM_TOKEN", wrong)
    bot = TelegramBot(make_settings(api), run_dir, run_id="run-1", mode="paper")
    with pytest.raises(ConfigError, match=r"\[plugins.telegram\] token") as err:
        bot.start()
    assert "401" in str(err.value) and "$env:ARGUS_TEST_TELEGRAM_TOKEN" in str(err.value)
    assert wrong not in str(err.value)
    assert ("getMe", 401) in api.refusals
    assert all(wrong not in r.getMessage() for r in caplog.records)


def test_an_unset_token_variable_is_named_with_the_key(
        api: BotApiStandIn, run_dir: Path, make_settings: Callable[..., TelegramSettings],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGUS_TEST_TELEGRAM_TOKEN")
    bot = TelegramBot(make_settings(api), run_dir, run_id="run-1", mode="paper")
    with pytest.raises(ConfigError, match=r"\[plugins.telegram\] token: .*"
                                          r"ARGUS_TEST_TELEGRAM_TOKEN is not set"):
        bot.start()
    assert not api.calls  # nothing was asked of the API


def test_the_token_never_reaches_the_logs(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    start_bot()
    reply_to(api, 4242, "/status", "Equity")
    records = [r.getMessage() for r in caplog.records]
    assert any("sendMessage" in m for m in records)  # httpx did log the requests ...
    assert all(api.token not in m for m in records)  # ... with the token masked
