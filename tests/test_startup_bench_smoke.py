"""The whole-process benchmark (benchmarks/loop/bench_process.py) still runs: its tiny
mode times every Argus row as a real process and prints the issue's target lines, and
the foreign scripts it writes still compile (they run only where the extras exist)."""

from __future__ import annotations

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


def test_tiny_mode_runs_every_argus_row_and_prints_the_targets(
        capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    assert bench.main(["--tiny", "--skip", "backtrader", "--skip", "vectorbt"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1).strip(): m.group(2) for m in
            re.finditer(r"^(argus [a-z-]+(?: \(demo\))?)\s+([\d.]+)\s+[\d.]+", out, re.M)}
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
