"""A person follows a paper run live on Telegram and halts it from there: fills arrive
while the loop runs (in its own thread, at a pace like a live feed), a /kill sent from
the test's thread, as a person would, halts it, and the run ends HALTED."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.testing import BotApiStandIn
from argus_testkit import RunResult, run_and_collect

from argus_core import MarketEvent, open_read_only
from argus_core.builtins.replay_venue import ReplayVenue

ConfigFor = Callable[[dict[str, Any] | None], dict[str, Any]]


async def paced_stream(self: ReplayVenue) -> AsyncIterator[MarketEvent]:
    """The replay's bars, 15 ms apart: a feed the loop waits on, as in paper trading."""
    for event in self.events():
        yield event
        await asyncio.sleep(0.015)


def orders_now(run_dir: Path) -> int:
    """Orders committed so far (apsw, read-only)."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        (n,) = conn.execute("select count(*) from orders").fetchone()
    finally:
        conn.close()
    return int(n)


def latch(run_dir: Path) -> dict[str, Any]:
    """The trading state latch (apsw, read-only)."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        (value,) = conn.execute("select value from control where key = 'trading_state'"
                                ).fetchone()
    finally:
        conn.close()
    return dict(json.loads(value))


def fill_lines(api: BotApiStandIn) -> list[str]:
    """Fill alerts received so far."""
    return [line for m in api.messages(4242) for line in (m.text or "").splitlines()
            if line.startswith("✅ Fill")]


def test_follow_a_paper_run_live_and_kill_it_from_telegram(
        api: BotApiStandIn, tmp_path: Path, make_table: Callable[..., dict[str, Any]],
        make_replay_config: ConfigFor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReplayVenue, "stream", paced_stream)
    config = make_replay_config(make_table(api))
    config["argus"]["mode"] = "paper"
    config["plugins"]["replay"]["end"] = "2022-01-15"  # 336 bars, ~5 s at this pace
    run_dir, outcome = tmp_path / "run", {}

    def run() -> None:
        try:
            outcome["result"] = run_and_collect(config, run_dir)
        except BaseException as exc:  # reported by the test's thread
            outcome["error"] = exc

    loop_thread = threading.Thread(target=run, daemon=True)
    loop_thread.start()
    try:
        # Following it live: fill alerts arrive while the run is still going.
        assert api.wait_for(lambda: len(fill_lines(api)) >= 2, 30), outcome
        assert loop_thread.is_alive()
        api.send_command(4242, "/kill spreads blew out")
        assert api.wait_for(lambda: any((m.text or "").startswith("Done")
                                        for m in api.messages(4242)), 10)
        orders_at_kill = orders_now(run_dir)
        assert loop_thread.is_alive()  # halted while it ran, not after
    finally:
        loop_thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    result: RunResult = outcome["result"]
    assert result.summary.trading_state == "halted"
    # At most the event in flight when the latch was written opened a position; after
    # the loop adopted it, only reduce-only exits.
    later = result.orders[orders_at_kill:]
    assert sum(not o["reduce_only"] for o in later) <= 1
    assert result.risk_events_of("trading_state")  # entries were vetoed
    assert latch(run_dir) == {"state": "halted", "reason": "spreads blew out", "flatten": False,
                      "by": "telegram:4242/alice"}
    texts = [m.text or "" for m in api.messages(4242)]
    assert any("🚦 Trading <b>HALTED</b> (spreads blew out" in t for t in texts)
    assert len(fill_lines(api)) == len(result.fills)
