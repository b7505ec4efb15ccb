"""Shared fixtures of the Telegram plugin's tests: a running Bot API stand-in and the
token in an environment variable (the settings hold only its reference)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.bot import TelegramBot
from argus_telegram.config import TelegramSettings
from argus_telegram.testing import BotApiStandIn

from argus_core import Secret

TOKEN = "7000000001:AAHk3vQbE9sX2mZr8TtYq4LwPnC6dUfGhJk"
TOKEN_ENV = "ARGUS_TEST_TELEGRAM_TOKEN"
ALLOWED = 4242
STRANGER = 6666
ROOT = Path(__file__).resolve().parents[3]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"


@pytest.fixture
def api() -> Iterator[BotApiStandIn]:
    """A Bot API stand-in on 127.0.0.1 that accepts :data:`TOKEN`."""
    with BotApiStandIn(TOKEN) as server:
        yield server


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is read from the environment, as a deployment would."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def table(api: BotApiStandIn, **changes: Any) -> dict[str, Any]:
    """``[plugins.telegram]`` as a config table (what a TOML file would hold)."""
    values: dict[str, Any] = {
        "token": f"$env:{TOKEN_ENV}", "chat_ids": [ALLOWED], "base_url": api.base_url,
        "base_file_url": api.base_file_url, "batch_interval_s": 0.3, "poll_timeout_s": 1,
        "ledger_poll_s": 0.1, "shutdown_flush_s": 5.0, "startup_timeout_s": 5.0,
        "confirm_within_s": 0,  # the write path; test_kill_confirm_r40.py tests the asking
        "min_message_interval_s": 0.05}
    values.update(changes)
    return values


def settings(api: BotApiStandIn, **changes: Any) -> TelegramSettings:
    """Settings pointing at ``api``, quick enough for tests."""
    values = table(api, **changes)
    values["token"] = Secret(values["token"])
    return TelegramSettings(**values)


@pytest.fixture
def start_bot(api: BotApiStandIn, run_dir: Path, make_settings: Callable[..., TelegramSettings]
              ) -> Iterator[Callable[..., TelegramBot]]:
    """``start_bot(**settings changes)``: a started bot on ``run_dir`` (the test module's
    fixture: each holds the run its tests need), stopped after."""
    bots: list[TelegramBot] = []

    def start(**changes: Any) -> TelegramBot:
        bot = TelegramBot(make_settings(api, **changes), run_dir, run_id="run-1",
                          mode="paper")
        bot.start()
        bots.append(bot)
        return bot

    try:
        yield start
    finally:
        for bot in bots:
            bot.stop()


@pytest.fixture
def make_settings() -> Callable[..., TelegramSettings]:
    """``make_settings(api, **changes)``: see :func:`settings`."""
    return settings


@pytest.fixture
def make_table() -> Callable[..., dict[str, Any]]:
    """``make_table(api, **changes)``: see :func:`table`."""
    return table


@pytest.fixture
def make_replay_config() -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """``make_replay_config(telegram_table)``: see :func:`replay_config`."""
    return replay_config


def replay_config(telegram: dict[str, Any] | None) -> dict[str, Any]:
    """A two-month replay of the bundled bars with the example strategy (16 fills)."""
    plugins: dict[str, Any] = {
        "replay": {"bars_csv": str(BARS), "start": "2022-01-01", "end": "2022-03-01"},
        "example": {"fast": 5, "slow": 20}}
    if telegram is not None:
        plugins["telegram"] = telegram
    return {"argus": {"plugins": ["telegram"]},
            "run": {"venue": "replay", "strategies": ["ma_cross"], "sizer": "fixed_fraction"},
            "plugins": plugins}
