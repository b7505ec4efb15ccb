"""``argus run`` end to end against the local Kalshi exchange: the unmodified CLI in a
subprocess trades the test strategy ``kalshi_e2e`` (``kalshi_e2e_plugin.py``, loaded
through a real entry point), in paper mode and then live (``--live``); the market
settles on the exchange and the run ends with it (``end_when_resolved``).  The ledger's
orders and fills must be the exchange's (live) or never reach it (paper), and the
settlement is booked once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.processes import query
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import LocalKalshi
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.slow  # two `argus run` subprocesses, each a few seconds

TICKER = "KXHIGHNY-24JAN01-T60"
YES = f"kalshi:{TICKER}/YES"
KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
MARKET = {"ticker": TICKER, "event_ticker": "KXHIGHNY-24JAN01",
          "title": "Will the high temp in NYC be >60° on Jan 1, 2024?",
          "yes_sub_title": "61° or above", "status": "active",
          "close_time": "2024-01-02T04:59:00Z", "tick_size": 1, "result": ""}


HERE = Path(__file__).resolve().parent


def install_plugin(site: Path) -> str:
    """Write a distribution with an ``argus`` entry point to ``kalshi_e2e_plugin`` (beside
    this file) into ``site``; the ``PYTHONPATH`` under which a child process finds it."""
    dist = site / "argus_kalshi_e2e_test_plugin-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: argus-kalshi-e2e-test-plugin"
                                   "\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[argus]\nkalshi_e2e = kalshi_e2e_plugin\n")
    parts = [str(site), str(HERE), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


class ExchangeThread:
    """A :class:`LocalKalshi` serving on its own event loop in a thread, so that a child
    process can trade with it while the test waits; :meth:`call` runs a function there."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.loop = asyncio.new_event_loop()
        self.exchange = LocalKalshi(KEY_ID, public_key)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LocalKalshi:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.exchange.__aenter__(), self.loop).result(10)
        self.call(lambda: self.exchange.add_market(
            dict(MARKET), yes_bids={38: 25, 39: 10, 40: 13}, no_bids={55: 30, 57: 8, 58: 20}))
        return self.exchange

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.exchange.__aexit__(None, None, None),
                                         self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def venue_exchange(rsa_key: rsa.RSAPrivateKey) -> Iterator[ExchangeThread]:
    """A local exchange in its own thread, serving one market."""
    thread = ExchangeThread(rsa_key.public_key())
    thread.__enter__()
    try:
        yield thread
    finally:
        thread.__exit__()


def write_config(path: Path, exchange: LocalKalshi, key_file: Path, mode: str) -> Path:
    path.write_text(
        f'[argus]\nplugins = ["kalshi", "kalshi_e2e"]\nmode = "{mode}"\n\n'
        '[run]\nvenue = "kalshi"\nstrategies = ["kalshi_e2e"]\nstarting_cash = "1000"\n\n'
        f'[plugins.kalshi_e2e]\ninstrument_id = "{YES}"\nquantity = "5"\nlimit = "0.45"\n'
        'rest_limit = "0.30"\nrests = 3\n\n'
        f'[plugins.kalshi]\nrest_url = "{exchange.rest.url}"\nws_url = "{exchange.ws.url}"\n'
        f'markets = ["{TICKER}"]\napi_key_id = "$env:KALSHI_TEST_KEY_ID"\n'
        f'private_key = "$file:{key_file}"\nend_when_resolved = true\n'
        "settlement_poll_s = 0.2\npoll_interval_s = 0.05\nrequest_timeout_s = 5\n"
        "reconnect_base_s = 0.05\nreconnect_max_s = 0.5\n")
    return path


def argus(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "argus_core.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def run_until_settled(tmp_path: Path, thread: ExchangeThread, key_file: Path, mode: str
                      ) -> Path:
    """``argus run`` (``--live`` for live) until the strategy's fill is in the ledger and
    its post-only orders rest; live, ``argus kill`` the run (HALTED cancels every working
    order); settle the market "yes" on the exchange; the run must then end by itself."""
    config = write_config(tmp_path / f"{mode}.toml", thread.exchange, key_file, mode)
    run_dir = tmp_path / f"run-{mode}"
    env = {**os.environ, "PYTHONPATH": install_plugin(tmp_path / "site"),
           "KALSHI_TEST_KEY_ID": KEY_ID}
    log = tmp_path / f"{mode}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "argus_core.cli", "run", "--config", str(config),
             "--run-dir", str(run_dir), "--no-progress", *(["--live"] if mode == "live"
                                                            else [])],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120
            while not query(run_dir, "select * from fills where liquidity != 'settlement'"):
                assert proc.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.05)
            if mode == "live":
                while len(query(run_dir, "select * from orders where status = 'open' and "
                                        "time_in_force = 'post_only'")) < 3:
                    assert proc.poll() is None, log.read_text()[-4000:]
                    assert time.monotonic() < deadline, log.read_text()[-4000:]
                    time.sleep(0.05)
                killed = argus(env, tmp_path, "kill", "--run-dir", str(run_dir))
                assert killed.returncode == 0, killed.stdout + killed.stderr
                while query(run_dir, "select * from orders where status = 'open'"):
                    # a book change is an event: the loop commits and reads the kill
                    thread.call(lambda: thread.exchange.engine.set_level(TICKER, "yes", 30, 1))
                    thread.call(lambda: thread.exchange.engine.set_level(TICKER, "yes", 30, 0))
                    assert proc.poll() is None, log.read_text()[-4000:]
                    assert time.monotonic() < deadline, log.read_text()[-4000:]
                    time.sleep(0.1)
            else:
                time.sleep(0.5)  # let the resting orders be placed too
            thread.call(lambda: thread.exchange.engine.settle(TICKER, "yes"))
            # a run that ends HALTED says so with exit status 6 (argus resume clears it)
            try:
                code = proc.wait(120)
            except subprocess.TimeoutExpired:
                raise AssertionError("the run did not end after the settlement:\n"
                                     + log.read_text()[-4000:]) from None
            assert code == (6 if mode == "live" else 0), log.read_text()[-4000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return run_dir


def test_argus_run_paper_then_live_against_the_local_exchange(
        venue_exchange: ExchangeThread, key_files: Path, tmp_path: Path) -> None:
    engine = venue_exchange.exchange.engine
    # paper: the strategy trades against the exchange's books; nothing reaches it
    paper = run_until_settled(tmp_path, venue_exchange, key_files, "paper")
    fills = query(paper, "select * from fills order by liquidity = 'settlement', fill_id")
    assert [(f["side"], D(f["quantity"]), D(f["price"]), f["liquidity"]) for f in fills] == [
        ("buy", 5, D("0.42"), "taker"), ("sell", 5, 1, "settlement")]
    assert engine.orders == {} and engine.fills == []
    rests = query(paper, "select * from orders where time_in_force = 'post_only'")
    # the settlement cancelled the resting orders on its market (none fills after it)
    assert len(rests) == 3 and all(r["status"] == "cancelled" for r in rests), rests

    # live: a fresh market, orders sent to the exchange, the ledger equal to it
    venue_exchange.call(lambda: (engine.markets[TICKER].update(
        status="active", result="", settlement_ts=None),
        engine.settlements.clear()))
    live = run_until_settled(tmp_path, venue_exchange, key_files, "live")
    orders = {o["client_order_id"]: o for o in query(
        live, "select * from orders where strategy = 'kalshi_e2e'")}
    at_exchange = {o["client_order_id"]: o for o in venue_exchange.call(
        lambda: [dict(o) for o in engine.orders.values()])}
    assert {wire_client_id(c) for c in orders} == set(at_exchange)
    for coid, row in orders.items():
        theirs = at_exchange[wire_client_id(coid)]
        assert (row["side"], D(row["quantity"]), row["venue_order_id"]) == (
            theirs["action"], theirs["initial_count"], theirs["order_id"])
        assert D(row["filled_quantity"]) == theirs["fill_count"]
    take = next(o for o in orders.values() if o["time_in_force"] == "ioc")
    posts = [o for o in orders.values() if o["time_in_force"] == "post_only"]
    assert take["status"] == "filled" and len(posts) == 3
    # argus kill: HALTED cancelled every working order, in one batch cancel
    assert all(o["status"] == "cancelled" for o in posts)
    assert all(at_exchange[wire_client_id(o["client_order_id"])]["status"] == "canceled"
               for o in posts)
    deletes = venue_exchange.call(lambda: [(r.path, r.body) for r in
                                           venue_exchange.exchange.rest.requests
                                           if r.method == "DELETE"])
    assert [path.rsplit("/", 1)[-1] for path, _ in deletes] == ["batched"]
    assert sorted(o["order_id"] for o in deletes[0][1]["orders"]) == sorted(
        o["venue_order_id"] for o in posts)
    ledger_fills = query(live, "select * from fills where liquidity != 'settlement' "
                              "order by fill_id")
    exchange_fills = venue_exchange.call(lambda: [dict(f) for f in engine.fills])
    assert [(f["fill_id"], D(f["price"]), D(f["quantity"]), D(f["fee"]))
            for f in ledger_fills] == [
        (f["trade_id"], D(f["yes_price_dollars"]), D(f["count"]), D(f["fee_cost"]))
        for f in sorted(exchange_fills, key=lambda f: f["trade_id"])]
    settled = query(live, "select * from fills where liquidity = 'settlement'")
    assert [(s["instrument_id"], D(s["quantity"]), D(s["price"])) for s in settled] == [
        (YES, 5, 1)]
