"""The seeded random campaign against ``pm_maker`` (helper of ``test_maker_campaign*.py``).

**Paper** (:func:`paper_seed`): a random book path for one binary token (touch moves,
spread widening and narrowing, adverse order flow, deltas, prints at, inside and through
the quotes, partial prints, one or both sides emptied, the market resolving at 1 or 0), a
random kill schedule (REDUCING / HALTED set by a person, maybe ACTIVE again) and random
lifecycle settings, replayed through the real core ``Runner`` (replay venue, paper
broker's queue-conservative fills), once whole and once stopped mid-way and resumed from
its checkpoint.  :func:`check_paper` then holds the invariants listed in the test module.

**Live** (:mod:`maker_campaign_live`) drives the real Polymarket venue client against the
venue plugin's local CLOB through the testkit's fault proxies.

Every seed keeps a trace (what was drawn, step by step) that a failure prints.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from argus_scanners_polymarket.config import (
    MakerSettings,
    MakerStrategySettings,
    PmScannersSettings,
)
from argus_scanners_polymarket.maker_strategy import MakerStrategy

from argus_core import (
    BookDelta,
    CancelIntent,
    FeeSchedule,
    Instrument,
    Intent,
    MarketEvent,
    OrderBook,
    Settlement,
    Side,
    StrategyContext,
    Trade,
    TradingState,
)
from argus_core.config import parse_config
from argus_core.ledger import Ledger
from argus_core.recorder import dump_header
from argus_core.runner import Runner
from argus_core.serde import dump_event

D = Decimal
S = 10**9
T0 = 1_786_000_000 * S
TICK = D("0.01")
INST = Instrument("polymarket", "TOK", "binary", TICK, D("0.01"), D("5"))
IID = INST.id
TAKER_BPS = D("200")
STARTING_CASH = D("1000")
_FEE_UNIT = D("1e-8")


@attrs.frozen
class _RecordedVenue:
    """What ``dump_header`` reads of a venue: its name and fee schedules."""

    schedule: FeeSchedule
    name: str = "polymarket"

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """The one schedule of the seed."""
        return self.schedule


# -- the random path ----------------------------------------------------------------------

@attrs.define
class PaperPath:
    """One seed's events, kill schedule, restart point and settings."""

    seed: int
    events: list[MarketEvent]
    states: list[tuple[int, TradingState]]  # (ts_ns, state set by a person at that time)
    stop_after: int  # the cut run stops after this many events, then resumes
    settings: PmScannersSettings
    schedule: FeeSchedule
    trace: list[str]


def _levels(side: dict[int, int], best_first_desc: bool) -> list[tuple[float, float]]:
    keys = sorted(side, reverse=best_first_desc)
    return [(float(D(k) * TICK), float(side[k])) for k in keys if side[k] > 0 and 0 < k < 100]


def paper_path(seed: int) -> PaperPath:
    """The random path of ``seed`` (its own ``random.Random``: reproducible)."""
    rng = random.Random(seed)
    trace: list[str] = []
    allow_short = rng.random() < 0.3
    lifecycle = {
        "max_inventory": D(rng.choice(["10", "15", "25"])), "allow_short": allow_short,
        "cancel_ofi": rng.choice([0.5, 0.8, 1.0]),
        "min_requote_s": rng.choice([0.0, 0.5, 1.5]),
        "refresh_s": rng.choice([0.0, 4.0]),
        "time_in_force": rng.choice(["auto", "post_only", "gtc"])}
    pricing = {"quote_size": D(rng.choice(["5", "7", "10"]))}
    settings = PmScannersSettings(maker=MakerSettings(**pricing),
                                  pm_maker=MakerStrategySettings(**lifecycle))
    # maker fees of 0, 0.2 % and 0.5 % of notional (Polymarket charges makers nothing)
    schedule = FeeSchedule(maker_bps=D(rng.choice([0, 20, 50])), taker_bps=TAKER_BPS)
    trace.append(f"settings: {pricing} {lifecycle}; maker {schedule.maker_bps} bps")
    bid = rng.randint(15, 70)  # best bid in ticks
    spread = rng.randint(3, 10)
    bids = {bid: rng.randint(20, 200), bid - 2: rng.randint(50, 300)}
    asks = {bid + spread: rng.randint(20, 200), bid + spread + 3: rng.randint(50, 300)}
    events: list[MarketEvent] = []
    t = 1.0
    n_steps = rng.randint(35, 70)
    settle_at = rng.randint(n_steps // 2, n_steps) if rng.random() < 0.35 else None
    settled = False

    def ts() -> int:
        return T0 + round(t * 1000) * 10**6

    def snapshot(note: str) -> None:
        events.append(OrderBook(IID, ts(), _levels(bids, True), _levels(asks, False)))
        trace.append(f"t={t:.1f} book {note}: {_show(bids, asks)}")

    def best(side: dict[int, int], high: bool) -> int | None:
        live = [k for k, v in side.items() if v > 0]
        return (max(live) if high else min(live)) if live else None

    def reprice(new_bid: int, new_spread: int) -> None:
        nonlocal bids, asks
        new_bid = min(max(new_bid, 3), 92)
        new_spread = min(max(new_spread, 1), 96 - new_bid)
        bids = {new_bid: rng.randint(10, 200),
                new_bid - rng.randint(1, 3): rng.randint(50, 300)}
        a = new_bid + new_spread
        asks = {a: rng.randint(10, 200), a + rng.randint(1, 3): rng.randint(50, 300)}

    snapshot("start")
    for step in range(n_steps):
        t += rng.choice([0.2, 0.5, 0.8, 1.0, 1.6])
        if settle_at is not None and step == settle_at and not settled:
            price = D(rng.choice([0, 1]))
            events.append(Settlement(IID, ts(), price, f"resolved at {price}"))
            trace.append(f"t={t:.1f} SETTLEMENT at {price}")
            settled = True
            continue
        kind = rng.choices(
            ["move", "widen", "narrow", "adverse", "trade", "delta", "empty", "same"],
            [4, 1.5, 1.5, 2, 5, 2, 1, 1])[0]
        b, a = best(bids, True), best(asks, False)
        if b is None or a is None:  # an emptied book comes back
            reprice(b or (a - 3 if a else rng.randint(20, 60)), rng.randint(2, 6))
            snapshot("refilled")
            continue
        if kind == "move":
            shift = rng.choice([-3, -2, -1, 1, 2, 3])
            reprice(b + shift, a - b)
            snapshot(f"moved {shift:+d}")
        elif kind == "widen":
            reprice(b - rng.randint(0, 2), a - b + rng.randint(1, 3))
            snapshot("widened")
        elif kind == "narrow":
            reprice(b + rng.randint(0, 2), a - b - rng.randint(1, 3))
            snapshot("narrowed")
        elif kind == "adverse":
            selling = rng.random() < 0.5
            for _ in range(rng.randint(1, 3)):
                t += 0.2
                if selling:  # bids pulled, asks added: flow against the bid
                    bids[b] = max(1, bids[b] // 3)
                    asks[a] = asks[a] * 2 + 50
                else:
                    asks[a] = max(1, asks[a] // 3)
                    bids[b] = bids[b] * 2 + 50
                snapshot("selling pressure" if selling else "buying pressure")
        elif kind == "trade":
            target = rng.choices(["bid_through", "bid_quote", "ask_through", "ask_quote",
                                  "deep_through"], [4, 1.5, 4, 1.5, 1])[0]
            size = D(rng.choice([1, 2, 3, 4, 6, 10, 25]))
            if target == "bid_through":
                price, aggressor = b, Side.SELL  # below a bid quoted one tick inside
            elif target == "bid_quote":
                price, aggressor = b + 1, Side.SELL  # at the quote: touches, never fills
            elif target == "ask_through":
                price, aggressor = a, Side.BUY
            elif target == "ask_quote":
                price, aggressor = a - 1, Side.BUY
            else:
                price, aggressor = (b - 2, Side.SELL) if rng.random() < 0.5 else (a + 2, Side.BUY)
            price = min(max(price, 1), 99)
            events.append(Trade(IID, ts(), D(price) * TICK, size, aggressor))
            trace.append(f"t={t:.1f} trade {target} {size} @ {D(price) * TICK} "
                         f"({aggressor.value})")
            if target in ("bid_through", "ask_through") and rng.random() < 0.5:
                # the print took the touch level: the book shows it
                side = bids if aggressor is Side.SELL else asks
                side[price] = max(0, side.get(price, 0) - int(size))
                snapshot("after the print")
        elif kind == "delta":
            on_bid = rng.random() < 0.5
            level = (b - rng.randint(0, 2)) if on_bid else (a + rng.randint(0, 2))
            size = rng.choice([0, 5, 40, 150])
            side_map = bids if on_bid else asks
            if size == 0 and sum(1 for v in side_map.values() if v > 0) <= 1:
                size = 30  # a delta never empties a side here ("empty" does)
            side_map[level] = size
            events.append(BookDelta(IID, ts(), Side.BUY if on_bid else Side.SELL,
                                    D(level) * TICK, D(size)))
            trace.append(f"t={t:.1f} delta {'bid' if on_bid else 'ask'} "
                         f"{D(level) * TICK} -> {size}: {_show(bids, asks)}")
        elif kind == "empty":
            which = rng.choice(["bids", "asks", "both"])
            if which in ("bids", "both"):
                bids = {}
            if which in ("asks", "both"):
                asks = {}
            snapshot(f"{which} emptied")
        else:
            snapshot("unchanged")
    states: list[tuple[int, TradingState]] = []
    horizon = events[-1].ts_ns
    if rng.random() < 0.6:
        kill = rng.choice([TradingState.HALTED, TradingState.REDUCING])
        at = T0 + rng.randint(2, max(3, int((horizon - T0) / S))) * S
        states.append((at, kill))
        if rng.random() < 0.5:
            states.append((at + rng.randint(2, 8) * S, TradingState.ACTIVE))
    trace.append(f"states: {[(round((at - T0) / S, 1), st.value) for at, st in states]}")
    stop_after = rng.randint(3, max(4, len(events) - 2))
    trace.append(f"restart after event {stop_after} of {len(events)}")
    return PaperPath(seed, events, states, stop_after, settings, schedule, trace)


def _show(bids: dict[int, int], asks: dict[int, int]) -> str:
    bb = [f"{k}:{v}" for k, v in sorted(bids.items(), reverse=True) if v > 0][:2]
    aa = [f"{k}:{v}" for k, v in sorted(asks.items()) if v > 0][:2]
    return f"[{' '.join(bb)}] / [{' '.join(aa)}]"


# -- the run ---------------------------------------------------------------------------

@attrs.define
class Look:
    """What the campaign saw just before one event reached the strategy."""

    ts_ns: int
    event: MarketEvent
    state: str  # the trading state the strategy is about to see
    position: Decimal
    working: list[tuple[str, Side, Decimal, Decimal, bool]]  # coid, side, limit, left, r/o
    believed: dict[str, tuple[Decimal, Decimal] | None]  # label -> (price, remaining)


class CampaignMaker(MakerStrategy):
    """The strategy, with a look at the paper broker before each event and the kill
    schedule applied as a person would (the event that sets it sees the new state)."""

    def __init__(self, s: PmScannersSettings, states: Sequence[tuple[int, TradingState]]
                 ) -> None:
        super().__init__(s)
        self.runner: Runner | None = None
        self.states = list(states)
        self.looks: list[Look] = []
        self.intents: list[tuple[int, list[Intent | CancelIntent]]] = []

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        runner = self.runner
        assert runner is not None
        due = [state for at, state in self.states if ctx.ts_ns >= at]
        if due and runner.trading_state is not due[-1]:
            runner.set_trading_state(due[-1], "campaign kill", by_person=True)
            # a person's kill lands between two events: this event already sees it
            ctx.trading_state = runner.trading_state.value
        working = [(w.order.client_order_id, w.order.side, w.order.limit_price or D(0),
                    w.remaining, w.order.reduce_only)
                   for w in runner.broker.working.values() if w.order.instrument_id == IID]
        st = self.books.get(IID)
        believed: dict[str, tuple[Decimal, Decimal] | None] = {}
        for label in ("bid", "ask"):
            q = None if st is None else st.quote(label)
            believed[label] = None if q is None else (q.price, q.remaining)
        self.looks.append(Look(ctx.ts_ns, event, runner.trading_state.value,
                               ctx.portfolio.position(IID).quantity, working, believed))
        out = super().on_event(event, ctx)
        if out:
            self.intents.append((ctx.ts_ns, list(out)))
        return out


def record(path: Path, events: Sequence[MarketEvent], schedule: FeeSchedule) -> Path:
    """A recording: the header (instrument, fee schedule), then one event per line."""
    with path.open("w") as fh:
        fh.write(json.dumps(dump_header(_RecordedVenue(schedule), [INST])) + "\n")  # type: ignore[arg-type]  # duck-typed venue
        for event in events:
            fh.write(json.dumps(dump_event(event)) + "\n")
    return path


@attrs.define
class PaperRun:
    """One replay's outcome: its directory, strategy (with its looks) and account."""

    run_dir: Path
    strategy: CampaignMaker
    cash: Decimal
    positions: dict[str, Decimal]
    working: list[tuple[str, Side, Decimal, Decimal, bool]]
    error: BaseException | None = None


def replay(tmp: Path, path: PaperPath, name: str, *, max_events: int | None = None
           ) -> PaperRun:
    """Replay ``path`` in run directory ``tmp/name`` (resuming when it exists)."""
    recording = tmp / "path.ndjson"
    if not recording.exists():
        record(recording, path.events, path.schedule)
    config = parse_config({
        "argus": {"plugins": ["pmscanners"], "mode": "replay"},
        "run": {"venue": "replay", "strategies": ["pm_maker"], "risk_checks": [],
                "stale_after_s": 0, "starting_cash": str(STARTING_CASH),
                "checkpoint_every_events": 1},
        "plugins": {"replay": {"ndjson": str(recording)}}}, tmp / "c.toml")
    strategy = CampaignMaker(path.settings, path.states)
    runner = Runner(config, tmp / name, strategies={"pm_maker": strategy},
                    max_events=max_events)
    strategy.runner = runner
    error: BaseException | None = None
    try:
        runner.run_sync()
    except Exception as exc:  # the invariant "the run never dies" reports it
        error = exc
    working = [(w.order.client_order_id, w.order.side, w.order.limit_price or D(0),
                w.remaining, w.order.reduce_only) for w in runner.broker.working.values()]
    return PaperRun(tmp / name, strategy, runner.account.cash,
                    {iid: p.quantity for iid, p in runner.account.positions.items()},
                    working, error)


def ledger_rows(run_dir: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` on the run directory's ledger."""
    with Ledger.in_dir(run_dir) as ledger:
        return list(ledger.query(sql))


def paper_seed(seed: int, tmp: Path) -> tuple[PaperPath, PaperRun, PaperRun, PaperRun]:
    """Run ``seed``: whole, then cut at its restart point and resumed."""
    path = paper_path(seed)
    whole = replay(tmp, path, "whole")
    cut = replay(tmp, path, "cut", max_events=path.stop_after)
    resumed = replay(tmp, path, "cut")
    return path, whole, cut, resumed


# -- the invariants --------------------------------------------------------------------

def _kept_fee(schedule: FeeSchedule, price: Decimal, qty: Decimal) -> Decimal:
    fee = schedule.fee(price, qty, maker=True)
    return max(fee.quantize(_FEE_UNIT), _FEE_UNIT) if fee > 0 else fee.quantize(_FEE_UNIT)


def check_paper(path: PaperPath, whole: PaperRun, cut: PaperRun, resumed: PaperRun) -> None:
    """Every paper invariant of one seed (AssertionError naming the first broken one)."""
    for label, r in (("whole", whole), ("cut", cut), ("resumed", resumed)):
        assert r.error is None, f"the {label} run died: {r.error!r}"
    check_run(path, whole, looks=whole.strategy.looks)
    check_run(path, resumed, looks=cut.strategy.looks + resumed.strategy.looks)
    # Stopped and resumed from its checkpoint, the ledger is the uninterrupted one --
    # unless it stopped while HALTED: the core cancels every working order once per
    # process when it adopts HALTED (``enforce_halt`` at start-up too), so a resumed run
    # re-posts the exits the uninterrupted one kept resting (seed 73; by design: the
    # restarted strategy resets, see ``MakerStrategy._see_state``).
    if not halted_at_stop(path):
        assert essence(whole.run_dir) == essence(resumed.run_dir), \
            "the resumed run's ledger differs from the uninterrupted one"


def halted_at_stop(path: PaperPath) -> bool:
    """Whether a person's HALTED is in force at the cut run's last event."""
    last = path.events[path.stop_after - 1].ts_ns
    due = [state for at, state in path.states if at <= last]
    return bool(due) and due[-1] is TradingState.HALTED


def essence(run_dir: Path) -> tuple[list[Any], list[Any]]:
    """Orders and fills without the run id (compared across the whole and resumed runs)."""
    keep = ("side", "quantity", "limit_price", "status", "filled_quantity", "ts_ns",
            "reduce_only", "strategy")
    orders = sorted(tuple([o["client_order_id"].split("-", 1)[-1],
                           *(o[k] for k in keep)])
                    for o in ledger_rows(run_dir, "select * from orders"))
    fills = sorted((f["client_order_id"].split("-", 1)[-1], f["quantity"], f["price"],
                    f["fee"], f["liquidity"], f["ts_ns"])
                   for f in ledger_rows(run_dir, "select * from fills"))
    return orders, fills


def check_run(path: PaperPath, run: PaperRun, *, looks: list[Look]) -> None:
    """The invariants of one (possibly resumed) run against its path."""
    lc = path.settings.pm_maker
    orders = {o["client_order_id"]: o for o in ledger_rows(run.run_dir,
                                                          "select * from orders")}
    fills = ledger_rows(run.run_dir, "select * from fills order by ts_ns, fill_id")
    trades = {}  # ts_ns -> the print at that time
    for e in path.events:
        if isinstance(e, Trade):
            trades[e.ts_ns] = e
    settled_at = next((e.ts_ns for e in path.events if isinstance(e, Settlement)), None)
    mine = {c: o for c, o in orders.items() if o["strategy"] == "pm_maker"}
    # 1. maker fills only when a print went through the quote, at its price, maker fee
    taken: Counter[int] = Counter()
    for f in fills:
        o = orders[f["client_order_id"]]
        if o["strategy"] != "pm_maker":
            continue  # the core's settlement of the position
        price, qty = D(f["price"]), D(f["quantity"])
        assert f["liquidity"] == "maker", f"a taker fill of a quote: {f}"
        assert price == D(o["limit_price"]), f"filled off the quote's price: {f} vs {o}"
        trade = trades.get(f["ts_ns"])
        assert trade is not None, f"a fill with no print at its time: {f}"
        through = trade.price < price if o["side"] == "buy" else trade.price > price
        assert through, f"filled by a print that did not go through the quote: {f} {trade}"
        taken[f["ts_ns"]] += qty
        assert taken[f["ts_ns"]] <= trade.size, f"fills beyond the print's size at {f}"
        assert D(f["fee"]) == _kept_fee(path.schedule, price, qty), \
            f"fee not the maker schedule's: {f}"
    # each order's fills add up to its filled quantity; ids are unique (the primary key)
    by_order: Counter[str] = Counter()
    for f in fills:
        by_order[f["client_order_id"]] += D(f["quantity"])
    for coid, o in orders.items():
        assert D(o["filled_quantity"]) == by_order[coid], f"order {coid} booked twice? {o}"
    # 2. the account is the ledger's fills
    cash = STARTING_CASH
    pos = D(0)
    for f in fills:
        sign = 1 if f["side"] == "buy" else -1
        cash -= sign * D(f["price"]) * D(f["quantity"]) + D(f["fee"])
        pos += sign * D(f["quantity"])
    assert run.cash == cash, f"cash {run.cash} != the fills' {cash}"
    assert run.positions.get(IID, D(0)) == pos, f"position {run.positions} != fills' {pos}"
    ledger_pos = {p["instrument_id"]: D(p["quantity"])
                  for p in ledger_rows(run.run_dir, "select * from positions")}
    assert ledger_pos.get(IID, D(0)) == pos, f"ledger position {ledger_pos} != {pos}"
    # 3. per look: at most one working quote per side; nothing after the settlement;
    #    inventory within its limit (plus one print's worth); only exits while killed
    biggest = max((D(f["quantity"]) for f in fills), default=D(0))
    limit = lc.max_inventory
    prev_state = "active"
    for look in looks:
        sides = Counter(side for _, side, *_ in look.working)
        assert max(sides.values(), default=0) <= 1, \
            f"two working quotes on a side at {_t(look.ts_ns)}: {look.working}"
        if settled_at is not None and look.ts_ns > settled_at:
            assert not look.working, f"working after the settlement: {look}"
        assert look.position <= limit + biggest, f"inventory {look.position} > {limit}"
        low = -(limit + biggest) if lc.allow_short else D(0)
        assert look.position >= low, f"inventory {look.position} below {low}"
        if look.state == "halted" and prev_state == "halted":
            for _coid, side, _px, left, _ro in look.working:
                grows = (side is Side.BUY and look.position >= 0) or (
                    side is Side.SELL and look.position <= 0)
                assert not grows and left <= abs(look.position), \
                    f"a quote that grows the position works while halted: {look}"
        prev_state = look.state
    if settled_at is not None:
        late = [o for o in mine.values() if o["ts_ns"] > settled_at]
        assert not late, f"quotes posted after the settlement: {late}"
    # 4. no orphans: what works at the end is what the strategy believes it quotes, and
    #    the ledger holds exactly those open
    st = run.strategy.books.get(IID)
    believed = {} if st is None else {
        Side.BUY if label == "bid" else Side.SELL: (q.price, q.remaining)
        for label in ("bid", "ask") if (q := st.quote(label)) is not None}
    left = {side: (px, rem) for _, side, px, rem, _ in run.working}
    # no risk check is configured: the only veto could be the trading state's, which the
    # strategy never draws (it posts only exits while REDUCING or HALTED)
    vetoed = ledger_rows(run.run_dir, "select * from risk_events where action = 'veto'")
    assert not vetoed, f"vetoed intents: {vetoed}"
    assert believed == left, f"the strategy believes {believed} but working is {left}"
    open_rows = {c for c, o in mine.items() if o["status"] in ("open", "partially_filled")}
    assert open_rows == {c for c, *_ in run.working}, \
        f"ledger open {open_rows} != working {run.working}"


def _t(ts_ns: int) -> str:
    return f"t={(ts_ns - T0) / S:.1f}"
