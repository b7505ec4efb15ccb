"""A paper run stopped holding a position, its market resolved while it was down, started
again on the same run directory (a new ``Runner``, as a new process would build): the held
position is settled at the start, through the real core ``Runner``.

The negRisk scanner buys the example snapshot's Fed basket (150 YES of each of five
markets); the run stops; every Fed market resolves (market 0 YES), so Gamma closes the
event and discovery no longer lists it.  Before, the resumed run streamed nothing and the
five positions stayed on the books at their last marks.  Now the plugin hands the venue
the run's positions, the venue asks Gamma for the held tokens' closed markets, and the core
books five settlement fills (cash +150), once: a third start books nothing more.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket.replay_server import SnapshotServer

from argus_core import Ledger
from argus_core.config import parse_config
from argus_core.runner import Runner

SNAPSHOT = Path(__file__).parents[3] / "examples" / "polymarket" / "snapshot"
FED = "481717"


@pytest.fixture
def served() -> Iterator[tuple[SnapshotServer, dict[str, Any]]]:
    """The example snapshot's Fed event alone (its arbitrage), REST and websocket."""
    events = [e for e in json.loads((SNAPSHOT / "events.json").read_text()) if e["id"] == FED]
    books = json.loads((SNAPSHOT / "books.json").read_text())
    srv = SnapshotServer(events, books, ws_port=0).start()
    try:
        yield srv, events[0]
    finally:
        srv.stop()


def _runner(srv: SnapshotServer, run_dir: Path) -> Runner:
    config = parse_config({
        "argus": {"plugins": ["polymarket", "negrisk"], "mode": "paper"},
        "run": {"venue": "polymarket", "scanners": ["negrisk"], "starting_cash": "10000"},
        "plugins": {"polymarket": {"gamma_url": srv.url, "clob_url": srv.url,
                                   "ws_url": srv.ws_url, "settlement_poll_s": 0},
                    "negrisk": {"min_edge": "0.001", "gas_usd_per_leg": "0"}}})
    return Runner(config, run_dir)


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _stop(runner: Runner, task: asyncio.Task[Any], srv: SnapshotServer,
                yes: str) -> None:
    """One more websocket frame is the run's last event (pushed until the run ends: a frame
    sent before the socket is seen reaches no one)."""
    runner.max_events = runner.seq + 1
    frame = {"event_type": "last_trade_price", "asset_id": yes, "market": "",
             "price": "0.5", "size": "1", "side": "BUY", "timestamp": "1786875600000"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not task.done() and loop.time() < deadline:
        srv.push(frame)
        await asyncio.wait([task], timeout=0.5)
    await asyncio.wait_for(task, 1)


def _ledger(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                    list[dict[str, Any]]]:
    """(fills, positions rows, pm_redemptions rows) of a stopped run."""
    with Ledger.in_dir(run_dir) as led:
        return (led.fills(), led.query("select * from positions"),
                led.query("select * from pm_redemptions order by seq"))


def _look_ups(requests: list[Any]) -> list[Any]:
    """Held markets looked up by token (``GET /markets?clob_token_ids=``): not the
    resolution read each market-channel connection makes of the followed markets
    (``condition_ids=``)."""
    return [q for _m, p, q in requests if p == "/markets" and "clob_token_ids" in q]


async def test_a_resumed_paper_run_settles_a_position_whose_market_resolved_while_down(
        served: tuple[SnapshotServer, dict[str, Any]], tmp_path: Path) -> None:
    srv, event = served
    run_dir = tmp_path / "run"
    yes_tokens = [json.loads(m["clobTokenIds"])[0] for m in event["markets"]]

    first = _runner(srv, run_dir)
    task = asyncio.create_task(first.run())
    await _until(lambda: first.n_fills >= 5, "the basket's five fills")
    await _stop(first, task, srv, yes_tokens[0])
    fills, _positions, _rows = _ledger(run_dir)
    assert {(f["instrument_id"], f["side"], Decimal(f["quantity"])) for f in fills} == {
        (f"polymarket:{t}", "buy", Decimal(150)) for t in yes_tokens}
    cash_before = first.account.cash

    prices = {str(m["id"]): ["0", "1"] for m in event["markets"]}
    prices[str(event["markets"][0]["id"])] = ["1", "0"]
    srv.resolutions = {"timestamp": "1789669805000", "outcome_prices": prices}
    srv.resolve()  # while no process runs: the event closes, discovery lists nothing
    asked = len(srv.requests)

    second = _runner(srv, run_dir)
    await asyncio.wait_for(second.run(), 30)  # ends by itself: nothing open is left
    lookups = _look_ups(srv.requests[asked:])
    assert lookups and set(lookups[0]["clob_token_ids"]) == set(yes_tokens)
    fills, positions, rows = _ledger(run_dir)
    settled = [f for f in fills if f["liquidity"] == "settlement"]
    assert sorted((f["instrument_id"], f["side"], Decimal(f["price"]), Decimal(f["quantity"]),
                   f["ts_ns"]) for f in settled) == sorted(
        (f"polymarket:{t}", "sell", Decimal(1 if i == 0 else 0), Decimal(150),
         1_789_669_805_000_000_000) for i, t in enumerate(yes_tokens))
    assert second.account.cash == cash_before + 150
    assert all(p.quantity == 0 for p in second.account.positions.values())
    assert all(Decimal(p["quantity"]) == 0 for p in positions)
    # the venue knew the looked-up instruments: each settlement fill became a simulated
    # redemption (none "failed: instrument not known")
    assert sorted(r["step"] for r in rows) == ["queued"] * 5 + ["simulated"] * 5
    assert Decimal(sum(Decimal(r["payout"]) for r in rows if r["step"] == "simulated")) == 150

    asked = len(srv.requests)
    third = _runner(srv, run_dir)
    await asyncio.wait_for(third.run(), 30)
    assert _ledger(run_dir)[0] == fills  # nothing booked again
    assert third.account.cash == cash_before + 150
    # flat: nothing held, nothing looked up
    assert not _look_ups(srv.requests[asked:])


async def test_a_resumed_paper_run_settles_a_discovered_market_that_resolved_while_down(
        served: tuple[SnapshotServer, dict[str, Any]], tmp_path: Path) -> None:
    """Only market 0 resolved while the run was down: the event stays open and listed, so
    the settlement comes from discovery's own record (no look-up); the four other positions
    stay open and their books stream; a third start settles nothing again."""
    srv, event = served
    run_dir = tmp_path / "run"
    yes_tokens = [json.loads(m["clobTokenIds"])[0] for m in event["markets"]]
    first = _runner(srv, run_dir)
    task = asyncio.create_task(first.run())
    await _until(lambda: first.n_fills >= 5, "the basket's five fills")
    await _stop(first, task, srv, yes_tokens[1])
    cash_before = first.account.cash

    srv.resolutions = {"timestamp": "1789669805000",
                       "outcome_prices": {str(event["markets"][0]["id"]): ["1", "0"]}}
    srv.resolve()
    asked = len(srv.requests)
    for _start in range(2):  # the resumed run, then a third start
        runner = _runner(srv, run_dir)
        task = asyncio.create_task(runner.run())
        # the books come after the start's settlements (a fresh market state per runner)
        await _until(lambda: len(runner.market.books) >= 8,  # noqa: B023 -- awaited here
                     "the open markets' books")
        await _stop(runner, task, srv, yes_tokens[1])
        fills, _positions, rows = _ledger(run_dir)
        settled = [f for f in fills if f["liquidity"] == "settlement"]
        assert [(f["instrument_id"], Decimal(f["price"]), Decimal(f["quantity"]), f["ts_ns"])
                for f in settled] == [(f"polymarket:{yes_tokens[0]}", 1, 150,
                                       1_789_669_805_000_000_000)]
        assert runner.account.cash == cash_before + 150
        held = {iid: p.quantity for iid, p in runner.account.positions.items() if p.quantity}
        assert held == {f"polymarket:{t}": 150 for t in yes_tokens[1:]}
        assert [r["step"] for r in rows] == ["queued", "simulated"]
    assert not _look_ups(srv.requests[asked:])
