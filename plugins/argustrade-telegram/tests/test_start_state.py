"""A run resumed halted or reducing says so in its start notice: the watcher primes its
latch on what the ledger holds (a resumed run's history is not replayed), so the state a
person had set before the restart was never told; a chat saw "started" and nothing else
while the loop refused every order."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.testing import BotApiStandIn

from argus_core import Ledger, request_trading_state

ALLOWED = 4242
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "1"}}))
    return run_dir


def _started(api: BotApiStandIn) -> str:
    found: list[str] = []

    def seen() -> bool:
        found[:] = [m.text or "" for m in api.messages(ALLOWED) if "started" in (m.text or "")]
        return bool(found)

    assert api.wait_for(seen, 8.0)
    return found[0]


def test_a_run_resumed_halted_says_so_when_it_starts(
        api: BotApiStandIn, run_dir: Path, start_bot: Callable[..., TelegramBot]) -> None:
    with Ledger.in_dir(run_dir) as ledger:
        request_trading_state(ledger, "kill", "drawdown past the limit", by="cli")
    start_bot()
    text = _started(api)
    assert "trading <b>HALTED</b> (drawdown past the limit" in text, text


def test_an_active_run_starts_as_before(api: BotApiStandIn,
                                        start_bot: Callable[..., TelegramBot]) -> None:
    start_bot()
    assert "trading" not in _started(api)
