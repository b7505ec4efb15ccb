"""The live half of the ``pm_maker`` campaign (helper of ``test_maker_campaign_live.py``).

Per seed: the real core ``Runner`` in live mode with ``pm_maker`` on one token, the real
Polymarket venue client, and the venue plugin's local exchange (``SnapshotServer`` +
``LocalClob``: Gamma, CLOB REST, the market and user websockets on 127.0.0.1) behind the
testkit's fault proxies: :class:`~argus_testkit.fault_proxy.FaultProxy` on the CLOB's
private endpoints (lost / late / truncated answers after acting, 5xx, 429s, resets) and a
:class:`~argus_testkit.ws_fault_proxy.WsFaultProxy` on each socket (duplicates,
disconnects).  A random sequence of steps: the touch moves, spreads widen and narrow,
adverse flow, one side of the book emptied, another account trading through our resting
quotes (in part or in full), a fill racing a cancel, a fill whose report arrives only after
the cancel's answer (its user-channel events dropped), explicit drops of the market and
user sockets, a person's kill (and maybe resume) written to the ledger as ``argus kill``
does, and a restart of the run on its directory.  Then the faults stop, the books are
refreshed until the ledger and the exchange agree, the run stops, and
:func:`check_live` holds the invariants.

A sampler watches the exchange every 20 ms for more than one live quote per side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import attrs
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import FaultPlan
from argus_testkit.ws_fault_proxy import WsFaultProxy
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.testing import HARDHAT_KEY, LocalClob, make_book
from live_snapshot import snapshot_books, snapshot_events

from argus_core import open_read_only
from argus_core.config import parse_config
from argus_core.control import request_trading_state
from argus_core.ledger import LEDGER_FILE, Ledger
from argus_core.runner import Runner

D = Decimal
API_KEY, API_PASSPHRASE = "maker-campaign-key-1", "maker-campaign-pass"
API_SECRET = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="
FED = "481717"
TIMEOUT_S = 0.25
STARTING_CASH = D("1000")
SECRETS = {"PM_LIVE_KEY": HARDHAT_KEY, "PM_LIVE_API_KEY": API_KEY,
           "PM_LIVE_API_SECRET": API_SECRET, "PM_LIVE_API_PASSPHRASE": API_PASSPHRASE}


def make_plan(seed: int) -> FaultPlan:
    """The proxies' faults of ``seed``: private CLOB requests and both sockets' frames."""
    return FaultPlan(seed, http_rate=0.2, ws_rate=0.05,
                     eligible=lambda key: key.startswith(("POST /order", "DELETE /order",
                                                          "GET /data")))


class CheckedClob(LocalClob):
    """The local CLOB, checking as it acts on each order that the run's ledger already
    holds it (the engine writes an order durably before it sends it)."""

    run_dir: Path | None = None
    unwritten: list[str]

    def _post_one(self, item: Any) -> dict[str, Any]:
        if self.run_dir is not None:
            meta = item["order"]["metadata"]
            if not any(client_order_metadata(c) == meta for c in _ledger_coids(self.run_dir)):
                self.unwritten.append(meta)
        return super()._post_one(item)


def _ledger_coids(run_dir: Path) -> list[str]:
    """Client order ids committed to the ledger (a read-only connection of its own)."""
    conn = open_read_only(run_dir / LEDGER_FILE)
    try:
        return [row[0] for row in conn.execute("select client_order_id from orders")]
    finally:
        conn.close()


@attrs.define
class LiveWorld:
    """One seed's exchange, proxies, run and what was seen."""

    seed: int
    plan: FaultPlan
    rng: random.Random
    srv: SnapshotServer
    clob: CheckedClob
    token: str
    condition: str
    rest: FaultProxy
    market_ws: WsFaultProxy
    user_ws: WsFaultProxy
    run_dir: Path
    settings: dict[str, Any]
    runner: Runner | None = None
    task: asyncio.Task[Any] | None = None
    bid: int = 60  # the others' best bid in ticks
    spread: int = 6
    sizes: tuple[int, int] = (150, 150)
    one_side: str = ""  # "bids" / "asks": that side emptied
    most_per_side: int = 0
    per_side_witness: str = ""
    doubles: list[float] = attrs.Factory(list)  # how long each spell of two lasted
    known: list[str] = attrs.Factory(list)  # known core gaps met (see check_live)
    killed: bool = False
    restarts: int = 0
    summaries: list[Any] = attrs.Factory(list)

    @property
    def iid(self) -> str:
        return f"polymarket:{self.token}"

    # -- the exchange ------------------------------------------------------------------
    def book(self, stamp_ms: int | None = None) -> dict[str, Any]:
        """The token's book now (others' levels), stamped now (or at ``stamp_ms``)."""
        bid, ask = self.bid, self.bid + self.spread
        bids = [] if self.one_side == "bids" else [
            (f"{D(bid) / 100:.2f}", str(self.sizes[0])), (f"{D(bid - 2) / 100:.2f}", "300")]
        asks = [] if self.one_side == "asks" else [
            (f"{D(ask) / 100:.2f}", str(self.sizes[1])), (f"{D(ask + 2) / 100:.2f}", "300")]
        return make_book(self.token, self.condition, bids, asks, tick="0.01", neg_risk=True,
                         last=f"{D(bid) / 100:.2f}",
                         timestamp=str(time.time_ns() // 10**6 if stamp_ms is None else stamp_ms))

    def push_book(self) -> None:
        """Serve and push the book (the CLOB matches against the same levels)."""
        fresh = self.srv.books[self.token] = self.book()
        with self.clob._lock:
            self.clob.bids[self.token] = {D(lv["price"]): D(lv["size"]) for lv in fresh["bids"]}
            self.clob.asks[self.token] = {D(lv["price"]): D(lv["size"]) for lv in fresh["asks"]}
        self.srv.push([dict(fresh, event_type="book")])

    def live_orders(self) -> list[tuple[str, dict[str, Any]]]:
        """Our orders the CLOB holds LIVE."""
        with self.clob._lock:
            return [(vid, dict(r)) for vid, r in self.clob.orders.items()
                    if r["status"] == "LIVE" and r["asset_id"] == self.token]

    async def sample(self) -> None:
        """Every 20 ms: how many of our quotes the CLOB holds live per side; each spell
        of two on a side is noted in the trace with how long it lasted."""
        loop = asyncio.get_running_loop()
        since: float | None = None
        while True:
            live = self.live_orders()
            most = max(Counter(r["side"] for _, r in live).values(), default=0)
            self.most_per_side = max(self.most_per_side, most)
            if most > 1 and since is None:
                since = loop.time()
                self.per_side_witness = str([(r["side"], r["price"], r["original_size"],
                                              r["size_matched"]) for _, r in live])
                self.plan.note(f"   two live on a side: {self.per_side_witness}")
            elif most <= 1 and since is not None:
                self.doubles.append(loop.time() - since)
                self.plan.note(f"   ... for {self.doubles[-1]:.2f}s")
                since = None
            await asyncio.sleep(0.02)

    # -- the run -----------------------------------------------------------------------
    def config(self) -> Any:
        return parse_config({
            "argus": {"plugins": ["polymarket", "pmscanners"], "mode": "live"},
            "run": {"venue": "polymarket", "strategies": ["pm_maker"], "risk_checks": [],
                    "starting_cash": str(STARTING_CASH)},
            "plugins": {
                "polymarket": {
                    "gamma_url": self.srv.url, "clob_url": self.rest.url,
                    "ws_url": self.market_ws.url + "/ws/market",
                    "user_ws_url": self.user_ws.url + "/ws/user",
                    "private_key": "$env:PM_LIVE_KEY", "api_key": "$env:PM_LIVE_API_KEY",
                    "api_secret": "$env:PM_LIVE_API_SECRET",
                    "api_passphrase": "$env:PM_LIVE_API_PASSPHRASE",
                    "settlement_poll_s": 0, "trades_poll_s": 0.05,
                    "heartbeat_interval_s": 0.1, "request_timeout_s": TIMEOUT_S,
                    "order_settle_s": 0.15, "order_lookup_interval_s": 0.03,
                    "order_give_up_s": 0.5, "reconnect_min_s": 0.02, "reconnect_max_s": 0.1},
                "pmscanners": {"pm_maker": {"tokens": [self.token], **self.settings}}}},
            self.run_dir.parent / "live.toml")

    def start(self) -> None:
        self.runner = Runner(self.config(), self.run_dir, live_confirmed=True)
        strategy = self.strategy()
        plain = strategy.on_event
        plan = self.plan

        def on_event(event: Any, ctx: Any) -> Any:
            """The strategy's actions into the trace, with the position it saw."""
            out = plain(event, ctx)
            for x in out or ():
                plan.note(f"   pm_maker on {type(event).__name__} @{ctx.ts_ns // 10**6 % 10**5}"
                          f" (held {ctx.portfolio.position(self.iid).quantity}, "
                          f"{ctx.trading_state}): {type(x).__name__} {x.side} "
                          f"{getattr(x, 'quantity', '')} @ {getattr(x, 'limit_price', '')}"
                          f" {x.reason[9:60]}")
            return out
        strategy.on_event = on_event
        self.task = asyncio.create_task(self.runner.run())

    def alive(self) -> None:
        """The run never dies on a fault."""
        assert self.task is not None
        if self.task.done():
            exc = self.task.exception()
            raise AssertionError(f"the live run ended early: {exc!r}") from exc

    async def stop(self) -> None:
        """Stop the run at its next event (pushed until it ends)."""
        runner, task = self.runner, self.task
        assert runner is not None and task is not None
        self.alive()
        runner.max_events = runner.seq + 1
        deadline = asyncio.get_running_loop().time() + 15
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            self.push_book()
            await asyncio.wait([task], timeout=0.2)
        assert task.done(), "the run did not stop"
        self.plan.note(f"   (stopped in {asyncio.get_running_loop().time() - deadline + 15:.1f} s)")
        self.summaries.append(task.result())

    def strategy(self) -> Any:
        assert self.runner is not None
        return self.runner.asm.strategies["pm_maker"]


# -- the steps -------------------------------------------------------------------------

def _our_vids(w: LiveWorld) -> list[str]:
    return [vid for vid, _ in w.live_orders()]


def _fill(w: LiveWorld, vid: str, how: str) -> None:
    with w.clob._lock:
        r = w.clob.orders[vid]
        left = D(r["original_size"]) - D(r["size_matched"])
    qty = left if how == "full" or left <= 1 else D(w.rng.randint(1, int(left) - 1))
    w.plan.note(f"   fill {qty} of {r['side']} {r['price']} ({vid[:10]}, {how})")
    w.clob.fill_resting(vid, qty)


async def step(w: LiveWorld, n: int) -> None:
    """One random step, then a little time for the run to act."""
    rng = w.rng
    kind = rng.choices(
        ["move", "widen", "narrow", "adverse", "fill", "fill_race_cancel",
         "fill_after_cancel", "empty", "drop_market", "drop_user", "kill", "restart"],
        [4, 1, 1, 1.5, 4, 1.5, 1.5, 0.7, 0.8, 0.8, 0.6, 0.8])[0]
    if kind == "kill" and w.killed:
        kind = "resume"
    if kind == "restart" and w.restarts:
        kind = "move"  # one restart a seed: a start-up's reconciliation under faults is slow
    w.plan.note(f"step {n}: {kind}")
    if kind == "move":
        w.bid = min(max(w.bid + rng.choice([-2, -1, 1, 2]), 10), 80)
        w.one_side = ""
    elif kind == "widen":
        w.spread = min(w.spread + rng.randint(1, 2), 10)
    elif kind == "narrow":
        w.spread = max(w.spread - rng.randint(1, 2), 2)
    elif kind == "adverse":
        w.sizes = (40, 450) if rng.random() < 0.5 else (450, 40)
    elif kind == "fill":
        vids = _our_vids(w)
        if vids:
            _fill(w, rng.choice(vids), rng.choice(["part", "full"]))
    elif kind in ("fill_race_cancel", "fill_after_cancel"):
        vids = _our_vids(w)
        if vids:
            target = rng.choice(vids)
            race = kind == "fill_race_cancel"

            def fill_first(key: str) -> None:
                if key == "DELETE /order":
                    w.rest.before_forward = None
                    with w.clob._lock:
                        live = w.clob.orders[target]["status"] == "LIVE"
                    if live:
                        if not race:  # its report only by the trades poll, after the answer
                            w.clob.user_faults.extend(["drop", "drop"])
                        _fill(w, target, "full" if race else "part")
            w.rest.before_forward = fill_first
            # the touch moves away: the quote is requoted (cancelled, then posted)
            w.bid += rng.choice([-2, 2])
            w.bid = min(max(w.bid, 10), 80)
    elif kind == "empty":
        w.one_side = rng.choice(["bids", "asks"])
    elif kind == "drop_market":
        for conn in list(w.srv._ws_conns):  # (a thread: the close handshake needs this loop)
            await asyncio.to_thread(conn.close)
    elif kind == "drop_user":
        w.clob.drop_user_sockets()
    elif kind in ("kill", "resume"):
        with Ledger.in_dir(w.run_dir) as ledger:  # as `argus kill` / `argus resume` does
            request_trading_state(ledger, kind, "maker campaign", "campaign")
        w.killed = kind == "kill"
    elif kind == "restart":
        await w.stop()
        w.restarts += 1
        w.start()
    w.push_book()
    for _ in range(rng.randint(3, 8)):
        await asyncio.sleep(0.05)
        w.alive()
    if rng.random() < 0.5:
        w.push_book()  # a later frame: the strategy sees fills between two events
        await asyncio.sleep(0.1)
    w.rest.before_forward = None


# -- settling and the invariants ----------------------------------------------------------

def _ledger(w: LiveWorld, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` as committed (a read-only connection: the run may be over)."""
    conn = open_read_only(w.run_dir / LEDGER_FILE)
    try:
        cursor = conn.execute(sql)
        try:
            names = [d[0] for d in cursor.getdescription()]
        except apsw.ExecutionCompleteError:
            return []  # no rows
        return [dict(zip(names, row, strict=True)) for row in cursor]
    finally:
        conn.close()


def _ours(w: LiveWorld) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The CLOB's orders per ledger client order id (by the signed metadata)."""
    coids = [o["client_order_id"] for o in _ledger(w, "select client_order_id from orders")]
    with w.clob._lock:
        by_meta = {}
        for vid, r in w.clob.orders.items():
            by_meta.setdefault(r["metadata"], []).append((vid, dict(r)))
    return {c: by_meta.get(client_order_metadata(c), []) for c in coids}


def settled(w: LiveWorld) -> bool:
    """The ledger agrees with the CLOB: nothing pending, each order's status and filled
    quantity as the exchange has them."""
    orders = {o["client_order_id"]: o for o in _ledger(w, "select * from orders")}
    for coid, held in _ours(w).items():
        o = orders[coid]
        if o["status"] == "pending":
            return False
        if len(held) != 1:
            continue  # never reached the exchange (or acted on twice: check_live says)
        _vid, r = held[0]
        is_open = o["status"] in ("open", "partially_filled")
        if is_open != (r["status"] == "LIVE") or D(o["filled_quantity"]) != D(r["size_matched"]):
            return False
    return True


async def settle(w: LiveWorld) -> None:
    """Faults off; books pushed until the ledger and the exchange agree (or 10 s)."""
    w.plan.quiet = True
    w.plan.note("-- faults off")
    w.clob.faults.clear()
    w.clob.user_faults.clear()
    w.one_side = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    quiet_since = None
    while loop.time() < deadline:
        w.alive()
        w.push_book()
        await asyncio.sleep(0.15)
        if settled(w):
            quiet_since = quiet_since or loop.time()
            if loop.time() - quiet_since > 0.5:  # and stays so (no post in flight)
                return
        else:
            quiet_since = None
    w.plan.note("-- not settled after 10 s: " + "; ".join(
        f"{o['client_order_id']} {o['status']} {o['filled_quantity']}"
        for o in _ledger(w, "select * from orders where status in "
                            "('pending', 'open', 'partially_filled')")))


def clob_legs(w: LiveWorld) -> dict[str, tuple[D, D, D]]:
    """Our legs of the CLOB's trades per order hash: (signed shares, cash, count)."""
    schedule = w.runner.asm.venue.fee_schedule(w.iid) if w.runner else None
    assert schedule is not None
    out: dict[str, tuple[D, D, D]] = {}
    with w.clob._lock:
        for t in w.clob.trades:
            legs = []
            if t["trader_side"] == "TAKER" and t["owner"] == API_KEY:
                legs.append((t["taker_order_id"], t["side"], D(t["size"]), D(t["price"]), False))
            legs += [(m["order_id"], m["side"], D(m["matched_amount"]), D(m["price"]), True)
                     for m in t["maker_orders"] if m["owner"] == API_KEY]
            for vid, side, qty, price, maker in legs:
                sign = 1 if side == "BUY" else -1
                q0, c0, k0 = out.get(vid, (D(0), D(0), D(0)))
                out[vid] = (q0 + sign * qty,
                            c0 - sign * qty * price - schedule.fee(price, qty, maker=maker),
                            k0 + 1)
    return out


def check_live(w: LiveWorld) -> None:
    """Every live invariant of one seed (AssertionError naming the first broken one)."""
    s = w.settings
    assert not w.clob.unwritten, f"the CLOB acted on orders the ledger did not hold: " \
        f"{w.clob.unwritten}"
    assert w.clob.bad_signatures == [] and w.clob.auth_failures == []
    ours = _ours(w)
    known = {client_order_metadata(c) for c in ours}
    with w.clob._lock:
        strangers = [vid for vid, r in w.clob.orders.items() if r["metadata"] not in known]
        twice = {vid: n for vid, n in w.clob.accepted.items() if n != 1}
    assert not strangers, f"CLOB orders with no ledger order: {strangers}"
    assert not twice, f"orders acted on more than once: {twice}"
    placed_twice = {c: [v for v, _ in held] for c, held in ours.items() if len(held) > 1}
    assert not placed_twice, f"one intent placed twice: {placed_twice}"
    orders = {o["client_order_id"]: o for o in _ledger(w, "select * from orders")}
    fills = _ledger(w, "select * from fills")
    legs = clob_legs(w)
    # every CLOB fill booked once, under its order
    booked: dict[str, tuple[D, D, D]] = {}
    for f in fills:
        vid = orders[f["client_order_id"]]["venue_order_id"]
        sign = 1 if f["side"] == "buy" else -1
        q0, c0, k0 = booked.get(vid, (D(0), D(0), D(0)))
        booked[vid] = (q0 + sign * D(f["quantity"]),
                       c0 - sign * D(f["quantity"]) * D(f["price"]) - D(f["fee"]), k0 + 1)
        assert f["liquidity"] == "maker", f"a quote filled as taker: {f}"
        assert D(f["price"]) == D(orders[f["client_order_id"]]["limit_price"]), f
    assert booked == legs, f"ledger fills {booked} != the CLOB's legs {legs}"
    for coid, held in ours.items():
        o = orders[coid]
        if held:
            (vid, r), = held
            assert o["venue_order_id"] == vid, f"{coid}: ledger vid {o['venue_order_id']} != {vid}"
            assert D(o["filled_quantity"]) == D(r["size_matched"]), (o, r)
            assert (o["status"] in ("open", "partially_filled")) == (r["status"] == "LIVE"), \
                f"{coid}: ledger {o['status']} but the CLOB {r['status']}"
        else:
            assert o["status"] in ("rejected", "cancelled", "expired", "failed"), \
                f"{coid} never reached the CLOB yet is {o['status']}"
    # the account is the CLOB's
    position = sum((q for q, _, _ in legs.values()), D(0))
    cash = STARTING_CASH + sum((c for _, c, _ in legs.values()), D(0))
    pos_rows = {p["instrument_id"]: D(p["quantity"])
                for p in _ledger(w, "select * from positions")}
    assert pos_rows.get(w.iid, D(0)) == position, f"ledger {pos_rows} != CLOB {position}"
    assert w.runner is not None
    assert w.runner.account.cash == cash, f"cash {w.runner.account.cash} != CLOB's {cash}"
    # at most one quote per side at the CLOB at any time; inventory within its limit
    biggest = max((D(f["quantity"]) for f in fills), default=D(0))
    limit = D(s["max_inventory"])
    assert position <= limit + biggest, f"inventory {position} beyond {limit} + one fill"
    floor = -(limit + biggest) if s["allow_short"] else D(0)
    assert position >= floor, f"inventory {position} below {floor}"
    # no orphans: what is live at the end is what the strategy believes it quotes (one
    # per side); after a kill, only exits.  Three core gaps are known (strict xfails in
    # test_maker_campaign_regressions.py) and noted, not failed: an order whose cancel
    # failed stays live, never asked again (``cancel_failed``); a requoted reduce-only
    # exit is vetoed or shrunk (below the minimum: refused) while the exit it replaces
    # still counts as working, so the strategy believes an exit that is not there; a
    # post that ended without the strategy asking (never placed after an ambiguous
    # answer, refused by the venue, not sent) stays believed, as the strategy cannot see
    # orders -- only when the ledger's last order of that side at that price says so.
    vid_coid = {o["venue_order_id"]: c for c, o in orders.items()}
    failed = {r["reason"].split()[3] for r in _ledger(
        w, "select reason from risk_events where action = 'cancel_failed'")}
    exit_lost = bool(_ledger(w, "select 1 from risk_events where check_name = 'reduce_only' "
                                "and action = 'veto'")) or any(
        o["status"] == "rejected" and o["reduce_only"] for o in orders.values())
    live_orders = w.live_orders()
    known_orphans = [(vid, r) for vid, r in live_orders if vid_coid.get(vid) in failed]
    live = sorted((r["side"], D(r["price"])) for vid, r in live_orders
                  if (vid, r) not in known_orphans)
    st = w.strategy().books.get(w.iid)
    believed = [] if st is None else sorted(
        ("BUY" if label == "bid" else "SELL", q.price)
        for label in ("bid", "ask") if (q := st.quote(label)) is not None)
    phantoms = [q for q in believed if q not in live]
    for vid, r in known_orphans:
        w.known.append(f"orphan after a failed cancel: {r['side']} {r['price']} ({vid[:10]})")
    for q in phantoms:
        why = ended_unseen(orders.values(), *q)
        if why:
            w.known.append(f"believed, not live (its order ended unseen: {why}): {q}")
            believed.remove(q)
    phantoms = [q for q in believed if q not in live]
    if phantoms and exit_lost:
        w.known.append(f"believed, not live (a requoted exit vetoed/refused): {phantoms}")
        believed = [q for q in believed if q not in phantoms]
    assert live == believed, f"live at the CLOB {live}, the strategy believes {believed}"
    per_side = Counter(side for side, _ in live)
    assert max(per_side.values(), default=0) <= 1, f"two live quotes on a side: {live}"
    if w.killed:
        for side, _px in live:
            grows = (side == "BUY" and position >= 0) or (side == "SELL" and position <= 0)
            assert not grows, f"killed, yet a quote that grows the position is live: {live}"


def ended_unseen(orders: Iterable[dict[str, Any]], side: str, price: D) -> str:
    """Why the ledger's last order on ``side`` (``"BUY"`` / ``"SELL"``) at ``price`` ended
    without the strategy asking and without the venue reporting a cancel (rejected, or
    cancelled as never placed / not sent); "" when it did not (or there is none)."""
    mine = [o for o in orders
            if o["side"] == side.lower() and D(o["limit_price"]) == price]
    if not mine:
        return ""
    last = max(mine, key=lambda o: (o["ts_ns"], [int(p) for p in
                                                 o["client_order_id"].split("-")[1::2]]))
    reason = last["status_reason"] or ""
    if last["status"] == "rejected" or (
            last["status"] == "cancelled" and reason.startswith(("never placed", "not sent"))):
        return f"{last['client_order_id']} {last['status']}: {reason[:80]}"
    return ""


def dump(w: LiveWorld) -> None:
    """The ledger's orders beside the CLOB's, into the trace (a failing seed shows them)."""
    ours = _ours(w)
    for o in _ledger(w, "select * from orders order by ts_ns, client_order_id"):
        held = [(vid[:10], r["status"], r["size_matched"]) for vid, r in
                ours.get(o["client_order_id"], [])]
        w.plan.note(f"   ledger {o['client_order_id']} {o['side']} {o['quantity']} @ "
                    f"{o['limit_price']} {o['status']} filled {o['filled_quantity']} "
                    f"ro={o['reduce_only']} ({(o['status_reason'] or '')[:400]}) clob {held}")


@contextlib.contextmanager
def exchange(seed: int) -> Iterator[tuple[SnapshotServer, CheckedClob, str, str]]:
    """The example snapshot's Fed "no change" token, at a random wide book."""
    events, books = snapshot_events(), snapshot_books()  # end dates a month from now
    market = next(e for e in events if e["id"] == FED)["markets"][2]
    token = json.loads(market["clobTokenIds"])[0]
    books = [b for b in books if b["asset_id"] != token] + [make_book(
        token, market["conditionId"], [("0.60", "150")], [("0.66", "150")], tick="0.01",
        neg_risk=True, last="0.63", timestamp=str(time.time_ns() // 10**6))]
    clob = CheckedClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                       api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    clob.unwritten = []
    srv = SnapshotServer(events, books, ws_port=0, clob=clob).start()
    try:
        yield srv, clob, token, market["conditionId"]
    finally:
        srv.stop()


@contextlib.asynccontextmanager
async def world(plan: FaultPlan, tmp: Path, settings: dict[str, Any], *, bid: int = 60,
                spread: int = 6) -> AsyncIterator[LiveWorld]:
    """A started live run on the local exchange behind the proxies (and the sampler);
    torn down on exit."""
    with exchange(plan.seed) as (srv, clob, token, condition):
        upstream_ws = srv.ws_url.removesuffix("/ws/market")
        async with FaultProxy(srv.url, plan, late_s=TIMEOUT_S + 0.1) as rest, \
                WsFaultProxy(upstream_ws, plan, name="market") as mws, \
                WsFaultProxy(upstream_ws, plan, name="user") as uws:
            run_dir = tmp / f"seed{plan.seed}" / "run"
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            clob.run_dir = run_dir
            w = LiveWorld(plan.seed, plan, random.Random(plan.seed), srv, clob, token,
                          condition, rest, mws, uws, run_dir, settings, bid=bid,
                          spread=spread)
            sampler = asyncio.create_task(w.sample())
            try:
                w.start()
                w.push_book()
                await asyncio.sleep(0.3)
                yield w
            finally:
                sampler.cancel()
                if w.task is not None and not w.task.done():
                    w.task.cancel()
                    with contextlib.suppress(BaseException):
                        await w.task
                if w.runner is not None:
                    with contextlib.suppress(Exception):
                        w.runner.close()


async def live_seed(plan: FaultPlan, tmp: Path, steps: int = 10) -> LiveWorld:
    """One live seed: the steps under faults, settle, stop, the invariants."""
    rng = random.Random(plan.seed)
    settings = {"min_requote_s": rng.choice([0.0, 0.1, 0.3]),
                "max_inventory": rng.choice(["10", "15"]),
                "allow_short": rng.random() < 0.4, "cancel_ofi": rng.choice([0.6, 1.0])}
    plan.note(f"seed {plan.seed}: pm_maker {settings}")
    async with world(plan, tmp, settings, bid=rng.randint(30, 70),
                     spread=rng.randint(4, 8)) as w:
        w.rng = rng
        for n in range(1, steps + 1):
            await step(w, n)
        await settle(w)
        await w.stop()
        try:
            check_live(w)
        except AssertionError:
            dump(w)
            raise
    return w
