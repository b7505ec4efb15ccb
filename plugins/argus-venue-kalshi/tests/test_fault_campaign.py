"""Seeded random fault campaign against Kalshi's order path (exactly-once).

Per seed: the local Kalshi exchange (REST engine + websocket ``fill`` channel) behind a
fault proxy (:mod:`argus_testkit.fault_proxy`, :mod:`argus_testkit.ws_fault_proxy`) that
draws, per ``/portfolio`` request, a pass, a lost / late / truncated answer after Kalshi
acted, a 5xx (JSON or HTML) or 429 (with or without Retry-After) or a reset before it
acted, and per websocket frame a pass, a duplicate (a fill sent twice) or a disconnect.
A random sequence goes through the core's ExecutionEngine on a real ledger: IOC and FOK
limits (filled in part or not at all), market orders, GTC orders that fill in part and
rest, post-only orders (resting or cancelled by Kalshi as crossing), maker fills of
resting orders, cancels, a fill while a cancel is in flight, and restarts of the venue
object resuming from the ledger.  Then the faults stop, the venue restarts once more and
:func:`argus_testkit.order_path.check_invariants` holds: each intent at most one Kalshi
order (by client order id), every Kalshi fill booked once with Kalshi's fee, position and
cash equal to Kalshi's fills, no order pending or out of step with Kalshi, no key in the
logs, no crash.  A failing seed is shrunk and reported with its seed and minimal trace.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
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
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import LocalKalshi
from argus_venue_kalshi.venue import KalshiVenue
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from argus_core import Secret
from argus_core.models import Instrument, Side, TimeInForce

TICKER = "KXHIGHNY-24JAN01-T60"
IID = f"kalshi:{TICKER}/YES"
KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
MARKET = {"ticker": TICKER, "event_ticker": "KXHIGHNY-24JAN01",
          "title": "Will the high temp in NYC be >60° on Jan 1, 2024?",
          "yes_sub_title": "61° or above", "status": "active",
          "close_time": "2024-01-02T04:59:00Z", "tick_size": 1, "result": ""}
FAST_SEEDS = range(10)
SLOW_SEEDS = range(10, 150)
STEPS = 8
TIMEOUT_S = 0.25


def fresh_book(exchange: LocalKalshi) -> None:
    """YES bids 38/39/40, NO bids 55/57/58 (YES asks 42/43/45): some depth, never all."""
    for side, levels in (("yes", {38: 25, 39: 10, 40: 13}), ("no", {55: 30, 57: 8, 58: 20})):
        for cents in list(exchange.engine.books[TICKER][side]):
            if cents not in levels:
                exchange.engine.set_level(TICKER, side, cents, 0)
        for cents, qty in levels.items():
            exchange.engine.set_level(TICKER, side, cents, qty)


def truth(exchange: LocalKalshi, coids: list[str]) -> ExchangeTruth:
    """Kalshi's own record: its orders per client id, its fills with their fee_cost."""
    orders = {coid: [ExchangeOrder(o["order_id"], o["status"] == "resting",
                                   D(o["fill_count"]))
                     for o in exchange.engine.by_client_id(wire_client_id(coid))]
              for coid in coids}
    fills = {}
    for f in exchange.engine.fills:
        sign = 1 if f["action"] == "buy" else -1
        qty, price = D(f["count"]), D(f["yes_price_dollars"])
        fills[f["trade_id"]] = (sign * qty, -sign * qty * price - D(f.get("fee_cost") or 0))
    return ExchangeTruth(orders, fills, IID)


@attrs.define
class KalshiCampaign:
    """One seed's world."""

    plan: FaultPlan
    exchange: LocalKalshi
    rest: FaultProxy
    ws: WsFaultProxy
    run_dir: Path
    key_file: Path
    instrument: Instrument | None = None
    harness: EngineHarness | None = None
    coids: list[str] = attrs.Factory(list)
    restarts: int = 0

    def settings(self) -> KalshiSettings:
        return KalshiSettings(
            api_key_id=Secret("$env:KALSHI_TEST_KEY_ID"),
            private_key=Secret(f"$file:{self.key_file}"), markets=[TICKER],
            rest_url=self.rest.url, ws_url=self.ws.url + C.WS_PATH, request_timeout_s=TIMEOUT_S,
            poll_interval_s=0.02, reconnect_base_s=0.005, reconnect_max_s=0.02,
            max_retries=2, order_give_up_s=0.5)

    async def start(self) -> EngineHarness:
        if self.instrument is None:
            quiet, self.plan.quiet = self.plan.quiet, True
            venue = KalshiVenue(self.settings())
            try:
                (self.instrument,) = [i for i in await venue.instruments() if i.id == IID]
            finally:
                self.plan.quiet = quiet
                await venue.close()
        instrument = self.instrument
        return await started(self, lambda: EngineHarness(
            self.run_dir, KalshiVenue(self.settings()), instrument, D("0.42")))

    async def restart(self) -> EngineHarness:
        assert self.harness is not None
        await self.harness.settle()
        await self.harness.close()
        self.restarts += 1
        self.plan.note(f"-- restart {self.restarts}")
        return await self.start()


def make_plan(seed: int) -> FaultPlan:
    return FaultPlan(seed, http_rate=0.25, ws_rate=0.08,
                     eligible=lambda key: "/portfolio/" in key or key.startswith("ws"))


async def step(c: KalshiCampaign, rng: random.Random, n: int) -> None:
    """One random action of the sequence."""
    h = c.harness
    assert h is not None
    slot = f"s{n}"
    kind = rng.choice(["market", "ioc", "fok", "gtc_partial", "gtc_rest", "post_only",
                       "post_only_cross", "maker_fill", "cancel", "fill_during_cancel",
                       "restart"])
    side = rng.choice([Side.BUY, Side.SELL])
    buy = side is Side.BUY
    fresh_book(c.exchange)
    coid: str | None = None
    if kind == "market":
        coid = route(h, n, slot, side, D(rng.choice([5, 30])))
    elif kind == "ioc":
        coid = route(h, n, slot, side, D(30), limit=D("0.43") if buy else D("0.39"))
    elif kind == "fok":
        coid = route(h, n, slot, side, D(rng.choice([10, 60])),
                     limit=D("0.45") if buy else D("0.38"), tif=TimeInForce.FOK)
    elif kind == "gtc_partial":
        coid = route(h, n, slot, side, D(30), limit=D("0.42") if buy else D("0.40"),
                     tif=TimeInForce.GTC)
    elif kind == "gtc_rest":
        coid = route(h, n, slot, side, D(10), limit=D("0.30") if buy else D("0.50"),
                     tif=TimeInForce.GTC)
    elif kind in ("post_only", "post_only_cross"):
        price = (D("0.30") if buy else D("0.50")) if kind == "post_only" else \
            (D("0.42") if buy else D("0.40"))
        coid = route(h, n, slot, side, D(5), limit=price, tif=TimeInForce.POST_ONLY)
    elif kind == "maker_fill":
        resting = [o for o in c.exchange.engine.orders.values() if o["status"] == "resting"]
        if resting:
            order = rng.choice(resting)
            left = order["remaining_count"]
            qty = left if rng.random() < 0.5 or left < 2 else left // 2
            c.plan.note(f"maker fill {qty} of {order['order_id']}")
            c.exchange.engine.fill_resting(order["order_id"], qty)
    elif kind in ("cancel", "fill_during_cancel"):
        live = working(h)
        if live:
            target, target_slot = rng.choice(live)
            wire = wire_client_id(target)
            if kind == "fill_during_cancel":
                def fill_first(key: str, wire: str = wire) -> None:
                    if key.startswith("DELETE /trade-api/v2/portfolio/orders/") or \
                            key.startswith("DELETE /portfolio/orders/"):
                        c.rest.before_forward = None
                        for o in c.exchange.engine.by_client_id(wire):
                            if o["status"] == "resting":
                                c.exchange.engine.fill_resting(o["order_id"],
                                                               o["remaining_count"])
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


async def scenario(plan: FaultPlan, key: rsa.RSAPrivateKey) -> None:
    """One seed: the sequence under faults, a quiet restart, the invariants."""
    rng = random.Random(plan.seed)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with LogCapture() as logs, tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "kalshi.pem"
        key_file.write_bytes(pem)
        async with LocalKalshi(KEY_ID, key.public_key()) as exchange:
            exchange.add_market(dict(MARKET))
            fresh_book(exchange)
            async with FaultProxy(exchange.rest.url, plan, late_s=TIMEOUT_S + 0.1) as rest, \
                    WsFaultProxy(exchange.ws.url.removesuffix(C.WS_PATH), plan,
                                 name="fills") as wsp:
                c = KalshiCampaign(plan, exchange, rest, wsp, Path(tmp) / "run", key_file)
                try:
                    await c.start()
                    for n in range(1, STEPS + 1):
                        await step(c, rng, n)
                    plan.quiet = True
                    plan.note("-- faults off")
                    h = await c.restart()
                    # returns once settled; 10 s is the margin of a loaded box (one seed failed
                    # 'fills not booked' at 3 s while four test runs shared two cores)
                    await until(lambda: settled(h, truth(exchange, c.coids)), timeout=10.0)
                    secret_lines = [ln for ln in pem.decode().splitlines()
                                    if "PRIVATE KEY" not in ln]
                    check_invariants(h, truth(exchange, c.coids), secrets=secret_lines,
                                     log_lines=logs.lines)
                    assert h.consumer is not None and not h.consumer.done(), \
                        "the executions consumer stopped"
                finally:
                    if c.harness is not None:
                        with contextlib.suppress(Exception):
                            await c.harness.close()


@pytest.fixture(scope="module")
def campaign_key() -> rsa.RSAPrivateKey:
    """A throwaway RSA key for the campaign (never a real key)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def _key_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALSHI_TEST_KEY_ID", KEY_ID)


async def test_fault_campaign_fast_seeds(campaign_key) -> None:
    plans: list[FaultPlan] = []

    def plan_of(seed: int) -> FaultPlan:
        plans.append(make_plan(seed))
        return plans[-1]

    await run_campaign(lambda plan: scenario(plan, campaign_key), FAST_SEEDS, plan_of)
    drawn = {f for p in plans for f in p.drawn.values()}
    print("faults drawn:", sorted(f.value for f in drawn))
    # The seeds exercise the fault classes, not only passes: (almost) every kind is met.
    assert len(drawn & set(HttpFault)) >= 8 and set(WsFault) - {WsFault.PASS} <= drawn


@pytest.mark.slow
async def test_fault_campaign_many_seeds(campaign_key) -> None:
    await run_campaign(lambda plan: scenario(plan, campaign_key), SLOW_SEEDS, make_plan)
