"""examples/multi_strategy/all_three.toml: MA cross and overnight on the BTC bar replay
and VRP on its option replay, in ONE run on the ``multivenue`` venue (argustrade-
multivenue): the three books sum to the account to the cent at every equity row, every
strategy traded on its own venue's instruments, and the events came in time order."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from argus_core import Ledger, Runner, load_config

for _module in ("argus_multivenue", "argus_overnight", "argus_strategy_vrp", "argus_portfolio"):
    pytest.importorskip(_module)  # the example's venue and strategies' plugins

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multi_strategy" / "all_three.toml"
SLOTS = ("ma_cross", "overnight_session", "vrp_put_spread")


@pytest.mark.slow
def test_all_three_strategies_trade_in_one_run_with_books_summing_to_the_account(
        tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert config.run.venue == "multivenue" and tuple(config.run.strategies) == SLOTS
    summary = Runner(config, tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        total = {r["ts_ns"]: Decimal(r["equity"])
                 for r in ledger.query("select ts_ns, equity from equity")}
        books: dict[int, dict[str, Decimal]] = {}
        for r in ledger.query("select ts_ns, slot, equity from book_equity"):
            books.setdefault(r["ts_ns"], {})[r["slot"]] = Decimal(r["equity"])
        fills = ledger.query("select o.strategy, f.instrument_id, f.ts_ns from fills f "
                             "join orders o using (client_order_id) order by f.rowid")
    assert len(total) > 1_000 and books.keys() == total.keys()
    for ts, equity in total.items():  # every row, to the cent
        assert set(books[ts]) == set(SLOTS), ts
        assert abs(sum(books[ts].values()) - equity) < Decimal("0.005"), ts
    assert summary.final_equity.quantize(Decimal("0.01")) == total[max(total)].quantize(
        Decimal("0.01"))
    # all three traded, each on its own venue's instruments
    venues: dict[str, set[str]] = {}
    for f in fills:
        venues.setdefault(f["strategy"], set()).add(f["instrument_id"].partition(":")[0])
    assert venues == {"ma_cross": {"replay"}, "overnight_session": {"replay"},
                      "vrp_put_spread": {"vrp_options"}}
    times = [f["ts_ns"] for f in fills]
    assert times == sorted(times)  # the merged stream was in time order across venues
