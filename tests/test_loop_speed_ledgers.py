"""The loop's speed-ups (issue 14 item 2) change no ledger row: every example config and
two multi-instrument scenarios, replayed, give exactly the ledgers the loop wrote before
them.

The digests below were computed from the code *before* the speed work (commit 3ed3e11)
with ``python tests/test_loop_speed_ledgers.py`` (it prints them); a digest is a SHA-256
of every row of one table in primary-key order, with the run id (a hash of the config,
which holds absolute paths) replaced by ``RUN`` so the digests hold in any checkout.
The ``runs`` table keeps only its deterministic columns.

Since then one deliberate change: a paper order the broker holds is ``open``, not
``pending`` (orders and checkpoints of the runs that end with one working: all_three,
reference, books; checked row by row to differ in that status only).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.config import Config, load_config, parse_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import (
    Bar,
    BookDelta,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from argus_core.runner import Runner
from argus_core.serde import dump_event

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: table -> the columns that order its rows (its primary key, or every column).
TABLES = {
    "orders": "client_order_id", "fills": "fill_id", "positions": "instrument_id",
    "equity": "ts_ns", "book_equity": "slot, ts_ns", "opportunities": "opportunity_id",
    "risk_events": "id", "checkpoints": "name", "signals": "name, instrument_id, ts_ns",
    "control": "key",
}
RUNS_COLUMNS = "mode, seed, status"

#: Example configs replayed as they are (relative to ``examples/``), and the plugins each
#: needs installed.
EXAMPLE_CONFIGS = {
    "demo": ("demo.toml", ()),
    "multi_strategy": ("multi_strategy/multi_strategy.toml", ("argus_portfolio",)),
    "reference": ("multi_strategy/reference.toml", ("argus_portfolio",)),
    "all_three": ("multi_strategy/all_three.toml", ("argus_multivenue", "argus_strategy_vrp",
                                                    "argus_portfolio")),
    "vrp_league": ("multi_strategy/vrp_league.toml", ("argus_strategy_vrp", "argus_portfolio")),
    "vrp": ("vrp/vrp.toml", ("argus_strategy_vrp", "argus_lab")),
}

# 2026-12-03, night: checkpoints of runs that took book liquidity hold what paper takers
# took (the broker no longer writes it into the venue's book; all_three, multi_strategy,
# books); multi_bars: a bar's volume is shared by every order it fills (bar_depth_fraction
# 0.5 let one order take 2.5x what the bar traded): 2110 -> 1346 fills, equity moves.
# 2026-12-04: no paper fill is priced past its limit (slippage that would is no fill), so
# VRP's IOC legs carry limits `limit_ticks` (2) past the touch: only the orders' limit
# prices move (all_three, vrp_league, vrp); every fill is as it was.
# 2026-12-04, later: signals' floats digested in 6 significant digits (the exact
# reprs differed on a machine with other numerics; every other table the same).
# 2026-12-04, later still: a book's row is stored only when it moved (core m009:
# book_equity_changes); "book_equity" is now the view carrying the rows onto every equity
# row, digested as before: the same digests.
# 2026-12-07: the portfolio's drift monitor keeps each sample's fill id (a busted fill
# leaves its window): checkpoints of the runs with the portfolio plugin (all_three,
# multi_strategy, reference, vrp_league); VRP sizes spreads within budget with fees and
# slippage: two of its trades sell 1 spread, not 2 (max loss 988 x 2 plus fees and the
# limit's slippage passed the budget; vrp, vrp_league: orders, fills, positions, equity).
# 2026-12-07, later: a sizer's buy is held to the cash the book can pay (price plus fee a
# unit): the loop benchmark's job bought on margin (its cash reached -614,897; now -544,
# a fill's slippage past the sizing price): 6672 -> 6334 fills; multi_bars: a book
# holding 262 of S0 bought 62.5 more with 3,218 of cash; the same 1346 fills, smaller.
# 2026-12-07, evening: the daily loss limit's day starts at the day's first equity row
# (the runner keeps the risk context's day and day-start equity): every checkpoint moves,
# nothing else.
# 2026-12-08: the overnight strategy's state keeps the regime tracker's last daily reading
# (a restart had the regime gate open until midnight), and the tracker's state its last
# reading: checkpoints of the runs with the overnight strategy (all_three, multi_strategy,
# reference); every other table the same.
# 2026-12-08, later: ma_cross keeps the instrument it follows in its state (without
# `instrument_id` it had averaged every instrument's closes in one window): checkpoints of
# the runs with ma_cross (all_three, bench, demo, multi_bars, multi_strategy, reference);
# every other table the same.
# 2026-12-08, later still: the league checkpoints the portfolio_weight sizer's weights
# (a resume restarted from the model's): all_three, multi_strategy, reference.
# 2026-12-08, evening: an order sent on a book before its instrument's first bar waits
# out that bar (its open time unknown): books' working orders checkpoint that; the same
# fills.
# 2026-12-08, night: the VRP strategy keeps each underlying's last day acted on (a repeated
# bar was acted on twice): checkpoints of all_three, vrp, vrp_league; the same fills.
GOLDEN: dict[str, dict[str, str]] = {
    "all_three": {
        "book_equity": "6408:1f0ffac00dbeb1177632a6df32d461b0",
        "checkpoints": "1:4cee483cb929e470822a5799781493e7",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "2136:981c353dbd29b1f4dbf7ec7a0dbba05e",
        "fills": "110:bbfebcf085deae2dba2beff00e303839",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "111:0eca4ecabccf8be5c78f5318e0fbba79",
        "positions": "13:cf258589968e60a016a42771c6b01512",
        "risk_events": "1:f7318790bc0be9b237bed89d343493ec",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "915:4f57aca445bc091c700dd915f8896647",
    },
    "bench": {
        "book_equity": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "checkpoints": "1:013898de0de159c7c7e9532720f43ee2",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "70253:11b73d1c30c4c16cbc3900731293977e",
        "fills": "6334:96fb6d40dab611e14afc5b29151de362",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "2273:feb239ee2a6e6b841955010660d3d0af",
        "positions": "1:e648745a1baf851598c85054c8601475",
        "risk_events": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "0:e3b0c44298fc1c149afbf4c8996fb924",
    },
    "books": {
        "book_equity": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "checkpoints": "1:a0a3b7d38fa2fe06fd03669fe424bddb",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "fills": "154:afee6207e9f9b69cc4287ae7ed0022bc",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        # Orders' decision/arrival prices: a paper fill no longer takes from the venue's
        # book (27 orders had read a mid and spread their own earlier fills had moved).
        "orders": "135:7ebe7a52a1c95b7695e11024f16675bb",
        "positions": "2:7266b05a12d90ca47e45b10281d8e277",
        "risk_events": "131:0ea349fe177a7db50852d80d50654335",  # reduce_only veto text (2026-12-05)
        "runs": "1:a311da873308204ec4dddaafdefbb87e",
        "signals": "0:e3b0c44298fc1c149afbf4c8996fb924",
    },
    "demo": {
        "book_equity": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "checkpoints": "1:53fc8817dfb571f6539cd24ee62eb9e9",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "17668:f1f684b1e65cac0e87ed9fecaca11fe1",
        "fills": "205:9485540bc3ed944d3b8a6d4ed07ec072",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "205:dcbacfedf0b5907c36fee2807144c1a8",
        "positions": "1:043ce8267d69b3fbc323677592bcea5d",
        "risk_events": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "0:e3b0c44298fc1c149afbf4c8996fb924",
    },
    "multi_bars": {
        "book_equity": "12000:97376621ea1eccf040d19db1f94f06cd",
        "checkpoints": "1:558dc6227c0cca9fe385cca76f749597",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "3000:01a3dd2da4edab68b19ad832920d16e5",
        "fills": "1346:f5d5a89ebf704f8656c768d5c4feb1f4",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "784:f028e50f7628df5269eb1e643615eb7e",
        "positions": "4:007dd68d6181753dc9d9569d7d4b0b66",
        "risk_events": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "runs": "1:973be55b94e3bd4ba1fec26a7b7a7e6f",
        "signals": "0:e3b0c44298fc1c149afbf4c8996fb924",
    },
    "multi_strategy": {
        "book_equity": "26630:525be1075c5fa8d872c4b1313a6b61f4",
        "checkpoints": "1:78d6dcac8962f3ab81de1a792af55fc5",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "13315:1fc44843110a544fb15ed3c8457b432f",
        "fills": "546:6aeec74c855b1a48d7681d724ec0efb2",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "546:2cd97cfd7727db8c8ea9b74b626f67d9",
        "positions": "1:16412787acc84cf3ad4b90923ed22034",
        "risk_events": "303:93035ae208d7a2eb4feed66e10132321",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "0:e3b0c44298fc1c149afbf4c8996fb924",
    },
    "reference": {
        "book_equity": "8686:cdfcb88885eed60e144defc6b31c166e",
        "checkpoints": "1:c19687af1aaa17baca20c96774fcc660",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "4343:21c89d5b99598e9dab27cd0e48c1ad21",
        "fills": "252:b85078e6a2367019fb69983ad28d6e79",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "253:e9845deaa011a0cfc5604d6749d7e137",
        "positions": "1:859d923ba7c338c028951efb9830e2c8",
        "risk_events": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "0:e3b0c44298fc1c149afbf4c8996fb924",
    },
    "vrp": {
        "book_equity": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "checkpoints": "1:cac43231e2de6c34c055ed2f4b9ce020",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "2326:383f35bb0de408b20d1b693e8696ed9c",
        "fills": "784:f45a584fecb3af705f6491f5926a2cf9",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "784:029d8ac6c9635e57301fa09f7fd7a180",
        "positions": "357:df638551b7dccb3e3380236c2eaf276a",
        "risk_events": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "34742:6f84e19d8206f02c3505d9d6a97fd625",
    },
    "vrp_league": {
        "book_equity": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "checkpoints": "1:116a2c8c2ece1437b5ebeba769bc8d91",
        "control": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "equity": "2326:383f35bb0de408b20d1b693e8696ed9c",
        "fills": "784:f45a584fecb3af705f6491f5926a2cf9",
        "opportunities": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "orders": "784:029d8ac6c9635e57301fa09f7fd7a180",
        "positions": "357:df638551b7dccb3e3380236c2eaf276a",
        "risk_events": "0:e3b0c44298fc1c149afbf4c8996fb924",
        "runs": "1:bca7dc3c241c03eb397e951d069837e5",
        "signals": "34742:6f84e19d8206f02c3505d9d6a97fd625",
    },
}


def digest_ledger(run_dir: Path) -> dict[str, str]:
    """Per table, the SHA-256 of its rows in key order (run id replaced by ``RUN``)."""
    out: dict[str, str] = {}
    with Ledger.in_dir(run_dir) as ledger:
        run_id = ledger.query("select run_id from runs")[0]["run_id"]
        tables = {r["name"] for r in ledger.query(
            "select name from sqlite_master where type = 'table'")}
        queries = {"runs": f"select {RUNS_COLUMNS} from runs"}
        queries.update({t: f"select * from {t} order by {key}" for t, key in TABLES.items()
                        if t in tables})
        # A view since core m009 (the rows are stored where a book moved and carried onto
        # every equity row): the rows the loop wrote before.
        queries["book_equity"] = ("select * from book_equity order by "
                                  + TABLES["book_equity"])
        for table, sql in queries.items():
            h = hashlib.sha256()
            n = 0
            for row in ledger.conn.execute(sql):
                # A float column (signals) in 6 significant digits: numpy's log/exp differ in
                # the last bits between CPUs (AVX2 or AVX-512 code paths), which changed the
                # VRP examples' signals digest from one machine to the next with every fill
                # the same.
                row = tuple(format(v, ".6g") if isinstance(v, float) else v for v in row)
                h.update(repr(row).replace(run_id, "RUN").encode())
                h.update(b"\n")
                n += 1
            out[table] = f"{n}:{h.hexdigest()[:32]}"
    return out


# -- the two multi-instrument scenarios --------------------------------------------------

def _write(path: Path, events: Sequence[MarketEvent]) -> Path:
    with path.open("w") as fh:
        for event in events:
            fh.write(json.dumps(dump_event(event)) + "\n")
    return path


def multi_bars_events(n_symbols: int = 4, n_bars: int = 3000, seed: int = 11) -> list[Bar]:
    """Seeded hourly random walks, one bar per symbol per timestamp."""
    rng = random.Random(seed)
    prices = [100.0 * (k + 1) for k in range(n_symbols)]
    out = []
    for t in range(n_bars):
        ts = (1_600_000_000 + 3600 * (t + 1)) * 10**9
        for k in range(n_symbols):
            o = prices[k]
            c = round(o * (1 + rng.gauss(0, 0.01)), 2)
            hi, lo = round(max(o, c) * 1.002, 2), round(min(o, c) * 0.998, 2)
            out.append(Bar(f"replay:S{k}/USD", ts, o, hi, lo, c, round(rng.uniform(5, 50), 4)))
            prices[k] = c
    return out


def multi_bars_run(tmp: Path, run_dir: Path) -> Runner:
    """Four symbols, one ``ma_cross`` slot per symbol (four books), fixed fraction."""
    recording = _write(tmp / "multi.ndjson", multi_bars_events())
    config = parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 3},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "starting_cash": "100000", "checkpoint_every_events": 500},
        "paper": {"slippage_bps": "1", "bar_spread_bps": "2", "bar_depth_fraction": 0.5},
        "plugins": {"replay": {"ndjson": str(recording)},
                    "sizing": {"fraction": "0.2"},
                    "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.3",
                             "max_drawdown_fraction": "0.9", "daily_loss_fraction": "0.9"}},
    }, tmp / "multi.toml")
    slots: dict[str, Strategy] = {
        f"ma_{k}": MovingAverageCross(ExampleSettings(5, 20, f"replay:S{k}/USD"))
        for k in range(4)}
    return Runner(config, run_dir, strategies=slots)


class BookTrader(Strategy):
    """Alternates market buys and resting limit sells (and a cancel) on two books."""

    name = "book_trader"

    def __init__(self) -> None:
        self.n = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Any]:
        if type(event) is not Trade:
            return ()
        self.n += 1
        iid = event.instrument_id
        held = ctx.portfolio.position(iid).quantity
        if self.n % 6 == 0 and held > 0:
            return (Intent(self.name, iid, Side.SELL, quantity=held,
                           limit_price=Decimal(str(round(float(event.price) * 1.001, 2))),
                           order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                           reduce_only=True),)
        if self.n % 3 == 0:
            return (Intent(self.name, iid, Side.BUY, quantity=Decimal("0.7"),
                           order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC),)
        return ()

    def get_state(self) -> dict[str, Any]:
        return {"n": self.n}

    def set_state(self, state: dict[str, Any]) -> None:
        self.n = int(state.get("n", 0))


def book_events(n: int = 4000, seed: int = 5) -> list[MarketEvent]:
    """Two instruments: a snapshot each, then seeded level updates and trades."""
    rng = random.Random(seed)
    ids = ["replay:A/USD", "replay:B/USD"]
    mids = {iid: 50.0 + 25 * k for k, iid in enumerate(ids)}
    t0 = 1_650_000_000 * 10**9
    out: list[MarketEvent] = []
    for iid in ids:
        m = mids[iid]
        out.append(OrderBook(iid, t0, [(round(m - 0.01 * (j + 1), 2), 3.0) for j in range(10)],
                             [(round(m + 0.01 * (j + 1), 2), 3.0) for j in range(10)]))
    for i in range(n):
        iid = ids[i % 2]
        ts = t0 + (i + 1) * 10**8
        m = mids[iid]
        if i % 5 == 4:
            out.append(Trade(iid, ts, Decimal(str(round(m + rng.choice((-1, 1)) * 0.03, 2))),
                             Decimal("1.5"), Side.BUY))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        dist = rng.randint(1, 10) * 0.01
        price = round(m - dist if side is Side.BUY else m + dist, 2)
        size = 0.0 if rng.random() < 0.2 else round(rng.uniform(0.5, 4.0), 3)
        out.append(BookDelta(iid, ts, side, price, size))
    return out


def book_run(tmp: Path, run_dir: Path) -> Runner:
    """Books, deltas and trades on two instruments: walking fills, resting limit fills."""
    recording = _write(tmp / "books.ndjson", book_events())
    config = parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 4},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "starting_cash": "10000", "checkpoint_every_events": 300,
                "stale_after_s": 0},
        "paper": {"slippage_bps": "0"},
        "plugins": {"replay": {"ndjson": str(recording)},
                    "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.5",
                             "max_drawdown_fraction": "0.9", "daily_loss_fraction": "0.9",
                             "max_orders_per_minute": 1000}},
    }, tmp / "books.toml")
    return Runner(config, run_dir, strategies={"book_trader": BookTrader()})


def bench_run(tmp: Path, run_dir: Path) -> Runner:
    """The loop benchmark's Argus job (all 70k bundled bars, fixed fraction, every check)."""
    spec = importlib.util.spec_from_file_location(
        "bench_loop", ROOT / "benchmarks" / "loop" / "bench_loop.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_loop", bench)
    spec.loader.exec_module(bench)
    config: Config = bench.argus_config()
    return Runner(config, run_dir)


SCENARIOS = {"multi_bars": multi_bars_run, "books": book_run, "bench": bench_run}


def run_example(name: str, run_dir: Path) -> dict[str, str]:
    """Replay one example config into ``run_dir`` and digest its ledger."""
    rel, needs = EXAMPLE_CONFIGS[name]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    config = load_config(EXAMPLES / rel)
    Runner(config, run_dir).run_sync()
    return digest_ledger(run_dir)


def run_scenario(name: str, tmp: Path) -> dict[str, str]:
    """Run one scenario in ``tmp`` and digest its ledger."""
    SCENARIOS[name](tmp, tmp / "run").run_sync()
    return digest_ledger(tmp / "run")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLE_CONFIGS))
def test_example_ledgers_are_unchanged(name: str, tmp_path: Path) -> None:
    assert run_example(name, tmp_path / "run") == GOLDEN[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_ledgers_are_unchanged(name: str, tmp_path: Path) -> None:
    assert run_scenario(name, tmp_path) == GOLDEN[name]


def test_the_digest_sees_a_changed_row(tmp_path: Path) -> None:
    """A digest is not blind: one cent more in one fill changes it."""
    book_run(tmp_path, tmp_path / "run").run_sync()
    before = digest_ledger(tmp_path / "run")
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fill_id, price = ledger.conn.execute(
            "select fill_id, price from fills order by fill_id limit 1").fetchall()[0]
        ledger.conn.execute("update fills set price = ? where fill_id = ?",
                            (str(Decimal(str(price)) + Decimal("0.01")), fill_id))
    after = digest_ledger(tmp_path / "run")
    assert after["fills"] != before["fills"]
    assert {k: v for k, v in after.items() if k != "fills"} == \
        {k: v for k, v in before.items() if k != "fills"}


if __name__ == "__main__":  # print the digests of the code as it stands
    import tempfile

    digests: dict[str, dict[str, str]] = {}
    for example in sorted(EXAMPLE_CONFIGS):
        with tempfile.TemporaryDirectory() as d:
            digests[example] = run_example(example, Path(d) / "run")
    for scenario in sorted(SCENARIOS):
        with tempfile.TemporaryDirectory() as d:
            digests[scenario] = run_scenario(scenario, Path(d))
    print(json.dumps(digests, indent=4, sort_keys=True))
