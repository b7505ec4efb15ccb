"""The benchmarks' own set-ups still work (a range check once made the loop benchmark's
config unparseable, and nothing ran it): a tiny run of each Argus row."""

from __future__ import annotations

import sys
from pathlib import Path

from argus_test_helpers import ROOT

from argus_core.models import Bar


def test_the_loop_benchmarks_argus_run_still_runs(tmp_path: Path) -> None:
    sys.path[:0] = [str(ROOT / "benchmarks" / "loop"), str(ROOT / "benchmarks")]
    try:
        import bench_loop
    finally:
        del sys.path[:2]
    bars = bench_loop.read_bars()[:3_000]
    pre = [Bar("replay:BTC/USD", (t + 3600) * 10**9, o, h, lo, c, v)
           for t, o, h, lo, c, v in bars]
    keep: list[Path] = []
    result = bench_loop.run_argus(pre, keep)
    assert result["events"] == 3_000 and result["fills"] == result["orders"] > 10
