"""The whole-process benchmark (benchmarks/loop/bench_process.py) still runs: its tiny
mode times every Argus row as a real process and prints the issue's target lines, and
the foreign scripts it writes still compile (they run only where the extras exist)."""

from __future__ import annotations

import os
import re
import sys
from types import ModuleType

import pytest
from argus_test_helpers import ROOT


def _bench() -> ModuleType:
    sys.path[:0] = [str(ROOT / "benchmarks" / "loop"), str(ROOT / "benchmarks")]
    try:
        import bench_process
    finally:
        del sys.path[:2]
    return bench_process


@pytest.mark.slow  # five real processes, one a backtest with its report: 4-10 s on a busy box
def test_tiny_mode_runs_every_argus_row_and_prints_the_targets(
        capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    assert bench.main(["--tiny", "--skip", "backtrader", "--skip", "vectorbt"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1).strip(): m.group(2) for m in
            re.finditer(r"^(argus [a-z-]+(?: \(demo\))?)\s+([\d.]+)\s+[\d.]+\s+[\d.]+", out, re.M)}
    assert set(rows) == {"argus --help", "argus --version", "argus backtest (demo)",
                         "argus run (demo)"}, out
    # The backtest and the run replay the same tiny job: same orders and final equity.
    results = re.findall(r"^argus (?:backtest|run) \(demo\).*?x\s+(\d+)\s+(\d+)\s+([\d,.]+)",
                         out, re.M)
    assert len(results) == 2 and results[0] == results[1] and int(results[0][0]) > 0, out
    assert "skipped (--skip backtrader)" in out and "skipped (--skip vectorbt)" in out
    for target in ("argus --help under 0.3 s", "peak memory under 100 MiB"):
        assert re.search(rf"target .*{re.escape(target)}: (MET|NOT MET) \(", out), out
    assert "faster than backtrader: not measured" in out


@pytest.mark.parametrize("name", ["BACKTRADER", "VECTORBT"])
def test_the_foreign_scripts_compile(name: str) -> None:
    source = getattr(_bench(), name)
    compile(source, f"{name.lower()}_job.py", "exec")
    assert "START_S" in source and "json.dump" in source  # same window; writes its result


def test_the_vectorbt_comparison_runs_its_argus_side_and_rule_checks(
        capsys: pytest.CaptureFixture[str]) -> None:
    sys.path[:0] = [str(ROOT / "benchmarks" / "loop"), str(ROOT / "benchmarks")]
    try:
        import bench_vectorbt
    finally:
        del sys.path[:2]
    # Exit 0 only when Argus's final equity equals its rules' plain-Python figure.
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        assert bench_vectorbt.main(["--bars", "800", "--repeat", "1", "--skip-vectorbt"]) == 0
    finally:  # the benchmark pins its process to one core; this is pytest's process
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
    out = capsys.readouterr().out
    assert re.search(r"^Argus loop \(pre-parsed bars\)\s+800\s", out, re.M), out
    assert "plain Python: " in out and "-> same" in out
    assert "skipped (--skip-vectorbt)" in out
    # vectorbt's own rules, reproduced in plain Python, still make trades on these bars.
    assert bench_vectorbt.vectorbt_rules(bench_vectorbt.bench_loop.read_bars()[:800]) != 100_000
