"""The replay-honesty campaign (:mod:`replay_campaign`): seeded random market data and a
random strategy through the real Runner, every fill judged against a reference written
from the paper broker's docstring, every equity row against the marks the data
justifies, and each seed replayed twice and once stopped and resumed.

Findings the core has not fixed yet are pinned by shrunk, deterministic regression tests
marked ``xfail(strict=True)`` with the exact core change in the reason; the sweeps
tolerate those classes (:data:`KNOWN`) until it lands, and fail on anything else with
the seed and a trace.  A failing seed is shrunk with :func:`replay_campaign.shrink`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import replay_campaign as rc

from argus_core import Bar, OrderBook, Trade
from argus_core import paper as core_paper

#: Classes of problem the campaign found whose fix is a core change still to land (each
#: pinned by a strict xfail below): tolerated by the sweeps until it lands.  All six of
#: the first round's are fixed (their regression tests below pass).
KNOWN: dict[str, str] = {
}


def known(problem: str) -> bool:
    """Whether ``problem`` is of a class pinned below."""
    return any(k in problem for k in KNOWN)


def _fails(result: rc.Result, *, strict: bool = False) -> str:
    problems = result.problems if strict else tuple(p for p in result.problems
                                                    if not known(p))
    return rc.Result(result.plan, problems, result.orders, result.fills,
                     result.seconds).report() if problems else ""


SEEDS = range(30)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed(seed: int, tmp_path: Path) -> None:
    """One seed: every fill honest, every mark justified, replays identical."""
    result = rc.run_seed(seed, tmp_path)
    assert not _fails(result), _fails(result)


#: Seeds a wide sweep (5000-9799, outside CI) failed on, each for a reason fixed since:
#: a paper FOK order on bars filled in part (the walk's lot floors fell short of the
#: levels' summed sizes): 7680, 8067; a resumed run's resting order forgot its send time
#: and took a print stamped at the send: 5429; the checker's own faults: a position opened
#: on a book with no live mid (one-sided) is marked at its fill until a market price
#: comes (the documented fallback): 5009, 5151, 5332, 5469; slippage and the tick mapping
#: two levels onto one price (the walk takes the best level first): 5863.
WIDE_SEEDS = (5009, 5151, 5332, 5429, 5469, 5863, 7680, 8067)


@pytest.mark.parametrize("seed", WIDE_SEEDS)
def test_what_the_wide_sweep_found(seed: int, tmp_path: Path) -> None:
    result = rc.run_seed(seed, tmp_path)
    assert not _fails(result, strict=True), _fails(result, strict=True)


@pytest.mark.slow
def test_long_sweep(tmp_path: Path) -> None:
    """Seeds 1000-1299 (about a minute at load 1)."""
    bad = rc.sweep(range(1000, 1300), tmp_path, known)
    assert not bad, "\n".join(_fails(r) for r in bad[:3])


def test_the_campaign_trades_every_kind_of_data(tmp_path: Path) -> None:
    """The seeds in the suite reach bars, books and prints, fills of both kinds, equity
    rows and resumed runs: a campaign that never traded would check nothing."""
    kinds, fills, orders = set(), 0, 0
    for seed in range(6):
        plan = rc.make_plan(seed)
        kinds |= {s.kind for s in plan.specs}
        r = rc.run_seed(seed, tmp_path / str(seed), twice=False)
        fills, orders = fills + r.fills, orders + r.orders
    assert kinds == {"bars", "book", "prints"}
    assert orders > 100 and fills > 50


# -- the reference catches a broker that cheats (each mutation must be reported) -------------
def _problems(seeds: range, tmp_path: Path) -> list[str]:
    return [p for s in seeds for p in rc.run_seed(s, tmp_path / str(s), twice=False).problems]


def test_a_broker_that_fills_on_the_bar_in_progress_is_caught(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """Lookahead: every bar counted as opened after the send."""
    monkeypatch.setattr(core_paper.PaperBroker, "_opened_after_sent",
                        staticmethod(lambda work, bar: True))
    # Plans with two bar instruments: orders sent on one's bar meet the other's in progress.
    seeds = [s for s in range(80) if sum(p.kind == "bars" for p in rc.make_plan(s).specs) > 1]
    found = [p for s in seeds[:8] for p in rc.run_seed(s, tmp_path / str(s),
                                                        twice=False).problems]
    assert any("before its first price after the send" in p for p in found), found[:5]


def test_a_broker_that_rounds_for_the_trader_is_caught(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Prices rounded in the trader's favour (buys down, sells up) onto the tick."""
    real = core_paper._tick_round
    monkeypatch.setattr(core_paper, "_tick_round",
                        lambda price, side, inst: real(price, side.opposite(), inst))
    found = _problems(range(10), tmp_path)
    assert any("moved against the trader onto the tick" in p for p in found), found[:5]


def test_a_broker_that_forgets_fees_is_caught(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No fee on any fill."""
    monkeypatch.setattr(core_paper, "_FEE_UNIT", Decimal("1e-8"))
    monkeypatch.setattr(core_paper.PaperBroker, "fees",
                        lambda self, iid: rc_free_schedule())
    found = _problems(range(6), tmp_path)
    assert any("fee" in p and "!= the rules'" in p for p in found), found[:5]


def rc_free_schedule() -> object:
    """A schedule that charges nothing."""
    from argus_core import FeeSchedule

    return FeeSchedule()


def test_a_broker_that_fills_a_touch_is_caught(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A resting limit filled where the market only touched it (or did not reach it)."""
    def rest(self: core_paper.PaperBroker, work: core_paper.Working, event: object, *,
             taken: Decimal | int = 0) -> list[object]:
        if not isinstance(event, Trade | Bar) or work.order.limit_price is None:
            return []
        qty = min(work.remaining, Decimal(1) * work.order.quantity)
        fill = self._fill(work, work.order.limit_price, qty, event.ts_ns,
                          core_paper.Liquidity.MAKER)
        self._finish(work, core_paper.OrderStatus.FILLED)
        return [fill]

    monkeypatch.setattr(core_paper.PaperBroker, "_rest_fill", rest)
    found = _problems(range(10), tmp_path)
    assert any("did not trade through it" in p for p in found), found[:5]


def test_a_book_taker_at_the_mid_is_caught(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A taker filled at the mid of the book instead of its touch."""
    real = core_paper.PaperBroker._walk

    def at_mid(self: core_paper.PaperBroker, work: core_paper.Working,
               levels: list[tuple[float, float]], ts_ns: int, **kw: object) -> list[object]:
        book = self.market.books.get(work.order.instrument_id)
        if book is not None and book.bids and book.asks and not kw.get("from_bar"):
            mid = (max(book.bids) + min(book.asks)) / 2
            levels = [(mid, q) for _, q in levels[:1]]
            kw["ladder"] = None  # nothing to take back: the mid is no level
        return real(self, work, levels, ts_ns, **kw)  # type: ignore[arg-type]  # test double

    monkeypatch.setattr(core_paper.PaperBroker, "_walk", at_mid)
    found = _problems(range(10), tmp_path)
    assert any("is no level of the" in p for p in found), found[:5]


def test_plans_are_deterministic() -> None:
    """The same seed draws the same plan (a failing seed reproduces)."""
    a, b = rc.make_plan(7), rc.make_plan(7)
    assert [rc.describe(e) for e in a.events] == [rc.describe(e) for e in b.events]
    assert a.paper == b.paper and a.specs == b.specs
    assert any(isinstance(e, OrderBook) for s in range(8)
               for e in rc.make_plan(s).events)


# -- findings, shrunk to a few events each (each was a strict xfail until its core fix) ----
def _pinned(tmp_path: Path, seed: int, keep: list[int], fragment: str, *,
            twice: bool = False) -> None:
    """Seed ``seed``'s plan cut to the events at ``keep`` shows no problem with
    ``fragment`` (it does until the core change lands)."""
    plan = rc.make_plan(seed).keep(keep)
    result = rc.run_seed(seed, tmp_path, plan, twice=twice)
    assert result.fills or result.orders, "the shrunk plan no longer trades"
    assert not [p for p in result.problems if fragment in p], result.report()


def test_liq_a_print_is_shared_by_every_order_it_fills(tmp_path: Path) -> None:
    """Seed 4, three prints: fills on one print never exceed its size."""
    _pinned(tmp_path, 4, [57, 58, 60], "more than the data's liquidity")


def test_liq_a_bar_never_fills_more_than_its_volume(tmp_path: Path) -> None:
    """Seed 7, two bars: fills on one bar never exceed its volume."""
    _pinned(tmp_path, 7, [20, 21], "more than the data's liquidity")


def test_reduce_only_never_opens_exposure(tmp_path: Path) -> None:
    """Seed 7, four bars: a reduce-only exit never flips the position."""
    _pinned(tmp_path, 7, [10, 11, 29, 31], "it opens exposure")


def test_mark_a_position_a_print_opened_is_worth_the_print(tmp_path: Path) -> None:
    """Seed 53, two prints and a bar: the row values the position at the print."""
    _pinned(tmp_path, 53, [36, 38, 39], "marks: equity row")


def test_resume_an_order_restored_and_closed_unfilled_is_closed_in_the_ledger(
        tmp_path: Path) -> None:
    """Seed 57, two bars, stopped after the first: the orders table matches."""
    _pinned(tmp_path, 57, [0, 1], "resume: stopped after event", twice=True)


def test_resume_keeps_what_paper_takers_took(tmp_path: Path) -> None:
    """Seed 54, a print, a book and two deltas, stopped after the third event."""
    _pinned(tmp_path, 54, [3, 49, 52, 76], "fills differ", twice=True)
