"""The dead-man's switch: Kraken's range, and a re-arm well before expiry (red team r38).

``dead_man_timeout_s`` took 1-4 s, re-armed every ``max(1, timeout / 4)`` s (as long as
the timeout itself), and the re-arm loop waited out each REST call however long it took
(retries included), so one slow answer let the countdown expire and Kraken cancelled
every resting order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.execution import KrakenExecution, RestingOrder

from argus_core import ConfigError
from argus_core.config import parse_config, plugin_settings


def settings_from(table: dict[str, Any]) -> KrakenSettings:
    cfg = parse_config({"plugins": {"kraken": table}}, Path("/tmp/argus.toml"))
    return plugin_settings(cfg, "kraken", KrakenSettings)


@pytest.mark.parametrize("bad", [1, 4, 9, 86400, -1])
def test_a_timeout_outside_kraken_range_is_a_config_error_naming_the_key(bad) -> None:
    with pytest.raises(ConfigError, match=r"dead_man_timeout_s: must be 0 \(off\) or whole "
                                          r"seconds from 10 to 86399"):
        settings_from({"dead_man_timeout_s": bad})


def test_a_timeout_a_re_arm_cannot_fit_in_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"dead_man_timeout_s: must be at least 4 x "
                                          r"request_timeout_s \(80\)"):
        settings_from({"dead_man_timeout_s": 60, "request_timeout_s": 20})
    assert settings_from({"dead_man_timeout_s": 80, "request_timeout_s": 20})


@pytest.mark.parametrize("timeout", [0, 10, 60, 86399])
def test_kraken_range_is_accepted_and_re_armed_every_quarter(tmp_path, timeout) -> None:
    settings = KrakenSettings(nonce_path=tmp_path / "n", dead_man_timeout_s=timeout,
                              request_timeout_s=2.5)
    ex = KrakenExecution(settings, object())  # type: ignore[arg-type]
    assert ex.keepalive_s == timeout / 4  # Kraken: every 15 s for a 60 s timeout


class HangingRest:
    """CancelAllOrdersAfter whose first answer never comes (a stalled connection)."""

    clock_skew_s = 0.0

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.armed_again = asyncio.Event()

    async def cancel_all_orders_after(self, timeout_s: int) -> dict[str, Any]:
        self.calls.append(timeout_s)
        if len(self.calls) == 1:
            await asyncio.Event().wait()
        self.armed_again.set()
        return {}


async def test_a_re_arm_that_hangs_does_not_hold_back_the_next(tmp_path) -> None:
    rest = HangingRest()
    ex = KrakenExecution(KrakenSettings(nonce_path=tmp_path / "n", dead_man_timeout_s=60),
                         rest, keepalive_s=0.05)  # type: ignore[arg-type]
    ex.resting["c"] = RestingOrder("core", "c", "O1", "XBTUSD", 0.0)
    ex._ensure_dead_man()
    try:
        # Before the fix the loop waited on the first call for ever: no second re-arm.
        async with asyncio.timeout(20):
            await rest.armed_again.wait()
        assert rest.calls[:2] == [60, 60] and ex.dead_man_calls[0] == 60
    finally:
        ex.resting.clear()
        await ex.close()
