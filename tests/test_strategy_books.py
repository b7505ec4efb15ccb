"""Every strategy slot keeps its own book inside one run and one ledger: its capital,
cash, positions, fees and equity curve; the books sum to the account exactly, including
the engine's own orders (flattening, settlement) that close positions for everyone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml
from click.testing import CliRunner

from argus_core.account import Account, capital_split
from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.cli import cli
from argus_core.config import load_config
from argus_core.errors import ConfigError
from argus_core.interfaces import FeeSchedule, Sizer
from argus_core.ledger import Ledger
from argus_core.models import Fill, Instrument, Intent, Liquidity, Portfolio, Side
from argus_core.runner import Runner

IID = "kraken:XBT/USD"
CENT = Decimal("0.01")


def _fill(n: int, side: Side, qty: str, price: str, fee: str = "0") -> Fill:
    return Fill(f"f{n}", f"o{n}", "kraken", IID, side, Decimal(price), Decimal(qty),
                Decimal(fee), Liquidity.TAKER, n)


def _assert_books_sum(account: Account) -> None:
    books = account.books.values()
    assert sum((b.cash for b in books), Decimal(0)) == account.cash
    assert sum((b.fees_paid for b in books), Decimal(0)) == account.fees_paid
    held = sum((b.positions[IID].quantity for b in books if IID in b.positions), Decimal(0))
    assert held == account.positions[IID].quantity
    assert sum(account.book_equity().values(), Decimal(0)) == account.equity()


def test_capital_shares_named_slots_split_the_rest_and_the_books_sum_to_the_cash() -> None:
    cash = Decimal(100_000)
    assert capital_split(cash, {}, ["a", "b", "c"]) == {
        "a": cash / 3, "b": cash / 3, "c": cash - cash / 3 * 2}
    assert sum(capital_split(cash, {}, ["a", "b", "c"]).values()) == cash
    assert capital_split(cash, {"a": Decimal("0.7")}, ["a", "b"]) == {
        "a": Decimal(70_000), "b": Decimal(30_000)}
    # Every slot named with shares short of 1: the rest is cash no strategy holds.
    assert capital_split(cash, {"a": Decimal("0.5")}, ["a"]) == {
        "a": Decimal(50_000), "unallocated": Decimal(50_000)}
    with pytest.raises(ConfigError, match="not strategy slots"):
        capital_split(cash, {"typo": Decimal("0.5")}, ["a"])


@pytest.mark.parametrize("shares, match", [('a = "1.5"', "capital.a"), ('a = "0"', "capital.a"),
                                           ('a = "0.6"\nb = "0.6"', "sum")])
def test_capital_shares_out_of_range_are_refused_naming_the_key(
        tmp_path: Path, shares: str, match: str) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS) + f"\n[run.capital]\n{shares}\n")
    with pytest.raises(ConfigError, match=match):
        load_config(cfg)


def test_the_engines_flatten_is_shared_by_the_holders_even_when_they_offset() -> None:
    account = Account(Decimal(1000), {"a": Decimal(600), "b": Decimal(400)})
    for slot, fill in [("a", _fill(1, Side.BUY, "1", "100", "0.1")),
                       ("b", _fill(2, Side.SELL, "0.5", "104", "0.05"))]:
        account.apply(fill)
        account.apply_to_books(fill, slot)
    account.mark(IID, Decimal("102"))
    _assert_books_sum(account)
    # The kill switch sells the net 0.5: a closes its long, b buys back its short.
    flat = _fill(3, Side.SELL, "0.5", "101", "0.03")
    account.apply(flat)
    account.apply_to_books(flat, "flatten")
    a, b = account.books["a"], account.books["b"]
    assert a.positions[IID].quantity == 0 and b.positions[IID].quantity == 0
    assert a.positions[IID].realized_pnl == Decimal("1")      # bought 100, sold 101
    assert b.positions[IID].realized_pnl == Decimal("1.5")    # sold 104, bought 101
    assert a.fees_paid == Decimal("0.12") and b.fees_paid == Decimal("0.06")  # 2:1 split
    assert "flatten" not in account.books
    _assert_books_sum(account)


def _bust(n: int, of: Fill, qty: str | None = None) -> Fill:
    """The venue's bust of ``of`` (or of ``qty`` of it) as the engine books it: the other
    side, the same price, the fee refunded (in proportion for a part)."""
    q = Decimal(qty) if qty is not None else of.quantity
    return Fill(f"{of.fill_id}:bust", of.client_order_id, "kraken", IID, of.side.opposite(),
                of.price, q, -of.fee * q / of.quantity, Liquidity.TAKER, n)


@pytest.mark.parametrize("part", [None, "0.2"], ids=["whole", "part"])
def test_a_bust_of_the_flatten_comes_out_of_the_books_it_was_shared_into(
        part: str | None) -> None:
    """a long 1, b short 0.5; the kill switch's sale of the net 0.5 closed both (shared by
    them).  The venue busts that sale: each book gets back what it gave, so each holds its
    position again (the whole bust) or its share of the part busted.  Booked as a new house
    trade, the bust went wholly to the house book (the books were flat, so it reduced
    nothing of theirs): the strategies kept the closes of a trade that never happened."""
    account = Account(Decimal(1000), {"a": Decimal(600), "b": Decimal(400)})
    for slot, fill in [("a", _fill(1, Side.BUY, "1", "100", "0.1")),
                       ("b", _fill(2, Side.SELL, "0.5", "104", "0.05"))]:
        account.apply(fill)
        account.apply_to_books(fill, slot)
    flat = _fill(3, Side.SELL, "0.5", "101", "0.03")
    account.apply(flat)
    account.apply_to_books(flat, "flatten")
    # a restart in between: the shares travel with the checkpoint
    again = Account(Decimal(0))
    again.set_state(account.get_state())
    bust = _bust(4, flat, part)
    again.apply(bust)
    again.apply_to_books(bust, "flatten", undo=flat.fill_id)
    a, b = again.books["a"].positions[IID], again.books["b"].positions[IID]
    share = Decimal(1) if part is None else Decimal(part) / Decimal("0.5")
    assert (a.quantity, b.quantity) == (1 * share, Decimal("-0.5") * share)
    assert "flatten" not in again.books or not again.books["flatten"].positions
    assert again.books["a"].fees_paid + again.books["b"].fees_paid == again.fees_paid
    _assert_books_sum(again)
    # A bust of a strategy's own fill is its own book's, as before.
    own = _bust(5, _fill(1, Side.BUY, "1", "100", "0.1"))
    again.apply(own)
    again.apply_to_books(own, "a", undo="f1")
    assert again.books["a"].positions[IID].quantity == share - 1
    _assert_books_sum(again)


def test_a_settlement_of_one_book_alone_stays_in_that_book() -> None:
    """A void gives each book holding the instrument back at its own cost, one settlement
    each: the house book's (a flatten's buy the books' position did not take) is that
    book's alone, not shared pro rata as the house's trades are."""
    account = Account(Decimal(1000), {"a": Decimal(1000)})
    for slot, fill in [("a", _fill(1, Side.BUY, "3", "100")),
                       ("flatten", _fill(2, Side.BUY, "1", "90"))]:
        account.apply(fill)
        account.apply_to_books(fill, slot)
    assert account.books["flatten"].positions[IID].quantity == 1  # it added to a's long
    settle = _fill(3, Side.SELL, "1", "90")
    account.apply(settle)
    account.apply_to_books(settle, "flatten", alone=True)
    assert account.books["flatten"].positions[IID].quantity == 0
    assert account.books["a"].positions[IID].quantity == 3
    _assert_books_sum(account)


def test_a_three_way_settlement_with_inexact_shares_still_sums_exactly() -> None:
    account = Account(Decimal(300), {"a": Decimal(100), "b": Decimal(100), "c": Decimal(100)})
    for n, slot in enumerate("abc", 1):
        fill = _fill(n, Side.BUY, "1", "0.3", "0.01")
        account.apply(fill)
        account.apply_to_books(fill, slot)
    settle = _fill(9, Side.SELL, "3", "1", "0.1")  # a fee that does not split in three
    account.apply(settle)
    account.apply_to_books(settle, "settlement")
    _assert_books_sum(account)
    assert all(b.positions[IID].quantity == 0 for b in account.books.values())
    # Restored from a checkpoint, the books are the same books.
    again = Account(Decimal(0))
    again.set_state(account.get_state())
    assert again.book_equity() == account.book_equity()
    assert again.books["c"].fees_paid == account.books["c"].fees_paid


def test_two_strategies_in_one_run_keep_exact_books_sized_on_their_own_capital(
        tmp_path: Path) -> None:
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(demo_toml(BUNDLED_BARS, end="2022-06-01").replace(
        'strategies = ["ma_cross"]', "strategies = []") + '\n[run.capital]\nfast = "0.75"\n')
    cfg = load_config(cfg_path)
    run_dir = tmp_path / "run"
    Runner(cfg, run_dir, strategies={
        "fast": MovingAverageCross(ExampleSettings(fast=5, slow=20)),
        "slow": MovingAverageCross(ExampleSettings(fast=10, slow=40))}).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        total = {r["ts_ns"]: Decimal(r["equity"]) for r in ledger.query("select * from equity")}
        books: dict[int, dict[str, Decimal]] = {}
        for r in ledger.query("select * from book_equity"):
            books.setdefault(r["ts_ns"], {})[r["slot"]] = Decimal(r["equity"])
        orders = ledger.query("select strategy, side, quantity, arrival_price from orders "
                              "where side = 'buy' order by ts_ns")
    assert books and set(books) == set(total)
    first = books[min(books)]
    assert first == {"fast": Decimal(75_000), "slow": Decimal(25_000)}
    for ts, by_slot in books.items():  # every row, to the cent (rows are kept to 1e-8)
        assert abs(sum(by_slot.values()) - total[ts]) <= CENT, ts
    assert books[max(books)]["fast"] != books[max(books)]["slow"]
    # Each slot's sizer sized on its own book: fixed_fraction of 75k vs 25k at entry.
    first_buy = {o["strategy"]: Decimal(o["quantity"]) * Decimal(o["arrival_price"])
                 for o in reversed(orders)}
    assert first_buy["fast"] / first_buy["slow"] == pytest.approx(3, rel=0.05)


def _two_books(tmp_path: Path, run_dir: Path, stops: tuple[int, ...] = ()) -> list[tuple]:
    """The two-book run above, stopped after each of ``stops`` events and resumed by a
    fresh runner; its stored book rows (``book_equity_changes``)."""
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(demo_toml(BUNDLED_BARS, end="2022-06-01").replace(
        'strategies = ["ma_cross"]', "strategies = []") + '\n[run.capital]\nfast = "0.75"\n')
    for stop in (*stops, None):
        Runner(load_config(cfg_path), run_dir, max_events=stop, strategies={
            "fast": MovingAverageCross(ExampleSettings(fast=5, slow=20)),
            "slow": MovingAverageCross(ExampleSettings(fast=10, slow=40))}).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        return [tuple(r.values()) for r in ledger.query(
            "select * from book_equity_changes order by slot, ts_ns")]


def test_book_rows_are_written_when_a_book_moved_and_a_resumed_run_writes_the_same(
        tmp_path: Path) -> None:
    """A book's row only where its cash or equity text moved (a flat book sits still), and
    a run stopped and resumed, twice, writes exactly the rows of one never stopped (each
    book goes on from its last row in the ledger, not from nothing)."""
    rows = _two_books(tmp_path, tmp_path / "straight")
    last: dict[str, tuple[str, str]] = {}
    for _ts, slot, cash, equity in rows:
        assert last.get(slot) != (cash, equity)
        last[slot] = (cash, equity)
    with Ledger.in_dir(tmp_path / "straight") as ledger:
        stamps = ledger.query("select count(*) as n from equity")[0]["n"]
    assert len(rows) < 2 * stamps * 0.8  # the flat stretches wrote nothing
    assert _two_books(tmp_path, tmp_path / "resumed", stops=(900, 2345)) == rows


def test_a_run_with_one_strategy_keeps_one_book_and_writes_no_book_rows(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-03-01"))
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert ledger.query("select count(*) as n from book_equity")[0]["n"] == 0


class _Recorder(Sizer):
    """Records the equity each sizing call saw, then sizes nothing."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: dict[str, set[Decimal]] = {}

    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             instrument: Instrument | None, fees: FeeSchedule | None = None) -> Decimal:
        self.seen.setdefault(intent.strategy, set()).add(portfolio.equity)
        return Decimal(0)


class _WholeAccount(_Recorder):
    whole_account = True


@pytest.mark.parametrize("sizer, expected", [
    (_Recorder, {"fast": {Decimal(60_000)}, "slow": {Decimal(40_000)}}),
    (_WholeAccount, {"fast": {Decimal(100_000)}, "slow": {Decimal(100_000)}})])
def test_a_sizer_sees_its_slots_book_unless_it_allocates_the_whole_account(
        tmp_path: Path, sizer: type[_Recorder], expected: dict[str, set[Decimal]]) -> None:
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(demo_toml(BUNDLED_BARS, end="2022-03-01").replace(
        'strategies = ["ma_cross"]', "strategies = []") + '\n[run.capital]\nfast = "0.6"\n')
    runner = Runner(load_config(cfg_path), tmp_path / "run", strategies={
        "fast": MovingAverageCross(ExampleSettings(fast=5, slow=20)),
        "slow": MovingAverageCross(ExampleSettings(fast=10, slow=40))})
    runner.engine.sizer = recorder = sizer()
    runner.run_sync()
    assert recorder.seen == expected  # nothing was ever bought: equity never moved


def test_book_rows_keep_slot_names_that_json_escapes(tmp_path: Path) -> None:
    """The runner writes the moved books' JSON row by hand (json.dumps costs more than the
    row): slot names with quotes, backslashes, dots, a JSON path's ``$`` and non-ASCII
    letters come back as themselves, and the books still sum to the account."""
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(demo_toml(BUNDLED_BARS, end="2022-03-01").replace(
        'strategies = ["ma_cross"]', "strategies = []"))
    names = ['fa"st\\', "$.slöw[0]"]
    Runner(load_config(cfg_path), tmp_path / "run", strategies={
        names[0]: MovingAverageCross(ExampleSettings(fast=5, slow=20)),
        names[1]: MovingAverageCross(ExampleSettings(fast=10, slow=40))}).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        slots = {r["slot"] for r in ledger.query("select distinct slot from book_equity")}
        carried = ledger.query("select ts_ns, slot, equity from book_equity")
        total = {r["ts_ns"]: Decimal(r["equity"]) for r in ledger.query(
            "select ts_ns, equity from equity")}
    assert slots == set(names)
    by_ts: dict[int, Decimal] = {}
    for r in carried:
        by_ts[r["ts_ns"]] = by_ts.get(r["ts_ns"], Decimal(0)) + Decimal(r["equity"])
    assert by_ts.keys() == total.keys()
    assert all(abs(by_ts[t] - total[t]) <= CENT for t in total)
