"""A person follows a real paper run on Telegram and halts it from there, every part a
process of its own speaking real protocols:

* the local Kraken exchange (``argus_venue_kraken.testing.paper_market``): Kraken's REST
  ``AssetPairs`` and WS v2 ``book`` / ``ohlc`` on 127.0.0.1, a bar every 0.2 s;
* ``argus run`` (the CLI, ``mode = "paper"``) on it with the Kraken venue plugin, the
  paper broker and this plugin, ``[plugins.telegram] base_url`` pointing at
* the Bot API stand-in (:class:`~argus_telegram.testing.BotApiStandIn`, HTTP on
  127.0.0.1, in the test's process), through which the test types as people would.

A stranger's ``/kill`` is refused and changes nothing; ``/kill`` from the allowed chat
writes the latch naming the chat, the loop adopts it (its ``control`` risk event) and
vetoes every later entry, the HALTED notification arrives and then the loop's adoption,
``/status`` reports HALTED, adopted,
and the process keeps running, halted, until SIGINT (exit 130, "interrupted"); every fill
was announced and the last message says the run stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.testing import BotApiStandIn

pytest.importorskip("argus_venue_kraken.testing",
                    reason="the local Kraken exchange needs argus-venue-kraken installed")
from argus_testkit import processes as pp
from argus_venue_kraken.testing.paper import KrakenMarket, paper_config

pytestmark = pytest.mark.slow
ALLOWED, STRANGER = 4242, 6666
BY = f"telegram:{ALLOWED}/alice"


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Any]:
    """The local Kraken exchange process."""
    exchange = KrakenMarket(tmp_path)
    try:
        yield exchange
    finally:
        exchange.stop()


def texts(api: BotApiStandIn, chat_id: int) -> list[str]:
    """What the bot sent to ``chat_id`` (HTML as sent)."""
    return [m.text or "" for m in api.messages(chat_id)]


def fill_lines(api: BotApiStandIn) -> list[str]:
    """Fill alerts received so far."""
    return [line for t in texts(api, ALLOWED) for line in t.splitlines()
            if line.startswith("✅ Fill")]


def telegram_table(values: dict[str, Any]) -> str:
    """``[plugins.telegram]`` as TOML (strings, numbers and lists of ints: JSON's
    spelling is TOML's)."""
    return "[plugins.telegram]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                            for k, v in values.items())


def test_kill_from_telegram_halts_a_running_argus_run_process(
        api: BotApiStandIn, market: Any, tmp_path: Path,
        make_table: Callable[..., dict[str, Any]]) -> None:
    config = paper_config(tmp_path / "paper.toml", market, plugins=["telegram"],
                             extra=telegram_table(make_table(api)))
    run = pp.ArgusRun(config, tmp_path / "paper-run")
    run_dir = run.run_dir
    try:
        run.wait_for_fills(2)
        assert api.wait_for(lambda: any("started" in t for t in texts(api, ALLOWED)), 15)
        assert api.wait_for(lambda: len(fill_lines(api)) >= 2, 15), texts(api, ALLOWED)

        # A stranger's /kill: refused, nothing written, the run trades on.
        api.send_command(STRANGER, "/kill I am not on the list", username="mallory")
        assert api.wait_for(lambda: texts(api, STRANGER) == ["This chat may not use this bot."])
        fills = pp.count(run_dir, "fills")
        pp.wait_for(lambda: pp.count(run_dir, "fills") >= fills + 2, 30,
                    "the run to trade on after the stranger's /kill")
        assert pp.control(run_dir) is None

        # The allowed chat's /kill: the latch names the chat, the loop adopts it.
        api.send_command(ALLOWED, "/kill spreads blew out")
        assert api.wait_for(lambda: any(t.startswith("Done: trading <b>HALTED</b>")
                                        for t in texts(api, ALLOWED)), 15)
        assert pp.control(run_dir) == {"state": "halted", "reason": "spreads blew out",
                                       "flatten": False, "by": BY}
        orders_before = pp.count(run_dir, "orders")
        adoption = pp.wait_for(lambda: next(iter(pp.query(
            run_dir, "select id, action from risk_events where check_name = 'control' and "
                     "reason = ?", (f"{BY}: spreads blew out",))), None), 20,
            "the loop to adopt the kill")
        assert adoption["action"] == "halted"
        adopted_at = pp.seq(run_dir)
        pp.wait_for(lambda: pp.count(run_dir, "risk_events", "check_name = 'trading_state' "
                                     "and action = 'veto' and id > ?", (adoption["id"],)),
                    20, "a vetoed entry after the halt")
        pp.wait_for(lambda: pp.seq(run_dir) >= adopted_at + 10, 20,
                    "ten more events after the halt")
        assert run.alive(), run.output[-3000:]  # halted, not crashed
        later = pp.query(run_dir, "select reduce_only from orders where rowid > ?",
                         (orders_before,))
        assert all(o["reduce_only"] == 1 for o in later), later

        # The state change is announced, then the loop's adoption; /status reports both.
        halted = f"🚦 Trading <b>HALTED</b> (spreads blew out; by {BY})"
        assert api.wait_for(lambda: any(halted in t for t in texts(api, ALLOWED)), 10)
        taken_up = f"☑️ The loop adopted <b>HALTED</b> ({BY}: spreads blew out)"
        assert api.wait_for(lambda: any(taken_up in t for t in texts(api, ALLOWED)), 10)
        api.send_command(ALLOWED, "/status")
        assert api.wait_for(lambda: any(t.startswith("<b>Run</b>")
                                        for t in texts(api, ALLOWED)), 10)
        status = next(t for t in texts(api, ALLOWED) if t.startswith("<b>Run</b>"))
        assert f"Trading <b>HALTED</b> (spreads blew out; by {BY}), adopted by the loop" \
            in status
        (row,) = pp.query(run_dir, "select run_id, mode from runs")
        assert f"{row['run_id']} (paper, running)" in status
        assert texts(api, STRANGER) == ["This chat may not use this bot."]

        code = run.interrupt()
        assert code == pp.EXIT_INTERRUPTED, run.output[-3000:]
    finally:
        run.stop()
    assert "interrupted" in run.output
    # At the end, every fill was announced, then the run's stop.
    assert len(fill_lines(api)) == pp.count(run_dir, "fills")
    assert "stopped" in texts(api, ALLOWED)[-1], run.output[-3000:]
    assert pp.control(run_dir) == {"state": "halted", "reason": "spreads blew out",
                                   "flatten": False, "by": BY}
