"""Live mode end to end through the real core ``Runner``: the Polymarket venue and the negRisk
scanner against local Gamma / CLOB REST / websocket servers (``SnapshotServer`` +
``LocalClob``: L2 headers and order signatures checked, orders matched against the books),
with a throwaway key given through ``$env:``.

1. the scanner's basket goes out as one batch of signed FOK orders, the fills land in the
   ledger under the core's client order ids; a killed leg makes the venue raise
   ``BasketIncomplete`` with the executed legs' fills, and the core unwinds them with its
   own ledgered reduce-only orders (the venue unwinds nothing);
2. a resting GTC order's maker fills reach the ledger through ``executions()`` (once each);
3. a run killed after an order was persisted, before the venue answered, is restarted: the
   venue's open orders are asked, the order is not sent again, and its fill still maps back.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.testing import (
    HARDHAT_ADDRESS,
    HARDHAT_KEY,
    Fault,
    LocalClob,
    recover_order_signer,
)
from py_clob_client_v2.config import get_contract_config

from argus_core.config import Config, load_config, parse_config
from argus_core.runner import Runner

HERE = Path(__file__).parent
SNAPSHOT = HERE.parents[2] / "examples" / "polymarket" / "snapshot"
API_KEY, API_PASSPHRASE = "live-key-1", "live-pass"
API_SECRET = base64.urlsafe_b64encode(b"argus-local-clob-test-secret-32b").decode()
FED = "481717"


@pytest.fixture(autouse=True)
def _live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throwaway key and API credentials, only ever referenced as ``$env:``."""
    monkeypatch.setenv("PM_LIVE_KEY", HARDHAT_KEY)
    monkeypatch.setenv("PM_LIVE_API_KEY", API_KEY)
    monkeypatch.setenv("PM_LIVE_API_SECRET", API_SECRET)
    monkeypatch.setenv("PM_LIVE_API_PASSPHRASE", API_PASSPHRASE)


def _ledger(run_dir: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """The run's ledger database (the core's one ``*.db`` file in the run directory), read
    with plain SQL: the plugin never imports the core's ledger module."""
    (path,) = run_dir.glob("*.db")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True) if read_only else \
        sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    return db


def _snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (json.loads((SNAPSHOT / "events.json").read_text()),
            json.loads((SNAPSHOT / "books.json").read_text()))


def _yes_tokens(events: list[dict[str, Any]], event_id: str) -> list[str]:
    event = next(e for e in events if e["id"] == event_id)
    return [json.loads(m["clobTokenIds"])[0] for m in event["markets"]]


@pytest.fixture
def venue_servers() -> Iterator[tuple[SnapshotServer, LocalClob, list[dict[str, Any]]]]:
    """Gamma + CLOB REST + websocket on 127.0.0.1 serving the example snapshot, with the
    CLOB's private endpoints (``LocalClob``) matching against the same books."""
    events, books = _snapshot()
    clob = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                     api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer(events, books, ws_port=0, clob=clob).start()
    try:
        yield srv, clob, events
    finally:
        srv.stop()


def _settings_toml(srv: SnapshotServer) -> dict[str, Any]:
    return {"gamma_url": srv.url, "clob_url": srv.url, "ws_url": srv.ws_url,
            "private_key": "$env:PM_LIVE_KEY", "api_key": "$env:PM_LIVE_API_KEY",
            "api_secret": "$env:PM_LIVE_API_SECRET",
            "api_passphrase": "$env:PM_LIVE_API_PASSPHRASE",
            "settlement_poll_s": 0, "trades_poll_s": 0.05, "heartbeat_interval_s": 0.1}


def _config(srv: SnapshotServer, *, scanners: list[str], **settings: Any) -> Config:
    return parse_config({
        "argus": {"plugins": ["polymarket", "negrisk"], "mode": "live"},
        "run": {"venue": "polymarket", "scanners": scanners, "starting_cash": "10000"},
        "plugins": {"polymarket": _settings_toml(srv) | settings,
                    "negrisk": {"min_edge": "0.001", "gas_usd_per_leg": "0"}}})


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait for ``condition`` (checked every 20 ms), failing with ``what`` after a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _stop(runner: Runner, task: asyncio.Task[Any], srv: SnapshotServer,
                events: list[dict[str, Any]]) -> Any:
    """End the live run cleanly: one more websocket frame (a trade print on a token we
    hold nothing of) is its last event; the runner then commits and closes."""
    runner.max_events = runner.seq + 1
    trump_yes = _yes_tokens(events, "903193")[0]
    assert srv.push({"event_type": "last_trade_price", "asset_id": trump_yes,
                     "market": "0xtick", "price": "0.655", "size": "1", "side": "BUY",
                     "fee_rate_bps": "0", "timestamp": "1786875400000"}) == 1
    return await asyncio.wait_for(task, 20)


def _fee(qty: Decimal, price: Decimal) -> Decimal:
    """Taker fee of the Fed event (rate 0.05, exponent 1), floored to 0.00001 per fill."""
    return (qty * Decimal("0.05") * price * (1 - price)).quantize(Decimal("0.00001"),
                                                                 rounding=ROUND_DOWN)


def _venue_id(clob: LocalClob, client_order_id: str) -> str:
    """The venue order id (the signed order's hash) of the order carrying our client id."""
    (vid,) = [v for v, r in clob.orders.items()
              if r["metadata"] == client_order_metadata(client_order_id)]
    return vid


def _all_acknowledged(runner: Runner) -> bool:
    rows = runner.ledger.query("select venue_order_id from orders")
    return bool(rows) and all(r["venue_order_id"] for r in rows)


def _posted_signers_ok(clob: LocalClob, payloads: list[dict[str, Any]]) -> None:
    """Every posted order's EIP-712 signature recovers to the throwaway key's address
    under the negRisk V2 exchange's domain (and the server saw no bad signature/auth)."""
    exchange = get_contract_config(137).neg_risk_exchange_v2
    for item in payloads:
        signer, _order_hash = recover_order_signer(item["order"], exchange, 137)
        assert signer == HARDHAT_ADDRESS == item["order"]["maker"]
        assert item["owner"] == API_KEY
    assert clob.bad_signatures == [] and clob.auth_failures == []


async def test_live_basket_is_one_signed_fok_batch_and_its_fills_are_booked(
        venue_servers: Any, tmp_path: Path) -> None:
    srv, clob, events = venue_servers
    runner = Runner(_config(srv, scanners=["negrisk"]), tmp_path / "run", live_confirmed=True)
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.n_fills >= 5, "the basket's five fills")
    await _until(lambda: _all_acknowledged(runner), "the legs' venue order ids")
    polls = clob.count("GET", "/data/trades")
    # the trades feed reports our five taker matches again: nothing may be booked twice
    await _until(lambda: clob.count("GET", "/data/trades") >= polls + 3, "three more polls")
    summary = await _stop(runner, task, srv, events)

    assert [path for path, _ in clob.posts] == ["/orders"]  # one batch, nothing else sent
    (_, batch), = clob.posts
    assert [item["orderType"] for item in batch] == ["FOK"] * 5
    _posted_signers_ok(clob, batch)
    db = _ledger(tmp_path / "run")
    (opp,) = db.execute("select * from opportunities").fetchall()
    body = json.loads(opp["body_json"])
    orders = db.execute("select * from orders order by client_order_id").fetchall()
    fills = db.execute("select * from fills order by client_order_id").fetchall()
    positions = {r["instrument_id"]: r for r in db.execute("select * from positions")}
    risk = db.execute("select check_name, action from risk_events").fetchall()
    db.close()
    # the signed orders carry the core client order ids (metadata = keccak of each)
    assert sorted(item["order"]["metadata"] for item in batch) == sorted(
        client_order_metadata(o["client_order_id"]) for o in orders)
    assert {o["basket_id"] for o in orders} == {body["opportunity_id"]}
    legs = {leg["instrument_id"]: leg for leg in body["legs"]}
    assert [o["status"] for o in orders] == ["filled"] * 5
    assert [o["venue_order_id"] for o in orders] == [
        _venue_id(clob, o["client_order_id"]) for o in orders]
    assert len(fills) == 5 and summary.fills == 5
    by_order = {o["client_order_id"]: o for o in orders}
    for f in fills:
        order = by_order[f["client_order_id"]]  # every fill names its core order
        leg = legs[f["instrument_id"]]
        assert f["instrument_id"] == order["instrument_id"]
        assert (Decimal(f["quantity"]), Decimal(f["price"]), f["liquidity"]) == (
            Decimal(150), Decimal(leg["limit_price"]), "taker")
        assert Decimal(f["fee"]) == _fee(Decimal(150), Decimal(leg["limit_price"]))
        assert Decimal(positions[f["instrument_id"]]["quantity"]) == 150
    assert set(positions) == set(legs) == {f"polymarket:{t}" for t in _yes_tokens(events, FED)}
    assert sum(Decimal(f["fee"]) for f in fills) == Decimal(body["costs"]) == Decimal("3.49552")
    assert risk == [] and summary.trading_state == "active"
    # the server's books lost exactly the depth we took (150 at each leg's best ask)
    for iid, leg in legs.items():
        assert Decimal(leg["limit_price"]) not in clob.asks[iid.split(":")[1]]


_FINAL = ("filled", "cancelled", "rejected")


async def test_a_killed_leg_is_unwound_by_the_core_with_ledgered_reduce_only_orders(
        venue_servers: Any, tmp_path: Path) -> None:
    """A FOK leg is killed, four execute: the venue raises ``BasketIncomplete`` with the
    four fills and unwinds nothing; the core flattens each executed leg with an ordinary
    ledgered order (SELL, LIMIT IOC -> FAK, ``reduce_only``, same basket) whose fills are
    booked to it.  Only 60 of one leg can be sold back: the rest stays visible (and is
    offered again, ``-unwind-2`` on, while the run goes on: the first round is checked)."""
    srv, clob, events = venue_servers
    yes = _yes_tokens(events, FED)  # asks 0.003, 0.014, 0.64, 0.31, 0.005 (150 each)
    clob.drain(yes[2], "asks")  # someone took "No change" before us: that FOK leg is killed
    for token in (yes[0], yes[1], yes[4]):
        clob.drain(token, "bids")  # nobody to sell the other legs back to...
    clob.bids[yes[3]] = {Decimal("0.30"): Decimal(60)}  # ...except 60 of "25 bps increase"
    runner = Runner(_config(srv, scanners=["negrisk"]), tmp_path / "run", live_confirmed=True)
    task = asyncio.create_task(runner.run())

    def settled() -> bool:  # the legs and the first unwind of each executed leg
        rows = runner.ledger.query("select status from orders where reduce_only = 0 or "
                                   "client_order_id like '%-unwind'")
        return len(rows) == 9 and all(r["status"] in _FINAL for r in rows)

    await _until(settled, "the five legs and four unwind orders ended")
    await _until(lambda: _all_acknowledged(runner), "every order's venue order id")
    summary = await _stop(runner, task, srv, events)

    paths = [path for path, _ in clob.posts]
    assert paths[:5] == ["/orders"] + ["/order"] * 4  # the FOK batch, then the core's unwinds
    assert set(paths[5:]) <= {"/order"}  # the rest offered again (nobody bids: killed)
    unwinds = [items[0] for path, items in clob.posts[1:]]
    assert all(u["orderType"] == "FAK" and u["order"]["side"] == "SELL" for u in unwinds)
    _posted_signers_ok(clob, [*clob.posts[0][1], *unwinds])
    assert all(n == 1 for n in clob.accepted.values())  # every order acted on once
    db = _ledger(tmp_path / "run")
    (opp,) = db.execute("select * from opportunities").fetchall()
    basket = json.loads(opp["body_json"])["opportunity_id"]
    orders = db.execute("select * from orders where reduce_only = 0 or client_order_id like "
                        "'%-unwind'").fetchall()
    again = db.execute("select * from orders where client_order_id like '%-unwind-%'").fetchall()
    fills = db.execute("select * from fills order by fill_id").fetchall()
    positions = {r["instrument_id"]: Decimal(r["quantity"])
                 for r in db.execute("select * from positions")}
    risk = db.execute("select check_name, action, reason from risk_events").fetchall()
    db.close()
    iid = [f"polymarket:{t}" for t in yes]
    legs = {o["instrument_id"]: o for o in orders if not o["reduce_only"]}
    flatten = {o["instrument_id"]: o for o in orders if o["reduce_only"]}
    assert set(legs) == set(iid) and set(flatten) == {iid[0], iid[1], iid[3], iid[4]}
    assert {o["basket_id"] for o in orders} == {basket}
    for i, o in flatten.items():  # ordinary ledgered orders of the core, one per leg
        assert (o["side"], Decimal(o["quantity"]), o["order_type"], o["time_in_force"]) == (
            "sell", Decimal(150), "limit", "ioc")
        assert Decimal(o["limit_price"]) < Decimal(legs[i]["limit_price"])  # minus slippage
        assert o["client_order_id"] not in {leg["client_order_id"] for leg in legs.values()}
    # every fill is booked to its own order: four legs bought 150, one unwind sold 60
    by_coid = {o["client_order_id"]: o for o in orders}
    assert sorted((by_coid[f["client_order_id"]]["reduce_only"], f["instrument_id"], f["side"],
                   Decimal(f["quantity"])) for f in fills) == sorted(
        [(0, i, "buy", Decimal(150)) for i in (iid[0], iid[1], iid[3], iid[4])]
        + [(1, iid[3], "sell", Decimal(60))])
    (sell,) = [f for f in fills if f["side"] == "sell"]
    assert sell["client_order_id"] == flatten[iid[3]]["client_order_id"]
    assert Decimal(sell["price"]) == Decimal("0.30")
    assert not any(f["fill_id"].endswith(":unwind") for f in fills)
    assert positions == {iid[0]: 150, iid[1]: 150, iid[3]: 90, iid[4]: 150}  # naked, visible
    assert [legs[i]["status"] for i in (iid[0], iid[1], iid[3], iid[4])] == ["filled"] * 4
    assert (legs[iid[2]]["status"], legs[iid[2]]["filled_quantity"]) == ("cancelled", "0")
    assert (flatten[iid[3]]["status"], flatten[iid[3]]["filled_quantity"]) == (
        "cancelled", "60")  # FAK: 60 matched, the venue killed the rest
    assert all(flatten[i]["status"] == "cancelled" for i in (iid[0], iid[1], iid[4]))
    # every order, unwinds included, carries its venue order id (the signed order's hash)
    assert all(o["venue_order_id"] == _venue_id(clob, o["client_order_id"]) for o in orders)
    assert not [r for r in risk if r["action"] in ("unknown_order", "unknown_fill")]
    assert [r for r in risk if r["check_name"] == "basket"]
    assert summary.trading_state != "active"  # a residual is left: no new risk
    assert all(o["filled_quantity"] == "0" for o in again)  # nobody bids


async def test_resting_gtc_maker_fills_arrive_through_fills_once_each(
        venue_servers: Any, tmp_path: Path) -> None:
    srv, clob, events = venue_servers
    child = _child_module()
    target = f"polymarket:{_yes_tokens(events, FED)[2]}"  # "No change": ask 0.64
    runner = Runner(_config(srv, scanners=[]), tmp_path / "run", live_confirmed=True,
                    strategies={"rest_once": child.RestOnce(target, "0.50", "100")})
    task = asyncio.create_task(runner.run())
    await _until(lambda: len(clob.orders) == 1, "the resting order at the venue")
    (vid,) = clob.orders
    await _until(lambda: runner.ledger.query("select status from orders")[0]["status"] == "open",
                 "the order acknowledged")
    await _until(lambda: clob.heartbeats >= 2, "heartbeats while the order rests")
    first = clob.fill_resting(vid, "40")
    await _until(lambda: runner.n_fills == 1, "the first maker fill")
    assert runner.ledger.query("select status, filled_quantity from orders")[0] == {
        "status": "partially_filled", "filled_quantity": "40"}
    clob.set_trade_status(first, "MINED")  # the same trade, reported again
    second = clob.fill_resting(vid, "60")
    await _until(lambda: runner.n_fills == 2, "the second maker fill")
    clob.set_trade_status(first, "CONFIRMED")
    clob.set_trade_status(second, "CONFIRMED")
    polls = clob.count("GET", "/data/trades")
    await _until(lambda: clob.count("GET", "/data/trades") >= polls + 3, "three more polls")
    summary = await _stop(runner, task, srv, events)

    assert [path for path, _ in clob.posts] == ["/order"]
    (_, (posted,)), = clob.posts
    assert posted["orderType"] == "GTC"
    _posted_signers_ok(clob, [posted])
    db = _ledger(tmp_path / "run")
    (order,) = db.execute("select * from orders").fetchall()
    fills = db.execute("select * from fills order by ts_ns, fill_id").fetchall()
    (position,) = db.execute("select * from positions").fetchall()
    db.close()
    assert posted["order"]["metadata"] == client_order_metadata(order["client_order_id"])
    assert [(f["fill_id"], f["client_order_id"], Decimal(f["quantity"]), Decimal(f["price"]),
             f["liquidity"], Decimal(f["fee"])) for f in fills] == [
        (f"{first}:{vid}", order["client_order_id"], Decimal(40), Decimal("0.5"), "maker", 0),
        (f"{second}:{vid}", order["client_order_id"], Decimal(60), Decimal("0.5"), "maker", 0)]
    assert (order["status"], order["filled_quantity"], order["venue_order_id"]) == (
        "filled", "100", vid)
    assert (position["instrument_id"], Decimal(position["quantity"])) == (target, 100)
    assert summary.fills == 2
    assert runner.asm.venue.execution.watched == {}  # filled: no longer watched


def _child_module() -> Any:
    """``pm_live_child`` (the child-process script) imported by path."""
    spec = importlib.util.spec_from_file_location("pm_live_child", HERE / "pm_live_child.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toml(srv: SnapshotServer, *, negrisk: bool = False) -> str:
    pm = "\n".join(f"{k} = {json.dumps(v)}" for k, v in _settings_toml(srv).items())
    plugins, scanners = (["polymarket", "negrisk"], ["negrisk"]) if negrisk else (
        ["polymarket"], [])
    text = (f'[argus]\nplugins = {json.dumps(plugins)}\nmode = "live"\n\n'
            f'[run]\nvenue = "polymarket"\nscanners = {json.dumps(scanners)}\n'
            f'starting_cash = "10000"\n\n[plugins.polymarket]\n{pm}\n')
    if negrisk:
        text += '\n[plugins.negrisk]\nmin_edge = "0.001"\ngas_usd_per_leg = "0"\n'
    return text


async def _kill_after_post(clob: LocalClob, args: list[str], run_dir: Path) -> list[Any]:
    """Start a live run in a child process, let the venue execute its first order post but
    hold the answer, then SIGKILL the child; returns the ledger's order rows as it left them."""
    clob.hold_posts = True  # the venue takes the order(s), the answer never reaches the run
    proc = subprocess.Popen([sys.executable, str(HERE / "pm_live_child.py"), *args],
                            env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        got = await asyncio.to_thread(clob.post_received.wait, 60)
        assert got, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no post"
        db = _ledger(run_dir, read_only=True)
        rows = db.execute("select client_order_id, status from orders order by 1").fetchall()
        db.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
    clob.release_all()
    return rows


async def test_restart_after_a_persisted_unacknowledged_order_does_not_resend_it(
        venue_servers: Any, tmp_path: Path) -> None:
    srv, clob, events = venue_servers
    target = f"polymarket:{_yes_tokens(events, FED)[2]}"
    config_path, run_dir = tmp_path / "live.toml", tmp_path / "run"
    config_path.write_text(_toml(srv))
    (row,) = await _kill_after_post(
        clob, [str(config_path), str(run_dir), target, "0.50", "100"], run_dir)
    assert row[1] == "pending"  # persisted before it was sent; never acknowledged
    (vid,) = clob.orders
    assert clob.orders[vid]["status"] == "LIVE"  # the venue holds it

    child = _child_module()
    start = len(clob.requests)
    runner = Runner(load_config(config_path), run_dir, live_confirmed=True,
                    strategies={"rest_once": child.RestOnce(target, "0.50", "100")})
    task = asyncio.create_task(runner.run())
    # (the restarted run's event number continues from its checkpoint, so wait for the
    # reconciliation itself rather than for events)
    await _until(lambda: runner.ledger.query("select status from orders")[0]["status"]
                 == "open", "the restarted run reconciling the order")
    # reconciliation asked the venue first
    assert clob.requests[start] == ("GET", "/data/orders")
    assert runner.ledger.query("select client_order_id, status from orders") == [
        {"client_order_id": row[0], "status": "open"}]
    beats = clob.heartbeats
    await _until(lambda: clob.heartbeats >= beats + 2, "heartbeats for the adopted order")
    trade = clob.fill_resting(vid, "100")
    await _until(lambda: runner.n_fills == 1, "the adopted order's fill")
    summary = await _stop(runner, task, srv, events)

    assert [path for path, _ in clob.posts] == ["/order"]  # sent once, never again
    db = _ledger(run_dir)
    (order,) = db.execute("select * from orders").fetchall()
    (fill,) = db.execute("select * from fills").fetchall()
    risk = db.execute("select check_name, action from risk_events").fetchall()
    db.close()
    assert (fill["fill_id"], fill["client_order_id"], Decimal(fill["quantity"])) == (
        f"{trade}:{vid}", row[0], Decimal(100))
    assert (order["status"], order["filled_quantity"], order["venue_order_id"]) == (
        "filled", "100", vid)
    assert risk == [] and summary.resumed_from == 0


@pytest.mark.slow
async def test_restart_after_an_executed_unacknowledged_basket_books_its_fills_once(
        venue_servers: Any, tmp_path: Path) -> None:
    """The venue executed the FOK batch but the run died before the answer: after the
    restart nothing is re-sent, and the trades feed's taker fills map back to the core
    orders through the signed metadata (``GET /data/order/<id>``)."""
    srv, clob, events = venue_servers
    config_path, run_dir = tmp_path / "live.toml", tmp_path / "run"
    config_path.write_text(_toml(srv, negrisk=True))
    rows = await _kill_after_post(clob, [str(config_path), str(run_dir)], run_dir)
    assert [status for _, status in rows] == ["pending"] * 5
    assert sorted(r["status"] for r in clob.orders.values()) == ["MATCHED"] * 5

    runner = Runner(load_config(config_path), run_dir, live_confirmed=True)
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.n_fills >= 5, "the executed legs' fills")
    await _until(lambda: _all_acknowledged(runner), "the legs' venue order ids")
    polls = clob.count("GET", "/data/trades")
    await _until(lambda: clob.count("GET", "/data/trades") >= polls + 3, "three more polls")
    summary = await _stop(runner, task, srv, events)

    assert [path for path, _ in clob.posts] == ["/orders"]  # the basket went out once
    by_meta = {r["metadata"]: vid for vid, r in clob.orders.items()}
    trade_of = {t["taker_order_id"]: t["id"] for t in clob.trades}
    db = _ledger(run_dir)
    orders = {o["client_order_id"]: o for o in db.execute("select * from orders")}
    fills = db.execute("select * from fills").fetchall()
    positions = {r["instrument_id"]: Decimal(r["quantity"]) for r in db.execute(
        "select * from positions")}
    risk = db.execute("select check_name, action from risk_events").fetchall()
    db.close()
    assert len(fills) == 5 and summary.fills == 5
    for f in fills:
        vid = by_meta[client_order_metadata(f["client_order_id"])]
        assert f["fill_id"] == f"{trade_of[vid]}:{vid}"  # the feed's id: stable, booked once
        assert (Decimal(f["quantity"]), f["liquidity"]) == (Decimal(150), "taker")
        assert Decimal(f["fee"]) == _fee(Decimal(150), Decimal(f["price"]))
    assert sorted(o["status"] for o in orders.values()) == ["filled"] * 5
    assert all(o["venue_order_id"] == by_meta[client_order_metadata(c)]
               for c, o in orders.items())
    assert positions == {f"polymarket:{t}": 150 for t in _yes_tokens(events, FED)}
    assert clob.count("GET", "/data/order/" + next(iter(clob.orders))) == 1  # asked once
    # the core leaves the legs the venue no longer holds open pending ("awaiting_venue")
    # until their fills arrive: nothing is marked final on a guess, nothing unwound
    assert all(r["check_name"] == "reconcile" and r["action"] == "awaiting_venue" for r in risk)


async def test_ioc_rest_killed_fok_and_refused_orders_end_in_the_ledger(
        venue_servers: Any, tmp_path: Path) -> None:
    """An IOC (FAK) order matched in part, a FOK order the venue kills and an order it
    refuses: none stays ``open``; each ends with its venue order id, the refusal with the
    venue's reason."""
    srv, clob, events = venue_servers
    yes = _yes_tokens(events, FED)  # asks 0.003, 0.014, 0.64, 0.31, 0.005 (150 each)
    iid = [f"polymarket:{t}" for t in yes]
    del clob.markets[yes[4]]  # the venue does not know this market: it refuses the order
    child = _child_module()
    strategy = child.SendOnce([(iid[2], "0.64", "200", child.TimeInForce.IOC),
                               (iid[3], "0.31", "200", child.TimeInForce.FOK),
                               (iid[4], "0.01", "100", child.TimeInForce.IOC)])
    runner = Runner(_config(srv, scanners=[]), tmp_path / "run", live_confirmed=True,
                    strategies={"send_once": strategy})
    task = asyncio.create_task(runner.run())

    def settled() -> bool:
        rows = runner.ledger.query("select status from orders")
        return len(rows) == 3 and all(r["status"] in ("cancelled", "rejected") for r in rows)

    await _until(settled, "every order ended")
    polls = clob.count("GET", "/data/trades")
    await _until(lambda: clob.count("GET", "/data/trades") >= polls + 3, "three more polls")
    summary = await _stop(runner, task, srv, events)

    db = _ledger(tmp_path / "run")
    orders = {o["instrument_id"]: o for o in db.execute("select * from orders")}
    (fill,) = db.execute("select * from fills").fetchall()
    risk = db.execute("select check_name, action, reason from risk_events").fetchall()
    db.close()
    ioc, fok, refused = orders[iid[2]], orders[iid[3]], orders[iid[4]]
    # the FAK took the 150 on offer; the venue killed the other 50
    assert (ioc["status"], ioc["filled_quantity"]) == ("cancelled", "150")
    assert (fill["client_order_id"], Decimal(fill["quantity"])) == (ioc["client_order_id"], 150)
    assert (fok["status"], fok["filled_quantity"]) == ("cancelled", "0")
    for o in (ioc, fok):
        assert o["venue_order_id"] == _venue_id(clob, o["client_order_id"])
        assert clob.orders[o["venue_order_id"]]["status"] == "CANCELED"
    # the refused order carries the hash it was signed with (recorded before it was sent);
    # the venue holds no order of that id
    assert refused["status"] == "rejected" and refused["venue_order_id"] not in clob.orders
    (sent,) = [items[0]["order"] for _, items in clob.attempts
               if items[0]["order"]["tokenId"] == yes[4]]
    assert refused["venue_order_id"] == recover_order_signer(
        sent, get_contract_config(137).neg_risk_exchange_v2, 137)[1]
    (rejection,) = [r for r in risk if r["action"] == "rejected"]
    assert refused["client_order_id"] in rejection["reason"]
    assert f"market for token {yes[4]} not found" in rejection["reason"]
    assert len(risk) == 1 and summary.fills == 1
    assert [p for p, _ in clob.posts] == ["/order"] * 3  # nothing re-sent


async def test_a_resting_order_gone_from_the_book_after_a_partial_fill_ends_cancelled(
        venue_servers: Any, tmp_path: Path) -> None:
    """A GTC order the venue cancels after a maker fill of 40: the fill is booked first,
    then the order is ``cancelled`` (not left ``partially_filled`` or ``open``)."""
    srv, clob, events = venue_servers
    target = f"polymarket:{_yes_tokens(events, FED)[2]}"
    child = _child_module()
    runner = Runner(_config(srv, scanners=[]), tmp_path / "run", live_confirmed=True,
                    strategies={"rest_once": child.RestOnce(target, "0.50", "100")})
    task = asyncio.create_task(runner.run())
    await _until(lambda: len(clob.orders) == 1, "the resting order at the venue")
    (vid,) = clob.orders
    await _until(lambda: runner.ledger.query("select status from orders")[0]["status"] == "open",
                 "the order acknowledged")
    # the venue matches 40 and then cancels the rest (e.g. the heartbeat lapsed) before the
    # next trades poll: the CANCELLED must wait for that fill
    trade = clob.fill_resting(vid, "40")
    clob.orders[vid]["status"] = "CANCELED"
    await _until(lambda: runner.ledger.query("select status from orders")[0]["status"]
                 == "cancelled", "the order cancelled")
    summary = await _stop(runner, task, srv, events)

    db = _ledger(tmp_path / "run")
    (order,) = db.execute("select * from orders").fetchall()
    (fill,) = db.execute("select * from fills").fetchall()
    db.close()
    assert (order["status"], order["filled_quantity"], order["venue_order_id"]) == (
        "cancelled", "40", vid)
    assert (fill["fill_id"], Decimal(fill["quantity"])) == (f"{trade}:{vid}", Decimal(40))
    assert summary.fills == 1
    assert runner.asm.venue.execution.watched == {}
    hb = runner.asm.venue.execution.heartbeat
    assert hb is not None and hb.resting == set()  # nothing rests: no more heartbeats needed


async def test_a_lost_basket_answer_is_found_at_the_venue_and_booked_once(
        venue_servers: Any, tmp_path: Path) -> None:
    """The venue executes the FOK batch and the connection is reset mid-answer: the venue
    finds every leg by its hash, nothing is sent again, and each leg's fill is booked once
    (under the trade's fill id, which the trades feed then re-reads without effect)."""
    srv, clob, events = venue_servers
    clob.faults.append(Fault(reset=True))
    runner = Runner(_config(srv, scanners=["negrisk"]), tmp_path / "run", live_confirmed=True)
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.n_fills >= 5, "the basket's five fills")
    await _until(lambda: _all_acknowledged(runner), "the legs' venue order ids")
    polls = clob.count("GET", "/data/trades")
    await _until(lambda: clob.count("GET", "/data/trades") >= polls + 3, "three more polls")
    summary = await _stop(runner, task, srv, events)

    assert len(clob.attempts) == 1 and sorted(clob.accepted.values()) == [1] * 5
    db = _ledger(tmp_path / "run")
    orders = db.execute("select * from orders").fetchall()
    fills = db.execute("select * from fills").fetchall()
    risk = db.execute("select check_name, action from risk_events").fetchall()
    db.close()
    trade_of = {t["taker_order_id"]: t["id"] for t in clob.trades}
    assert [o["status"] for o in orders] == ["filled"] * 5
    assert len(fills) == 5 and summary.fills == 5
    for f in fills:
        vid = _venue_id(clob, f["client_order_id"])
        assert f["fill_id"] == f"{trade_of[vid]}:{vid}" and Decimal(f["quantity"]) == 150
    assert all(o["venue_order_id"] == _venue_id(clob, o["client_order_id"]) for o in orders)
    assert risk == [] and summary.trading_state == "active"


async def test_an_order_the_venue_cannot_confirm_stays_pending_until_it_is_found(
        venue_servers: Any, tmp_path: Path) -> None:
    """The venue executes a FOK order, answers 502 and then cannot be asked: the order is
    ``OrderUnknown`` — left pending with a risk event, never re-sent — until the venue
    answers again and ``executions()`` finds it: then its fill is booked once."""
    srv, clob, events = venue_servers
    yes = _yes_tokens(events, FED)
    target = f"polymarket:{yes[3]}"  # ask 0.31 x 150
    clob.faults.append(Fault(status=502, down_after=True))
    child = _child_module()
    strategy = child.SendOnce([(target, "0.31", "100", child.TimeInForce.FOK)])
    runner = Runner(_config(srv, scanners=[], order_settle_s=0.3), tmp_path / "run",
                    live_confirmed=True, strategies={"send_once": strategy})
    task = asyncio.create_task(runner.run())

    def risk_actions() -> list[str]:
        return [r["action"] for r in runner.ledger.query("select action from risk_events")]

    await _until(lambda: "order_unknown" in risk_actions(), "the order_unknown risk event")
    assert runner.ledger.query("select status from orders") == [{"status": "pending"}]
    clob.down = False  # the venue can be asked again
    await _until(lambda: runner.n_fills == 1, "the order's fill")
    await _until(lambda: runner.ledger.query("select status from orders")[0]["status"]
                 == "filled", "the order filled")
    await _until(lambda: _all_acknowledged(runner), "the order's venue order id")
    summary = await _stop(runner, task, srv, events)

    assert len(clob.attempts) == 1 and list(clob.accepted.values()) == [1]
    db = _ledger(tmp_path / "run")
    (order,) = db.execute("select * from orders").fetchall()
    (fill,) = db.execute("select * from fills").fetchall()
    db.close()
    vid = _venue_id(clob, order["client_order_id"])
    assert (order["status"], order["filled_quantity"], order["venue_order_id"]) == (
        "filled", "100", vid)
    assert (fill["client_order_id"], Decimal(fill["quantity"]), Decimal(fill["price"])) == (
        order["client_order_id"], Decimal(100), Decimal("0.31"))
    assert summary.fills == 1
