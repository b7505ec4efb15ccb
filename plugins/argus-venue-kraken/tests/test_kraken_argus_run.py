"""``argus run`` end to end against local Kraken servers: the real CLI in a subprocess,
paper-trading ``ma_cross`` on the served WS v2 stream, then live-trading it through the
signed REST API (AddOrder) and the private ``executions`` channel.

The local WS server replays 60 real hourly BTC/USD bars (``ohlc``) and, before each
bar, a checksummed ``book`` update that moves the ladder to the previous close, so the
strategy's market orders meet a real book.  The ledger is then read with apsw.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import random
import sys
import urllib.parse
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_testkit.processes import query
from argus_venue_kraken.execution import CL_ORD_NAMESPACE
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    Call,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
    ReferenceBook,
    Send,
    Step,
    Until,
    book_frame,
    recentre_book,
)

pytest.importorskip("argus_core.runner")

SYMBOL = "BTC/USD"
BTC = "kraken:BTC/USD"
TAKER_BPS = Decimal(40)  # Kraken Pro base tier, the plugin's default fee schedule
FIXTURES = Path(__file__).parent / "fixtures"


@attrs.frozen
class BarRow:
    """One row of Kraken's OHLCVT CSV, as text."""

    ts_s: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    trades: int


def load_bars() -> list[BarRow]:
    rows = []
    for line in (FIXTURES / "kraken_XBTUSD_60_tail60.csv").read_text().splitlines():
        t, o, h, lo, c, v, n = line.split(",")
        rows.append(BarRow(int(t), o, h, lo, c, v, int(n)))
    return rows


def rfc3339(ts_ns: int) -> str:
    from datetime import UTC, datetime

    seconds, frac = divmod(ts_ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def ohlc_frame(bar: BarRow, kind: str) -> str:
    """A v2 ``ohlc`` frame of one hourly bar (numbers written as Kraken does, as JSON numbers)."""
    begin = bar.ts_s * 10**9
    # The OHLCVT archive has no VWAP column; the typical price stands in for the field.
    vwap = (Decimal(bar.high) + Decimal(bar.low) + Decimal(bar.close)) / 3
    return (f'{{"channel":"ohlc","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
            f'"open":{bar.open},"high":{bar.high},"low":{bar.low},"close":{bar.close},'
            f'"trades":{bar.trades},"volume":{bar.volume},"vwap":{vwap:.1f},'
            f'"interval_begin":"{rfc3339(begin)}","interval":60,'
            f'"timestamp":"{rfc3339(begin + 3600 * 10**9)}"}}]}}')


@attrs.define
class MarketScript:
    """The public WS session and what it served."""

    steps: list[Step]
    n_events: int
    books: list[tuple[int, dict[Decimal, Decimal], dict[Decimal, Decimal]]] = attrs.Factory(list)


def split_levels(levels: list[tuple[Decimal, Decimal]], n: int
                 ) -> list[tuple[Decimal, Decimal]]:
    """Each level as ``n`` resting orders at its price (8 lot decimals, the rest last)."""
    out = []
    for price, qty in levels:
        piece = (qty / n).quantize(Decimal("1e-8"), "ROUND_DOWN")
        out += [(price, piece)] * (n - 1) + [(price, qty - piece * (n - 1))]
    return [(p, q) for p, q in out if q > 0]


def assert_order_states(run: Path, exchange: LocalKrakenRest) -> None:
    """Each ledger order ends as Kraken ended it, under Kraken's txid as venue order id."""
    orders = query(run, "select * from orders")
    by_wire = {o["cl_ord_id"]: (txid, o) for txid, o in exchange.closed.items()}
    assert orders and not exchange.orders
    for row in orders:
        txid, kraken = by_wire[str(uuid.uuid5(CL_ORD_NAMESPACE, row["client_order_id"]))]
        assert row["venue_order_id"] == txid
        filled = Decimal(kraken["vol_exec"])
        expected = {"closed": "filled", "canceled": "cancelled" if filled == 0 else None}
        assert kraken["status"] == "closed", "these market orders fill in full"
        assert row["status"] == expected[kraken["status"]]
        assert Decimal(row["filled_quantity"]) == filled == Decimal(row["quantity"])


def market_script(bars: list[BarRow], exchange: LocalKrakenRest,
                  synced: Callable[[int], Callable[[], bool]] | None = None, *,
                  seq_offset: int = 0, hold_from_bar: int | None = None,
                  split: int = 1) -> MarketScript:
    """Book snapshot, then per bar: a book update to the previous close, the bar's ohlc frame.

    Each book state is also set on ``exchange`` (the matching engine walks the same book
    the stream shows).  With ``synced``, the script waits after each bar until
    ``synced(event_number)()`` holds: the run has handled that event and its orders' fills
    (``seq_offset``: events a resumed run counted before this session).  From bar
    ``hold_from_bar`` on, the exchange holds its executions back from connected feeds.
    ``split``: the exchange's book holds each level as that many equal orders (same
    price), so a market order makes that many more trades.
    """
    ref = ReferenceBook(10, 1, 8)
    rng = random.Random(20230105)
    script = MarketScript([AwaitSubscribe("book"), AwaitSubscribe("ohlc")], 0)
    clock = [bars[0].ts_s * 10**9]
    exchange.clock_ns = lambda: clock[0]

    def book_step(kind: str, mid: str, ts_ns: int) -> None:
        item = recentre_book(ref, Decimal(mid), rng, symbol=SYMBOL, ts_ns=ts_ns)
        bids, asks = ref.top()
        script.books.append((ts_ns, dict(bids), dict(asks)))

        def expose(bids: list = bids, asks: list = asks, ts_ns: int = ts_ns) -> None:
            clock[0] = ts_ns
            exchange.set_book(SYMBOL, split_levels(bids, split), split_levels(asks, split))

        script.steps += [Call(expose), Send(book_frame(kind, item))]

    book_step("snapshot", bars[0].open, bars[0].ts_s * 10**9)
    script.steps.append(Send(ohlc_frame(bars[0], "snapshot")))
    events = 1
    for i, (prev, bar) in enumerate(itertools.pairwise(bars), start=1):
        if i == hold_from_bar:
            script.steps.append(Call(lambda: setattr(exchange, "hold_executions", True)))
        book_step("update", prev.close, bar.ts_s * 10**9 - 10**9)
        script.steps.append(Send(ohlc_frame(bar, "update")))  # completes ``prev``: a Bar event
        events += 2
        if synced is not None:
            # Generous: a resumed run's TradesHistory backfill is paced by the REST rate
            # limit (seconds of wall time), and CI runs this beside other workers.
            script.steps.append(Until(synced(seq_offset + events), timeout_s=90))
    script.n_events = events
    return script


def write_config(path: Path, *, mode: str, rest_url: str, ws_url: str, ws_auth_url: str | None,
                 nonce: Path, rate_limit_tier: str = "starter") -> Path:
    lines = ['[argus]', 'plugins = ["kraken"]', f'mode = "{mode}"', '',
             '[run]', 'venue = "kraken"', 'strategies = ["ma_cross"]',
             'checkpoint_every_events = 1', '',
             '[plugins.example]', 'fast = 2', 'slow = 3', '',
             '[plugins.kraken]', f'rest_url = "{rest_url}"', f'ws_url = "{ws_url}"',
             'pairs = ["BTC/USD"]', 'channels = ["book", "ohlc"]', f'nonce_path = "{nonce}"',
             'heartbeat_timeout_s = 60', 'dead_man_timeout_s = 0',
             f'rate_limit_tier = "{rate_limit_tier}"']
    if ws_auth_url is not None:
        lines += [f'ws_auth_url = "{ws_auth_url}"', 'api_key = "$env:ARGUS_E2E_KRAKEN_KEY"',
                  'api_secret = "$env:ARGUS_E2E_KRAKEN_SECRET"']
    path.write_text("\n".join(lines) + "\n")
    return path


async def argus_run(config: Path, run_dir: Path, max_events: int, *live: str,
                    rest: LocalKrakenRest) -> str:
    # Credentials reach the subprocess only through the environment ($env: references).
    env = {**os.environ, "ARGUS_E2E_KRAKEN_KEY": rest.api_key,
           "ARGUS_E2E_KRAKEN_SECRET": rest.api_secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "argus_core.cli", "run", "--config", str(config),
        "--run-dir", str(run_dir), "--max-events", str(max_events), "--no-progress", *live,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 180)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        pytest.fail(f"argus run did not finish:\n{out.decode()[-3000:]}")
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    return text


def synced_with(run: Path, exchange: LocalKrakenRest) -> Callable[[int], Callable[[], bool]]:
    """``synced(n)()``: the run handled event ``n``, the exchange matched every order it
    sent, and every trade the exchange published to the feed is in the ledger."""
    def synced(event_number: int) -> Callable[[], bool]:
        def check() -> bool:
            seq = query(run, "select seq from checkpoints where name = 'runner'")
            if not seq or seq[0]["seq"] < event_number:
                return False
            n_orders = len(query(run, "select 1 from orders"))
            if len(exchange.closed) != n_orders:
                return False
            if exchange.hold_executions:
                return True  # held fills cannot reach the run
            n_fills = len(query(run, "select 1 from fills"))
            return n_fills == sum(e["exec_type"] == "trade" for e in exchange.executions)
        return check
    return synced


def taker_fee(price: Decimal, qty: Decimal) -> Decimal:
    return price * qty * TAKER_BPS / Decimal(10_000)


def assert_fills_on_the_served_book(fills: list[dict[str, Any]], script: MarketScript
                                    ) -> None:
    """Each fill is at a level of the book live when it happened, on the side it takes
    (buys at asks, sells at bids, so never at a mid), for no more than that level held."""
    for f in fills:
        price, qty = Decimal(f["price"]), Decimal(f["quantity"])
        live = [book for book in script.books if book[0] <= f["ts_ns"]][-1]
        _ts, bids, asks = live
        side = asks if f["side"] == "buy" else bids
        assert price in side, f"fill {f['fill_id']} at {price} was not on the live book"
        assert qty <= side[price]
        assert min(asks) > max(bids)  # the live book was not crossed


@pytest.fixture
def bars() -> list[BarRow]:
    return load_bars()


async def test_argus_run_paper_trades_ma_cross_on_the_kraken_stream(rest_server, bars,
                                                                    tmp_path: Path):
    script = market_script(bars, rest_server)
    async with LocalKrakenWs([script.steps]) as ws:
        config = write_config(tmp_path / "paper.toml", mode="paper", rest_url=rest_server.url,
                              ws_url=ws.url, ws_auth_url=None, nonce=tmp_path / "nonce")
        await argus_run(config, tmp_path / "run", script.n_events, rest=rest_server)
    run = tmp_path / "run"
    orders = query(run, "select * from orders order by ts_ns, client_order_id")
    fills = query(run, "select * from fills order by ts_ns, fill_id")
    equity = query(run, "select * from equity order by ts_ns")
    assert len(orders) >= 4 and {o["side"] for o in orders} == {"buy", "sell"}
    assert fills and {f["client_order_id"] for f in fills} <= {o["client_order_id"] for o in
                                                               orders}
    assert_fills_on_the_served_book(fills, script)
    for f in fills:
        assert f["liquidity"] == "taker" and f["instrument_id"] == BTC
        expected = taker_fee(Decimal(f["price"]), Decimal(f["quantity"]))
        assert Decimal(f["fee"]) == expected.quantize(Decimal("1e-8")) > 0
    # One equity row per completed bar, stamped at the bar's close.
    assert [r["ts_ns"] for r in equity] == [(b.ts_s + 3600) * 10**9 for b in bars[:-1]]
    assert not rest_server.calls("AddOrder")  # paper trading sends nothing to Kraken


async def test_argus_run_live_sends_signed_orders_and_books_executions(rest_server, bars,
                                                                       tmp_path: Path):
    run = tmp_path / "run"
    script = market_script(bars, rest_server, synced_with(run, rest_server))
    private = [AwaitSubscribe("executions"), ForwardExecutions(rest_server)]
    async with LocalKrakenWs([script.steps]) as ws, \
            LocalKrakenWs([private], token="local-ws-token") as auth_ws:
        config = write_config(tmp_path / "live.toml", mode="live", rest_url=rest_server.url,
                              ws_url=ws.url, ws_auth_url=auth_ws.url,
                              nonce=tmp_path / "nonce")
        await argus_run(config, run, script.n_events, "--live", rest=rest_server)
    orders = query(run, "select * from orders order by ts_ns, client_order_id")
    fills = query(run, "select * from fills order by ts_ns, fill_id")
    adds = rest_server.calls("AddOrder")
    assert len(orders) >= 4 and len(adds) == len(orders)
    # The executions alone (keyed by the core id) bring every order to its filled state.
    assert all((o["status"], o["filled_quantity"]) == ("filled", o["quantity"]) for o in orders)
    # Every AddOrder carries the mapped cl_ord_id of a core order and a valid API-Sign.
    wire_to_core = {str(uuid.uuid5(CL_ORD_NAMESPACE, o["client_order_id"])): o for o in orders}
    for call in adds:
        form = dict(urllib.parse.parse_qsl(call.body))
        core = wire_to_core[form["cl_ord_id"]]
        assert (form["type"], form["ordertype"], form["pair"]) == (core["side"], "market",
                                                                   "XBTUSD")
        assert Decimal(form["volume"]) == Decimal(core["quantity"])
        digest = hashlib.sha256((form["nonce"] + call.body).encode()).digest()
        sign = hmac.new(base64.b64decode(rest_server.api_secret), b"/0/private/AddOrder" + digest,
                        hashlib.sha512).digest()
        assert call.headers["API-Sign"] == base64.b64encode(sign).decode()
    # Every trade the exchange reported is in the ledger once, under the core's order id.
    trades = {e["exec_id"]: e for e in rest_server.executions if e["exec_type"] == "trade"}
    assert trades and {f["fill_id"] for f in fills} == set(trades)
    for f in fills:
        trade = trades[f["fill_id"]]
        assert f["client_order_id"] == wire_to_core[trade["cl_ord_id"]]["client_order_id"]
        assert (Decimal(f["price"]), Decimal(f["quantity"])) == (
            Decimal(str(trade["last_price"])), Decimal(str(trade["last_qty"])))
        # Kraken's fee (taker 0.40 %, charged in USD to 4 decimals) is what the ledger holds.
        assert Decimal(f["fee"]) == taker_fee(Decimal(f["price"]), Decimal(f["quantity"])
                                              ).quantize(Decimal("0.0001"), "ROUND_HALF_UP")
    assert_fills_on_the_served_book(fills, script)
    # The same stream paper-traded gives the same executions: the paper broker walks the
    # book exactly as the exchange matched the live orders.
    paper_script = market_script(bars, rest_server)
    async with LocalKrakenWs([paper_script.steps]) as ws:
        config = write_config(tmp_path / "paper.toml", mode="paper", rest_url=rest_server.url,
                              ws_url=ws.url, ws_auth_url=None, nonce=tmp_path / "nonce")
        await argus_run(config, tmp_path / "paper", paper_script.n_events, rest=rest_server)
    paper = query(tmp_path / "paper", "select * from fills order by ts_ns, fill_id")
    assert [(f["side"], f["price"], f["quantity"]) for f in paper] == [
        (f["side"], f["price"], f["quantity"]) for f in fills]
    positions = query(run, "select * from positions where instrument_id = ?", (BTC,))
    bought = sum(Decimal(f["quantity"]) for f in fills if f["side"] == "buy")
    sold = sum(Decimal(f["quantity"]) for f in fills if f["side"] == "sell")
    assert Decimal(positions[0]["quantity"]) == bought - sold
    assert json.loads(query(run, "select config_json from runs")[0]["config_json"])
    assert_order_states(run, rest_server)


@pytest.mark.slow
async def test_argus_run_live_with_lost_answers_places_each_order_once(rest_server, bars,
                                                                        tmp_path: Path):
    """Kraken acts on the first three AddOrders but their answers are lost (a 503, a reset
    mid-body, a garbled body): the venue finds each order by cl_ord_id (a filled market
    order is only in ClosedOrders) instead of sending it again, so the exchange holds one
    order per ledger row and every fill is booked once."""
    run = tmp_path / "run"
    script = market_script(bars, rest_server, synced_with(run, rest_server))
    rest_server.inject("AddOrder", ("lost", None), ("lost_reset", None),
                       ("lost_raw", "<html>502 Bad Gateway</html>"))
    private = [AwaitSubscribe("executions"), ForwardExecutions(rest_server)]
    async with LocalKrakenWs([script.steps]) as ws, \
            LocalKrakenWs([private], token="local-ws-token") as auth_ws:
        config = write_config(tmp_path / "live.toml", mode="live", rest_url=rest_server.url,
                              ws_url=ws.url, ws_auth_url=auth_ws.url,
                              nonce=tmp_path / "nonce")
        await argus_run(config, run, script.n_events, "--live", rest=rest_server)
    orders = query(run, "select * from orders")
    fills = query(run, "select * from fills")
    assert len(orders) >= 4 and not rest_server.injected["AddOrder"]  # every fault was used
    # Every row's order was sent; a second AddOrder for a row happens only when Kraken
    # provably did not place the first (on a loaded machine a request can reach the
    # exchange after its deadline and be refused): the exactly-once property is the
    # exchange's, checked below — one order at Kraken per row.
    sent = [c.params["cl_ord_id"] for c in rest_server.calls("AddOrder")]
    assert len(set(sent)) == len(orders)
    assert len(rest_server.calls("ClosedOrders")) >= 3  # the look-ups that found them
    wires = [o["cl_ord_id"] for o in {**rest_server.closed, **rest_server.orders}.values()]
    assert len(wires) == len(set(wires)) == len(orders)  # one order at Kraken per row
    trades = {e["exec_id"] for e in rest_server.executions if e["exec_type"] == "trade"}
    assert [f["fill_id"] for f in fills] and sorted(f["fill_id"] for f in fills) == sorted(trades)
    assert not query(run, "select * from risk_events where action = 'unknown_fill'")
    assert_order_states(run, rest_server)


@pytest.mark.slow
async def test_a_restarted_live_run_books_the_fills_it_missed_under_core_ids(
        rest_server, bars, tmp_path: Path):
    """Run 1 dies (stops) while Kraken's executions for its last orders are held back; run 2
    resumes the run dir, gets them in the executions snapshot and books them under the core
    ids, which it knows only from the ledger (handed over by the core: ``resume``)."""
    run = tmp_path / "run"
    synced = synced_with(run, rest_server)
    first = bars[:26]  # run 1 sees 26 bars; the fills of orders from bar 20 on are held back
    # Thin resting orders: each market order makes dozens of trades, so more are missed
    # than the executions snapshot (the last 50) holds; TradesHistory brings the rest.
    script1 = market_script(first, rest_server, synced, hold_from_bar=20, split=40)
    script2 = market_script(bars[len(first) - 1:], rest_server, synced,
                            seq_offset=script1.n_events, split=40)
    private = [AwaitSubscribe("executions"), ForwardExecutions(rest_server)]
    async with LocalKrakenWs([script1.steps, script2.steps]) as ws, \
            LocalKrakenWs([private, private], token="local-ws-token") as auth_ws:
        config = write_config(tmp_path / "live.toml", mode="live", rest_url=rest_server.url,
                              ws_url=ws.url, ws_auth_url=auth_ws.url,
                              nonce=tmp_path / "nonce",
                              # The backfill's pages cost 2 each: the pro tier's faster decay
                              # keeps the paced wait short (the pacing has its own tests).
                              rate_limit_tier="pro")
        await argus_run(config, run, script1.n_events, "--live", rest=rest_server)
        booked_by_run1 = {r["fill_id"] for r in query(run, "select fill_id from fills")}
        trades_so_far = {e["exec_id"] for e in rest_server.executions
                         if e["exec_type"] == "trade"}
        missed = trades_so_far - booked_by_run1
        assert len(missed) > 50, "precondition: run 1 must miss more than a snapshot holds"
        rest_server.hold_executions = False
        await argus_run(config, run, script1.n_events + script2.n_events, "--live",
                        rest=rest_server)
    orders = {o["client_order_id"]: o for o in query(run, "select * from orders")}
    fills = query(run, "select * from fills")
    trades = {e["exec_id"]: e for e in rest_server.executions if e["exec_type"] == "trade"}
    assert {f["fill_id"] for f in fills} == set(trades)  # none lost, none booked twice
    wire_to_core = {str(uuid.uuid5(CL_ORD_NAMESPACE, c)): c for c in orders}
    for f in fills:
        assert f["client_order_id"] == wire_to_core[trades[f["fill_id"]]["cl_ord_id"]]
    assert not query(run, "select * from risk_events where action = 'unknown_fill'")
    assert len(rest_server.calls("AddOrder")) == len(orders)  # nothing sent twice
    assert rest_server.calls("TradesHistory")  # run 2 backfilled what the snapshot lacks
    assert_order_states(run, rest_server)
