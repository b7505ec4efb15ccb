"""``pm_maker`` through the real core loop on constructed recordings (NDJSON of
``OrderBook`` / ``Trade`` events with a header carrying a binary instrument and its fee
schedule, replayed by the replay venue's ``ndjson`` setting; paper fills by the core's
queue-conservative rule): posts one tick inside, moves a quote by cancel-then-post with
never two working per side, cancels and moves one side at a time (the other keeps
resting in the paper broker), cancels on adverse OFI, stops adding at the inventory limit
and quotes the reducing side, books partial fills once with maker fees, posts nothing
without an edge, posts only exits while REDUCING or HALTED (no vetoes), and resumes from
a checkpoint to the same ledger.  Every assertion reads the ledger."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_scanners_polymarket.config import (
    MakerSettings,
    MakerStrategySettings,
    PmScannersSettings,
)
from argus_scanners_polymarket.maker_strategy import MakerStrategy, Resting

from argus_core import (
    BookDelta,
    BookStatus,
    CancelIntent,
    FeeSchedule,
    Instrument,
    Intent,
    MarketEvent,
    MarketState,
    OrderBook,
    Portfolio,
    Position,
    Settlement,
    Side,
    Signal,
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
INST = Instrument("polymarket", "TOK", "binary", D("0.01"), D("0.01"), D("5"))
IID = INST.id
MAKER_BPS = D("100")  # 1 % maker fee, so the booked fees are visible


class _RecordedVenue:
    """What ``dump_header`` reads of a venue: its name and fee schedules."""

    name = "polymarket"

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return FeeSchedule(maker_bps=MAKER_BPS, taker_bps=D("200"))


def book(t: float, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
         ) -> OrderBook:
    """A snapshot ``t`` seconds in."""
    return OrderBook(IID, T0 + int(t * S), bids, asks)


def trade(t: float, price: str, size: str, aggressor: Side = Side.SELL) -> Trade:
    """A print ``t`` seconds in."""
    return Trade(IID, T0 + int(t * S), D(price), D(size), aggressor)


def record(path: Path, events: Sequence[MarketEvent]) -> Path:
    """A recording: the header (instrument, fee schedule), then one event per line."""
    with path.open("w") as fh:
        fh.write(json.dumps(dump_header(_RecordedVenue(), [INST])) + "\n")  # type: ignore[arg-type]
        for event in events:
            fh.write(json.dumps(dump_event(event)) + "\n")
    return path


def settings(maker: dict[str, Any] | None = None, **pm_maker: Any) -> PmScannersSettings:
    """Pricing as the maker scanner's defaults unless given; lifecycle from ``pm_maker``."""
    lifecycle = {"min_requote_s": 0.0, **pm_maker}
    pricing = {k: D(v) if isinstance(v, str) else v for k, v in (maker or {}).items()}
    return PmScannersSettings(maker=MakerSettings(**pricing),
                              pm_maker=MakerStrategySettings(**lifecycle))


class Watched(MakerStrategy):
    """The strategy, plus a look at the paper broker's working orders before each event
    (what the previous event's intents left): never two on one side."""

    def __init__(self, s: PmScannersSettings) -> None:
        super().__init__(s)
        self.runner: Runner | None = None
        self.most_per_side = 0
        self.intents: list[tuple[int, list[Intent | CancelIntent]]] = []
        #: The paper broker's working order ids before each event.
        self.working_before: list[tuple[int, set[str]]] = []

    def working_at(self, t: float) -> set[str]:
        """The broker's working order ids before the first event at ``t`` seconds in."""
        return next(ids for ts, ids in self.working_before if ts >= T0 + int(t * S))

    def cancels(self) -> list[tuple[int, Side | None, str]]:
        """Every cancel returned: (time, side, reason)."""
        return [(t, x.side, x.reason) for t, out in self.intents for x in out
                if isinstance(x, CancelIntent)]

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        assert self.runner is not None
        per_side = Counter((w.order.instrument_id, w.order.side)
                           for w in self.runner.broker.working.values())
        self.most_per_side = max([self.most_per_side, *per_side.values()])
        self.working_before.append((ctx.ts_ns, set(self.runner.broker.working)))
        out = super().on_event(event, ctx)
        if out:
            self.intents.append((ctx.ts_ns, list(out)))
        return out


def watched(strategy: MakerStrategy) -> Watched:
    """``run``'s strategy as the :class:`Watched` it is."""
    assert isinstance(strategy, Watched)
    return strategy


def run(tmp_path: Path, events: Sequence[MarketEvent], s: PmScannersSettings, *,
        name: str = "run", max_events: int | None = None,
        strategy: MakerStrategy | None = None) -> tuple[Path, MakerStrategy]:
    """Replay ``events`` with ``pm_maker`` in slot ``pm_maker``; returns the run directory."""
    recording = record(tmp_path / f"{name}.ndjson", events)
    config = parse_config({
        "argus": {"plugins": ["pmscanners"], "mode": "replay"},
        "run": {"venue": "replay", "strategies": ["pm_maker"], "risk_checks": [],
                "stale_after_s": 0, "starting_cash": "1000", "checkpoint_every_events": 1},
        "plugins": {"replay": {"ndjson": str(recording)}}}, tmp_path / "c.toml")
    strategy = strategy or Watched(s)
    runner = Runner(config, tmp_path / name, strategies={"pm_maker": strategy},
                    max_events=max_events)
    if isinstance(strategy, Watched):
        strategy.runner = runner
    runner.run_sync()
    return tmp_path / name, strategy


def ledger_rows(run_dir: Path, sql: str) -> list[dict[str, Any]]:
    with Ledger.in_dir(run_dir) as ledger:
        return list(ledger.query(sql))


def orders(run_dir: Path) -> list[dict[str, Any]]:
    """Orders in the order they were created (event number, then counter)."""
    rows = ledger_rows(run_dir, "select * from orders")

    def key(r: dict[str, Any]) -> tuple[int, int, int]:
        parts = r["client_order_id"].split("-")  # <run>-<event>-<slot>-<n>
        if len(parts) == 4 and parts[1].isdigit() and parts[3].isdigit():
            return r["ts_ns"], int(parts[1]), int(parts[3])
        return r["ts_ns"], 1 << 62, 0  # the core's own (settlement) orders

    return sorted(rows, key=key)


def fills(run_dir: Path) -> list[dict[str, Any]]:
    return ledger_rows(run_dir, "select * from fills order by ts_ns, fill_id")


def test_posts_a_post_only_bid_one_tick_inside_and_no_ask_without_shares(
        tmp_path: Path) -> None:
    run_dir, _ = run(tmp_path, [book(1, [(0.40, 100)], [(0.50, 100)])], settings())
    (order,) = orders(run_dir)
    # mid 0.45: bid 0.41 earns 0.04 - 0.005 adverse - 0.0041 fee; no ask (nothing held)
    assert (order["side"], D(order["limit_price"]), D(order["quantity"]),
            order["time_in_force"], order["status"], order["strategy"]) == (
        "buy", D("0.41"), D(5), "post_only", "open", "pm_maker")
    assert "edge 0.030900" in order["reason"]


def test_with_short_quoting_both_sides_go_one_tick_inside(tmp_path: Path) -> None:
    run_dir, _ = run(tmp_path, [book(1, [(0.40, 100)], [(0.50, 100)])],
                     settings(allow_short=True))
    assert [(o["side"], D(o["limit_price"]), o["reduce_only"]) for o in orders(run_dir)] == [
        ("buy", D("0.41"), 0), ("sell", D("0.49"), 0)]


def test_no_quote_when_the_edge_is_negative(tmp_path: Path) -> None:
    # a 4-tick spread earns 0.02 a side; an adverse selection of 0.03 leaves a loss
    events = [book(1, [(0.40, 100)], [(0.44, 100)]), book(2, [(0.40, 90)], [(0.44, 100)])]
    run_dir, strategy = run(tmp_path, events, settings({"adverse_floor": "0.03"},
                                                       allow_short=True))
    assert orders(run_dir) == [] and strategy.intents == []  # type: ignore[attr-defined]


def test_a_move_cancels_the_old_quote_before_posting_the_new_one(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.43, 10), (0.40, 100)], [(0.50, 100)]),  # someone bids above us
              book(3, [(0.43, 10), (0.40, 100)], [(0.50, 100)]),  # nothing new: no churn
              book(4, [(0.38, 100)], [(0.50, 100)])]  # the touch falls away: follow it
    run_dir, strategy = run(tmp_path, events, settings())
    rows = orders(run_dir)
    assert [(D(o["limit_price"]), o["status"]) for o in rows] == [
        (D("0.41"), "cancelled"), (D("0.44"), "cancelled"), (D("0.39"), "open")]
    assert "pm_maker: bid 0.41 -> 0.44" in rows[0]["status_reason"]
    assert "pm_maker: bid 0.44 -> 0.39" in rows[1]["status_reason"]
    # each move is one list: the cancel first, then the new quote
    moves = [i for _, i in strategy.intents[1:]]  # type: ignore[attr-defined]
    assert [[type(x).__name__ for x in m] for m in moves] == [["CancelIntent", "Intent"]] * 2
    assert strategy.most_per_side == 1  # type: ignore[attr-defined]


def test_book_deltas_move_the_quote_and_a_print_through_it_fills_it(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              BookDelta(IID, T0 + 2 * S, Side.BUY, D("0.43"), D(10)),  # bettered
              BookDelta(IID, T0 + 3 * S, Side.BUY, D("0.43"), D(0)),  # gone again
              trade(4, "0.40", "5")]
    run_dir, strategy = run(tmp_path, events, settings())
    assert [(D(o["limit_price"]), o["status"], D(o["filled_quantity"]))
            for o in orders(run_dir)] == [(D("0.41"), "cancelled", 0),
                                          (D("0.44"), "cancelled", 0),
                                          (D("0.41"), "filled", 5),
                                          (D("0.41"), "open", 0),  # a new bid, and
                                          (D("0.49"), "open", 0)]  # the 5 offered
    (fill,) = fills(run_dir)
    assert (D(fill["price"]), fill["liquidity"], D(fill["fee"])) == (
        D("0.41"), "maker", D("0.0205"))
    assert strategy.most_per_side == 1  # type: ignore[attr-defined]


def test_a_short_ask_fills_on_a_buy_print_through_it(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              trade(2, "0.495", "3", Side.BUY)]  # through our 0.49 ask, not our bid
    run_dir, _ = run(tmp_path, events, settings(allow_short=True))
    (fill,) = fills(run_dir)
    assert (fill["side"], D(fill["quantity"]), D(fill["price"]), fill["liquidity"],
            D(fill["fee"])) == ("sell", D(3), D("0.49"), "maker", D("0.0147"))
    (pos,) = ledger_rows(run_dir, "select * from positions")
    assert D(pos["quantity"]) == -3


def test_a_move_waits_for_the_minimum_requote_interval(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.43, 10), (0.40, 100)], [(0.50, 100)]),
              book(3.5, [(0.43, 10), (0.40, 100)], [(0.50, 100)]),
              book(6, [(0.43, 10), (0.40, 100)], [(0.50, 100)])]
    run_dir, _ = run(tmp_path, events, settings(min_requote_s=4.0))
    rows = orders(run_dir)
    assert [(D(o["limit_price"]), o["ts_ns"]) for o in rows] == [
        (D("0.41"), T0 + 1 * S), (D("0.44"), T0 + 6 * S)]  # 5 s after the first post


def test_adverse_order_flow_cancels_the_bid_at_once(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.40, 90)], [(0.50, 110)]),  # bids pulled, asks added: selling
              book(3, [(0.40, 30)], [(0.50, 300)])]
    run_dir, strategy = run(tmp_path, events, settings(min_requote_s=60.0, cancel_ofi=0.9))
    (order,) = orders(run_dir)
    assert order["status"] == "cancelled"
    assert "adverse OFI -1.000 against the bid" in order["status_reason"]
    (t_cancel, (cancel,)), = strategy.intents[1:]  # type: ignore[attr-defined]
    assert isinstance(cancel, CancelIntent) and t_cancel == T0 + 2 * S  # not held back


def test_adverse_order_flow_against_the_bid_leaves_the_ask_resting(tmp_path: Path) -> None:
    """Both sides quoted (short allowed); selling pressure: exactly one cancel, on the
    buy side, and the ask is the same order, still working, not cancelled and re-posted."""
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.40, 90)], [(0.50, 110)]),  # bids pulled, asks added: selling
              book(3, [(0.40, 90)], [(0.50, 110)])]
    run_dir, strategy = run(tmp_path, events, settings(min_requote_s=60.0, cancel_ofi=0.9,
                                                       allow_short=True))
    bid, ask = orders(run_dir)
    assert (bid["side"], bid["status"], ask["side"], ask["status"]) == (
        "buy", "cancelled", "sell", "open")
    assert "adverse OFI -1.000 against the bid" in bid["status_reason"]
    w = watched(strategy)
    assert [c[:2] for c in w.cancels()] == [(T0 + 2 * S, Side.BUY)]
    assert [len(out) for _, out in w.intents] == [2, 1]  # the cancel alone, no re-post
    assert w.working_at(3) == {ask["client_order_id"]}


def test_a_requote_of_one_side_moves_only_that_side(tmp_path: Path) -> None:
    """Someone bids above us while the flow nets out (the asks grew as much): the bid moves
    (a buy-side cancel, then the new bid, in one list); the ask's price is still right, so
    the ask keeps its order and its place."""
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.43, 10), (0.40, 100)], [(0.50, 110)]),  # OFI +10 - 10 = 0
              book(3, [(0.43, 10), (0.40, 100)], [(0.50, 110)])]
    run_dir, strategy = run(tmp_path, events, settings(allow_short=True))
    rows = orders(run_dir)
    assert [(o["side"], D(o["limit_price"]), o["status"]) for o in rows] == [
        ("buy", D("0.41"), "cancelled"), ("sell", D("0.49"), "open"),
        ("buy", D("0.44"), "open")]
    assert "pm_maker: bid 0.41 -> 0.44" in rows[0]["status_reason"]
    w = watched(strategy)
    (t, move), = w.intents[1:]
    assert t == T0 + 2 * S and [type(x).__name__ for x in move] == ["CancelIntent", "Intent"]
    assert isinstance(move[0], CancelIntent) and move[0].side is Side.BUY
    assert isinstance(move[1], Intent) and move[1].side is Side.BUY
    assert w.working_at(3) == {rows[1]["client_order_id"], rows[2]["client_order_id"]}
    assert w.most_per_side == 1


def test_a_published_ofi_signal_counts_when_the_own_window_is_quiet(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              Signal("ofi", IID, T0 + 2 * S, -0.9)]
    run_dir, _ = run(tmp_path, events, settings({"ofi_window_s": 1.0}))
    (order,) = orders(run_dir)
    assert order["status"] == "cancelled"
    assert "adverse OFI -0.900 against the bid" in order["status_reason"]


def test_partial_fills_are_booked_once_with_maker_fees_and_never_re_posted(
        tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              # more bids arrive (so the flow is not all one way), then prints go through
              # our 0.41 bid: 4 of 10, then the other 6
              book(2, [(0.40, 200)], [(0.50, 100)]), trade(2, "0.40", "4"),
              book(3, [(0.40, 300)], [(0.50, 100)]), trade(3, "0.40", "4"),
              book(4, [(0.40, 400)], [(0.50, 100)]), trade(4, "0.39", "50")]
    run_dir, strategy = run(tmp_path, events, settings({"quote_size": "10"},
                                                       cancel_ofi=1.0))
    rows = orders(run_dir)
    bid = rows[0]
    booked = fills(run_dir)
    assert [(f["client_order_id"], D(f["quantity"]), D(f["price"]), f["liquidity"],
             D(f["fee"])) for f in booked] == [
        (bid["client_order_id"], D(4), D("0.41"), "maker", D("0.0164")),
        (bid["client_order_id"], D(4), D("0.41"), "maker", D("0.0164")),
        (bid["client_order_id"], D(2), D("0.41"), "maker", D("0.0082"))]
    assert len({f["fill_id"] for f in booked}) == 3
    assert (bid["status"], D(bid["filled_quantity"])) == ("filled", D(10))
    # no second bid while the first rested partly filled (4 held: below the minimum
    # size, no ask yet); at 8 held the ask offers them, reduce-only; once the bid filled
    # in full a new one goes out, and the partly sized ask is left alone
    later = rows[1:]
    assert [(o["ts_ns"], o["side"], D(o["quantity"]), D(o["limit_price"]), o["reduce_only"])
            for o in later] == [(T0 + 3 * S, "sell", D(8), D("0.49"), 1),
                                (T0 + 4 * S, "buy", D(10), D("0.41"), 0)]
    (pos,) = ledger_rows(run_dir, "select * from positions")
    assert D(pos["quantity"]) == 10
    assert strategy.most_per_side == 1  # type: ignore[attr-defined]


def test_at_the_inventory_limit_only_the_reducing_side_is_quoted(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.40, 200)], [(0.50, 100)]), trade(2, "0.40", "5"),
              book(3, [(0.40, 300)], [(0.50, 100)]), trade(3, "0.40", "5"),  # 10 held
              book(4, [(0.42, 10), (0.40, 300)], [(0.48, 100)]),  # the touch moves
              trade(5, "0.48", "5", Side.BUY)]  # through our 0.47 ask: 5 held
    run_dir, strategy = run(tmp_path, events, settings(max_inventory=D(10),
                                                       cancel_ofi=1.0))
    rows = orders(run_dir)
    (pos,) = ledger_rows(run_dir, "select * from positions")
    assert D(pos["quantity"]) == 5
    buys = [(o["ts_ns"], D(o["quantity"]), o["status"]) for o in rows if o["side"] == "buy"]
    sells = [(o["ts_ns"], D(o["limit_price"]), D(o["quantity"]), o["reduce_only"],
              o["status"]) for o in rows if o["side"] == "sell"]
    # bids of 5 while under the limit (sized so a full fill stays within it); none while
    # 10 were held, though the touch moved; one again once the ask sold 5
    assert buys == [(T0 + 1 * S, D(5), "filled"), (T0 + 2 * S, D(5), "filled"),
                    (T0 + 5 * S, D(5), "open")]
    # the ask sells shares held, reduce-only, and follows the touch at the limit
    assert sells == [(T0 + 2 * S, D("0.49"), D(5), 1, "cancelled"),
                     (T0 + 4 * S, D("0.47"), D(5), 1, "filled"),
                     (T0 + 5 * S, D("0.47"), D(5), 1, "open")]
    held = Decimal(0)
    for f in fills(run_dir):  # never past the limit at any fill
        held += D(f["quantity"]) * (1 if f["side"] == "buy" else -1)
        assert held <= 10
    assert strategy.most_per_side == 1  # type: ignore[attr-defined]


def test_a_bid_working_when_the_limit_is_reached_is_cancelled_alone(tmp_path: Path) -> None:
    """The limit falls on a resting bid (a hot-swap handed over a smaller limit): the bid
    is cancelled at once, on its side only; the reducing ask keeps resting untouched (the
    same order, still working in the paper broker)."""
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.40, 200)], [(0.50, 100)]), trade(2, "0.40", "5"),
              book(3, [(0.40, 250)], [(0.50, 100)]),
              book(4, [(0.40, 250)], [(0.50, 100)])]
    s = settings(max_inventory=D(20), cancel_ofi=1.0)
    tight = settings(max_inventory=D(5), cancel_ofi=1.0).pm_maker

    class Tighten(Watched):
        def on_event(self, event: MarketEvent, ctx: StrategyContext
                     ) -> Sequence[Intent | CancelIntent]:
            if ctx.ts_ns >= T0 + 3 * S:
                self.settings = tight
            return super().on_event(event, ctx)

    strategy = Tighten(s)
    run_dir, _ = run(tmp_path, events, s, strategy=strategy)
    rows = orders(run_dir)
    bid2 = [o for o in rows if o["side"] == "buy"][1]
    assert bid2["status"] == "cancelled"
    assert "inventory 5 at its limit 5" in bid2["status_reason"]
    (ask,) = [o for o in rows if o["side"] == "sell"]  # posted once, never re-posted
    assert (ask["ts_ns"], ask["reduce_only"], ask["status"]) == (T0 + 2 * S, 1, "open")
    assert max(o["ts_ns"] for o in rows) == T0 + 2 * S  # nothing posted at the limit
    (cancel,) = [x for x in strategy.cancels() if x[0] == T0 + 3 * S]
    assert cancel[1] is Side.BUY
    assert strategy.working_at(3) == {bid2["client_order_id"], ask["client_order_id"]}
    assert strategy.working_at(4) == {ask["client_order_id"]}  # the ask kept resting
    assert strategy.most_per_side == 1


def test_a_settled_market_cancels_the_quotes_and_is_not_quoted_again(tmp_path: Path) -> None:
    events = [book(1, [(0.40, 100)], [(0.50, 100)]),
              book(2, [(0.40, 200)], [(0.50, 100)]), trade(2, "0.40", "5"),  # 5 held
              Settlement(IID, T0 + 3 * S, D(1), "resolved YES"),
              book(4, [(0.40, 100)], [(0.50, 100)])]
    run_dir, _ = run(tmp_path, events, settings(cancel_ofi=1.0))
    mine = [o for o in orders(run_dir) if o["strategy"] == "pm_maker"]
    assert all(o["ts_ns"] <= T0 + 2 * S for o in mine)  # nothing after the settlement
    assert {o["status"] for o in mine} == {"filled", "cancelled"}
    assert all("market settled" in o["status_reason"] for o in mine
               if o["status"] == "cancelled")
    (pos,) = ledger_rows(run_dir, "select * from positions")
    assert D(pos["quantity"]) == 0


class StatesAt(Watched):
    """Sets the trading state, as a person's ``argus kill`` / ``argus resume`` would, at
    the given times (seconds in).  The event that sets it still saw the old state."""

    def __init__(self, s: PmScannersSettings, states: list[tuple[float, TradingState]]
                 ) -> None:
        super().__init__(s)
        self.states = states

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        assert self.runner is not None
        due = [state for t, state in self.states if ctx.ts_ns >= T0 + int(t * S)]
        if due and self.runner.trading_state is not due[-1]:
            self.runner.set_trading_state(due[-1], "test", by_person=True)
        return super().on_event(event, ctx)


def _risk_events(run_dir: Path) -> list[dict[str, Any]]:
    return ledger_rows(run_dir, "select * from risk_events where action = 'veto'")


def test_halted_flat_the_strategy_posts_nothing(tmp_path: Path) -> None:
    """HALTED with nothing held: nothing to exit, so nothing is posted and nothing vetoed
    (the strategy before it read the trading state tried once per ``min_requote_s``: 3
    ``trading_state`` vetoes here), and no cancel follows the core's."""
    # the touch moves on every event for 20 s; HALTED from 2 s on
    events = [book(1 + k * 0.5, [(0.30 + 0.01 * (k % 5), 100)], [(0.60, 100)])
              for k in range(40)]
    s = settings(min_requote_s=5.0)
    run_dir, strategy = run(tmp_path, events, s,
                            strategy=StatesAt(s, [(2, TradingState.HALTED)]))
    rows = orders(run_dir)
    assert [o["status"] for o in rows] == ["cancelled"]  # the HALT cancelled the bid
    assert "HALTED" in rows[0]["status_reason"]
    assert _risk_events(run_dir) == []
    assert [t for t, _ in watched(strategy).intents] == [T0 + S]  # nothing after the post


def _fill_then(*later: MarketEvent) -> list[MarketEvent]:
    """A bid posted at 1 s and filled at 2 s (5 held: a reduce-only ask and a new bid go
    out), then ``later``."""
    return [book(1, [(0.40, 100)], [(0.50, 100)]),
            book(2, [(0.40, 200)], [(0.50, 100)]), trade(2, "0.40", "5"), *later]


def test_reducing_cancels_only_the_bid_and_quoting_resumes_when_active(
        tmp_path: Path) -> None:
    """REDUCING from 3 s to 6 s with 5 held: the bid (it would grow the position) is
    cancelled on its side only, naming the state; the reduce-only ask keeps resting, the
    same order throughout; back in ACTIVE the bid is posted again.  (The strategy before
    it read the trading state left the bid resting through REDUCING, where a fill would
    grow the position, and re-tried a vetoed bid whenever the touch moved.)"""
    events = _fill_then(*(book(t, [(0.40, 300)], [(0.50, 100)]) for t in range(3, 9)))
    s = settings(cancel_ofi=1.0, min_requote_s=1.0)
    run_dir, strategy = run(tmp_path, events, s, strategy=StatesAt(
        s, [(3, TradingState.REDUCING), (6, TradingState.ACTIVE)]))
    w = watched(strategy)
    rows = orders(run_dir)
    assert [(o["ts_ns"], o["side"], o["reduce_only"], o["status"]) for o in rows] == [
        (T0 + 1 * S, "buy", 0, "filled"), (T0 + 2 * S, "buy", 0, "cancelled"),
        (T0 + 2 * S, "sell", 1, "open"), (T0 + 7 * S, "buy", 0, "open")]
    bid, ask = rows[1], rows[2]
    # the core cancels it as the state changes (an order adding to the position; since
    # 2026-12-07), before the strategy's own cancel of it
    assert "trading REDUCING" in bid["status_reason"] and "adds to its position" in \
        bid["status_reason"], bid["status_reason"]
    # Since 2026-12-07 the core cancels the bid as the state changes (at 3 s); the event
    # that sets the state still shows ACTIVE to the strategy (``StatesAt``), which posts
    # the bid again there: vetoed by the state, once; nothing more while REDUCING (the
    # strategy's own cancel has nothing left to cancel); back in ACTIVE the bid again.
    assert [(t, [(type(x).__name__, x.side) for x in out]) for t, out in w.intents
            if t > T0 + 2 * S] == [(T0 + 3 * S, [("Intent", Side.BUY)]),
                                   (T0 + 7 * S, [("Intent", Side.BUY)])]
    assert all(ask["client_order_id"] in w.working_at(t) for t in range(3, 9))
    assert [(e["check_name"], e["action"], e["ts_ns"]) for e in _risk_events(run_dir)] == [
        ("trading_state", "veto", T0 + 3 * S)]
    assert w.most_per_side == 1


def test_halted_with_shares_only_the_exit_is_posted_again(tmp_path: Path) -> None:
    """HALTED at 3 s with 5 held: the core cancels both quotes; the strategy, seeing them
    gone from its orders, forgets them without a second cancel, posts the reduce-only ask
    again at once and moves it with the touch (each post passes: an exit).  The event
    that sets the kill still shows ACTIVE (``StatesAt``), so the bid posted beside the
    exit on it is vetoed by the state, once; none after."""
    later = [book(3, [(0.40, 300)], [(0.50, 100)]), book(4, [(0.40, 300)], [(0.50, 100)]),
             *(book(t, [(0.40, 300)], [(0.48, 150), (0.50, 100)]) for t in (5, 6, 7))]
    s = settings(cancel_ofi=1.0, min_requote_s=1.0)
    run_dir, strategy = run(tmp_path, _fill_then(*later), s,
                            strategy=StatesAt(s, [(3, TradingState.HALTED)]))
    w = watched(strategy)
    rows = orders(run_dir)
    assert [(o["ts_ns"], o["side"], D(o["limit_price"]), o["reduce_only"], o["status"])
            for o in rows] == [
        (T0 + 1 * S, "buy", D("0.41"), 0, "filled"),
        (T0 + 2 * S, "buy", D("0.41"), 0, "cancelled"),
        (T0 + 2 * S, "sell", D("0.49"), 1, "cancelled"),
        (T0 + 3 * S, "sell", D("0.49"), 1, "cancelled"),  # the exit, at once
        (T0 + 5 * S, "sell", D("0.47"), 1, "open")]  # following the touch
    assert all("HALTED" in o["status_reason"] for o in rows[1:3])
    assert [(c[0], c[1]) for c in w.cancels()] == [(T0 + 5 * S, Side.SELL)]
    assert [(e["ts_ns"], e["check_name"]) for e in _risk_events(run_dir)] == [
        (T0 + 3 * S, "trading_state")]
    assert w.most_per_side == 1


def _resume_events() -> list[MarketEvent]:
    return [book(1, [(0.40, 100)], [(0.50, 100)]),
            book(2, [(0.40, 200)], [(0.50, 100)]), trade(2, "0.40", "3"),
            book(3, [(0.42, 10), (0.40, 200)], [(0.50, 100)]),
            book(4, [(0.42, 10), (0.40, 150)], [(0.50, 120)]), trade(4, "0.405", "20"),
            book(5, [(0.38, 100)], [(0.50, 100)]),
            book(6, [(0.38, 100)], [(0.47, 100)]), trade(6, "0.48", "5", Side.BUY)]


@pytest.mark.parametrize("stop_after", [3, 6])
def test_resumed_from_a_checkpoint_the_ledger_is_the_uninterrupted_one(
        tmp_path: Path, stop_after: int) -> None:
    s = settings({"quote_size": "10"}, cancel_ofi=1.0)
    whole, _ = run(tmp_path, _resume_events(), s, name="whole", strategy=MakerStrategy(s))
    run(tmp_path, _resume_events(), s, name="cut", max_events=stop_after,
        strategy=MakerStrategy(s))
    cut, _ = run(tmp_path, _resume_events(), s, name="cut", strategy=MakerStrategy(s))

    def essence(run_dir: Path) -> tuple[list[Any], list[Any]]:
        keep = ("client_order_id", "side", "quantity", "limit_price", "status",
                "filled_quantity", "ts_ns")
        return ([tuple(o[k] for k in keep) for o in orders(run_dir)],
                [(f["client_order_id"], f["quantity"], f["price"], f["fee"])
                 for f in fills(run_dir)])

    w_orders, w_fills = essence(whole)
    c_orders, c_fills = essence(cut)
    strip = [(o[0].split("-", 1)[1], *o[1:]) for o in w_orders]
    assert strip == [(o[0].split("-", 1)[1], *o[1:]) for o in c_orders]
    assert [f[1:] for f in w_fills] == [f[1:] for f in c_fills]
    assert len(w_fills) >= 2 and len(w_orders) >= 3


# -- the strategy on its own: live-only rules, state ------------------------------------

def _ctx(market: MarketState, ts: float, held: int = 0, mode: str = "live",
         state: str = "active") -> StrategyContext:
    portfolio = Portfolio(D(1000), {IID: Position(IID, D(held))} if held else {})
    return StrategyContext(T0 + int(ts * S), portfolio, market, mode=mode,
                           trading_state=state)


def _market(*events: MarketEvent) -> MarketState:
    market = MarketState()
    market.add_instruments([INST])
    for event in events:
        market.apply(event)
    return market


def _kinds(out: Sequence[Intent | CancelIntent]) -> list[tuple[str, ...]]:
    """Cancels as ("cancel", side or "both"); posts as (side, price, size, tif[, "exit"])."""
    return [("cancel", x.side.value if x.side else "both") if isinstance(x, CancelIntent)
            else (x.side.value, str(x.limit_price), str(x.quantity), x.time_in_force.value,
                  *(("exit",) if x.reduce_only else ()))
            for x in out]


def test_live_our_own_quote_in_the_book_is_not_chased() -> None:
    """Live, the venue's book shows our resting bid: a level that is only ours is left
    out of the touch, so the quote does not climb over itself; a level where others
    joined us is a real touch."""
    strategy = MakerStrategy(settings())
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    assert _kinds(strategy.on_event(first, _ctx(market, 1))) == [
        ("buy", "0.41", "5", "gtc")]  # live: GTC priced not to cross
    ours = book(2, [(0.41, 5), (0.40, 100)], [(0.50, 100)])
    market.apply(ours)
    assert list(strategy.on_event(ours, _ctx(market, 2))) == []
    joined = book(3, [(0.41, 12), (0.40, 100)], [(0.50, 100)])
    market.apply(joined)
    assert _kinds(strategy.on_event(joined, _ctx(market, 3))) == [
        ("cancel", "buy"), ("buy", "0.42", "5", "gtc")]


def test_a_stale_book_cancels_and_nothing_is_posted_until_it_is_live() -> None:
    strategy = MakerStrategy(settings())
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    strategy.on_event(first, _ctx(market, 1))
    gone = BookStatus(IID, T0 + 2 * S, False, "websocket disconnected")
    market.apply(gone)
    (cancel,) = strategy.on_event(gone, _ctx(market, 2))
    assert isinstance(cancel, CancelIntent) and "websocket disconnected" in cancel.reason
    assert list(strategy.on_event(gone, _ctx(market, 2.5))) == []  # no spinning while blind
    back = book(3, [(0.40, 100)], [(0.50, 100)])
    market.apply(back)
    assert _kinds(strategy.on_event(back, _ctx(market, 3))) == [("buy", "0.41", "5", "gtc")]


@pytest.mark.parametrize("meta", [{"accepting_orders": False}, {"tradeable": False},
                                  {"closed": True}])
def test_quotes_are_pulled_when_the_market_stops_taking_orders(meta: dict[str, Any]) -> None:
    """Polymarket stops accepting orders (or closes the market) while the book stays live:
    the maker cancels both sides and posts nothing more (the scanners' rule)."""
    strategy = MakerStrategy(settings())
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    assert _kinds(strategy.on_event(first, _ctx(market, 1))) == [("buy", "0.41", "5", "gtc")]
    market.add_instruments([attrs.evolve(INST, meta=meta)])
    later = book(2, [(0.40, 100)], [(0.50, 100)])
    market.apply(later)
    (cancel,) = strategy.on_event(later, _ctx(market, 2))
    assert isinstance(cancel, CancelIntent) and "takes no orders" in cancel.reason
    assert list(strategy.on_event(later, _ctx(market, 3))) == []  # nothing posted


def test_state_round_trips_as_json_and_a_live_restart_starts_clean() -> None:
    """A restored strategy keeps its quotes and fills (replay and paper: the broker's
    state matches); restarted live, its first event for a token cancels, then posts."""
    s = settings({"quote_size": "10"})
    strategy = MakerStrategy(s)
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    strategy.on_event(first, _ctx(market, 1))
    later = book(2, [(0.40, 100)], [(0.50, 90)])  # asks thinning: no flow against the bid
    market.apply(later)
    strategy.on_event(later, _ctx(market, 2, held=4))  # 4 of the 10 filled
    state = json.loads(json.dumps(strategy.get_state()))
    assert state["tokens"][IID]["bid"] == {"price": "0.41", "quantity": "10",
                                           "posted_ns": T0 + S, "filled": "4"}
    assert state["ofi"]["steps"][IID]  # the OFI window travels with it

    paper = MakerStrategy(s)
    paper.set_state(state)
    assert paper.get_state() == state
    same = book(3, [(0.40, 100)], [(0.50, 90)])
    market.apply(same)
    assert list(paper.on_event(same, _ctx(market, 3, held=4, mode="paper"))) == []  # no re-post
    live = MakerStrategy(s)
    live.set_state(state)
    assert _kinds(live.on_event(same, _ctx(market, 3, held=4))) == [
        ("cancel", "both"), ("buy", "0.41", "10", "gtc")]
    assert list(live.on_event(same, _ctx(market, 4, held=4))) == []  # once per token


def test_a_checkpoint_from_before_per_side_pacing_stamps_both_sides() -> None:
    """A state as the strategy wrote it before the pacing was per side (one
    ``last_change_ns`` per token, no ``changed_ns``) restores both quotes with that stamp:
    a move of the bid waits ``min_requote_s`` from it, then moves the bid alone."""
    old = {"tokens": {IID: {
        "position": "0", "reset": "", "last_change_ns": T0 + 1 * S,
        "bid": {"price": "0.41", "quantity": "5", "posted_ns": T0 + 1 * S, "filled": "0"},
        "ask": {"price": "0.49", "quantity": "5", "posted_ns": T0 + 1 * S, "filled": "0"}}},
        "ofi": {"last": {IID: [[[0.40, 100.0]], [[0.50, 100.0]]]},
                "steps": {IID: [[T0 + 1 * S, 0.0, 100.0, 0]]}, "trades": {}}}
    strategy = MakerStrategy(settings(allow_short=True, min_requote_s=4.0))
    strategy.set_state(json.loads(json.dumps(old)))
    st = strategy.books[IID]
    assert (st.bid_changed_ns, st.ask_changed_ns) == (T0 + 1 * S, T0 + 1 * S)
    written = strategy.get_state()["tokens"][IID]
    assert written["changed_ns"] == {"bid": T0 + 1 * S, "ask": T0 + 1 * S}
    assert written["last_change_ns"] == T0 + 1 * S  # still readable by the old code
    # someone bids 0.43 while the asks grow as much (no net flow): the bid should move
    bettered = book(3, [(0.43, 10), (0.40, 100)], [(0.50, 110)])
    market = _market(bettered)
    assert list(strategy.on_event(bettered, _ctx(market, 3, mode="paper"))) == []  # 2 s
    again = book(5, [(0.43, 10), (0.40, 100)], [(0.50, 110)])
    market.apply(again)
    assert _kinds(strategy.on_event(again, _ctx(market, 5, mode="paper"))) == [
        ("cancel", "buy"), ("buy", "0.44", "5", "post_only")]
    assert strategy.books[IID].ask == Resting(D("0.49"), D(5), T0 + 1 * S)  # untouched


def test_a_post_never_meets_our_own_other_quote() -> None:
    """The bid may be posted (its interval passed) where our own ask still rests (its move
    must wait): the ask moves with it, so we never quote against ourselves."""
    s = settings(min_requote_s=5.0)
    strategy = MakerStrategy(s)
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    assert _kinds(strategy.on_event(first, _ctx(market, 1, mode="paper"))) == [
        ("buy", "0.41", "5", "post_only")]
    # filled: 5 held, so the ask goes out now; the bid must wait until 6 s (posted at 1)
    assert _kinds(strategy.on_event(first, _ctx(market, 2, held=5, mode="paper"))) == [
        ("sell", "0.49", "5", "post_only", "exit")]
    sold = trade(5.9, "0.40", "150")  # sellers, so the flow below is not all one way
    market.apply(sold)
    assert list(strategy.on_event(sold, _ctx(market, 5.9, held=5, mode="paper"))) == []
    up = book(6.5, [(0.48, 100)], [(0.60, 100)])  # the touch jumps to 0.48/0.60
    market.apply(up)
    # the bid (free since 6 s) goes to 0.49, where our ask (moved at 2 s: waits until
    # 7 s) rests: the ask moves to 0.59 with it
    out = strategy.on_event(up, _ctx(market, 6.5, held=5, mode="paper"))
    assert _kinds(out) == [("cancel", "sell"), ("buy", "0.49", "5", "post_only"),
                           ("sell", "0.59", "5", "post_only", "exit")]
    assert "ask 0.49 moves with the bid 0.49" in out[0].reason


def test_reducing_replaces_a_working_ask_that_would_go_short() -> None:
    """Short allowed, 6 of the bid's 10 filled, the 10-share ask resting: in REDUCING the
    bid would grow the position and the ask would sell through zero; both are cancelled
    (each on its side), the ask posted again at once as a 6-share exit; back in ACTIVE the
    bid returns and the exit keeps resting."""
    strategy = MakerStrategy(settings({"quote_size": "10"}, allow_short=True, cancel_ofi=1.0))
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    assert _kinds(strategy.on_event(first, _ctx(market, 1, mode="paper"))) == [
        ("buy", "0.41", "10", "post_only"), ("sell", "0.49", "10", "post_only")]
    assert list(strategy.on_event(first, _ctx(market, 2, held=6, mode="paper"))) == []
    out = strategy.on_event(first, _ctx(market, 3, held=6, mode="paper", state="reducing"))
    assert _kinds(out) == [("cancel", "buy"), ("cancel", "sell"),
                           ("sell", "0.49", "6", "post_only", "exit")]
    assert "trading is reducing: a bid would grow the position 6" in out[0].reason
    assert "trading is reducing: ask 0.49 (10 left) would grow the position 6" in out[1].reason
    assert list(strategy.on_event(first, _ctx(market, 4, held=6, mode="paper",
                                              state="reducing"))) == []  # the exit rests
    assert _kinds(strategy.on_event(first, _ctx(market, 5, held=6, mode="paper"))) == [
        ("buy", "0.41", "10", "post_only")]


def test_halted_after_a_restore_resets_before_posting_the_exit() -> None:
    """A restored strategy cannot know whether the core's HALTED cancel came after its
    quotes were posted: its first halted look cancels both sides, then posts the exit."""
    strategy = MakerStrategy(settings(cancel_ofi=1.0))
    first = book(1, [(0.40, 100)], [(0.50, 100)])
    market = _market(first)
    strategy.on_event(first, _ctx(market, 1, held=5, mode="paper"))
    assert strategy.books[IID].bid is not None and strategy.books[IID].ask is not None
    restored = MakerStrategy(settings(cancel_ofi=1.0))
    restored.set_state(json.loads(json.dumps(strategy.get_state())))
    out = restored.on_event(first, _ctx(market, 2, held=5, mode="paper", state="halted"))
    assert _kinds(out) == [("cancel", "both"), ("sell", "0.49", "5", "post_only", "exit")]
    assert "trading is halted" in out[0].reason
    # a strategy that saw the state change forgets its quotes without a cancel
    assert _kinds(strategy.on_event(first, _ctx(market, 2, held=5, mode="paper",
                                                state="halted"))) == [
        ("sell", "0.49", "5", "post_only", "exit")]
