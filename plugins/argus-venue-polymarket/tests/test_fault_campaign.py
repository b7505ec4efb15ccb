"""Seeded random fault campaign against Polymarket's order path (exactly-once).

Per seed: the local CLOB (signed posts, matching, ``GET /data/*``, heartbeats, the
websocket user channel) behind a fault proxy (:mod:`argus_testkit.fault_proxy`,
:mod:`argus_testkit.ws_fault_proxy`) that draws, per private request, a pass, a lost /
late / truncated answer after the CLOB acted, a 5xx (JSON or HTML) or 429 (with or without
Retry-After) or a reset before it acted, and per user-channel frame a pass, a duplicate
or a disconnect.  A random sequence goes through the core's ExecutionEngine on a real
ledger: FOK and IOC (FAK) orders, market orders, GTC and GTD orders that fill in part and
rest, maker fills of resting orders, cancels, a fill while a cancel is in flight, and
restarts of the venue object resuming from the ledger.  Then the faults stop, the venue
restarts once more and :func:`argus_testkit.order_path.check_invariants` holds: each
intent acted on at most once by the CLOB (``LocalClob.accepted`` per signed order, found
by the order's signed ``metadata``), every match booked once (summed per order: the post
answer's ``<hash>:0`` and the trades' ``<trade>:<hash>`` never both), position and cash
equal to the CLOB's trades, no order pending or out of step with the CLOB, no key in the
logs, no crash.  A failing seed is shrunk and reported with its seed and minimal trace.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest
from argus_testkit.campaign import run_campaign, started
from argus_testkit.engine import EngineHarness
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import FaultPlan, HttpFault, WsFault
from argus_testkit.order_path import (
    ExchangeOrder,
    ExchangeTruth,
    LogCapture,
    cancel_slot,
    check_invariants,
    route,
    settled,
    until,
    working,
)
from argus_testkit.ws_fault_proxy import WsFaultProxy
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.testing import HARDHAT_KEY, LocalClob, make_book
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.models import Instrument, Side, TimeInForce
from argus_core.secrets import Secret

TOKEN = "1234"
IID = f"polymarket:{TOKEN}"
API_KEY = "campaign-api-key-5c1d9e"
API_PASSPHRASE = "campaign-passphrase-7f3e2a"
API_SECRET = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="
META = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
INSTRUMENT = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01",
                        lot_size="0.01", min_size="5", meta=META)
FAST_SEEDS = range(10)
SLOW_SEEDS = range(10, 150)
STEPS = 8
TIMEOUT_S = 0.25


def fresh_book(clob: LocalClob) -> None:
    """Asks 40 @ 0.64 and 100 @ 0.66, bids 30 @ 0.60 and 100 @ 0.58."""
    with clob._lock:
        clob.asks[TOKEN] = {D("0.64"): D(40), D("0.66"): D(100)}
        clob.bids[TOKEN] = {D("0.60"): D(30), D("0.58"): D(100)}


def fill_key(fill_id: str) -> str:
    """The order hash a ledger fill id names (``<hash>:0`` or ``<trade>:<hash>``)."""
    return fill_id[:-2] if fill_id.endswith(":0") else fill_id.rpartition(":")[2]


def truth(clob: LocalClob, venue: PolymarketVenue, coids: list[str]) -> ExchangeTruth:
    """The CLOB's own record: the orders it acted on per signed ``metadata`` (each as often
    as it acted on it), our legs of its trades summed per order hash."""
    schedule = venue.fee_schedule(IID)
    with clob._lock:
        orders = {}
        for coid in coids:
            meta = client_order_metadata(coid)
            orders[coid] = [ExchangeOrder(vid, r["status"] == "LIVE", D(r["size_matched"]))
                            for vid, r in clob.orders.items() if r["metadata"] == meta
                            for _ in range(clob.accepted[vid])]
        fills: dict[str, tuple[D, D]] = {}
        for t in clob.trades:
            if t["status"] == "FAILED":
                continue
            legs = []
            if t["trader_side"] == "TAKER" and t["owner"] == API_KEY:
                legs.append((t["taker_order_id"], t["side"], D(t["size"]), D(t["price"]),
                             False))
            legs += [(m["order_id"], m["side"], D(m["matched_amount"]), D(m["price"]), True)
                     for m in t["maker_orders"] if m["owner"] == API_KEY]
            for vid, side, qty, price, maker in legs:
                sign = 1 if side == "BUY" else -1
                q0, c0 = fills.get(vid, (D(0), D(0)))
                fills[vid] = (q0 + sign * qty,
                              c0 - sign * qty * price - schedule.fee(price, qty, maker=maker))
    return ExchangeTruth(orders, fills, IID, fill_key)


@attrs.define
class PolymarketCampaign:
    """One seed's world."""

    plan: FaultPlan
    server: SnapshotServer
    clob: LocalClob
    rest: FaultProxy
    ws: WsFaultProxy
    run_dir: Path
    harness: EngineHarness | None = None
    coids: list[str] = attrs.Factory(list)
    restarts: int = 0

    def settings(self) -> PolymarketSettings:
        return PolymarketSettings(
            clob_url=self.rest.url, private_key=Secret("$env:PM_TEST_KEY"),
            api_key=Secret("$env:PM_K"), api_secret=Secret("$env:PM_S"),
            api_passphrase=Secret("$env:PM_P"), user_ws_url=self.ws.url + "/ws/user",
            request_timeout_s=TIMEOUT_S, order_settle_s=0.15, order_lookup_interval_s=0.03,
            trades_poll_s=0.05, heartbeat_interval_s=0.1, order_give_up_s=0.5,
            reconnect_min_s=0.005, reconnect_max_s=0.02)

    def venue(self) -> PolymarketVenue:
        venue = PolymarketVenue(self.settings())
        venue._instruments[IID] = INSTRUMENT
        return venue

    async def start(self) -> EngineHarness:
        return await started(self, lambda: EngineHarness(self.run_dir, self.venue(),
                                                         INSTRUMENT, D("0.64")))

    async def restart(self) -> EngineHarness:
        assert self.harness is not None
        await self.harness.settle()
        await self.harness.close()
        self.restarts += 1
        self.plan.note(f"-- restart {self.restarts}")
        return await self.start()


def make_plan(seed: int) -> FaultPlan:
    return FaultPlan(seed, http_rate=0.25, ws_rate=0.08,
                     eligible=lambda key: key.startswith(("POST", "DELETE", "GET /data",
                                                          "ws")))


async def step(c: PolymarketCampaign, rng: random.Random, n: int) -> None:
    """One random action of the sequence."""
    h = c.harness
    assert h is not None
    slot = f"s{n}"
    kind = rng.choice(["market", "ioc", "fok", "gtc_partial", "gtc_rest", "gtd_rest",
                       "maker_fill", "cancel", "fill_during_cancel", "restart"])
    side = rng.choice([Side.BUY, Side.SELL])
    buy = side is Side.BUY
    fresh_book(c.clob)
    coid: str | None = None
    if kind == "market":
        coid = route(h, n, slot, side, D(rng.choice([10, 60])),
                     limit=None, tif=rng.choice([TimeInForce.IOC, TimeInForce.FOK]))
    elif kind == "ioc":
        coid = route(h, n, slot, side, D(50), limit=D("0.64") if buy else D("0.60"))
    elif kind == "fok":
        coid = route(h, n, slot, side, D(rng.choice([20, 200])),
                     limit=D("0.66") if buy else D("0.58"), tif=TimeInForce.FOK)
    elif kind == "gtc_partial":
        coid = route(h, n, slot, side, D(50), limit=D("0.64") if buy else D("0.60"),
                     tif=TimeInForce.GTC)
    elif kind in ("gtc_rest", "gtd_rest"):
        coid = route(h, n, slot, side, D(10), limit=D("0.50") if buy else D("0.75"),
                     tif=TimeInForce.GTC if kind == "gtc_rest" else TimeInForce.GTD)
    elif kind == "maker_fill":
        with c.clob._lock:
            live = [(vid, D(r["original_size"]) - D(r["size_matched"]))
                    for vid, r in c.clob.orders.items() if r["status"] == "LIVE"]
        if live:
            vid, left = rng.choice(live)
            qty = left if rng.random() < 0.5 else (left / 2).quantize(D("0.01"))
            c.plan.note(f"maker fill {qty} of {vid[:12]}")
            c.clob.fill_resting(vid, qty)
    elif kind in ("cancel", "fill_during_cancel"):
        live_orders = working(h)
        if live_orders:
            target, target_slot = rng.choice(live_orders)
            meta = client_order_metadata(target)
            if kind == "fill_during_cancel":
                def fill_first(key: str, meta: str = meta) -> None:
                    if key == "DELETE /order":
                        c.rest.before_forward = None
                        for vid, r in list(c.clob.orders.items()):
                            if r["metadata"] == meta and r["status"] == "LIVE":
                                c.clob.fill_resting(vid, D(r["original_size"])
                                                    - D(r["size_matched"]))
                c.rest.before_forward = fill_first
            c.plan.note(f"{kind} {target}")
            cancel_slot(h, target_slot)
    elif kind == "restart":
        await c.restart()
    if coid is not None:
        c.coids.append(coid)
        c.plan.note(f"{kind} {side.value} -> {coid}")
    await (c.harness or h).settle()
    c.rest.before_forward = None


async def scenario(plan: FaultPlan) -> None:
    """One seed: the sequence under faults, a quiet restart, the invariants."""
    rng = random.Random(plan.seed)
    books = [make_book(TOKEN, "0xcond-a", [("0.60", "30")], [("0.64", "40")])]
    clob = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                     api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    server = SnapshotServer([], books, clob=clob, ws_port=0).start()
    upstream_ws = server.ws_url.removesuffix("/ws/market")
    with LogCapture() as logs, tempfile.TemporaryDirectory() as tmp:
        try:
            async with FaultProxy(server.url, plan, late_s=TIMEOUT_S + 0.1) as rest, \
                    WsFaultProxy(upstream_ws, plan, name="user") as wsp:
                c = PolymarketCampaign(plan, server, clob, rest, wsp, Path(tmp) / "run")
                try:
                    await c.start()
                    for n in range(1, STEPS + 1):
                        await step(c, rng, n)
                    plan.quiet = True
                    plan.note("-- faults off")
                    h = await c.restart()
                    venue = h.venue
                    assert isinstance(venue, PolymarketVenue)
                    # returns once settled; 10 s is the margin of a loaded box (one seed failed
                    # 'fills not booked' at 3 s while four test runs shared two cores)
                    await until(lambda: settled(h, truth(clob, venue, c.coids)), timeout=10.0)
                    check_invariants(h, truth(clob, venue, c.coids),
                                     secrets=(API_SECRET, API_PASSPHRASE, API_KEY,
                                              HARDHAT_KEY, HARDHAT_KEY[2:]),
                                     log_lines=logs.lines)
                    assert h.consumer is not None and not h.consumer.done(), \
                        "the executions consumer stopped"
                finally:
                    if c.harness is not None:
                        with contextlib.suppress(Exception):
                            await c.harness.close()
        finally:
            server.stop()


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


async def test_fault_campaign_fast_seeds() -> None:
    plans: list[FaultPlan] = []

    def plan_of(seed: int) -> FaultPlan:
        plans.append(make_plan(seed))
        return plans[-1]

    await run_campaign(scenario, FAST_SEEDS, plan_of)
    drawn = {f for p in plans for f in p.drawn.values()}
    print("faults drawn:", sorted(f.value for f in drawn))
    # The seeds exercise the fault classes, not only passes: (almost) every kind is met.
    assert len(drawn & set(HttpFault)) >= 8 and set(WsFault) - {WsFault.PASS} <= drawn


@pytest.mark.slow
async def test_fault_campaign_many_seeds() -> None:
    await run_campaign(scenario, SLOW_SEEDS, make_plan)
