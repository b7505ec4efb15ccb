"""The user channel through the real core ``Runner`` in live mode, against the local Gamma
/ CLOB REST / websocket servers (``SnapshotServer`` + ``LocalClob``: the market channel
and ``/ws/user`` on one port): a resting GTC order's maker fills reach the ledger over
the socket, before the trades poll would (it runs every 30 s while the channel is up),
a status change of a booked trade books nothing, a dropped socket is reconnected, and each
fill is booked once.  Helpers come from ``test_pm_live_runner`` (same servers and config).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import HARDHAT_KEY, LocalClob

from argus_core.runner import Runner

HERE = Path(__file__).parent


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_uc_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


live = _load("test_pm_live_runner")


@pytest.fixture(autouse=True)
def _live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_LIVE_KEY", HARDHAT_KEY)
    monkeypatch.setenv("PM_LIVE_API_KEY", live.API_KEY)
    monkeypatch.setenv("PM_LIVE_API_SECRET", live.API_SECRET)
    monkeypatch.setenv("PM_LIVE_API_PASSPHRASE", live.API_PASSPHRASE)


@pytest.fixture
def venue_servers() -> Iterator[tuple[SnapshotServer, LocalClob, list[dict[str, Any]]]]:
    events, books = live._snapshot()
    clob = LocalClob({b["asset_id"]: b for b in books}, api_key=live.API_KEY,
                     api_secret=live.API_SECRET, api_passphrase=live.API_PASSPHRASE)
    srv = SnapshotServer(events, books, ws_port=0, clob=clob).start()
    try:
        yield srv, clob, events
    finally:
        srv.stop()


async def test_maker_fills_reach_the_ledger_over_the_user_channel_once_each(
        venue_servers: Any, tmp_path: Path) -> None:
    srv, clob, events = venue_servers
    child = live._child_module()
    target = f"polymarket:{live._yes_tokens(events, live.FED)[2]}"  # "No change": ask 0.64
    config = live._config(srv, scanners=[], trades_poll_s=30, trades_reconcile_s=60,
                          reconnect_min_s=0.05, reconnect_max_s=0.2)
    runner = Runner(config, tmp_path / "run", live_confirmed=True,
                    strategies={"rest_once": child.RestOnce(target, "0.50", "100")})
    task = asyncio.create_task(runner.run())
    await live._until(lambda: len(clob.orders) == 1, "the resting order at the venue")
    (vid,) = clob.orders
    await live._until(lambda: runner.ledger.query("select status from orders")[0]["status"]
                      == "open", "the order acknowledged")
    await live._until(lambda: clob.user_sockets == 1, "the user channel subscribed")
    polls = clob.count("GET", "/data/trades")
    first = clob.fill_resting(vid, "40")
    await live._until(lambda: runner.n_fills == 1, "the first maker fill", timeout_s=5)
    assert clob.count("GET", "/data/trades") == polls  # over the socket
    assert runner.ledger.query("select status, filled_quantity from orders")[0] == {
        "status": "partially_filled", "filled_quantity": "40"}
    clob.set_trade_status(first, "MINED")  # the same trade again, over the socket
    assert clob.drop_user_sockets() == 1  # the channel drops; its reconnect polls once
    await live._until(lambda: clob.count("GET", "/data/trades") > polls and
                      clob.user_sockets == 1, "the reconnect and its poll")
    second = clob.fill_resting(vid, "60")
    await live._until(lambda: runner.n_fills == 2, "the second maker fill", timeout_s=5)
    clob.set_trade_status(first, "CONFIRMED")
    clob.set_trade_status(second, "CONFIRMED")
    await asyncio.sleep(0.3)
    summary = await live._stop(runner, task, srv, events)

    db = live._ledger(tmp_path / "run")
    (order,) = db.execute("select * from orders").fetchall()
    fills = db.execute("select * from fills order by ts_ns, fill_id").fetchall()
    db.close()
    assert [(f["fill_id"], Decimal(f["quantity"]), f["liquidity"]) for f in fills] == [
        (f"{first}:{vid}", Decimal(40), "maker"), (f"{second}:{vid}", Decimal(60), "maker")]
    assert (order["status"], order["filled_quantity"], order["venue_order_id"]) == (
        "filled", "100", vid)
    assert summary.fills == 2
    assert clob.user_refused == 0 and clob.auth_failures == []
