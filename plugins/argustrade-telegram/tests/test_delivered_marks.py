"""Alerts survive the bot's process: the marks up to which everything was delivered are
kept in the run folder (``telegram-delivered.json``), and the next bot of the run tells
what the ledger recorded after them, marked late, exactly once; fills capped with a count;
a damaged or hostile marks file is warned of and the bot starts from now; the file holds
no secrets; an alert delayed by an outage says it is late; the queues stay bounded."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.ledger_view import LedgerWatcher
from argus_telegram.outbox import Notice, Outbox
from argus_telegram.testing import BotApiStandIn
from argus_testkit import FakeClock

from argus_core import ConfigError, Ledger, request_trading_state

ALLOWED = 4242
TOKEN = "7000000001:AAHk3vQbE9sX2mZr8TtYq4LwPnC6dUfGhJk"  # conftest's
MARKS = "telegram-delivered.json"  # (the name, not imported: these tests ran on old code)
LATE = "⏰ <i>late: from before this bot started ("
HALTED = "🚦 Trading <b>HALTED</b> (drawdown past the limit"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

Settings = Callable[..., TelegramSettings]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "1"}}))
        with ledger.transaction() as conn:
            conn.execute("insert into orders (client_order_id, run_id, venue, instrument_id, "
                         "side, quantity, order_type, time_in_force, strategy, ts_ns, status) "
                         "values ('o1','run-1','paper','XBT/USD','buy','1','limit','gtc',"
                         "'s',1,'filled')")
    return run_dir


@pytest.fixture
def bots() -> Iterator[list[TelegramBot]]:
    """Bots a test started; stopped after it (stopping twice is harmless)."""
    started: list[TelegramBot] = []
    yield started
    for bot in started:
        bot.stop()


def start(bots: list[TelegramBot], api: BotApiStandIn, run_dir: Path,
          make_settings: Settings, **changes: Any) -> TelegramBot:
    bot = TelegramBot(make_settings(api, **changes), run_dir, run_id="run-1", mode="paper")
    bot.start()
    bots.append(bot)
    return bot


def texts(api: BotApiStandIn) -> list[str]:
    return [m.text or "" for m in api.messages(ALLOWED)]


def lines(api: BotApiStandIn) -> list[str]:
    return [line for t in texts(api) for line in t.splitlines()]


def wait_started(api: BotApiStandIn, n: int) -> None:
    assert api.wait_for(lambda: sum("▶️ Argus run" in t for t in texts(api)) >= n, 10), \
        texts(api)


def kill(run_dir: Path, reason: str = "drawdown past the limit") -> None:
    """A halt written while no bot runs (``argus kill``)."""
    with Ledger.in_dir(run_dir) as ledger:
        request_trading_state(ledger, "kill", reason, by="cli")


def add_fills(run_dir: Path, first: int, n: int) -> None:
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction() as conn:
        for i in range(first, first + n):
            conn.execute("insert into fills values (?,'o1','paper','XBT/USD','buy',?,'0.01',"
                         "'0.1','taker',?)", (f"f{i}", str(40000 + i), 1_700_000_000 + i))


def test_a_halt_written_while_the_bot_was_down_is_sent_after_restart_late_and_once(
        api: BotApiStandIn, run_dir: Path, make_settings: Settings,
        bots: list[TelegramBot]) -> None:
    start(bots, api, run_dir, make_settings)
    wait_started(api, 1)
    bots[-1].stop()
    assert (run_dir / MARKS).is_file()  # everything delivered: the marks were saved
    kill(run_dir)  # the bot's process is gone (a crash, a restart): nobody tells the chat
    start(bots, api, run_dir, make_settings)
    assert api.wait_for(lambda: any(HALTED in line for line in lines(api)), 10), texts(api)
    late = [line for line in lines(api) if HALTED in line]
    assert late == [line for line in late if line.startswith(LATE)] and len(late) == 1
    assert " UTC)</i>: 🚦 Trading" in late[0]
    bots[-1].stop()
    start(bots, api, run_dir, make_settings)  # restarted again: nothing is repeated
    wait_started(api, 3)
    bots[-1].stop()
    assert sum(HALTED in line for line in lines(api)) == 1, texts(api)
    assert sum("⏰" in line for line in lines(api)) == 1


def test_a_halt_queued_while_telegram_was_unreachable_is_sent_by_the_next_process(
        run_dir: Path, make_settings: Settings, bots: list[TelegramBot]) -> None:
    with BotApiStandIn(TOKEN) as down:
        bot = start(bots, down, run_dir, make_settings, shutdown_flush_s=0.5)
        wait_started(down, 1)
        assert down.wait_for(lambda: (run_dir / MARKS).is_file(), 5)
        saved = (run_dir / MARKS).read_text()
        down.fail_next("sendMessage", "5xx", times=10_000)  # Telegram unreachable
        kill(run_dir)
        assert down.wait_for(lambda: bot.watcher.latch is not None, 5)  # read, queued
        bot.stop()  # the process stops with the alert undelivered
    assert not any(HALTED in t for t in texts(down))
    assert (run_dir / MARKS).read_text() == saved  # not past what was not delivered
    with BotApiStandIn(TOKEN) as up:
        start(bots, up, run_dir, make_settings)
        assert up.wait_for(lambda: any(line.startswith(LATE) and HALTED in line
                                       for line in lines(up)), 10), texts(up)


def test_fills_after_the_marks_are_capped_to_the_newest_with_a_count(
        api: BotApiStandIn, run_dir: Path, make_settings: Settings,
        bots: list[TelegramBot]) -> None:
    add_fills(run_dir, 1, 3)  # before the first bot: history, never told
    start(bots, api, run_dir, make_settings)
    wait_started(api, 1)
    bots[-1].stop()
    add_fills(run_dir, 4, 25)  # while no bot runs
    start(bots, api, run_dir, make_settings)
    assert api.wait_for(lambda: any("25 fills" in t for t in texts(api)), 10), texts(api)
    bots[-1].stop()
    message = next(t for t in texts(api) if "25 fills" in t)
    assert LATE in message and "25 fills; 15 older not listed, the newest 10:" in message
    fills = [line for line in lines(api) if line.startswith("✅ Fill")]
    assert fills == [f"✅ Fill BUY 0.01 XBT/USD @ {40000 + i} (fee 0.1, taker)"
                     for i in range(19, 29)]


def _valid(**changes: Any) -> dict[str, Any]:
    marks = {"version": 1, "run_id": "run-1", "latch_sha256": None, "risk_id": 0,
             "strategy_event_id": 0, "fill_rowid": 0}
    marks.update(changes)
    return marks


def _link(run_dir: Path) -> None:
    target = run_dir.parent / "elsewhere.json"  # marks that, followed, would be obeyed
    target.write_text(json.dumps(_valid()))
    (run_dir / MARKS).symlink_to(target)


HOSTILE: dict[str, Callable[[Path], object]] = {
    "not JSON": lambda d: (d / MARKS).write_bytes(b"{\"version\": 1, \x00\xff"),
    "not an object": lambda d: (d / MARKS).write_text("[1, 2, 3]"),
    "a string mark": lambda d: (d / MARKS).write_text(json.dumps(_valid(risk_id="0"))),
    "a boolean mark": lambda d: (d / MARKS).write_text(json.dumps(_valid(fill_rowid=False))),
    "a negative mark": lambda d: (d / MARKS).write_text(json.dumps(_valid(risk_id=-1))),
    "a bad digest": lambda d: (d / MARKS).write_text(json.dumps(_valid(latch_sha256="<b>"))),
    "beyond the end": lambda d: (d / MARKS).write_text(json.dumps(_valid(fill_rowid=10**6))),
    "another run": lambda d: (d / MARKS).write_text(json.dumps(_valid(run_id="run-2"))),
    "huge": lambda d: (d / MARKS).write_text(" " * 100_000 + json.dumps(_valid())),
    "a symlink": _link,
    "a directory": lambda d: (d / MARKS).mkdir(),
    "a FIFO": lambda d: os.mkfifo(d / MARKS),
}


@pytest.mark.parametrize("damage", list(HOSTILE))
def test_a_damaged_or_hostile_marks_file_is_warned_of_and_the_bot_starts_from_now(
        damage: str, api: BotApiStandIn, run_dir: Path, make_settings: Settings,
        bots: list[TelegramBot], caplog: pytest.LogCaptureFixture) -> None:
    kill(run_dir)  # before the bot: a file that were obeyed would announce it late
    HOSTILE[damage](run_dir)
    with caplog.at_level(logging.WARNING, logger="argus_telegram"):
        start(bots, api, run_dir, make_settings)  # no exception: the run goes on
    warned = [r.getMessage() for r in caplog.records if MARKS in r.getMessage()]
    assert warned and "starts from now" in warned[0], caplog.text
    assert api.wait_for(lambda: any(f"⚠️ <code>{MARKS}</code>" in t for t in texts(api)), 10)
    bots[-1].stop()
    assert not any("⏰" in t for t in texts(api)), texts(api)
    assert "HALTED" in next(t for t in texts(api) if "▶️" in t)  # the start says the state
    if damage == "a symlink":
        assert json.loads((run_dir.parent / "elsewhere.json").read_text()) == _valid()
    if damage not in ("a directory",):  # a directory is not replaced: warned again later
        assert (run_dir / MARKS).is_file() and not (run_dir / MARKS).is_symlink()
        assert json.loads((run_dir / MARKS).read_text())["run_id"] == "run-1"  # from now


def test_the_marks_file_holds_no_secrets(api: BotApiStandIn, run_dir: Path,
                                         make_settings: Settings,
                                         bots: list[TelegramBot]) -> None:
    secret_reason = "spreads; key sk_live_4eC39HqLyjWDarjtT1zdp7dc and more"
    kill(run_dir, secret_reason)
    start(bots, api, run_dir, make_settings)
    wait_started(api, 1)
    bots[-1].stop()
    text = (run_dir / MARKS).read_text()
    value = json.loads(text)
    assert set(value) == {"version", "run_id", "latch_sha256", "risk_id",
                          "strategy_event_id", "fill_rowid", "written_at"}
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "spreads" not in text and "sk_live" not in text and "drawdown" not in text
    assert oct((run_dir / MARKS).stat().st_mode & 0o777) == oct(0o600)


def test_an_alert_delayed_by_an_outage_is_marked_late_when_it_goes(
        api: BotApiStandIn, run_dir: Path, make_settings: Settings,
        bots: list[TelegramBot]) -> None:
    api.fail_next("sendMessage", "429", retry_after=3)  # the start notice waits 3 s
    bot = start(bots, api, run_dir, make_settings, late_after_s=1)
    assert api.wait_for(lambda: bot._delivering, 5)  # "started" in hand, held by the 429
    kill(run_dir)
    assert api.wait_for(lambda: any(HALTED in t for t in texts(api)), 15), texts(api)
    halted = next(line for line in lines(api) if HALTED in line)
    assert halted.startswith("⏰ <i>late (queued ") and " UTC)</i>: 🚦" in halted
    assert not texts(api)[0].startswith("⏰")  # "started" was sent when taken: not late


def test_late_after_s_is_range_checked(api: BotApiStandIn,
                                       make_settings: Settings) -> None:
    assert make_settings(api).late_after_s == 300
    for bad in (0, -5, 10**6):
        with pytest.raises((ValueError, ConfigError), match="late_after_s"):
            make_settings(api, late_after_s=bad)


def test_an_outbox_marks_a_line_late_when_taken_long_after_it_was_queued() -> None:
    clock = FakeClock()
    box = Outbox(clock=clock.time, wall=clock.time, late_after_s=300)
    box.put(Notice("fills", "fill 1"))
    clock.advance(300)
    assert box.take() == "fill 1"  # within late_after_s
    box.put(Notice("states", "HALTED", critical=True))
    box.put(Notice("risk", "already says so", late=True))
    clock.advance(301)
    text = box.take()
    assert text is not None
    assert text.splitlines() == ["⏰ <i>late (queued 22:18 UTC)</i>: HALTED",
                                 "already says so"]
    box.put(Notice("fills", "fill 2"))
    sent = box.take()
    assert sent == "fill 2"
    clock.advance(400)
    box.put_back(sent)  # a failed send: it keeps the time it was queued
    assert box.take() == "⏰ <i>late (queued 22:23 UTC)</i>: fill 2"


def test_memory_stays_bounded_under_a_flood_and_what_went_is_counted() -> None:
    box = Outbox(max_pending=10, clock=FakeClock().time)
    for i in range(10_000):
        box.put(Notice("drift", f"drift {i}", critical=True))
        box.put(Notice("fills", f"fill {i}"))
    for _ in range(100):
        box.put(Notice("risk", "<b>x</b>" * 1_000_000))  # a huge line is cut when queued
    assert len(box) == 20
    assert sum(len(e.notice.html) for q in (box._critical, box._normal) for e in q) < 50_000
    text = box.take()
    assert text is not None
    assert text.splitlines()[0].startswith("<i>(9990 older critical notifications dropped")
    assert "9990 drift alarm" in text.splitlines()[0]
    assert "drift 9999" in text and "older notifications dropped" in text
    assert "<b>" not in text


def test_a_flood_of_fills_between_two_reads_is_read_bounded_and_counted(
        run_dir: Path) -> None:
    watcher = LedgerWatcher(run_dir, max_fills=10)
    watcher.prime()
    add_fills(run_dir, 1, 500)
    notices = watcher.poll()
    assert len(notices) == 11 and "490 older fills not listed" in notices[0].html
    assert notices[-1].html.startswith("✅ Fill BUY 0.01 XBT/USD @ 40500")
    assert watcher.poll() == []
