"""Red team r40: ``/flatten`` acted on one message.

Found: a mistyped ``/flatten`` (meant for another bot's chat, a slip of the thumb) sold
every position through the market at once.  Now it answers a one-time code and writes
nothing; only ``/confirm CODE`` from the same person in the same chat within
``confirm_within_s`` acts, once: a replayed update (same ``update_id``) is dropped by the
offset, and a ``/confirm`` sent again finds its code gone.  ``/kill`` still acts at once:
a halt is the safe direction (``/resume`` undoes a slip), and an emergency must not wait
for a code.  These tests use the default settings (the other tests set
``confirm_within_s = 0`` to exercise the write itself).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.testing import BotApiStandIn

from argus_core import Ledger, Secret, open_read_only

ALLOWED = 4242  # (conftest's allowed chat)
OTHER_PERSON = 5151


def _latch_writes(run_dir: Path) -> int:
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select count(*) from control_log where key = 'trading_state'"
                           ).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def _latch(run_dir: Path) -> dict[str, Any] | None:
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select value from control where key = 'trading_state'").fetchone()
    finally:
        conn.close()
    return None if row is None else dict(json.loads(row[0]))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "10000"}}))
    return run_dir


@pytest.fixture
def bot(api: BotApiStandIn, run_dir: Path, make_table: Callable[..., dict[str, Any]]
        ) -> Iterator[TelegramBot]:
    values = make_table(api, chat_ids=[ALLOWED, -100])
    values.pop("confirm_within_s")  # the default: ask
    values["token"] = Secret(values["token"])
    started = TelegramBot(TelegramSettings(**values), run_dir, run_id="run-1", mode="paper")
    started.start()
    try:
        yield started
    finally:
        started.stop()


def _say(api: BotApiStandIn, chat_id: int, text: str, contains: str, **kw: Any) -> str:
    before = len(api.messages(chat_id))
    api.send_command(chat_id, text, **kw)
    found: list[str] = []

    def answered() -> bool:
        found[:] = [m.text or "" for m in api.messages(chat_id)[before:]
                    if contains in (m.text or "")]
        return bool(found)

    assert api.wait_for(answered, 10), [m.text for m in api.messages(chat_id)[before:]]
    return found[0]


def _code(reply: str) -> str:
    match = re.search(r"/confirm (\d{6})", reply)
    assert match is not None, reply
    return match.group(1)


def test_kill_acts_at_once(api: BotApiStandIn, run_dir: Path, bot: TelegramBot) -> None:
    assert "Done" in _say(api, ALLOWED, "/kill spreads blew out", "Done")
    assert _latch(run_dir) == {"state": "halted", "reason": "spreads blew out",
                               "flatten": False, "by": f"telegram:{ALLOWED}/alice"}


def test_flatten_writes_nothing_until_confirmed_once(api: BotApiStandIn, run_dir: Path,
                                                    bot: TelegramBot) -> None:
    reply = _say(api, ALLOWED, "/flatten spreads blew out", "/confirm")
    assert "Nothing written" in reply and "spreads blew out" in reply
    assert _latch(run_dir) is None and _latch_writes(run_dir) == 0
    code = _code(reply)
    wrong = "000000" if code != "000000" else "111111"
    assert "Wrong code" in _say(api, ALLOWED, f"/confirm {wrong}", "Wrong code")
    assert _latch_writes(run_dir) == 0
    # The confirmation, delivered twice with one update_id (a replay): acts once.
    uid = api.next_update_id()
    message = api.make_message(ALLOWED, f"/confirm {code}")
    api.push_update({"update_id": uid, "message": message},
                    {"update_id": uid, "message": message})
    assert api.wait_for(lambda: any((m.text or "").startswith("Done")
                                    for m in api.messages(ALLOWED)), 10)
    assert _latch(run_dir) == {"state": "halted", "reason": "spreads blew out",
                               "flatten": True, "by": f"telegram:{ALLOWED}/alice"}
    # Sent again (a new update, the same words): the code is spent.
    assert "Nothing to confirm" in _say(api, ALLOWED, f"/confirm {code}",
                                        "Nothing to confirm")
    time.sleep(0.3)
    assert _latch_writes(run_dir) == 1
    assert sum((m.text or "").startswith("Done") for m in api.messages(ALLOWED)) == 1


def test_only_the_asker_confirms_and_codes_expire(api: BotApiStandIn, run_dir: Path,
                                                  bot: TelegramBot) -> None:
    reply = _say(api, -100, "/flatten close it", "/confirm", user_id=ALLOWED,
                 chat_type="supergroup")
    code = _code(reply)
    # Someone else in the group, with the code in plain sight: not theirs to confirm.
    assert "Nothing to confirm" in _say(api, -100, f"/confirm {code}", "Nothing to confirm",
                                        user_id=OTHER_PERSON, username="bob",
                                        chat_type="supergroup")
    assert _latch_writes(run_dir) == 0
    bot.clock = lambda: time.monotonic() + 3600  # the code's time is up
    assert "Nothing to confirm" in _say(api, -100, f"/confirm {code}", "Nothing to confirm",
                                        user_id=ALLOWED, chat_type="supergroup")
    assert _latch_writes(run_dir) == 0
    bot.clock = time.monotonic
    code = _code(_say(api, -100, "/flatten close it", "/confirm", user_id=ALLOWED,
                      chat_type="supergroup"))
    assert "Done" in _say(api, -100, f"/confirm {code}", "Done", user_id=ALLOWED,
                          chat_type="supergroup")
    assert (_latch(run_dir) or {}).get("flatten") is True


def test_resume_and_reads_need_no_code(api: BotApiStandIn, run_dir: Path,
                                       bot: TelegramBot) -> None:
    """A resume after a confirmed flatten acts at once."""
    code = _code(_say(api, ALLOWED, "/flatten", "/confirm"))
    _say(api, ALLOWED, f"/confirm {code}", "Done")
    assert "Done" in _say(api, ALLOWED, "/resume", "Done")
    assert (_latch(run_dir) or {}).get("state") == "active"


def test_pending_codes_stay_bounded(api: BotApiStandIn, bot: TelegramBot,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import argus_telegram.bot as bot_mod

    monkeypatch.setattr(bot_mod, "MAX_PENDING_CONFIRMS", 2)
    for chat in (ALLOWED, -100):
        _say(api, chat, "/flatten", "/confirm", user_id=ALLOWED, chat_type="private"
             if chat > 0 else "supergroup")
    _say(api, -100, "/flatten", "/confirm", user_id=OTHER_PERSON, username="bob",
         chat_type="supergroup")
    assert len(bot._pending) == 2
