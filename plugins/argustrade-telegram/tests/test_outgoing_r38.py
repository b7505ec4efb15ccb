"""Red team r38: what the bot sends, on the plugin's Bot API stand-in.

Found (each test failed before its fix):

* Telegram counts a message's 4,096 characters in UTF-16 code units, the bot in Python
  characters: an alert (a drift alarm, a risk event's reason) or a reply of characters
  outside the BMP (emoji, math letters) fitted the bot's 3,800 and was twice the API's
  limit, so "message is too long" refused it, in HTML and again as plain text: a critical
  alert was dropped, a command went unanswered;
* a bidi override in text from the ledger (an instrument, a run id) reached the chat as
  it was: the rest of the line, a fill's price among it, was shown reversed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from html import escape
from pathlib import Path

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.outbox import MAX_MESSAGE_CHARS, Notice, Outbox, outgoing, utf16_len
from argus_telegram.testing import BotApiStandIn

from argus_core import Ledger, Position

ALLOWED = 4242
ASTRAL = "\U0001d400"  # MATHEMATICAL BOLD CAPITAL A: one character, two UTF-16 units
RLO = "\u202e"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A ledger with a running run whose id holds a bidi override."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run(f"run-{RLO}1", "paper", 7, json.dumps({"run": {"starting_cash": "1"}}))
    return run_dir


def texts(api: BotApiStandIn) -> list[str]:
    """What the bot sent to the allowed chat."""
    return [m.text or "" for m in api.messages(ALLOWED)]


def said(api: BotApiStandIn, contains: str) -> str:
    """The first message to the allowed chat holding ``contains``."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [t for t in texts(api) if contains in t]
        return bool(found)

    assert api.wait_for(seen, 8.0), f"no message holding {contains!r}: {texts(api)}"
    return found[0]


def test_the_stand_in_counts_a_message_in_utf16_after_parsing(api: BotApiStandIn) -> None:
    """Telegram's limit: 4,096 characters after entities parsing, in UTF-16 units."""
    def send(text: str, parse_mode: str | None = None) -> int:
        body = json.dumps({"chat_id": ALLOWED, "text": text, "parse_mode": parse_mode})
        request = urllib.request.Request(f"{api.base_url}{api.token}/sendMessage",
                                         body.encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert send(ASTRAL * 2049) == 400, "4,098 UTF-16 units must be refused"
    assert send(ASTRAL * 2048) == 200
    assert send("<b>" + "&amp;" * 4096 + "</b>", "HTML") == 200, "4,096 after parsing"


def test_a_line_of_astral_characters_is_cut_within_telegrams_limit() -> None:
    outbox = Outbox()
    outbox.put(Notice("risk", "⚠️ <b>Drift</b> " + ASTRAL * 3000, critical=True))
    text = outbox.take()
    assert text is not None and utf16_len(text) <= MAX_MESSAGE_CHARS, utf16_len(text or "")
    assert not text.endswith("\ud835"), "cut inside a surrogate pair"


def test_a_batch_of_astral_lines_stays_within_telegrams_limit() -> None:
    outbox = Outbox()
    for n in range(200):
        outbox.put(Notice("fills", f"✅ Fill {n} " + ASTRAL * 30))
    while (text := outbox.take()) is not None:
        assert utf16_len(text) <= MAX_MESSAGE_CHARS, utf16_len(text)


def test_a_critical_alert_of_astral_characters_reaches_the_chat(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    """Before: 3,000 math letters were 3,014 characters to the bot and 6,014 units to
    the API: refused as HTML, refused as plain text, the alert dropped."""
    bot = start_bot()
    said(api, "started")
    bot.notify(Notice("drift", "📉 <b>Drift</b> ml_drift: " + escape(ASTRAL * 3000),
                      critical=True))
    said(api, "Drift")


def test_a_reply_of_astral_characters_is_answered(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    """``/positions`` of instruments named in math letters: before, no answer at all."""
    with Ledger.in_dir(run_dir) as ledger:
        for n in range(60):
            ledger.upsert_position(Position(f"{n}-" + ASTRAL * 60, Decimal(1),
                                            Decimal(100), Decimal(0)), 1)
    start_bot()
    said(api, "started")
    api.send_command(ALLOWED, "/positions")
    assert utf16_len(said(api, "Positions")) <= 4096


def test_a_bidi_override_from_the_ledger_is_shown_not_obeyed(
        api: BotApiStandIn, start_bot: Callable[..., TelegramBot]) -> None:
    """A fill alert and a ``/status`` reply (the run id holds U+202E) reach the chat
    with the override written out, never as the character that reverses the line."""
    bot = start_bot()
    said(api, "started")
    bot.notify(Notice("fills", f"✅ Fill BUY 1 BTC{RLO}-USD @ 100 (fee 0.1, taker)"))
    fill = said(api, "Fill BUY")
    assert RLO not in fill and "BTC\\u202e-USD @ 100" in fill, ascii(fill)
    api.send_command(ALLOWED, "/status")
    status = said(api, "Equity")
    assert RLO not in status and "run-\\u202e1" in status, ascii(status)
    assert all(RLO not in t for t in texts(api)), [ascii(t) for t in texts(api)]


@pytest.mark.parametrize("text", ["a\u2066b", "a\u200fb", "a\x1bb", "a\x00b", "a\rb"])
def test_hidden_controls_are_written_out(text: str) -> None:
    shown = outgoing(text)
    assert shown.startswith("a\\u") and shown.endswith("b") and shown.isprintable(), shown


def test_emoji_new_lines_and_tabs_pass_untouched() -> None:
    text = "⚠️ 👩\u200d💻 line\n\tnext"  # a variation selector, a zero-width joiner
    assert outgoing(text) == text
