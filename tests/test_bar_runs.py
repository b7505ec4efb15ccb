"""A replay's quiet stretches (argus_core.bar_runs) write the event path's ledger, row for
row: randomised bar series (prices of 0 to 11 places, flat runs that tie the averages,
crashes that trip the kill switch, numbers past 28 digits), checkpoints at odd spacings,
a run stopped and resumed; and the pieces against Decimal."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_loop_speed_ledgers import digest_ledger

from argus_core import bar_runs
from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.builtins.replay_venue import read_bars_csv
from argus_core.config import parse_config
from argus_core.errors import DataError
from argus_core.models import Bar, Signal
from argus_core.runner import Runner

START = 1_600_000_000


def write_bars(path: Path, seed: int, n: int = 2500) -> Path:
    """A seeded random walk: each stretch of bars with its own number of decimal places,
    flat stretches (the averages tie exactly), crashes (the kill switch), and now and
    then prices so large that an equity has more digits than a Decimal keeps."""
    rng = random.Random(seed)
    price, lines, t = rng.uniform(50, 5000), [], START
    places = 2
    big = rng.random() < 0.3
    crashes = rng.choice([0.0, 0.002, 0.02])  # none, a late trip, an early one
    for i in range(n):
        if i % 200 == 0:
            places = rng.choice([0, 1, 2, 2, 3, 5, 8, 11])
        mode = rng.random()
        if mode < 0.05:
            move = 0.0  # a flat bar
        elif mode < 0.05 + crashes:
            move = -0.08  # a crash bar
        else:
            move = rng.gauss(0.0002, 0.012)
        price = max(price * (1 + move), 10.0**-places * 10)
        scale = 1e13 if big and 1000 <= i < 1300 else 1.0
        c = round(price * scale, places) or 10.0**-places
        o = round(c * (1 + rng.gauss(0, 0.002)), places) or c
        hi, lo = max(o, c) * (1 + rng.random() * 0.003), min(o, c) * (1 - rng.random() * 0.003)
        lines.append(f"{t},{o!r},{hi!r},{lo!r},{c!r},{rng.uniform(0, 30):.4f}\n")
        t += 3600 if rng.random() > 0.02 else 7200  # gaps now and then
    path.write_text("".join(lines))
    return path


def config(tmp: Path, csv: Path, seed: int) -> Any:
    rng = random.Random(seed * 7 + 1)
    fast = rng.randint(2, 12)
    return parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": seed},
        "run": {"venue": "replay", "strategies": ["ma_cross"],
                "sizer": rng.choice(["fixed_fraction", "kelly"]),
                "starting_cash": rng.choice(["100000", "12345.67", "250"]),
                "checkpoint_every_events": rng.choice([1, 7, 97, 500, 1000, 5000])},
        "paper": {"slippage_bps": rng.choice(["0", "1", "3"]),
                  "bar_spread_bps": rng.choice(["0", "2"]),
                  "bar_depth_fraction": rng.choice([0.1, 0.5, 1.0])},
        "plugins": {"replay": {"bars_csv": str(csv), "symbol": "X/USD", "bar_seconds": 3600,
                               "taker_bps": rng.choice(["0", "10", "40"])},
                    "example": {"fast": fast, "slow": fast + rng.randint(1, 40)},
                    "sizing": {"fraction": rng.choice(["0.2", "0.5", "1"])},
                    "risk": {"max_drawdown_fraction": rng.choice(["0.05", "0.15", "0.5"]),
                             "max_consecutive_losses": 1000, "per_play_fraction": "1",
                             "daily_loss_fraction": "0.9"}},
    }, tmp / "run.toml")


def replay(tmp: Path, name: str, seed: int, *, stretches: bool,
           max_events: int | None = None, parsed: list[Bar] | None = None) -> Runner:
    runner = Runner(config(tmp, tmp / "bars.csv", seed), tmp / name, max_events=max_events)
    runner.bar_stretches = stretches
    if parsed is not None:  # bars in memory (the loop benchmark's way): runs of Bar objects
        runner.asm.venue.events = lambda: iter(parsed)  # type: ignore[method-assign]
    runner.run_sync()
    return runner


def ledger_of(run_dir: Path) -> dict[str, str]:
    digest = digest_ledger(run_dir)
    digest.pop("runs")  # a resumed run's row says so
    return digest


@pytest.mark.parametrize("source", ["file", "parsed"])
@pytest.mark.parametrize("seed", range(20))
def test_quiet_stretches_write_the_event_paths_ledger(seed: int, source: str,
                                                      tmp_path: Path) -> None:
    write_bars(tmp_path / "bars.csv", seed)
    parsed = read_bars_csv(tmp_path / "bars.csv", "replay:X/USD", 3600) \
        if source == "parsed" else None
    fast = replay(tmp_path, "stretches", seed, stretches=True, parsed=parsed)
    slow = replay(tmp_path, "events", seed, stretches=False)
    assert fast.seq == slow.seq and fast.n_fills == slow.n_fills
    assert ledger_of(tmp_path / "stretches") == ledger_of(tmp_path / "events")


@pytest.mark.parametrize("seed", [3, 8])
def test_a_stopped_and_resumed_run_writes_the_same_ledger(seed: int, tmp_path: Path) -> None:
    write_bars(tmp_path / "bars.csv", seed)
    replay(tmp_path, "resumed", seed, stretches=True, max_events=1234)
    replay(tmp_path, "resumed", seed, stretches=True)  # resumes from its checkpoint
    replay(tmp_path, "events", seed, stretches=False)
    assert ledger_of(tmp_path / "resumed") == ledger_of(tmp_path / "events")


def test_a_run_resumed_past_its_max_events_takes_one_event_as_the_event_path_does(
        tmp_path: Path) -> None:
    write_bars(tmp_path / "bars.csv", 2)
    for name, stretches in (("stretches", True), ("events", False)):
        replay(tmp_path, name, 2, stretches=stretches, max_events=1500)
        again = replay(tmp_path, name, 2, stretches=stretches, max_events=700)
        assert again.seq == again.resumed_from + 1
    assert ledger_of(tmp_path / "stretches") == ledger_of(tmp_path / "events")


def test_the_stretches_take_most_bars_of_a_trending_replay(tmp_path: Path) -> None:
    """Not a speed assert: the path is taken (the ledger tests above would pass if it
    never were)."""
    write_bars(tmp_path / "bars.csv", 5)
    taken = []
    original = Runner._take_quiet

    def spy(self: Runner, run: bar_runs.BarRun, i: int, k: int, held: Any) -> None:
        taken.append(k)
        original(self, run, i, k, held)

    Runner._take_quiet = spy  # type: ignore[method-assign]
    try:
        runner = replay(tmp_path, "run", 5, stretches=True)
    finally:
        Runner._take_quiet = original  # type: ignore[method-assign]
    assert sum(taken) > runner.seq / 2


class Peeking(MovingAverageCross):
    """A look-alike whose quiet_bars would read ahead: never asked."""

    asked = 0

    def quiet_bars(self, run: bar_runs.BarRun, start: int, stop: int) -> int:
        Peeking.asked += 1
        return stop - start


class Lookalike(MovingAverageCross):
    """Decides as ma_cross does, but is not a trusted class: its bars come one by one."""


def swapped_run(tmp: Path, name: str, *, stretches: bool, into: type[MovingAverageCross]
                ) -> Runner:
    """The seed-9 replay with ``ma_cross`` swapped for ``into`` at the 3,000th event's
    progress report (applied after the next event)."""
    cfg = config(tmp, tmp / "bars.csv", 9)
    example = cfg.plugins["example"]
    new = into(ExampleSettings(example["fast"], example["slow"]))

    def swap_at(seq: int) -> None:
        if seq == 3000:
            runner.request_swap("ma_cross", new, version_id="v2")

    runner = Runner(cfg, tmp / name, progress=swap_at)
    runner.bar_stretches = stretches
    runner.run_sync()
    assert runner.versions["ma_cross"] == "v2" and runner.asm.strategies["ma_cross"] is new
    return runner


@pytest.mark.parametrize("into", [Lookalike, MovingAverageCross])
def test_a_swap_mid_run_writes_the_event_paths_ledger(into: type[MovingAverageCross],
                                                      tmp_path: Path) -> None:
    """A hot swap mid-run, into a class the core does not trust (its bars then come one
    by one) or into a fresh ma_cross: the same ledger as every bar one by one."""
    write_bars(tmp_path / "bars.csv", 9, n=6000)
    swapped_run(tmp_path, "stretches", stretches=True, into=into)
    swapped_run(tmp_path, "events", stretches=False, into=into)
    assert ledger_of(tmp_path / "stretches") == ledger_of(tmp_path / "events")


def test_only_trusted_classes_are_asked_for_quiet_bars(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars.csv", 1, n=600)
    strategy = Peeking(ExampleSettings(5, 20))
    runner = Runner(config(tmp_path, tmp_path / "bars.csv", 1), tmp_path / "run",
                    strategies={"ma_cross": strategy})
    runner.run_sync()
    assert Peeking.asked == 0 and runner.seq == 600


def test_bar_runs_keep_order_and_come_before_a_read_error() -> None:
    def bar(iid: str, t: int) -> Bar:
        return Bar(iid, t, 1.0, 1.0, 1.0, 1.0, 0.0)

    sig = Signal("s", "A", 5, 1.0)

    def events() -> Any:
        yield from [bar("A", 1), bar("A", 2), bar("B", 2), sig, bar("A", 3), bar("A", 3),
                    bar("A", 4)]
        raise DataError("line 9: bad")

    out: list[Any] = []
    with pytest.raises(DataError):
        for item in bar_runs.bar_runs(events(), lambda iid: True):
            out.append(item)
    flat = [b for item in out for b in ([item.bar(i) for i in range(len(item))]
                                         if isinstance(item, bar_runs.BarRun) else [item])]
    assert [(getattr(e, "instrument_id", "-"), e.ts_ns) for e in flat] == [
        ("A", 1), ("A", 2), ("B", 2), ("A", 5), ("A", 3), ("A", 3), ("A", 4)]
    # runs: strictly later bars of one instrument only
    assert [len(item) if isinstance(item, bar_runs.BarRun) else 1 for item in out] == [
        2, 1, 1, 1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_row_texts_are_the_decimals_quantized_text(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        scale = rng.randint(0, 20)
        low = 10**scale // 10**6 + (1 if scale < 6 else 0)
        values = [rng.randint(low, low * 10**rng.randint(0, 12) + 10**rng.randint(0, 6))
                  for _ in range(5)]
        values.append((2 * rng.randint(low, 10**(scale + 3)) + 1) * 10**max(0, scale - 9)
                      if scale > 8 else low)  # halves: ties to even
        want = [str(Decimal(v).scaleb(-scale).quantize(Decimal("1e-8"), ROUND_HALF_EVEN))
                for v in values]
        assert bar_runs.row_texts(values, scale) == want


@pytest.mark.parametrize("seed", range(5))
def test_held_equity_is_the_accounts_decimal_sum(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        places = rng.randint(0, 6)
        closes = np.array([round(rng.uniform(1, 10**rng.randint(1, 6)), places) or 1.0
                           for _ in range(8)])
        units = bar_runs.tick_units(closes, places)
        assert units is not None
        cash = Decimal(rng.randint(-10**9, 10**12)).scaleb(-rng.randint(0, 12))
        qty = Decimal(rng.randint(-10**12, 10**12) or 1).scaleb(-rng.randint(0, 10))
        other = Decimal(rng.randint(-10**9, 10**9)).scaleb(-rng.randint(0, 9))
        got = bar_runs.held_equity(cash, other, abs(other), qty, units.tolist(), places)
        marks = [Decimal(repr(float(c))) for c in closes]
        equity = [cash + qty * m + other for m in marks]
        gross = [abs(qty * m) + abs(other) for m in marks]
        if got is None:  # refused: a value under 1e-6, or one near the context's 28 digits
            scale = max(-cash.as_tuple().exponent, -other.as_tuple().exponent,  # type: ignore[operator]
                        -qty.as_tuple().exponent + places)  # type: ignore[operator]
            assert min(*equity, *gross) < Decimal("1e-6") or max(
                abs(v) for v in (*equity, *gross, cash + other)).scaleb(scale) >= 10**27
            continue
        values, grosses, scale = got
        assert [Decimal(v).scaleb(-scale) for v in values] == equity
        assert [Decimal(v).scaleb(-scale) for v in grosses] == gross


def test_tick_units_refuse_a_close_that_is_not_that_decimal() -> None:
    assert bar_runs.tick_units(np.array([0.1, 0.25]), 1) is None
    assert bar_runs.tick_units(np.array([0.1, 0.25]), 2).tolist() == [10, 25]  # type: ignore[union-attr]
    assert bar_runs.tick_units(np.array([0.1 + 0.2]), 10) is None  # 0.30000000000000004
    assert bar_runs.tick_units(np.array([2.0**60]), 0) is None  # floats there are 256 apart


def test_drawdown_cut_stops_before_the_kill_switch_could_decide() -> None:
    equity = [100, 110, 105, 90, 120, 60]  # units of 1
    limit = [Decimal("0.15")]
    # 110 -> 90 is 18.2 %: the fourth bar is the event path's
    assert bar_runs.drawdown_cut(equity, 0, Decimal(100), limit) == 3
    assert bar_runs.drawdown_cut(equity[:3], 0, Decimal(100), limit) == 3
    # within 1e-9 of the limit counts as near: 100 -> 85 is exactly 15 %
    assert bar_runs.drawdown_cut([85], 0, Decimal(100), limit) == 0
    assert bar_runs.drawdown_cut([86], 0, Decimal(100), limit) == 1
    assert bar_runs.drawdown_cut(equity, 0, Decimal(100), []) == len(equity)


def test_ma_cross_quiet_bars_agree_with_on_event_on_ties_and_near_ties() -> None:
    """Constant closes tie the averages exactly; 0.1 + 0.2 style closes make sums whose
    last bits differ by summation order: bars the numpy pass cannot call are left to
    on_event, and every bar it calls quiet is quiet in on_event."""
    rng = random.Random(4)
    closes = [1.0] * 60 + [0.1, 0.2, 0.3] * 40 + [rng.choice([0.7, 0.70000000000000001,
                                                               0.1 + 0.6]) for _ in range(200)]
    bars = [Bar("A", (i + 1) * 10**9, c, c, c, c, 1.0) for i, c in enumerate(closes)]
    run = bar_runs.BarRun(bars)
    fast_one, slow_one = (MovingAverageCross(ExampleSettings(3, 7)) for _ in range(2))
    ctx = _Ctx()
    i = 0
    while i < len(bars):
        k = fast_one.quiet_bars(run, i, len(bars))
        for j in range(i, i + k):
            assert not slow_one.on_event(bars[j], ctx)  # type: ignore[arg-type]
        fast_one.take_bars(run, i, i + k)
        assert list(fast_one.closes) == list(slow_one.closes)
        if i + k < len(bars):
            a = fast_one.on_event(bars[i + k], ctx)  # type: ignore[arg-type]
            b = slow_one.on_event(bars[i + k], ctx)  # type: ignore[arg-type]
            assert a == b
        i += k + 1


class _Ctx:
    class portfolio:
        @staticmethod
        def position(_: str) -> Any:
            return type("P", (), {"quantity": Decimal(1)})()


def _flat(items: Any) -> list[Bar]:
    out: list[Bar] = []
    for item in items:
        out.extend([item.bar(i) for i in range(len(item))]
                   if isinstance(item, bar_runs.BarRun) else [item])
    return out


def _read(reader: Any, path: Path, **kw: Any) -> tuple[list[Bar], str]:
    got: list[Bar] = []
    try:
        for item in reader(path, "replay:X/USD", 60, **kw):
            got.extend(_flat([item]))
    except DataError as exc:
        return got, str(exc)
    return got, ""


FAULTS = [
    "",  # none
    "{t},1.0,0.5,0.9,1.0,3\n",  # high under low
    "{t},1.0,1.1,0.9,1.0,-3\n",  # negative volume
    "{t},1.0,1.1,0.9,1.2,3\n",  # close above the high
    "{p},1.0,1.1,0.9,1.0,3\n",  # the previous bar's time again
    "{o},1.0,1.1,0.9,1.0,3\n",  # 30 s after the previous bar: overlaps
    "{t},1.0,1.1,0.9,nan,3\n",  # not finite
    "{t},1.0,1.1,0.9\n",  # cut short
    "{t},0,1.1,0,1.0,3\n",  # a zero price
]


@pytest.mark.parametrize("fault", range(len(FAULTS)))
@pytest.mark.parametrize("seed", range(3))
def test_the_column_reader_gives_the_bar_readers_bars_and_errors(
        fault: int, seed: int, tmp_path: Path) -> None:
    """iter_bar_runs_csv (a batch that passes every check at once as columns) yields the
    bars iter_bars_csv yields, then the same error naming the same line."""
    from argus_core.builtins.replay_venue import iter_bar_runs_csv, iter_bars_csv

    rng = random.Random(seed)
    lines, t, price = [], START, 100.0
    at = rng.randint(100, 5000)
    for i in range(6000):
        if i == at and FAULTS[fault]:  # a value fault in place of a bar, a time one added
            lines.append(FAULTS[fault].format(t=t, p=t - 60, o=t - 30))
            if "{t}" in FAULTS[fault]:
                t += 60
                continue
        price *= 1 + rng.gauss(0, 0.01)
        c = round(price, 2)
        lines.append(f"{t},{c},{c + 0.5},{c - 0.5},{c},{rng.uniform(0, 9):.3f}\n")
        t += 60 if rng.random() > 0.01 else 180
    path = tmp_path / "bars.csv"
    path.write_text("".join(lines))
    window = {} if seed != 2 else {"start_s": START + 60 * 700, "end_s": START + 60 * 5200}
    assert _read(iter_bar_runs_csv, path, **window) == _read(iter_bars_csv, path, **window)
    got = list(iter_bar_runs_csv(path, "replay:X/USD", 60, **window)) if not FAULTS[fault] \
        else []
    if got:  # a clean file comes as columns, a few runs of at most RUN_BARS
        assert all(isinstance(r, bar_runs.BarRun) for r in got)
        assert max(len(r) for r in got) <= bar_runs.RUN_BARS


def test_bars_not_wanted_in_runs_come_one_by_one() -> None:
    bars = [Bar("A", t, 1.0, 1.0, 1.0, 1.0, 0.0) for t in (1, 2, 3)]
    columns = bar_runs.BarRun.of_columns(
        "B", np.array([4, 5], np.int64), np.array([[1.0, 1.0, 1.0, 1.0, 0.0]] * 2))
    out = list(bar_runs.bar_runs([*bars, columns], lambda iid: iid == "B"))
    assert out[:3] == bars and out[3] is columns
    out = list(bar_runs.bar_runs([*bars, columns], lambda iid: False))
    assert out[:3] == bars and [b.ts_ns for b in out[3:]] == [4, 5]
    # a run still open at the end comes too
    assert _flat(bar_runs.bar_runs([columns, *bars], lambda iid: True)) == [
        *_flat([columns]), *bars]
