"""A resolution during a run triggers the redemption, through the real core ``Runner``: the
negRisk scanner's basket is bought (live: signed FOK orders against the local CLOB; paper:
the paper broker), the websocket reports one market resolved, the core books the settlement
fills, and the venue's redemptions take over: live, one NegRiskAdapter ``redeemPositions`` on
the local chain (eth-tester), paper, ``simulated`` rows.  Both modes end with the same cash."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import HARDHAT_KEY, LocalClob

from argus_core.config import parse_config
from argus_core.runner import Runner

SNAPSHOT = Path(__file__).parents[3] / "examples" / "polymarket" / "snapshot"
API_KEY, API_PASSPHRASE = "live-key-1", "live-pass"
API_SECRET = base64.urlsafe_b64encode(b"argus-local-clob-test-secret-32b").decode()
FED = "481717"


@pytest.fixture(autouse=True)
def _live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_LIVE_KEY", HARDHAT_KEY)
    monkeypatch.setenv("PM_LIVE_API_KEY", API_KEY)
    monkeypatch.setenv("PM_LIVE_API_SECRET", API_SECRET)
    monkeypatch.setenv("PM_LIVE_API_PASSPHRASE", API_PASSPHRASE)


@pytest.fixture
def servers() -> Iterator[tuple[SnapshotServer, list[dict[str, Any]]]]:
    events = json.loads((SNAPSHOT / "events.json").read_text())
    books = json.loads((SNAPSHOT / "books.json").read_text())
    clob = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                     api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer(events, books, ws_port=0, clob=clob).start()
    try:
        yield srv, events
    finally:
        srv.stop()


def _fed_market(events: list[dict[str, Any]], index: int) -> tuple[str, str, str]:
    """(condition id, YES token, NO token) of one market of the Fed event."""
    event = next(e for e in events if e["id"] == FED)
    market = event["markets"][index]
    yes, no = json.loads(market["clobTokenIds"])
    return market["conditionId"], yes, no


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _runner(mode: str, srv: SnapshotServer, run_dir: Path, chain: Any,
            **settings: Any) -> Runner:
    pm = {"gamma_url": srv.url, "clob_url": srv.url, "ws_url": srv.ws_url,
          "private_key": "$env:PM_LIVE_KEY", "api_key": "$env:PM_LIVE_API_KEY",
          "api_secret": "$env:PM_LIVE_API_SECRET",
          "api_passphrase": "$env:PM_LIVE_API_PASSPHRASE", "settlement_poll_s": 0,
          "trades_poll_s": 0.05, "heartbeat_interval_s": 0.1,
          "conditional_tokens": chain.ctf.address, "neg_risk_adapter": chain.adapter.address,
          "collateral": chain.col.address, "redeem_delay_s": 0.05, "redeem_poll_s": 0.02}
    config = parse_config({
        "argus": {"plugins": ["polymarket", "negrisk"], "mode": mode},
        "run": {"venue": "polymarket", "scanners": ["negrisk"], "starting_cash": "10000"},
        "plugins": {"polymarket": pm | settings,
                    "negrisk": {"min_edge": "0.001", "gas_usd_per_leg": "0"}}})
    runner = Runner(config, run_dir, live_confirmed=mode == "live")
    runner.asm.venue.chain = chain.w3  # the chain redemption talks to (else rpc_url)
    return runner


def _steps(runner: Runner) -> list[str]:
    return [r["step"] for r in runner.ledger.query("select step from pm_redemptions order by seq")]


async def _push(srv: SnapshotServer, frame: dict[str, Any]) -> None:
    """Send ``frame`` once a websocket client is connected (on a loaded box the venue's
    socket may still be connecting, or reconnecting, when the test gets here)."""
    await _until(lambda: srv.push(frame) >= 1, "a connected websocket client")


async def _resolve(srv: SnapshotServer, events: list[dict[str, Any]]) -> None:
    """The websocket reports the Fed's first market resolved YES."""
    cond, yes, no = _fed_market(events, 0)
    await _push(srv, {"event_type": "market_resolved", "market": cond, "assets_ids": [yes, no],
                      "outcomes": ["Yes", "No"], "winning_asset_id": yes,
                      "winning_outcome": "Yes", "timestamp": "1786875500000"})


async def _stop(runner: Runner, task: asyncio.Task[Any], srv: SnapshotServer,
                events: list[dict[str, Any]]) -> Any:
    """One more websocket frame is the run's last event."""
    cond, yes, _no = _fed_market(events, 0)
    runner.max_events = runner.seq + 1
    frame = {"event_type": "last_trade_price", "asset_id": yes, "market": cond,
             "price": "0.5", "size": "1", "side": "BUY", "fee_rate_bps": "0",
             "timestamp": "1786875600000"}
    # pushed again until the run ends: a frame sent to a socket the server has not yet seen
    # closed reaches no one (a price print twice is harmless; the run stops at the first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not task.done() and loop.time() < deadline:
        srv.push(frame)
        await asyncio.wait([task], timeout=0.5)
    return await asyncio.wait_for(task, 1)


def _read(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pm_redemptions rows, settlement fills) of a finished run."""
    from argus_core import Ledger

    with Ledger.in_dir(run_dir) as led:
        rows = led.query("select * from pm_redemptions order by seq")
        fills = [f for f in led.fills() if f["liquidity"] == "settlement"]
    return rows, fills


async def _run_and_resolve(mode: str, srv: SnapshotServer, events: list[dict[str, Any]],
                           run_dir: Path, chain: Any) -> tuple[Any, list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    """Buy the basket, resolve the Fed's first market YES, wait for its redemption to end,
    stop; returns (summary, pm_redemptions rows, settlement fills)."""
    runner = _runner(mode, srv, run_dir, chain)
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.n_fills >= 5, "the basket's five fills")
    await _resolve(srv, events)
    await _until(lambda: bool({"mined", "simulated", "failed", "skipped"} & set(
        _steps(runner))), "the redemption's end")
    summary = await _stop(runner, task, srv, events)
    return (summary, *_read(run_dir))


async def test_a_resolution_during_a_live_run_is_redeemed_on_chain_and_paper_books_the_same(
        servers: Any, local_chain: Any, tmp_path: Path) -> None:
    srv, events = servers
    chain = local_chain
    cond, yes, no = _fed_market(events, 0)
    # on chain: the basket's 150 YES shares of this market sit at the signer's address
    chain.market(cond, yes, no, {yes: Decimal(150)}, neg_risk=True)
    chain.resolve(cond, [1, 0])
    before = chain.collateral()

    live, rows, fills = await _run_and_resolve("live", srv, events, tmp_path / "live", chain)
    assert [(f["instrument_id"], f["side"], Decimal(f["price"]), Decimal(f["quantity"]))
            for f in fills] == [(f"polymarket:{yes}", "sell", 1, 150)]
    assert [r["step"] for r in rows] == ["queued", "signed", "sent", "mined"]
    assert {r["condition_id"] for r in rows} == {cond}
    assert rows[0]["fill_id"] == fills[0]["fill_id"]
    assert (Decimal(rows[-1]["payout"]), Decimal(rows[-1]["expected_payout"])) == (150, 150)
    (tx,) = chain.redeem_transactions()
    assert tx["to"] == chain.adapter.address
    assert chain.adapter.decode_function_input(tx["input"])[1]["_amounts"] == [150_000_000, 0]
    assert chain.collateral() - before == 150 and chain.shares(yes) == 0

    paper, prows, pfills = await _run_and_resolve("paper", srv, events, tmp_path / "paper",
                                                  chain)
    assert [(f["instrument_id"], Decimal(f["price"]), Decimal(f["quantity"])) for f in pfills] \
        == [(f["instrument_id"], Decimal(f["price"]), Decimal(f["quantity"])) for f in fills]
    assert [r["step"] for r in prows] == ["queued", "simulated"]
    assert Decimal(prows[-1]["payout"]) == Decimal(rows[-1]["payout"]) == 150
    assert len(chain.redeem_transactions()) == 1  # paper touched no chain
    # the same cash flows: the settlement fill pays the position at 1 in both modes
    assert paper.final_equity == live.final_equity
    assert paper.fills == live.fills == 6


async def test_a_run_stopped_after_the_send_resumes_the_redemption_without_sending_again(
        servers: Any, local_chain: Any, tmp_path: Path) -> None:
    """The run ends while the redemption's transaction waits in the pool (no receipt); the
    next start of the same run directory finds its hash, waits for it, and records it mined:
    one redemption on chain."""
    srv, events = servers
    chain = local_chain
    cond, yes, no = _fed_market(events, 0)
    chain.market(cond, yes, no, {yes: Decimal(150)}, neg_risk=True)
    chain.resolve(cond, [1, 0])
    before = chain.collateral()
    chain.tester.disable_auto_mine_transactions()
    run_dir = tmp_path / "run"
    first = _runner("live", srv, run_dir, chain, redeem_shutdown_wait_s=0.2)
    task = asyncio.create_task(first.run())
    await _until(lambda: first.n_fills >= 5, "the basket's five fills")
    await _resolve(srv, events)
    await _until(lambda: "sent" in _steps(first), "the redemption sent")
    await _stop(first, task, srv, events)  # waits 0.2 s for the receipt, then stops
    assert _read(run_dir)[0][-1]["step"] == "sent"

    second = _runner("live", srv, run_dir, chain, redeem_shutdown_wait_s=0.2)  # same config
    task = asyncio.create_task(second.run())

    def resumed() -> bool:
        redemptions = second.asm.venue.redemptions
        return redemptions is not None and not redemptions.idle()

    await _until(resumed, "the unfinished redemption taken up again")
    chain.tester.mine_blocks(1)  # the first run's transaction is mined now
    await _until(lambda: "mined" in _steps(second), "the redemption mined")
    await _stop(second, task, srv, events)
    rows, fills = _read(run_dir)
    assert [r["step"] for r in rows] == ["queued", "signed", "sent", "mined"]
    assert len(fills) == 1 and len(chain.provider.sent) == 1
    assert len(chain.redeem_transactions()) == 1 and chain.collateral() - before == 150
