"""kill -9 in live mode, at every step of the order path, against the local exchanges.

``argus run --live`` (the real CLI, a subprocess) trades the test strategy
``kill9_flip`` (``kill9_support``: an order on every trigger event) against the
Kraken and Polymarket plugins' local exchanges on 127.0.0.1.  The exchange side
SIGKILLs the process at a precise step — an order request received (the exchange
then acts anyway, or the request is lost with its sender), acted on but not yet
answered, answered, a fill produced, the executions feed subscribed, the
open-orders / trades / order look-ups of a restart's reconciliation — and at timed
moments (right after start, mid-run).  After each kill the run directory's lock
must be free and the same run directory is restarted; after at least 20 kills a
last run trades a little, is quiesced, settles and is stopped with SIGINT.  Then:

* every order the exchange holds (open and closed, by the client id it carries)
  maps to exactly one ledger order row (none lost), no row was placed twice (no
  duplicate), each row's filled quantity and final state are the exchange's;
* every exchange trade of our orders is booked exactly once (by fill id), under the
  right order, at the exchange's price and quantity; the position is the net of
  the exchange's trades; no row is left pending;
* ``PRAGMA integrity_check`` is ``ok``;
* and, checked separately (:class:`NumberingWentBack`), every restart continued the
  event numbering, so no intent was refused because its client order id was taken.

``ARGUS_KILL9_REPEAT=N`` runs each venue's kill plan N times (a soak run).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import threading
import time
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from kill9_support import (
    KillLog,
    KillSwitch,
    LiveChild,
    install_plugin,
    integrity,
    kill_cycle,
    ledger_rows,
    numbering_problem,
    quiet_http_errors,
)

pytestmark = pytest.mark.slow  # each test kills and restarts `argus run --live` 20+ times

ROOT = Path(__file__).resolve().parents[1]

# -- Kraken ------------------------------------------------------------------------------

kraken_testing = pytest.importorskip("argus_venue_kraken.testing")
kraken_execution = pytest.importorskip("argus_venue_kraken.execution")
KRAKEN_FIXTURES = ROOT / "plugins" / "argus-venue-kraken" / "tests" / "fixtures"
BTC = "kraken:BTC/USD"
SYMBOL = "BTC/USD"
#: Hourly bars from here on (the exchange's clock follows the stream, as in the plugin's
#: own end-to-end tests).
KRAKEN_T0_S = 1_700_002_800


def _kraken_public() -> dict[str, Any]:
    def load(name: str) -> Any:
        return json.loads((KRAKEN_FIXTURES / name).read_text())

    return {"AssetPairs": load("kraken_rest_assetpairs.json"),
            "Depth": load("kraken_rest_depth.json"), "OHLC": load("kraken_rest_ohlc.json"),
            "Ticker": load("kraken_rest_ticker.json"),
            "Trades": load("kraken_rest_trades_XBTUSDT_slice.json")}


class KillingKraken(kraken_testing.LocalKrakenRest):
    """The plugin's local Kraken, calling the kill switch at each step of an order's life.

    ``add_order_received``: the request arrived; the sender dies, then Kraken acts on it.
    ``add_order_received_dropped``: the sender dies and the request is lost with it.
    ``add_order_acted``: Kraken matched the order (trades published); the answer goes to
    a dead socket.  ``add_order_answered``: the answer was written, then the sender dies.
    ``fill_produced``: a trade exists, before it is published on the executions feed.
    ``executions_subscribed``: the private feed's snapshot is being built.
    ``OpenOrders`` / ``ClosedOrders`` / ``QueryOrders`` / ``TradesHistory``: a look-up
    (reconciliation, ambiguous-answer resolution, backfill) is being served.
    """

    def __init__(self, switch: KillSwitch, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.switch = switch
        self.dropped = 0

    def start(self) -> KillingKraken:
        super().start()
        quiet_http_errors(self._server)
        return self

    def _handle(self, handler: Any, http_method: str) -> None:
        method = urllib.parse.urlsplit(handler.path).path.rsplit("/", 1)[-1]
        if method == "AddOrder":
            if self.switch.fire("add_order_received_dropped"):
                self.dropped += 1
                handler.close_connection = True  # never read, never acted on
                return
            self.switch.fire("add_order_received")
        super()._handle(handler, http_method)
        if method == "AddOrder":
            self.switch.fire("add_order_answered")

    def _act(self, method: str, form: dict[str, str], arrived_ns: int) -> tuple[int, Any]:
        if method in ("OpenOrders", "ClosedOrders", "QueryOrders", "TradesHistory"):
            self.switch.fire(method)
        answer = super()._act(method, form, arrived_ns)
        if method == "AddOrder":
            self.switch.fire("add_order_acted")
        return answer

    def _publish(self, items: list[dict[str, Any]]) -> None:
        if any(item.get("exec_type") == "trade" for item in items):
            self.switch.fire("fill_produced")
        super()._publish(items)

    def subscribe_executions(self, listener: Any) -> list[dict[str, Any]]:
        self.switch.fire("executions_subscribed")
        return super().subscribe_executions(listener)


def _rfc3339(ts_ns: int) -> str:
    from datetime import UTC, datetime

    seconds, frac = divmod(ts_ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class KrakenMarket:
    """The public WS v2 stream, one generated session per connection: a book snapshot
    and the current hourly bar, then every ``interval_s`` a book update centred on the
    last close and the next bar (which completes the previous one: a ``Bar`` event).

    The market (prices, bar times, the exchange's clock and book) continues across
    sessions, so a restarted run sees time move on.  Only the newest connection plays
    (a killed run's session stops); ``active = False`` pauses the bars (quiesce).
    """

    def __init__(self, exchange: KillingKraken, seed: int, interval_s: float = 0.05) -> None:
        self.exchange = exchange
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        self.close = Decimal("60000.0")
        self.begin_s = KRAKEN_T0_S
        self.clock_ns = self.begin_s * 10**9
        exchange.clock_ns = lambda: self.clock_ns
        self.active = True
        self.closed = False  # set before the servers shut down: every session ends
        self.session = 0
        self.bars = 0
        self.bar = self._next_bar()

    # LocalKrakenWs asks ``len(sessions)`` and ``sessions[i]`` per connection.
    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, conn: int) -> Iterator[Any]:
        self.session = conn + 1
        return self._play(conn + 1)

    def _next_bar(self) -> dict[str, Any]:
        open_ = self.close
        close = (open_ * Decimal(1 + self.rng.gauss(0, 0.002))).quantize(Decimal("0.1"))
        high = max(open_, close) + Decimal("5.0")
        low = min(open_, close) - Decimal("5.0")
        self.close = close
        return {"begin_s": self.begin_s, "open": open_, "high": high, "low": low,
                "close": close}

    def _ohlc(self, kind: str) -> str:
        bar = self.bar
        begin = bar["begin_s"] * 10**9
        return (f'{{"channel":"ohlc","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
                f'"open":{bar["open"]},"high":{bar["high"]},"low":{bar["low"]},'
                f'"close":{bar["close"]},"trades":10,"volume":1.5,"vwap":{bar["close"]},'
                f'"interval_begin":"{_rfc3339(begin)}","interval":60,'
                f'"timestamp":"{_rfc3339(begin + 3600 * 10**9)}"}}]}}')

    def _book(self, ref: Any, rng: random.Random, kind: str) -> Any:
        ts_ns = self.bar["begin_s"] * 10**9 - 10**9
        item = kraken_testing.recentre_book(ref, self.bar["open"], rng, symbol=SYMBOL,
                                            ts_ns=ts_ns)
        bids, asks = ref.top()
        self.clock_ns = ts_ns
        self.exchange.set_book(SYMBOL, bids, asks)  # what orders walk is what was shown
        return kraken_testing.Send(kraken_testing.book_frame(kind, item))

    def _play(self, session: int) -> Iterator[Any]:
        t = kraken_testing
        ref = t.ReferenceBook(10, 1, 8)
        rng = random.Random(session)
        yield t.AwaitSubscribe("book")
        yield t.AwaitSubscribe("ohlc")
        yield self._book(ref, rng, "snapshot")
        yield t.Send(self._ohlc("snapshot"))
        while True:
            due = time.monotonic() + self.interval_s

            def ready(due: float = due) -> bool:
                return session != self.session or self.closed or (
                    self.active and time.monotonic() >= due)

            yield t.Until(ready, timeout_s=3600, poll_s=0.005)
            if session != self.session or self.closed:
                return  # a newer process is connected (this one was killed), or shutdown
            self.begin_s += 3600
            self.bar = self._next_bar()
            self.bars += 1
            yield self._book(ref, rng, "update")
            yield t.Send(self._ohlc("update"))


class PrivateSessions:
    """Every connection to the authenticated WS is Kraken's executions feed."""

    def __init__(self, rest: KillingKraken) -> None:
        self.rest = rest

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, conn: int) -> list[Any]:
        return [kraken_testing.AwaitSubscribe("executions"),
                kraken_testing.ForwardExecutions(self.rest)]


RISK_TABLE = ("[plugins.risk]\nmax_consecutive_losses = 1000000\n"
              'daily_loss_fraction = "0.9"\nmax_drawdown_fraction = "0.9"\n'
              "max_orders_per_minute = 1000000\n")


def kraken_config(path: Path, *, rest_url: str, ws_url: str, ws_auth_url: str,
                  secret_file: Path, nonce: Path) -> Path:
    """A live config: kill9_flip on every bar; key by ``$env:``, secret by ``$file:``."""
    path.write_text(
        '[argus]\nplugins = ["kraken", "kill9"]\nmode = "live"\n\n'
        '[run]\nvenue = "kraken"\nstrategies = ["kill9_flip"]\nstarting_cash = "100000"\n\n'
        f'[plugins.kill9]\ninstrument_id = "{BTC}"\ntrigger = "bar"\nquantity = "0.001"\n\n'
        f"{RISK_TABLE}\n"
        f'[plugins.kraken]\nrest_url = "{rest_url}"\nws_url = "{ws_url}"\n'
        f'ws_auth_url = "{ws_auth_url}"\npairs = ["BTC/USD"]\nchannels = ["book", "ohlc"]\n'
        f'nonce_path = "{nonce}"\nheartbeat_timeout_s = 120\ndead_man_timeout_s = 0\n'
        "reconnect_base_s = 0.05\nreconnect_max_s = 0.5\nrequest_timeout_s = 5\n"
        "order_deadline_s = 2\nlookup_settle_s = 0.5\n"
        'api_key = "$env:ARGUS_KILL9_KRAKEN_KEY"\n'
        f'api_secret = "$file:{secret_file}"\n')
    return path


def kraken_findings(run_dir: Path, rest: KillingKraken) -> list[str]:
    """Everything lost, duplicated, unbooked or inconsistent between the ledger and the
    exchange (empty: the ledger is exactly the exchange's account of the run)."""
    cl_ord_id_for = kraken_execution.cl_ord_id_for
    orders = {r["client_order_id"]: r for r in ledger_rows(run_dir, "select * from orders")}
    fills = {r["fill_id"]: r for r in ledger_rows(run_dir, "select * from fills")}
    by_wire = {cl_ord_id_for(c): c for c in orders}
    exchange_orders = {**rest.closed, **rest.orders}
    problems: list[str] = []
    placed: dict[str, list[str]] = {}
    for txid, order in exchange_orders.items():
        core = by_wire.get(str(order.get("cl_ord_id")))
        if core is None:
            problems.append(f"LOST: exchange order {txid} (cl_ord_id {order.get('cl_ord_id')}) "
                            f"has no ledger order row")
            continue
        placed.setdefault(core, []).append(txid)
    for core, txids in placed.items():
        if len(txids) > 1:
            problems.append(f"DUPLICATE: ledger order {core} is {len(txids)} exchange orders "
                            f"{txids}")
    for core, row in orders.items():
        status, filled = row["status"], Decimal(row["filled_quantity"])
        if status == "pending":
            problems.append(f"PENDING: order {core} is still pending after reconciliation")
        txids = placed.get(core, [])
        if not txids:
            if filled != 0 or status not in ("cancelled", "rejected"):
                problems.append(f"UNBOOKED STATE: order {core} never reached the exchange but "
                                f"is {status} with {filled} filled")
            continue
        txid = txids[0]
        ex = exchange_orders[txid]
        vol, vol_exec = Decimal(ex["vol"]), Decimal(ex["vol_exec"])
        if txid in rest.orders:
            want = "partially_filled" if vol_exec else "open"
        else:
            want = "filled" if vol_exec >= vol else "cancelled"
        if filled != vol_exec or status != want:
            problems.append(f"STATE: order {core} ({txid}) is {status}/{filled} in the ledger, "
                            f"{want}/{vol_exec} at the exchange")
        if row["venue_order_id"] != txid:
            problems.append(f"VENUE ID: order {core} carries venue order id "
                            f"{row['venue_order_id']!r}, the exchange's txid is {txid}")
    trades = dict(rest.trades_history)
    for tid in sorted(set(trades) - set(fills)):
        problems.append(f"UNBOOKED FILL: exchange trade {tid} of order "
                        f"{trades[tid]['ordertxid']} is not in the ledger")
    for fid in sorted(set(fills) - set(trades)):
        problems.append(f"PHANTOM FILL: ledger fill {fid} is no exchange trade")
    wire_of = {txid: str(o.get("cl_ord_id")) for txid, o in exchange_orders.items()}
    net = Decimal(0)
    for tid, trade in trades.items():
        vol = Decimal(trade["vol"])
        net += vol if trade["type"] == "buy" else -vol
        fill = fills.get(tid)
        if fill is None:
            continue
        expected_core = by_wire.get(wire_of.get(trade["ordertxid"], ""))
        if fill["client_order_id"] != expected_core or Decimal(fill["quantity"]) != vol or \
                Decimal(fill["price"]) != Decimal(trade["price"]) or fill["side"] != trade["type"]:
            problems.append(f"FILL MISMATCH: {tid}: ledger {dict(fill)} vs exchange {trade}")
    position = ledger_rows(run_dir, "select quantity from positions where instrument_id = ?",
                           (BTC,))
    held = Decimal(position[0]["quantity"]) if position else Decimal(0)
    if held != net:
        problems.append(f"POSITION: ledger holds {held} BTC, the exchange's trades net {net}")
    problems += ledger_problems(run_dir)
    return problems


def ledger_problems(run_dir: Path) -> list[str]:
    """What the ledger itself says went wrong: fills or updates of orders it does not
    know, trading halted (e.g. the executions stream failed: that would quietly end the
    trading this suite needs)."""
    problems = [f"UNKNOWN: {r['action']}: {r['reason']}" for r in ledger_rows(
        run_dir, "select action, reason from risk_events where action in "
                 "('unknown_fill', 'unknown_order')")]
    for r in ledger_rows(run_dir, "select value from control where key = 'trading_state'"):
        state = json.loads(r["value"])
        if state.get("state") != "active":
            problems.append(f"TRADING STATE: {state}")
    return problems


def _repeat(plan: list[str]) -> list[str]:
    """The plan, ``ARGUS_KILL9_REPEAT`` times over (a longer soak run on demand)."""
    return plan * max(1, int(os.environ.get("ARGUS_KILL9_REPEAT", "1")))


KRAKEN_PLAN = [
    "after_start", "add_order_received", "OpenOrders", "add_order_acted", "QueryOrders",
    "add_order_answered", "TradesHistory", "fill_produced", "executions_subscribed",
    "mid_run", "add_order_received_dropped", "OpenOrders", "add_order_acted",
    "TradesHistory", "add_order_answered", "after_start", "fill_produced",
    "add_order_received", "QueryOrders", "mid_run", "lost_answer_then_lookup",
    "executions_subscribed", "add_order_answered", "add_order_acted", "after_start",
    "lost_answer_then_lookup",
]


async def _settle(findings: Any, timeout_s: float) -> list[str]:
    """Poll ``findings()`` until it is empty or ``timeout_s`` passed; the last findings."""
    deadline = time.monotonic() + timeout_s
    while True:
        problems = await asyncio.to_thread(findings)
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(0.2)


async def _final_run(child: LiveChild, market: Any, findings: Any, run_dir: Path, *,
                     orders: int = 3) -> tuple[list[str], int | None]:
    """A last run: it places ``orders`` more orders, the market is quiesced, the ledger
    settles with the exchange, and SIGINT stops it; returns (findings, exit status).
    Not trading after all the kills is a finding too."""
    def n_orders() -> int:
        return len(ledger_rows(run_dir, "select 1 from orders"))

    proc = child.start(verbose=True)  # its INFO log explains a final run that never settles
    base, deadline = n_orders(), time.monotonic() + 30
    while n_orders() < base + orders and time.monotonic() < deadline and proc.poll() is None:
        await asyncio.sleep(0.05)
    placed = n_orders() - base
    market.active = False
    await asyncio.sleep(0.5)  # the last orders reach the exchange
    await _settle(findings, 90)  # converging, not fast: a loaded box backfills slowly
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    rc = await child.wait(30)
    if rc is None:
        child.kill()
    problems = await asyncio.to_thread(findings)
    if placed < orders:
        problems.append(f"NOT TRADING: the last run placed {placed} orders in 30 s")
    return problems, rc


def _report(venue: str, log: KillLog, extra: dict[str, Any]) -> str:
    points: dict[str, list[int]] = {}
    for point, how in log.kills:
        hit = points.setdefault(point, [0, 0])
        hit[0 if how == point else 1] += 1
    lines = [f"{venue}: {len(log.kills)} kills in {log.seconds:.1f} s"]
    lines += [f"  {p}: {h} at the point" + (f", {m} timed fallback" if m else "")
              for p, (h, m) in points.items()]
    lines += [f"  {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines)


@attrs.define
class Kill9Result:
    """What one venue's kill cycle and final run left, for the tests below to judge."""

    log: KillLog
    problems: list[str]  # ledger vs exchange (lost, duplicate, unbooked, state)
    numbering: list[str]  # kills after which the event numbering had gone back
    refused: list[str]  # intents not sent because their client order id was taken
    rc: int | None  # the final run's exit status (130: stopped by SIGINT)
    run_status: str
    integrity: str
    oracle: str  # findings on a deliberately broken copy of the exchange's account
    summary: str
    output: str  # the final run's output


def numbering_watch(run_dir: Path, found: list[str], pending: list[int]) -> Any:
    """``after_kill`` for :func:`kill_cycle`: records when a kill left the checkpoint's
    event number behind the ledger's orders, and how many orders it left pending."""
    def check(n: int, point: str) -> None:
        problem = numbering_problem(run_dir)
        if problem:
            found.append(f"after kill {n} ({point}): {problem}")
        pending.append(len(ledger_rows(run_dir, "select 1 from orders where status = "
                                                "'pending'")))
    return check


def pending_note(pending: list[int]) -> str:
    """Orders left pending by the kills (each one a restart's reconciliation asks about)."""
    if not pending:
        return "-"
    return f"max {max(pending)}, mean {sum(pending) / len(pending):.1f}, total {sum(pending)}"


def refused_ids(run_dir: Path) -> list[str]:
    """``order_id`` risk events: intents not sent because their client order id existed."""
    return [r["reason"] for r in ledger_rows(
        run_dir, "select reason from risk_events where check_name = 'order_id'")]


def assert_ledger_matches_exchange(result: Kill9Result) -> None:
    """The 'Done means' of issue 11 for one venue."""
    print(result.summary)
    assert result.rc == 130, f"the final run did not stop cleanly ({result.rc}):\n" \
                             f"{result.output}"
    assert result.run_status == "stopped"  # the final run ends by SIGINT: a clean stop
    assert len(result.log.kills) >= 20
    assert sum(how != "timed fallback" for _, how in result.log.kills) >= 20, result.summary
    assert result.integrity == "ok"
    assert not result.problems, "\n".join(result.problems) + "\n" + result.summary \
        + "\nthe final run's log, its end:\n" + result.output
    assert all(k in result.oracle for k in ("DUPLICATE", "LOST", "UNBOOKED FILL",
                                             "POSITION")), result.oracle


class NumberingWentBack(AssertionError):
    """A restart did not continue the event numbering (so client order ids repeat)."""


def assert_numbering_continues(result: Kill9Result) -> None:
    """A restart continues the event numbering (README, Durability), whatever step it
    was killed at: no checkpoint behind the ledger's orders, no id refused as taken.
    Checked after :func:`assert_ledger_matches_exchange` and raised as its own type, so
    the two properties stay apart."""
    if result.numbering or result.refused:
        raise NumberingWentBack("\n".join(
            result.numbering + result.refused[:10]
            + [f"({len(result.refused)} intents refused as duplicate ids)", result.summary]))


async def _kraken_kill9(tmp_path: Path) -> Kill9Result:
    switch = KillSwitch()
    secret = base64.b64encode(random.Random(9).randbytes(64)).decode()
    secret_file = tmp_path / "kraken-secret"
    secret_file.write_text(secret)
    rest = KillingKraken(switch, _kraken_public(), api_key="kill9-key",
                         api_secret=secret).start()
    market = KrakenMarket(rest, seed=11)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": install_plugin(tmp_path / "site"),
           "ARGUS_KILL9_KRAKEN_KEY": "kill9-key",
           # the CLI imports every installed plugin at start: only the ones used here
           "ARGUS_BLOCK_PLUGINS": "polymarket,negrisk,vrp,heston"}
    try:
        async with kraken_testing.LocalKrakenWs(market) as ws, \
                kraken_testing.LocalKrakenWs(PrivateSessions(rest),
                                             token="local-ws-token") as auth_ws:
            config = kraken_config(tmp_path / "live.toml", rest_url=rest.url, ws_url=ws.url,
                                   ws_auth_url=auth_ws.url, secret_file=secret_file,
                                   nonce=tmp_path / "nonce")
            child = LiveChild(config, run_dir, env, tmp_path / "logs")

            def before_start(point: str) -> str:
                rest.injected.pop("AddOrder", None)
                if point == "lost_answer_then_lookup":
                    # Kraken acts but the answer is lost (503); the process dies while it
                    # asks Kraken what became of the order.
                    rest.inject("AddOrder", ("lost", None))
                    return "ClosedOrders"
                return point

            numbering: list[str] = []
            pending: list[int] = []
            try:
                log = await kill_cycle(
                    child, switch, _repeat(KRAKEN_PLAN), rng=random.Random(5),
                    before_start=before_start,
                    after_kill=numbering_watch(run_dir, numbering, pending),
                    progressed=lambda: len(ledger_rows(run_dir, "select 1 from orders")))
                rest.injected.pop("AddOrder", None)
                problems, rc = await _final_run(child, market,
                                                lambda: kraken_findings(run_dir, rest), run_dir)
            finally:
                child.kill()
                market.closed = True
    finally:
        rest.stop()
    orders = ledger_rows(run_dir, "select status, count(*) n from orders group by status")
    summary = _report("kraken", log, {
        "ledger orders": {r["status"]: r["n"] for r in orders},
        "exchange orders": len(rest.closed) + len(rest.orders),
        "exchange trades": len(rest.trades_history),
        "AddOrder requests": len(rest.calls("AddOrder")) + rest.dropped,
        "bars": market.bars, "pending orders left by a kill": pending_note(pending)})
    result = Kill9Result(log, problems, numbering, refused_ids(run_dir), rc,
                         ledger_rows(run_dir, "select status from runs")[0]["status"],
                         integrity(run_dir), "", summary, child.output())
    # The oracle is not blind: a second exchange order for a ledger row, an exchange order
    # no row knows and a trade the ledger lacks are each found.
    txid, order = next(iter(rest.closed.items()))
    rest.closed["O-COPY"] = dict(order)
    rest.closed["O-STRAY"] = dict(order, cl_ord_id="stray")
    rest.trades_history["T-EXTRA"] = dict(next(iter(rest.trades_history.values())),
                                          ordertxid=txid)
    result.oracle = " ".join(kraken_findings(run_dir, rest))
    return result


async def test_kill9_kraken_live(tmp_path: Path) -> None:
    result = await _kraken_kill9(tmp_path)
    assert_ledger_matches_exchange(result)
    assert_numbering_continues(result)


# -- Polymarket ----------------------------------------------------------------------------

pm_testing = pytest.importorskip("argus_venue_polymarket.testing")
pm_execution = pytest.importorskip("argus_venue_polymarket.execution")
pm_replay = pytest.importorskip("argus_venue_polymarket.replay_server")
PM_SNAPSHOT = ROOT / "examples" / "polymarket" / "snapshot"
PM_API_KEY, PM_PASSPHRASE = "kill9-key", "kill9-pass"
PM_SECRET = base64.urlsafe_b64encode(b"argus-kill9-local-clob-secret-32").decode()
FED = "481717"


class KillingClob(pm_testing.LocalClob):
    """The plugin's local CLOB, calling the kill switch at each step of an order's life.

    ``post_received``: the order post arrived; the sender dies, then the venue acts on it.
    ``post_received_dropped``: the sender dies and the post is lost with it (reset).
    ``post_acted``: the order was matched (its trade exists); the answer goes to a dead
    socket.  ``post_answered``: shortly after the answer went out.  ``trades_poll`` /
    ``open_orders`` / ``order_lookup``: ``GET /data/trades``, ``/data/orders``,
    ``/data/order/<id>`` (the executions poll, a restart's reconciliation, a look-up of
    an ambiguous post) are being served.  The books are refilled after every match, so
    the strategy never runs out of liquidity.
    """

    def __init__(self, switch: KillSwitch, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.switch = switch
        self.dropped = 0
        self._full = ({t: dict(b) for t, b in self.asks.items()},
                      {t: dict(b) for t, b in self.bids.items()})

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str], raw_body: bytes) -> tuple[int, Any] | None:
        posting = method == "POST" and path in ("/order", "/orders")
        if posting:
            if self.switch.fire("post_received_dropped"):
                self.dropped += 1
                return 200, pm_replay.Reset()  # never acted on
            self.switch.fire("post_received")
        elif method == "GET" and path == "/data/trades":
            self.switch.fire("trades_poll")
        elif method == "GET" and path == "/data/orders":
            self.switch.fire("open_orders")
        elif method == "GET" and path.startswith("/data/order/"):
            self.switch.fire("order_lookup")
        answer = super().handle(method, path, query, body, headers, raw_body)
        if posting and self.switch.armed == "post_answered":
            # the server writes the answer once this returns; die just after it
            threading.Timer(0.003, self.switch.fire, ("post_answered",)).start()
        return answer

    def _post_one(self, item: Any) -> dict[str, Any]:
        answer = super()._post_one(item)
        token = str(item["order"]["tokenId"])
        self.asks[token] = dict(self._full[0].get(token, {}))  # liquidity comes back
        self.bids[token] = dict(self._full[1].get(token, {}))
        self.switch.fire("post_acted")
        return answer


class PmMarket:
    """Pushes a fresh ``book`` frame of one token every ``interval_s`` (each one an
    ``OrderBook`` event: a trigger of kill9_flip) from a thread; ``active = False``
    pauses it (quiesce).  It is also the other side of our resting orders: each one is
    taken in two halves (maker fills the run learns from the trades feed), the first
    ``maker_after_s`` after it appeared, calling the kill switch (``maker_fill``) first,
    so a fill can happen while no process is there to see it."""

    def __init__(self, srv: Any, clob: KillingClob, token: str, interval_s: float = 0.05
                 ) -> None:
        self.srv, self.clob, self.token = srv, clob, token
        self.interval_s = interval_s
        self.active = True
        self.closed = False
        self.pushed = 0
        self.maker_fills = 0
        self.maker_after_s = 0.3
        self._resting_since: dict[str, float] = {}
        base = srv.books[token]
        self._market, self._tick = str(base["market"]), str(base["tick_size"])
        self._min = str(base["min_order_size"])
        self._neg_risk = bool(base.get("neg_risk", False))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def book(self) -> dict[str, Any]:
        """The exchange's book now, as the venue serves it, stamped now."""
        bids = sorted(self.clob.bids[self.token].items(), reverse=True)
        asks = sorted(self.clob.asks[self.token].items())
        return pm_testing.make_book(
            self.token, self._market, [(str(p), str(q)) for p, q in bids],
            [(str(p), str(q)) for p, q in asks], tick=self._tick, min_size=self._min,
            neg_risk=self._neg_risk, timestamp=str(time.time_ns() // 10**6))

    def start(self) -> PmMarket:
        self.srv.books[self.token] = self.book()  # new subscribers get a fresh book
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self.closed:
            time.sleep(self.interval_s)
            if self.active:
                book = self.book()
                self.srv.books[self.token] = book
                if self.srv.push(dict(book, event_type="book")):
                    self.pushed += 1
            self._take_resting()

    def _take_resting(self) -> None:
        now = time.monotonic()
        for vid, rec in list(self.clob.orders.items()):
            if rec["status"] != "LIVE" or rec.get("order_type") != "GTC":
                continue
            since = self._resting_since.setdefault(vid, now)
            if now - since < self.maker_after_s:
                continue
            size, matched = Decimal(rec["original_size"]), Decimal(rec["size_matched"])
            half = (size / 2).quantize(Decimal(1))
            self.clob.switch.fire("maker_fill")
            self.clob.fill_resting(vid, half if matched == 0 else size - matched)
            self.maker_fills += 1
            self._resting_since[vid] = now


def pm_config(path: Path, srv: Any, token: str, key_file: Path) -> Path:
    """A live config: kill9_flip on every book of ``token`` (FAK buys at 0.99, FAK sells
    at 0.01: marketable); private key by ``$file:``, API credentials by ``$env:``."""
    path.write_text(
        '[argus]\nplugins = ["polymarket", "kill9"]\nmode = "live"\n\n'
        '[run]\nvenue = "polymarket"\nstrategies = ["kill9_flip"]\n'
        'starting_cash = "10000"\n\n'
        f'[plugins.kill9]\ninstrument_id = "polymarket:{token}"\ntrigger = "book"\n'
        'quantity = "10"\nbuy_limit = "0.99"\nsell_limit = "0.01"\n'
        'rest_every = 4\nrest_limit = "0.50"\n\n'
        f"{RISK_TABLE}\n"
        f'[plugins.polymarket]\ngamma_url = "{srv.url}"\nclob_url = "{srv.url}"\n'
        f'ws_url = "{srv.ws_url}"\nprivate_key = "$file:{key_file}"\n'
        'api_key = "$env:KILL9_PM_API_KEY"\napi_secret = "$env:KILL9_PM_API_SECRET"\n'
        'api_passphrase = "$env:KILL9_PM_API_PASSPHRASE"\n'
        "settlement_poll_s = 0\ntrades_poll_s = 0.05\nheartbeat_interval_s = 0.1\n"
        "order_settle_s = 1\norder_lookup_interval_s = 0.1\norder_give_up_s = 3\n"
        "request_timeout_s = 3\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n")
    return path


def pm_findings(run_dir: Path, clob: KillingClob, token: str) -> list[str]:
    """Everything lost, duplicated, unbooked or inconsistent between the ledger and the
    local CLOB (empty: the ledger is exactly the venue's account of the run)."""
    metadata = pm_execution.client_order_metadata
    orders = {r["client_order_id"]: r for r in ledger_rows(run_dir, "select * from orders")}
    fills = {r["fill_id"]: r for r in ledger_rows(run_dir, "select * from fills")}
    by_meta = {metadata(c): c for c in orders}
    problems: list[str] = []
    placed: dict[str, list[str]] = {}
    for vid, rec in dict(clob.orders).items():
        core = by_meta.get(str(rec.get("metadata")))
        if core is None:
            problems.append(f"LOST: venue order {vid} has no ledger order row")
            continue
        placed.setdefault(core, []).append(vid)
    for vid, n in clob.accepted.items():
        if n > 1:
            problems.append(f"DUPLICATE: venue order {vid} was acted on {n} times")
    for core, vids in placed.items():
        if len(vids) > 1:
            problems.append(f"DUPLICATE: ledger order {core} is venue orders {vids}")
    for core, row in orders.items():
        status, filled = row["status"], Decimal(row["filled_quantity"])
        if status == "pending":
            problems.append(f"PENDING: order {core} is still pending after reconciliation")
        vids = placed.get(core, [])
        if not vids:
            if filled != 0 or status not in ("cancelled", "rejected"):
                problems.append(f"UNBOOKED STATE: order {core} never reached the venue but "
                                f"is {status} with {filled} filled")
            continue
        rec = clob.orders[vids[0]]
        matched, size = Decimal(rec["size_matched"]), Decimal(rec["original_size"])
        want = {"LIVE": ("partially_filled",) if matched else ("open",),
                "MATCHED": ("filled",)}.get(rec["status"], ("cancelled", "rejected"))
        if matched >= size:
            want = ("filled",)
        if filled != matched or status not in want:
            problems.append(f"STATE: order {core} ({vids[0]}) is {status}/{filled} in the "
                            f"ledger, {rec['status']}/{matched} at the venue")
        if row["venue_order_id"] != vids[0]:
            problems.append(f"VENUE ID: order {core} carries venue order id "
                            f"{row['venue_order_id']!r}, the venue's is {vids[0]}")
    # Our side of every venue trade, per venue order id: (fill id, side, qty, price).
    # A taker match the post's answer reported is booked once as ``<vid>:0`` (the
    # answer's total); otherwise each trade is booked under ``<trade id>:<vid>``.
    trades: dict[str, list[tuple[str, str, Decimal, Decimal]]] = {}
    for t in list(clob.trades):
        if t["owner"] == clob.api_key:
            trades.setdefault(t["taker_order_id"], []).append((
                f"{t['id']}:{t['taker_order_id']}", t["side"].lower(), Decimal(t["size"]),
                Decimal(t["price"])))
        for m in t["maker_orders"]:
            if m["owner"] == clob.api_key:
                trades.setdefault(m["order_id"], []).append((
                    f"{t['id']}:{m['order_id']}", m["side"].lower(),
                    Decimal(m["matched_amount"]), Decimal(m["price"])))
    accounted: set[str] = set()
    net = Decimal(0)
    for vid, items in trades.items():
        core = by_meta.get(str(clob.orders.get(vid, {}).get("metadata")))
        qty = sum((q for _, _, q, _ in items), Decimal(0))
        net += qty if items[0][1] == "buy" else -qty
        answer_id = f"{vid}:0"
        feed_ids = {fid for fid, _, _, _ in items}
        booked = {fid for fid in fills if fid == answer_id or fid in feed_ids}
        accounted |= booked
        if answer_id in booked and booked & feed_ids:
            problems.append(f"DUPLICATE FILL: venue order {vid} booked both as {answer_id} "
                            f"and as {sorted(booked & feed_ids)}")
        if answer_id in booked:
            expected = [(answer_id, items[0][1], qty,
                         sum((q * px for _, _, q, px in items), Decimal(0)) / qty)]
        else:
            expected = items
        for fid, side, q, px in expected:
            fill = fills.get(fid)
            if fill is None:
                problems.append(f"UNBOOKED FILL: venue trade {fid} ({side} {q} @ {px}) is not "
                                f"in the ledger")
            elif (fill["client_order_id"], fill["side"], Decimal(fill["quantity"]),
                  Decimal(fill["price"])) != (core, side, q, px):
                problems.append(f"FILL MISMATCH: {fid}: ledger {dict(fill)} vs venue "
                                f"{(core, side, q, px)}")
    for fid in sorted(set(fills) - accounted):
        problems.append(f"PHANTOM FILL: ledger fill {fid} is no venue trade of ours")
    position = ledger_rows(run_dir, "select quantity from positions where instrument_id = ?",
                           (f"polymarket:{token}",))
    held = Decimal(position[0]["quantity"]) if position else Decimal(0)
    if held != net:
        problems.append(f"POSITION: ledger holds {held}, the venue's trades net {net}")
    problems += ledger_problems(run_dir)
    return problems


PM_PLAN = [
    "after_start", "post_received", "open_orders", "post_acted", "order_lookup",
    "post_answered", "trades_poll", "post_received_dropped", "mid_run", "post_acted",
    "lost_answer_then_lookup", "post_received", "post_answered", "open_orders",
    "after_start", "timeout_then_lookup", "post_acted", "trades_poll", "post_received",
    "mid_run", "post_answered", "order_lookup", "post_received_dropped", "after_start",
    "post_acted", "maker_fill", "maker_fill",
]


async def _pm_kill9(tmp_path: Path) -> Kill9Result:
    switch = KillSwitch()
    events = json.loads((PM_SNAPSHOT / "events.json").read_text())
    books = json.loads((PM_SNAPSHOT / "books.json").read_text())
    fed = next(e for e in events if e["id"] == FED)
    token = json.loads(fed["markets"][2]["clobTokenIds"])[0]  # "No change": 0.63 / 0.64
    clob = KillingClob(switch, {b["asset_id"]: b for b in books}, api_key=PM_API_KEY,
                       api_secret=PM_SECRET, api_passphrase=PM_PASSPHRASE)
    srv = pm_replay.SnapshotServer(events, books, ws_port=0, clob=clob).start()
    quiet_http_errors(getattr(srv, "_httpd", None))
    market = PmMarket(srv, clob, token).start()
    key_file = tmp_path / "pm-key"
    key_file.write_text(pm_testing.HARDHAT_KEY)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": install_plugin(tmp_path / "site"),
           "KILL9_PM_API_KEY": PM_API_KEY, "KILL9_PM_API_SECRET": PM_SECRET,
           "KILL9_PM_API_PASSPHRASE": PM_PASSPHRASE,
           "ARGUS_BLOCK_PLUGINS": "kraken,negrisk,vrp,heston"}
    config = pm_config(tmp_path / "live.toml", srv, token, key_file)
    child = LiveChild(config, run_dir, env, tmp_path / "logs")

    def before_start(point: str) -> str:
        clob.faults.clear()
        if point == "lost_answer_then_lookup":
            # the venue acts, the answer is cut mid-body; the process dies looking it up
            clob.faults.append(pm_testing.Fault(reset=True))
            return "order_lookup"
        if point == "timeout_then_lookup":
            # the venue acts, the gateway answers 504; the process dies looking it up
            clob.faults.append(pm_testing.Fault(status=504))
            return "order_lookup"
        return point

    numbering: list[str] = []
    pending: list[int] = []
    try:
        log = await kill_cycle(child, switch, _repeat(PM_PLAN), rng=random.Random(7),
                               before_start=before_start, fallback_s=10,
                               after_kill=numbering_watch(run_dir, numbering, pending),
                               progressed=lambda: len(ledger_rows(run_dir,
                                                                  "select 1 from orders")))
        clob.faults.clear()
        problems, rc = await _final_run(child, market,
                                        lambda: pm_findings(run_dir, clob, token), run_dir)
    finally:
        child.kill()
        market.closed = True
        srv.stop()
    orders = ledger_rows(run_dir, "select status, count(*) n from orders group by status")
    summary = _report("polymarket", log, {
        "ledger orders": {r["status"]: r["n"] for r in orders},
        "venue orders": len(clob.orders), "venue trades": len(clob.trades),
        "order posts": len(clob.attempts) + clob.dropped, "books pushed": market.pushed,
        "maker fills": market.maker_fills,
        "pending orders left by a kill": pending_note(pending)})
    result = Kill9Result(log, problems, numbering, refused_ids(run_dir), rc,
                         ledger_rows(run_dir, "select status from runs")[0]["status"],
                         integrity(run_dir), "", summary, child.output())
    # The oracle is not blind (as for Kraken): an order acted on twice, a venue order no
    # row knows, a trade of ours the ledger lacks.
    vid = next(iter(clob.orders))
    clob.accepted[vid] += 1
    clob.orders["0xstray"] = dict(clob.orders[vid], metadata="0x00")
    trade = next(t for t in clob.trades if t["owner"] == clob.api_key)
    clob.trades.append(dict(trade, id="trade-extra"))
    result.oracle = " ".join(pm_findings(run_dir, clob, token))
    return result


async def test_kill9_polymarket_live(tmp_path: Path) -> None:
    result = await _pm_kill9(tmp_path)
    assert_ledger_matches_exchange(result)
    assert_numbering_continues(result)
