"""The second pass of the loop's speed work (issue 14 item 2) against the plain paths it
replaced: each cached or shortcut path is checked here against the straightforward
computation, kept as the reference.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_loop_speed_ledgers import digest_ledger, multi_bars_run

from argus_core.account import Account
from argus_core.builtins.risk_checks import MaxDrawdownKill, RiskSettings
from argus_core.interfaces import RiskCheck, RiskContext
from argus_core.market_state import L2Book, MarketState
from argus_core.models import (
    BookDelta,
    DecimalLike,
    Fill,
    Intent,
    Liquidity,
    MarketEvent,
    Portfolio,
    Position,
    RiskDecision,
    Side,
)
from argus_core.risk import RiskEngine
from argus_core.runner import Runner
from argus_core.serde import dump_event, load_event

INSTRUMENTS = [f"v:S{k}" for k in range(16)]


def _reference_valuation(acct: Account) -> tuple[Decimal, Decimal]:
    """The plain loop the account's cached per-instrument values replaced."""
    equity, gross = acct.cash, Decimal(0)
    for iid, pos in acct.positions.items():
        if pos.quantity:
            mark = acct.marks.get(iid)
            value = pos.quantity * (mark if mark is not None else pos.avg_price)
            equity += value
            gross += abs(value)
    return equity, gross


def _reference_book_equity(acct: Account) -> dict[str, Decimal]:
    out = {}
    for slot, book in acct.books.items():
        held = Decimal(0)
        for iid, p in book.positions.items():
            if p.quantity:
                mark = acct.marks.get(iid)
                held += p.quantity * (mark if mark is not None else acct.last_price[iid])
        out[slot] = book.cash + held
    return out


def _random_fill(rng: random.Random, acct: Account, slots: list[str], n: int, iid: str,
                 price: Decimal, step: int) -> None:
    """Fill ``n``: a random side and size, booked in the account and in a random slot's
    book (or shared by the holders, as a flattening order is)."""
    qty = Decimal(rng.randint(1, 400)) / 100
    fill = Fill(f"f{n}", f"o{n}", "v", iid, rng.choice([Side.BUY, Side.SELL]), price,
                qty, Decimal("0.01"), Liquidity.TAKER, step)
    acct.apply(fill)
    acct.apply_to_books(fill, rng.choice([*slots, "flatten"]))


def test_cached_valuation_equals_the_plain_loop_over_many_instruments() -> None:
    rng = random.Random(14)
    slots = [f"s{k}" for k in range(4)]
    acct = Account(Decimal(1_000_000), {s: Decimal(250_000) for s in slots})
    n = 0
    for step in range(3000):
        iid = rng.choice(INSTRUMENTS)
        price = Decimal(rng.randint(9_000, 11_000)) / 100
        if rng.random() < 0.3:  # a fill: opens, adds, closes or flips
            n += 1
            _random_fill(rng, acct, slots, n, iid, price, step)
        else:
            acct.mark(iid, price if rng.random() < 0.5 else float(price))
        want = _reference_valuation(acct)
        if rng.random() < 0.5:  # the drawdown watch's equity alone first, or after
            assert acct.marked_equity().as_tuple() == want[0].as_tuple()
        assert acct.valuation() == want
        assert acct.marked_equity().as_tuple() == acct.valuation()[0].as_tuple()
        assert acct.book_equity() == _reference_book_equity(acct)
    restored = Account(Decimal(0))
    restored.set_state(acct.get_state())
    assert restored.valuation() == _reference_valuation(acct)


def test_the_drawdown_shortcut_trips_exactly_where_the_division_does() -> None:
    rng = random.Random(3)
    check = MaxDrawdownKill(RiskSettings(max_drawdown_fraction=Decimal("0.25")))
    ctx = RiskContext()
    ctx.peak_equity = Decimal(1000)
    for _ in range(5000):
        if rng.random() < 0.02:
            ctx.peak_equity = Decimal(rng.randint(900, 1100))
        equity = Decimal(rng.randint(700_000, 1_100_000)) / 1000
        peak = ctx.peak_equity
        plain = (peak - equity) / peak > Decimal("0.25")
        assert (check.on_equity(equity, ctx) is not None) is plain, (peak, equity)


def test_the_risk_engine_sees_a_watch_added_after_its_first_mark() -> None:
    class Trips(RiskCheck):
        name = "trips"

        def check(self, intent: Intent, quantity: Decimal, price: Decimal,
                  portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
            return RiskDecision.allow(self.name)

        def on_equity(self, equity: Decimal, ctx: RiskContext) -> str | None:
            return "tripped"

    engine = RiskEngine([])
    assert engine.on_equity(Decimal(100)) is None
    engine.checks.append(Trips())
    assert engine.on_equity(Decimal(100)) == "tripped"


@pytest.mark.parametrize("price, size", [(30_000.1, 0.5), ("0.53", "12"),
                                         (Decimal("101.25"), 0), (7, 3)])
def test_a_book_delta_carries_its_floats_and_applies_as_the_plain_path(
        price: DecimalLike, size: DecimalLike) -> None:
    delta = BookDelta("v:X", 5, Side.SELL, price, size)
    assert (delta.price_f, delta.size_f) == (float(delta.price), float(delta.size))
    again = load_event(dump_event(delta))
    assert isinstance(again, BookDelta)
    assert again == delta and again.price_f == delta.price_f
    assert "price_f" not in dump_event(delta)
    market = MarketState()
    market.apply(BookDelta("v:X", 4, Side.SELL, 1e9, 1.0))
    market.apply(delta)
    plain = L2Book("v:X")  # the reference: the book's own apply, with float(Decimal)
    plain.apply(Side.SELL, 1e9, 1.0, 4)
    plain.apply(Side.SELL, float(delta.price), float(delta.size), 5)
    got = market.books["v:X"]
    assert (got.asks, got.bids, got.ts_ns, got.version) == (plain.asks, plain.bids, 5, 2)


def test_fills_of_orders_the_engine_does_not_remember_book_from_the_ledger(
        tmp_path: Path) -> None:
    """A fill of an order sent before a restart finds its slot (and basket) in the
    ledger: forgetting every sent order before each event gives the same ledger."""
    plain = multi_bars_run(tmp_path, tmp_path / "plain")
    plain.run_sync()
    forgetful = multi_bars_run(tmp_path, tmp_path / "forgetful")
    on_event = forgetful._on_event

    def forget_then(event: MarketEvent) -> None:
        forgetful.engine._sent.clear()
        on_event(event)

    forgetful._on_event = forget_then  # type: ignore[method-assign]  # the test's wrapper
    forgetful.run_sync()
    assert digest_ledger(tmp_path / "forgetful") == digest_ledger(tmp_path / "plain")


def _reference_portfolio_sums(p: Portfolio) -> tuple[Decimal, Decimal]:
    """``Portfolio.equity`` and ``gross_exposure`` as written before the one-pass cache."""
    equity = p.cash + sum((q.quantity * p.mark(i) for i, q in p.positions.items()),
                          Decimal(0))
    gross = sum((abs(q.quantity * p.mark(i)) for i, q in p.positions.items()), Decimal(0))
    return equity, gross


def test_portfolio_sums_once_and_to_the_digit_of_the_plain_sums() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        positions, marks = {}, {}
        for iid in rng.sample(INSTRUMENTS, rng.randint(0, 16)):
            # Flat positions (a zero term with its own exponent), long and short, and
            # 28-digit products that round, so the order of the additions shows.
            qty = Decimal(rng.choice([0, 1, -1]) * rng.randint(1, 10**12)).scaleb(
                -rng.randint(0, 12))
            avg = Decimal(rng.randint(1, 10**15)).scaleb(-rng.randint(0, 10))
            positions[iid] = Position(iid, qty, avg)
            if qty and rng.random() < 0.8:
                marks[iid] = Decimal(rng.randint(1, 10**15)).scaleb(-rng.randint(0, 10))
        cash = Decimal(rng.randint(-10**20, 10**20)).scaleb(-rng.randint(0, 8))
        portfolio = Portfolio(cash, positions, marks)
        equity, gross = _reference_portfolio_sums(portfolio)
        assert (portfolio.equity.as_tuple(), portfolio.gross_exposure.as_tuple()) == (
            equity.as_tuple(), gross.as_tuple())
        assert portfolio == Portfolio(cash, positions, marks)  # the cache is not state


def test_book_equity_rows_are_the_plain_book_equity_formatted() -> None:
    """The runner's per-book rows, carried forward (a book's row is written only when its
    cash or equity text moved), against ``Account.book_equity`` formatted afresh at every
    timestamp; no row repeats its book's last one."""
    rng = random.Random(15)
    slots = [f"s{k}" for k in range(6)]
    acct = Account(Decimal(600_000), {s: Decimal(100_000) for s in slots})
    state = SimpleNamespace(account=acct, _row_valued=None, _row_text=("", "", ""),
                            _cash_text=(None, ""), _book_text={}, _book_rows=[],
                            _equity_rows=[], _slot_json={}, _day_end_ns=1 << 62)
    n = written = 0
    carried: dict[str, tuple[str, str]] = {}  # each book's last row (cash, equity)
    for step in range(3000):
        iid = rng.choice(INSTRUMENTS[:6])
        price = Decimal(rng.randint(9_000, 11_000)) / 100
        if rng.random() < 0.2:  # a fill; a flattening one leaves books flat
            n += 1
            _random_fill(rng, acct, slots, n, iid, price, step)
        elif rng.random() < 0.7:
            acct.mark(iid, price)
        state._book_rows = []
        Runner._equity_row(state, step)  # type: ignore[arg-type]  # the fields it reads
        for ts, books in state._book_rows:  # one JSON row of the books that moved
            assert ts == step
            for slot, (cash, equity) in json.loads(books).items():
                assert carried.get(slot) != (cash, equity), (step, slot)
                carried[slot] = (cash, equity)
                written += 1
        expected = {slot: (str(book.cash), str(value.quantize(Decimal("1e-8"))))
                    for (slot, value), book in zip(acct.book_equity().items(),
                                                   acct.books.values(), strict=True)}
        assert carried == expected, step
    assert 3000 < written < 3000 * len(slots) * 0.9  # books sat unmoved, and were skipped


def test_redact_cache_answers_as_the_uncached_redaction() -> None:
    """``redact`` caches short texts' answers (an order's reason repeats on every order):
    each answer equals the uncached one, a value remembered after a text was cached is
    redacted the next time, and forgetting it brings the text back."""
    from argus_core import secrets

    rng = random.Random(14)
    pieces = ["fast SMA crossed above slow", "api_key=abcd1234efgh", "é", "\ud800", " ",
              "Bearer tok123456789", "x" * 300, "secret: 'hunter22hunter'"]
    secrets.forget_all()
    try:
        for _ in range(400):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
            for _ in range(2):  # the second call is answered by the cache (if short)
                assert secrets.redact(text) == secrets._redact.__wrapped__(text, None)
        reason = "flatten: token-abcdef-1234 seen"
        assert secrets.redact(reason) == reason  # cached, nothing to hide yet
        secrets.remember("token-abcdef-1234")
        assert secrets.redact(reason) == "flatten: [REDACTED] seen"
    finally:
        secrets.forget_all()
    assert secrets.redact(reason) == reason
