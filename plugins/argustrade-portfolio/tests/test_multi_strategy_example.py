"""examples/multi_strategy, run as its README says: the reference backtest reproduces the
committed reference files, and the main run keeps two books that sum to the account to
the cent at every equity row, both strategies trading, under the league."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from argus_portfolio.books import read_books
from argus_portfolio.league import Reference, book_rows, reference_from_equity
from league_helpers import rows

from argus_core import Runner, load_config

pytest.importorskip("argus_overnight")  # the example's second strategy

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "multi_strategy"
SLOTS = ("ma_cross", "overnight_session")


@pytest.mark.slow
def test_the_reference_backtest_reproduces_the_committed_references(tmp_path: Path) -> None:
    Runner(load_config(EXAMPLE / "reference.toml"), tmp_path / "ref").run_sync()
    for slot in SLOTS:
        committed = Reference.load(EXAMPLE / f"ref_{slot}.json")
        ts, equity = book_rows(tmp_path / "ref", slot)
        again = reference_from_equity(ts, equity, committed.window, slot=slot)
        assert again.window == 168 and again.periods == committed.periods
        for field in ("sharpe_mean", "sharpe_std", "periods_per_year", "hit_rate"):
            assert getattr(again, field) == pytest.approx(getattr(committed, field),
                                                          rel=1e-9), field
        assert again.drawdown_percentiles == pytest.approx(committed.drawdown_percentiles,
                                                           rel=1e-9)


@pytest.mark.slow
def test_the_example_keeps_books_that_sum_to_the_account(tmp_path: Path) -> None:
    config = load_config(EXAMPLE / "multi_strategy.toml")
    assert config.run.capital == {"ma_cross": Decimal("0.5"),
                                  "overnight_session": Decimal("0.5")}
    summary = Runner(config, tmp_path / "run").run_sync()
    run = tmp_path / "run"
    total = {r["ts_ns"]: Decimal(r["equity"]) for r in rows(run, "select * from equity")}
    books: dict[int, dict[str, Decimal]] = {}
    for r in rows(run, "select * from book_equity"):
        books.setdefault(r["ts_ns"], {})[r["slot"]] = Decimal(r["equity"])
    assert len(total) > 13_000 and books.keys() == total.keys()
    for ts, equity in total.items():
        assert set(books[ts]) == set(SLOTS)
        assert abs(sum(books[ts].values()) - equity) < Decimal("0.005"), ts  # to the cent
    # both strategies traded, each in its own book, sized by the allocator
    fills = rows(run, "select o.strategy, count(*) n from fills f join orders o "
                      "using (client_order_id) group by 1")
    assert {f["strategy"] for f in fills if f["n"] > 10} == set(SLOTS)
    # the per-strategy and portfolio views, as the README shows them
    views = {b.slot: b for b in read_books(run)}
    assert set(views) == {*SLOTS, "portfolio"}
    assert views["portfolio"].end_equity == summary.final_equity.quantize(Decimal("1e-8"))
    assert sum(views[s].end_equity for s in SLOTS) == pytest.approx(
        views["portfolio"].end_equity, abs=Decimal("0.005"))
    # the league judged both against their references: every transition names figures
    events = rows(run, "select * from league_events order by id")
    assert {e["slot"] for e in events} <= set(SLOTS)
    for e in events:
        assert e["to_status"] in ("quarantined", "killed")
        assert "rolling Sharpe" in e["reason"] or "kill level" in e["reason"]
    json.dumps([dict(e) for e in events])
