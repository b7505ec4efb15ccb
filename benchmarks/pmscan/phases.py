"""Where one ``ranked`` scan's time goes: the benchmark's snapshot and scan sequence, each
phase timed apart (this thread's CPU time, the cyclic GC off, no forced collection
before a scan).

    python benchmarks/pmscan/phases.py [--events 3000] [--changed 300] [--scans 7]

Replays ``bench_pmscan.measure``'s ``ranked`` row: a warm-up scan, the persistence ramp
(scans 2 to ``persistence_cap``), ``--scans`` full scans of the unchanged state, then
``--scans`` incremental ones after ``--changed`` books moved; prints each kind's median
per phase: the touch table's refresh, the OFI tracker fed, each component's
``unstamped``, ``ScoreColumns.rank`` and the one-taker pass.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from argus_scanners_polymarket import ranking
from argus_scanners_polymarket.ranking import RankedScanner
from argus_scanners_polymarket.synthetic import NOW_NS, SPOT, synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pmscan
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # machine
from bench_pmscan import S, move_books  # after the path set-up above
from machine import load_average, pin_to_one_core  # after the path set-up above

PHASES: dict[str, float] = defaultdict(float)


def _wrap(owner: Any, attr: str, label: Callable[..., str] | str) -> None:
    """Replace ``owner.attr`` by a wrapper adding its CPU time to :data:`PHASES`."""
    fn = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            name = label if isinstance(label, str) else label(*args)
            PHASES[name] += time.thread_time() - t0

    setattr(owner, attr, wrapper)


def _instrument(r: RankedScanner) -> None:
    """Time the phases of ``r``'s scans."""
    for comp in r.components:
        _wrap(comp, "unstamped" if hasattr(comp, "unstamped") else "scan", comp.name)
    _wrap(r._columns, "rank", "rank")  # the harness times the private pass
    _wrap(ranking, "one_taker_per_leg", "one_taker")
    _wrap(ranking, "touch_table", "refresh")
    _wrap(type(r.ofi), "observe", "ofi")


def main() -> None:
    """Run the sequence and print the medians per phase."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--changed", type=int, default=300)
    ap.add_argument("--scans", type=int, default=7)
    args = ap.parse_args()
    pin_to_one_core()
    market = synthetic(args.events)
    gc.freeze()
    r = RankedScanner(S)
    _instrument(r)
    ids = [i for i in market.books if i != SPOT]
    rng = np.random.default_rng(1)
    ts = NOW_NS
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)

    def scan(kind: str) -> None:
        PHASES.clear()
        gc.disable()
        t0 = time.thread_time()
        r.scan(market, ts)
        total = time.thread_time() - t0
        gc.enable()
        PHASES["total"] = total
        runs[kind].append(dict(PHASES))

    scan("warm-up")
    for _ in range(S.ranked.persistence_cap - 1):
        scan("ramp")
    for _ in range(args.scans):
        scan("full")
    for _ in range(args.scans):
        ts += 10**9
        move_books(market, ids, args.changed, rng, ts)
        scan("incremental")
    print(f"load average {load_average()}; ms, medians of each kind's scans")
    kinds = ["ramp", "full", "incremental"]
    names = sorted({k for kind in kinds for run in runs[kind] for k in run},
                   key=lambda k: (k != "total", k))
    print(f"{'phase':14s}" + "".join(f"{k:>13s}" for k in kinds))
    for name in names:
        cells = [statistics.median(run.get(name, 0.0) for run in runs[kind]) * 1e3
                 for kind in kinds]
        print(f"{name:14s}" + "".join(f"{c:13.2f}" for c in cells))


if __name__ == "__main__":
    main()
