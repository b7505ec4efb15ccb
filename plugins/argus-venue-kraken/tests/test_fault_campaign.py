"""Seeded random fault campaign against Kraken's order path (exactly-once).

Per seed: the local Kraken exchange (REST matching engine + WS v2 ``executions``) behind
a fault proxy (:mod:`argus_testkit.fault_proxy`, :mod:`argus_testkit.ws_fault_proxy`)
that draws, per private request, a pass, a lost / late / truncated answer after Kraken
acted, a 5xx (JSON or HTML) or 429 (with or without Retry-After) or a reset before it
acted, and per executions frame a pass, a duplicate or a disconnect.  A random sequence
goes through the core's ExecutionEngine on a real ledger: market and limit IOC orders,
GTC orders that fill in part and rest, post-only orders (resting or cancelled by Kraken),
maker fills of resting orders, cancels, a fill while a cancel is in flight, and restarts
of the venue object resuming from the ledger.  Then the faults stop, the venue restarts
once more and the invariants are checked (:func:`argus_testkit.order_path.check_invariants`):
each intent at most one Kraken order (by ``cl_ord_id``), every Kraken trade booked once,
position and cash equal to Kraken's trades, no order pending or out of step with Kraken,
no key or secret in the logs, no crash.

A failing seed is shrunk and reported with its seed and minimal trace.  The suite runs
``FAST_SEEDS``; ``-m slow`` runs ``SLOW_SEEDS`` more.
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import attrs
import httpx
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
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.execution import cl_ord_id_for
from argus_venue_kraken.testing import ForwardExecutions, LocalKrakenRest, LocalKrakenWs
from argus_venue_kraken.venue import KrakenVenue

from argus_core.models import Instrument, Side, TimeInForce
from argus_core.secrets import Secret

FIXTURES = Path(__file__).parent / "fixtures"
#: The documented API-Sign example's key (a public test vector, as in conftest.py, which
#: importlib mode does not let a test import).
DOC_SECRET = ("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6"
              "F1huXg==")
TEST_KEY = "local-test-api-key"
IID = "kraken:BTC/USD"
MARK = D("37500.0")
FAST_SEEDS = range(12)
SLOW_SEEDS = range(12, 160)
STEPS = 8
#: The client's timeout; a late answer comes after it.
TIMEOUT_S = 0.25


class FakeTime:
    """A monotonic clock and a sleep that only advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def fresh_book(exchange: LocalKrakenRest) -> None:
    """Depth on both sides (a marketable order always finds some, never all it wants)."""
    exchange.set_book("BTC/USD", [(D("37400.0"), D("0.3")), (D("37390.0"), D("2.0"))],
                      [(D("37500.0"), D("0.3")), (D("37510.5"), D("2.0"))])


def truth(exchange: LocalKrakenRest, coids: list[str]) -> ExchangeTruth:
    """Kraken's own record: its orders per cl_ord_id, its trades (TradesHistory)."""
    everything = {**exchange.closed, **exchange.orders}
    orders = {}
    for coid in coids:
        wire = cl_ord_id_for(coid)
        orders[coid] = [ExchangeOrder(t, t in exchange.orders, D(o["vol_exec"]))
                        for t, o in everything.items() if o.get("cl_ord_id") == wire]
    fills = {}
    for trade_id, t in exchange.trades_history.items():
        sign = 1 if t["type"] == "buy" else -1
        fills[trade_id] = (sign * D(t["vol"]), -sign * D(t["price"]) * D(t["vol"]) - D(t["fee"]))
    return ExchangeTruth(orders, fills, IID)


@attrs.define
class KrakenCampaign:
    """One seed's world: the exchange, the proxies, the run directory, the harness."""

    plan: FaultPlan
    exchange: LocalKrakenRest
    rest: FaultProxy
    ws: WsFaultProxy
    run_dir: Path
    instrument: Instrument | None = None
    harness: EngineHarness | None = None
    coids: list[str] = attrs.Factory(list)
    restarts: int = 0

    def settings(self) -> KrakenSettings:
        return KrakenSettings(
            nonce_path=self.run_dir / "nonce", rest_url=self.rest.url, ws_auth_url=self.ws.url,
            api_key=Secret("$env:ARGUS_TEST_KRAKEN_KEY"),
            api_secret=Secret("$env:ARGUS_TEST_KRAKEN_SECRET"), reconnect_base_s=0.001,
            reconnect_max_s=0.01, heartbeat_timeout_s=5.0, request_timeout_s=TIMEOUT_S,
            dead_man_timeout_s=0, order_deadline_s=10.0, lookup_settle_s=0.3)

    def venue(self) -> KrakenVenue:
        fake = FakeTime()  # back-offs and the wait past a deadline cost no real time
        return KrakenVenue(self.settings(), sleep=fake.sleep, clock=fake.clock)

    async def start(self) -> EngineHarness:
        if self.instrument is None:
            quiet, self.plan.quiet = self.plan.quiet, True
            venue = self.venue()
            try:
                (self.instrument,) = await venue.instruments()
            finally:
                self.plan.quiet = quiet
                await venue.close()
        instrument = self.instrument
        return await started(self, lambda: EngineHarness(self.run_dir, self.venue(),
                                                         instrument, MARK))

    async def restart(self) -> EngineHarness:
        assert self.harness is not None
        await self.harness.settle()
        await self.harness.close()
        self.restarts += 1
        self.plan.note(f"-- restart {self.restarts}")
        return await self.start()


def make_plan(seed: int) -> FaultPlan:
    return FaultPlan(seed, http_rate=0.3, ws_rate=0.08,
                     eligible=lambda key: "/0/private/" in key or key.startswith("ws"))


async def step(c: KrakenCampaign, rng: random.Random, n: int) -> None:
    """One random action of the sequence."""
    h = c.harness
    assert h is not None
    slot = f"s{n}"
    kind = rng.choice(["market", "limit_ioc", "gtc_partial", "gtc_rest", "post_only",
                       "post_only_cross", "maker_fill", "cancel", "fill_during_cancel",
                       "restart"])
    side = rng.choice([Side.BUY, Side.SELL])
    buy = side is Side.BUY
    fresh_book(c.exchange)
    coid: str | None = None
    if kind == "market":
        coid = route(h, n, slot, side, D(rng.choice(["0.1", "0.5"])))
    elif kind == "limit_ioc":
        coid = route(h, n, slot, side, D("0.5"), limit=D("37510.5") if buy else D("37390.0"))
    elif kind == "gtc_partial":
        coid = route(h, n, slot, side, D("0.6"), limit=D("37500.0") if buy else D("37400.0"),
                     tif=TimeInForce.GTC)
    elif kind == "gtc_rest":
        coid = route(h, n, slot, side, D("0.4"), limit=D("37000.0") if buy else D("38000.0"),
                     tif=TimeInForce.GTC)
    elif kind in ("post_only", "post_only_cross"):
        price = (D("37000.0") if buy else D("38000.0")) if kind == "post_only" else \
            (D("37500.0") if buy else D("37400.0"))
        coid = route(h, n, slot, side, D("0.3"), limit=price, tif=TimeInForce.POST_ONLY)
    elif kind == "maker_fill":
        txids = list(c.exchange.orders)
        if txids:
            txid = rng.choice(txids)
            order = c.exchange.orders[txid]
            left = D(order["vol"]) - D(order["vol_exec"])
            qty = left if rng.random() < 0.5 else (left / 2).quantize(D("0.00000001"))
            c.plan.note(f"maker fill {qty} of {txid}")
            c.exchange.fill_resting(txid, qty)
    elif kind in ("cancel", "fill_during_cancel"):
        live = working(h)
        if live:
            target, target_slot = rng.choice(live)
            wire = cl_ord_id_for(target)
            if kind == "fill_during_cancel":
                def fill_first(key: str, wire: str = wire) -> None:
                    if key.endswith("/CancelOrder"):
                        c.rest.before_forward = None
                        for txid, o in list(c.exchange.orders.items()):
                            if o.get("cl_ord_id") == wire:
                                left = D(o["vol"]) - D(o["vol_exec"])
                                c.exchange.fill_resting(txid, left)
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
    pairs = json.loads((FIXTURES / "kraken_rest_assetpairs.json").read_text())
    exchange = LocalKrakenRest({"AssetPairs": pairs}, api_key=TEST_KEY,
                               api_secret=DOC_SECRET).start()
    fresh_book(exchange)
    sessions: list[Any] = [[ForwardExecutions(exchange)]] * 200
    with LogCapture() as logs, tempfile.TemporaryDirectory() as tmp:
        try:
            async with LocalKrakenWs(sessions, token="local-ws-token") as ws, \
                    FaultProxy(exchange.url, plan, late_s=TIMEOUT_S + 0.1) as rest, \
                    WsFaultProxy(ws.url, plan, name="executions") as wsp:
                c = KrakenCampaign(plan, exchange, rest, wsp, Path(tmp))
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
                    check_invariants(h, truth(exchange, c.coids),
                                     secrets=(TEST_KEY, DOC_SECRET), log_lines=logs.lines)
                    assert h.consumer is not None and not h.consumer.done(), \
                        "the executions consumer stopped"
                finally:
                    if c.harness is not None:
                        with contextlib.suppress(Exception):
                            await c.harness.close()
        finally:
            exchange.stop()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGUS_TEST_KRAKEN_KEY", TEST_KEY)
    monkeypatch.setenv("ARGUS_TEST_KRAKEN_SECRET", DOC_SECRET)


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


def test_a_plan_replays_and_switches_single_faults_off() -> None:
    """The campaign's determinism: the n-th request of a key meets the same fault in any
    interleaving, and ``without`` pins one draw to a pass, leaving the others."""
    add, look = "POST /0/private/AddOrder", "POST /0/private/OpenOrders"
    a, b = make_plan(7), make_plan(7)
    first = [(k, a.http(k)) for k in [add, look] * 20]  # interleaved
    second = [(k, b.http(k)) for k in [add] * 20 + [look] * 20]  # one key, then the other
    assert sorted(first, key=lambda kf: kf[0] == look) == second
    assert a.drawn and a.drawn == b.drawn
    faulty = next(iter(a.drawn))
    c = a.without([faulty])
    again = [c.http(k) for k in [add, look] * 20]
    assert set(c.drawn) == set(a.drawn) - {faulty}
    assert sum(f.value != "pass" for f in again) == len(a.drawn) - 1


@pytest.mark.parametrize("fault", list(HttpFault), ids=lambda f: f.value)
async def test_the_proxy_acts_or_not_and_answers_as_drawn(fault: HttpFault) -> None:
    """The injector itself: the exchange sees the request exactly when the fault acts,
    and the client sees what the fault says (else the campaign would test nothing)."""
    pairs = json.loads((FIXTURES / "kraken_rest_assetpairs.json").read_text())
    exchange = LocalKrakenRest({"AssetPairs": pairs}).start()
    key = "GET /0/public/AssetPairs"
    plan = FaultPlan(0, http_rate=0.0, forced={(key, 0): fault})
    try:
        async with FaultProxy(exchange.url, plan, late_s=0.3) as proxy, \
                httpx.AsyncClient(timeout=0.2) as client:
            try:
                answer: httpx.Response | Exception = await client.get(
                    proxy.url + "/0/public/AssetPairs")
            except httpx.HTTPError as exc:
                answer = exc
    finally:
        exchange.stop()
    assert len(exchange.calls("AssetPairs")) == (1 if fault.acts else 0)
    if fault in (HttpFault.LOST, HttpFault.RESET, HttpFault.TRUNCATED):
        assert isinstance(answer, httpx.TransportError)  # closed / reset / cut short
    elif fault is HttpFault.LATE:
        assert isinstance(answer, httpx.TimeoutException)
    elif fault is HttpFault.PASS:
        assert isinstance(answer, httpx.Response) and answer.json() == pairs
    else:
        assert isinstance(answer, httpx.Response)
        expected = {HttpFault.S500_JSON: 500, HttpFault.S503_JSON: 503,
                    HttpFault.S502_HTML: 502, HttpFault.AFTER_502: 502,
                    HttpFault.S429: 429, HttpFault.S429_RETRY: 429}[fault]
        assert answer.status_code == expected
        assert ("retry-after" in answer.headers) == (fault is HttpFault.S429_RETRY)
        assert answer.text.startswith("<html>") == (expected == 502)
