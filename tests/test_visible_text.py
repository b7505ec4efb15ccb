"""``visible_text``: text from a ledger, a venue or a person is shown with every character
that would reorder or hide what is around it written out.  An instrument id or a risk
reason holding U+202E (RIGHT-TO-LEFT OVERRIDE) showed the rest of its line reversed on
the report, in a Telegram alert and on the dashboard; HTML escaping does not touch it."""

from __future__ import annotations

import pytest

from argus_core import visible_text
from argus_core.report import _fmt, _text

RLO = "\u202e"


@pytest.mark.parametrize("ch", ["\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f",
                                "\u061c", "\x00", "\x1b", "\r", "\x7f", "\x85", "\x9f"])
def test_each_reordering_or_hiding_character_is_written_out(ch: str) -> None:
    shown = visible_text(f"a{ch}b")
    assert shown == f"a\\u{ord(ch):04x}b" and shown.isprintable()


def test_emoji_joiners_tabs_and_new_lines_are_left_as_they_are() -> None:
    text = "⚠️ 👩\u200d💻 BTC/USD\n\tnext — 買い"
    assert visible_text(text) == text


def test_the_report_shows_an_override_written_out() -> None:
    """The report's ledger texts (risk reasons, instruments) and table values."""
    assert RLO not in _text(f"veto BTC{RLO}DSU @ 100") and "\\u202e" in _text(f"x{RLO}")
    assert RLO not in _text("y" * 600 + RLO) and RLO not in _fmt(f"run{RLO}1")
