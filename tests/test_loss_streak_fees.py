"""The loss-streak breaker judges a trade net of its fees: what it paid to leave and its
share of what it paid to enter.  An exit whose gain the fees ate, or one at the entry
price, is a loss (the check counted realised P&L alone, so a strategy bleeding fees on
every round trip never tripped it).  Expected values are worked by hand."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from argus_core.builtins.risk_checks import ConsecutiveLosses, RiskSettings
from argus_core.interfaces import RiskContext
from argus_core.models import Fill, Intent, Liquidity, Portfolio, Position, Side

IID = "replay:X"


class Book:
    """One instrument's position, moved by fills as the account moves it."""

    def __init__(self, check: ConsecutiveLosses, ctx: RiskContext) -> None:
        self.check, self.ctx, self.position, self.n = check, ctx, Position(IID), 0

    def fill(self, side: Side, qty: str, price: str, fee: str, ts: int) -> None:
        self.n += 1
        f = Fill(f"f{self.n}", "o", "v", IID, side, price, qty, fee, Liquidity.TAKER, ts)
        self.position = self.position.apply(f)
        self.check.on_fill(f, Portfolio(D(1000), {IID: self.position}), self.ctx)

    def streak(self) -> int:
        """The streak once the open group is judged (the check's next call does it)."""
        pf = Portfolio(D(1000), {IID: self.position})
        self.check.check(Intent("s", IID, Side.BUY, quantity="1"), D(1), D(1), pf, self.ctx)
        return self.ctx.consecutive_losses


def book(limit: int = 8) -> Book:
    return Book(ConsecutiveLosses(RiskSettings(max_consecutive_losses=limit)), RiskContext())


def test_a_gain_the_fees_ate_is_a_loss_and_two_trip_the_breaker() -> None:
    b = book(limit=2)
    for k in range(2):  # +0.05 on the prices, 0.10 of fees: -0.05 each
        b.fill(Side.BUY, "10", "1.00", "0.05", 10 * k + 1)
        b.fill(Side.SELL, "10", "1.005", "0.05", 10 * k + 2)
        assert b.streak() == k + 1
    assert b.ctx.trading_state == "reducing"
    assert b.ctx.fees_open == {}


def test_an_exit_at_the_entry_price_is_a_loss_of_its_fees() -> None:
    b = book()
    b.fill(Side.BUY, "10", "1.00", "0.05", 1)
    b.fill(Side.SELL, "10", "1.00", "0.05", 2)
    assert b.ctx.loss_group == [2, "-0.10"]
    assert b.streak() == 1


def test_a_gain_beyond_the_fees_is_a_win() -> None:
    b = book()
    b.fill(Side.BUY, "10", "1.00", "0.05", 1)
    b.fill(Side.SELL, "10", "1.00", "0.05", 2)
    b.fill(Side.BUY, "10", "1.00", "0.05", 3)
    b.fill(Side.SELL, "10", "1.02", "0.05", 4)  # +0.20 - 0.10
    assert b.streak() == 0


def test_partial_closes_bear_the_entry_fees_pro_rata() -> None:
    b = book()
    b.fill(Side.BUY, "10", "2", "1.0", 1)
    b.fill(Side.SELL, "4", "3", "0.4", 2)  # +4, entry 0.4, own 0.4: +3.2
    assert D(b.ctx.loss_group[1]) == D("3.2") and D(b.ctx.fees_open[IID]) == D("0.6")
    assert b.streak() == 0
    b.fill(Side.SELL, "6", "1.9", "0.6", 3)  # -0.6, entry 0.6, own 0.6: -1.8
    assert D(b.ctx.loss_group[1]) == D("-1.8") and IID not in b.ctx.fees_open
    assert b.streak() == 1


def test_a_flip_closes_with_its_share_and_carries_the_rest() -> None:
    b = book()
    b.fill(Side.BUY, "5", "1", "0.5", 1)
    b.fill(Side.SELL, "8", "1", "0.8", 2)  # closes 5 (0.5 own + 0.5 entry), opens 3 short
    assert D(b.ctx.loss_group[1]) == D("-1.0")
    assert D(b.ctx.fees_open[IID]) == D("0.3")
    b.fill(Side.BUY, "3", "0.5", "0.3", 3)  # the short gains 1.5, fees 0.6: +0.9
    assert D(b.ctx.loss_group[1]) == D("0.9")


def test_a_busts_refund_leaves_no_negative_entry_fees() -> None:
    b = book()
    b.fill(Side.BUY, "5", "1", "0.5", 1)
    b.fill(Side.SELL, "5", "1.2", "0.5", 2)
    b.fill(Side.BUY, "5", "1.2", "-0.5", 3)  # the sale busted: its offset, fee refunded
    assert D(b.ctx.fees_open.get(IID, "0")) >= 0



def test_the_open_fees_survive_a_restart(tmp_path: Path) -> None:
    """Stopped mid-position and resumed: one event later the resumed run holds the entry
    fees and the open trade the straight run holds (a restart that dropped them judged
    the next exit by its own fee alone)."""
    from test_bar_runs import replay, write_bars
    seed = 5  # taker 40 bps (see test_bar_runs.config)
    write_bars(tmp_path / "bars.csv", seed)
    held_at_stop = 0
    for stop in (401, 1234, 2001):
        first = replay(tmp_path, f"resumed{stop}", seed, stretches=False, max_events=stop)
        held_at_stop += bool(first.risk.ctx.fees_open)
        again = replay(tmp_path, f"resumed{stop}", seed, stretches=False,
                       max_events=stop + 1)  # resumed: one event more
        straight = replay(tmp_path, f"straight{stop}", seed, stretches=False,
                          max_events=stop + 1)
        assert again.risk.ctx.fees_open == straight.risk.ctx.fees_open
        assert again.risk.ctx.loss_group == straight.risk.ctx.loss_group
    assert held_at_stop  # at least one stop fell inside a position
