"""The compiled sweep path against the event loop: fill for fill, to the last digit.

Every comparison runs the real loop (``run_backtest``) and the kernel on the bundled
Kraken bars and asserts the same fills (time, side, price, quantity, fee), the same
final equity, the same per-bar returns and the same metrics, bit for bit.
"""

from __future__ import annotations

import random
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_lab import compiled
from argus_lab.executor import SerialExecutor
from argus_lab.gates import open_lab
from argus_lab.sma_kernel import (
    NEAR_KILL,
    OK,
    _mul_div_floor,
    _mul_div_half_even,
    _sign_of_difference,
)
from argus_lab.sweep import run_sweep

from argus_core import Config, apply_overrides, load_config, run_backtest

BARS = Path(__file__).resolve().parents[3] / "examples" / "data" / "kraken_XBTUSD_60.csv"

BASE = f"""
[argus]
plugins = []
mode = "replay"
[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"
starting_cash = "100000"
[paper]
bar_spread_bps = "2"
bar_depth_fraction = 0.1
slippage_bps = "1"
[plugins.replay]
bars_csv = "{BARS}"
start = "2022-06-01"
end = "2022-08-01"
taker_bps = "40"
[plugins.example]
fast = 10
slow = 40
[plugins.sizing]
fraction = "0.05"
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("cfg") / "base.toml"
    path.write_text(BASE)
    return load_config(path)


def assert_same(config: Config, points: list[tuple[int, int]]) -> list[compiled.KernelPoint]:
    """Run the loop and the kernel on ``points``; assert everything agrees exactly."""
    prep = compiled.prepare(config)
    kps = compiled.run_kernel(prep, points)
    for (fast, slow), kp in zip(points, kps, strict=True):
        assert kp.status == OK, kp.status
        cfg = apply_overrides(config, {"plugins.example.fast": fast,
                                       "plugins.example.slow": slow})
        res = run_backtest(cfg, Path(tempfile.mkdtemp(prefix="argus-lab-cmp-")))
        loop = [(f.ts_ns, f.side.value, Decimal(f.price), Decimal(f.quantity), Decimal(f.fee))
                for f in res.fills]
        assert compiled.fill_rows(prep, kp) == loop, (fast, slow)
        assert compiled.final_equity(prep, kp) == res.summary.final_equity
        metrics, returns, ts, pnls = compiled.point_metrics(prep, kp)
        assert np.array_equal(returns, res.returns)
        assert np.array_equal(ts, res.equity_ts_ns[1:])
        assert np.array_equal(pnls, res.trade_pnls)
        assert metrics == {k: res.metrics[k] for k in metrics}
    return kps


@pytest.mark.parametrize("overrides", [
    {},  # the 2022 era: tick 0.1
    {"plugins.sizing.fraction": "0.3"},  # per_play_cap (7%) shrinks every buy
    {"paper.slippage_bps": "0", "paper.bar_spread_bps": "0", "plugins.replay.taker_bps": "0"},
    {"paper.cost_multiplier": "1.25", "plugins.replay.taker_bps": "26",
     "paper.slippage_bps": "3"},
    # 2013: 5-decimal prices, thin bars: partial fills walk all five levels and leave
    # residues; three losses in a row latch REDUCING
    {"plugins.replay.start": "2013-06-01", "plugins.replay.end": "2013-12-01",
     "plugins.sizing.fraction": "0.3", "plugins.risk.max_consecutive_losses": 3},
    {"run.risk_checks": [], "plugins.sizing.fraction": "0.9",
     "plugins.replay.start": "2021-01-01", "plugins.replay.end": "2021-02-15"},
])
def test_kernel_matches_the_event_loop(base: Config, overrides: dict[str, Any]) -> None:
    assert_same(apply_overrides(base, overrides), [(10, 40), (3, 7), (24, 120)])


def test_randomised_configs_match(base: Config) -> None:
    rng = random.Random(14)
    for _ in range(4):
        year = rng.choice([2014, 2017, 2019, 2022])
        month = rng.randint(1, 10)
        cfg = apply_overrides(base, {
            "plugins.replay.start": f"{year}-{month:02d}-01",
            "plugins.replay.end": f"{year}-{month + 2:02d}-01",
            "paper.slippage_bps": str(rng.choice([0, 1, 2.5, 7])),
            "paper.bar_spread_bps": str(rng.choice([0, 1, 2, 5])),
            "paper.bar_depth_fraction": rng.choice([0.01, 0.1, 0.2]),
            "paper.cost_multiplier": str(rng.choice([1, 1.25, 1.5, 2])),
            "plugins.replay.taker_bps": str(rng.choice([0, 10, 26, 40])),
            "plugins.sizing.fraction": str(rng.choice([0.01, 0.05, 0.2, 0.5])),
            "plugins.risk.max_consecutive_losses": rng.choice([2, 5, 1000]),
        })
        fast = rng.randint(2, 30)
        assert_same(cfg, [(fast, fast + rng.randint(1, 80))])


def test_a_ladder_the_bar_volume_caps_is_not_compiled(base: Config) -> None:
    """Above 1/5 the broker's cap of a bar's fills at its volume binds, which the kernel
    does not model: such a config runs on the event loop, saying why."""
    from argus_lab.compiled import NotVectorisable, prepare

    with pytest.raises(NotVectorisable, match=r"bar_depth_fraction 0\.5 over 1/5"):
        prepare(apply_overrides(base, {"paper.bar_depth_fraction": 0.5}))


EXAMPLES = BARS.parents[1]


@pytest.mark.parametrize(("name", "why", "window"), [
    ("demo.toml", "sizer 'kelly'", {"plugins.replay.end": "2021-04-01"}),
    ("orchestrator/orchestrate.toml", "sizer 'kelly'", {}),
    ("multi_strategy/multi_strategy.toml", "2 strategy slots", None),
    ("multi_strategy/reference.toml", "2 strategy slots", None),
])
def test_every_example_config_runs_compiled_or_says_why_not(
        name: str, why: str, window: dict[str, Any] | None) -> None:
    config = compiled.base_config(load_config(EXAMPLES / name), {})
    with pytest.raises(compiled.NotVectorisable, match=why):
        compiled.prepare(config)
    if window is not None:  # sized by fixed_fraction, the same config runs compiled
        assert_same(apply_overrides(config, {"run.sizer": "fixed_fraction", **window}),
                    [(24, 120), (10, 40)])


def test_near_the_kill_switch_the_point_is_refused(base: Config) -> None:
    cfg = apply_overrides(base, {"plugins.risk.max_drawdown_fraction": "0.001",
                                 "plugins.sizing.fraction": "0.5"})
    kp = compiled.run_kernel(compiled.prepare(cfg), [(3, 7)])[0]
    assert kp.status == NEAR_KILL


@pytest.mark.parametrize(("overrides", "why"), [
    ({"run.sizer": "kelly"}, "sizer 'kelly'"),
    ({"run.risk_checks": ["per_play_cap", "max_position"],
      "plugins.risk.max_position_qty": "1"}, "max_position has a limit"),
    ({"paper.fixed_fee": "1"}, "not plain basis points"),
    ({"paper.latency_ms": 7_200_000}, "latency"),
])
def test_configs_the_kernel_cannot_reproduce_say_why(base: Config, overrides: dict[str, Any],
                                                     why: str) -> None:
    with pytest.raises(compiled.NotVectorisable, match=why):
        compiled.prepare(apply_overrides(base, overrides))


def test_only_the_declared_class_is_vectorisable() -> None:
    from argus_core.builtins.example_strategies import MovingAverageCross

    class Lookalike(MovingAverageCross):
        pass

    assert compiled.declared_kernel(MovingAverageCross(None), "ma_cross") == "sma_cross"
    assert compiled.declared_kernel(Lookalike(None), "ma_cross") is None
    assert compiled.declared_kernel(MovingAverageCross(None), "other") is None


def test_integer_helpers() -> None:
    big = 9_000_000_000_000_000_000 // 7
    assert _mul_div_floor(big, 7, 100) == big * 7 // 100
    for x in (0, 5, 15, 25, 35, 12_345_678_901_234_567):
        exact = Decimal(x) / 10
        assert _mul_div_half_even(x, 1, 10) == int(exact.quantize(Decimal(1)))
    a, b = 3_000_000_000_000_000_000, 7
    assert _sign_of_difference(a, b, a, b) == 0
    c = 7_000_000_000_000_000_000  # c * 3 == a * b: products past 2**63, a few apart
    assert _sign_of_difference(a, b, c, 3) == 0
    assert _sign_of_difference(a, b, c - 1, 3) == 1
    assert _sign_of_difference(a, b, c + 1, 3) == -1
    assert _sign_of_difference(a, b, a + 1, b) == -1


SWEEP = BASE + """
[plugins.lab]
family = "ma"
dir = "{lab}"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.sweep]
engine = "{engine}"
[plugins.lab.sweep.params]
"plugins.example.fast" = {{ choices = [5, 10, 40] }}
"plugins.example.slow" = {{ choices = [30, 60] }}
"""


def sweep(tmp_path: Path, engine: str, extra: str = "") -> tuple[list[Any], list[str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{engine}.toml"
    path.write_text(SWEEP.format(lab=tmp_path / f"lab-{engine}", engine=engine) + extra)
    config = load_config(path)
    settings, folder, ledger = open_lab(config)
    notes: list[str] = []
    try:
        points = run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
                           executor=SerialExecutor(), family="ma",
                           engine=settings.sweep.engine, report=notes.append)
    finally:
        ledger.close()
    return points, notes


def without_engine(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "engine"}


def test_sweep_results_are_identical_on_either_engine(tmp_path: Path) -> None:
    fast, fast_notes = sweep(tmp_path, "auto")
    slow, slow_notes = sweep(tmp_path, "event_loop")
    # fast=40/slow=30 is invalid: the event loop records its error either way
    assert len(fast_notes) == 1
    assert fast_notes[0].startswith("engine: compiled for 5 of 6 points, event loop for 1 "
                                    "(1 x invalid parameters: ")
    assert "fast (40) must be shorter than slow (30)" in fast_notes[0]
    assert slow_notes == ["engine: event loop for all 6 points (engine = event_loop)"]
    assert [p.point_id for p in fast] == [p.point_id for p in slow]
    for a, b in zip(fast, slow, strict=True):
        assert a.status == b.status  # the error names each config's own file
        assert (a.error or "").rsplit(".toml: ", 1)[-1] == (b.error or "").rsplit(".toml: ", 1)[-1]
        assert without_engine(a.metrics) == without_engine(b.metrics)
        assert np.array_equal(a.returns, b.returns) and np.array_equal(a.ts_ns, b.ts_ns)
    assert [p.metrics.get("engine") for p in fast] == [
        "compiled", "compiled", "compiled", "compiled", None, "compiled"]


def test_points_the_kernel_refuses_run_on_the_event_loop(tmp_path: Path) -> None:
    kill = '[plugins.risk]\nmax_drawdown_fraction = "0.0185"\n'
    fast, notes = sweep(tmp_path / "auto", "auto", kill)
    slow, _notes = sweep(tmp_path / "loop", "event_loop", kill)
    assert "within reach of the max_drawdown kill switch" in notes[0]
    engines = [p.metrics.get("engine") for p in fast]
    assert "event loop" in engines and "compiled" in engines
    for a, b in zip(fast, slow, strict=True):
        assert without_engine(a.metrics) == without_engine(b.metrics)
        assert np.array_equal(a.returns, b.returns)


def test_a_strategy_without_a_kernel_falls_back(tmp_path: Path) -> None:
    _points, notes = sweep(tmp_path, "auto", '[plugins.lab.sweep.params."run.sizer"]\n'
                                             'choices = ["kelly"]\n')
    assert notes == ["engine: compiled for 0 of 6 points, event loop for 6 (6 x sizer 'kelly' "
                     "(the kernel sizes fixed_fraction only))"]


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_sweep(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from argus_lab.executor import DaskExecutor

    local, _notes = sweep(tmp_path / "local", "auto")
    path = tmp_path / "dask.toml"
    path.write_text(SWEEP.format(lab=tmp_path / "lab-dask", engine="auto"))
    config = load_config(path)
    settings, folder, ledger = open_lab(config)
    notes: list[str] = []
    try:
        with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None) as cluster,
              DaskExecutor(cluster.scheduler_address) as ex):
            remote = run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
                               executor=ex, family="ma", report=notes.append)
    finally:
        ledger.close()
    assert notes[0].startswith("engine: compiled for 5 of 6 points")
    for a, b in zip(local, remote, strict=True):
        assert a.metrics == b.metrics
        assert np.array_equal(a.returns, b.returns)


def test_the_commands_say_which_engine_ran(tmp_path: Path) -> None:
    from argus_lab.commands import lab
    from click.testing import CliRunner

    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(lab=tmp_path / "lab", engine="auto").replace(
        "[5, 10, 40]", "[5, 10]"))
    out = CliRunner().invoke(lab, ["sweep", "--config", str(path)], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "engine: compiled for all 4 points" in out.output
    out = CliRunner().invoke(lab, ["sweep", "--config", str(path)], terminal_width=200)
    assert "engine: every point was already done (resumed)" in out.output


def test_the_gates_record_the_sweep_engine(tmp_path: Path) -> None:
    from argus_lab.gates import evaluate_config

    path = tmp_path / "gates.toml"
    path.write_text(SWEEP.format(lab=tmp_path / "lab", engine="auto").replace(
        "[5, 10, 40]", "[5, 10]") + '[plugins.lab.gates]\ncost_multipliers = ["1"]\n'
        "rc_reps = 50\n[plugins.lab.bootstrap]\nn_paths = 200\nbatches = 1\n"
        "[plugins.lab.walkforward]\ntrain_bars = 400\ntest_bars = 200\n")
    verdict = evaluate_config(load_config(path), executor=SerialExecutor())
    assert verdict.details["sweep_engine"] == "engine: compiled for all 4 points"
