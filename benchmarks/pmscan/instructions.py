"""Instructions per ``ranked`` scan under callgrind: a figure a shared, loaded box does not
move (CPU time here swung 1.5-2x between identical runs), for old/new comparisons.

    python benchmarks/pmscan/instructions.py [--events 3000] [--scans 7] [--old SRC]

Builds the benchmark's seeded snapshot once (pickled to ``--cache``), then runs
``valgrind --tool=callgrind`` on this script in ``--child`` mode: it loads the snapshot and
replays ``bench_pmscan.measure``'s ``ranked`` sequence (a warm-up scan, the persistence
ramp, ``--scans`` full scans, ``--scans`` incremental ones after 300 moved books), each
scan called through ``operator.call`` (which no scanner calls) so that callgrind collects
inside it only (``--toggle-collect=_operator_call``) and dumps one profile per scan.
Prints the median instructions of each kind's scans (millions). ``--old SRC``: the same
with ``SRC`` (an old tree's ``plugins/argus-scanners-polymarket/src``) first on
``PYTHONPATH``, in alternation.
"""

from __future__ import annotations

import argparse
import operator
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from argus_scanners_polymarket.synthetic import NOW_NS, SPOT, synthetic

from argus_core import FeeSchedule

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pmscan
from bench_pmscan import S, move_books  # after the path set-up above

KINDS = ("warm-up", "ramp", "full", "incremental")


class ConstantFees:
    """A picklable stand-in for ``MarketBuilder``'s ``lambda iid: schedule``."""

    def __init__(self, schedule: FeeSchedule) -> None:
        self.schedule = schedule

    def __call__(self, iid: str) -> FeeSchedule:
        """The one schedule of the synthetic snapshot."""
        return self.schedule


def build(events: int, path: Path) -> None:
    """Pickle the seeded snapshot (its fee lambda replaced by :class:`ConstantFees`)."""
    market = synthetic(events)
    market.fees = ConstantFees(market.fee_schedule(next(iter(market.books))))
    path.write_bytes(pickle.dumps(market, protocol=pickle.HIGHEST_PROTOCOL))


def child(path: Path, scans: int, changed: int) -> None:
    """Replay the sequence, each scan inside ``operator.call`` (printed kinds in order)."""
    from argus_scanners_polymarket.ranking import RankedScanner

    market = pickle.loads(path.read_bytes())
    r = RankedScanner(S)
    ids = [i for i in market.books if i != SPOT]
    rng = np.random.default_rng(1)
    ts = NOW_NS
    kinds = ["warm-up"] + ["ramp"] * (S.ranked.persistence_cap - 1) + ["full"] * scans
    for _ in kinds:
        operator.call(r.scan, market, ts)
    for _ in range(scans):
        ts += 10**9
        move_books(market, ids, changed, rng, ts)
        operator.call(r.scan, market, ts)
        kinds.append("incremental")
    print("KINDS " + " ".join(kinds))


def run(src: str | None, path: Path, scans: int, changed: int) -> dict[str, float]:
    """One callgrind run: median instructions (millions) per kind of scan."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             "--toggle-collect=_operator_call", "--dump-after=_operator_call",
             f"--callgrind-out-file={tmp}/cg.%p", sys.executable, __file__, "--child",
             "--cache", str(path), "--scans", str(scans), "--changed", str(changed)],
            env=env, capture_output=True, text=True, check=True)
        kinds = next(line for line in out.stdout.splitlines()
                     if line.startswith("KINDS ")).split()[1:]
        dumps = sorted(Path(tmp).glob("cg.*.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        totals = [int(re.search(r"^totals: (\d+)", d.read_text(), re.M).group(1))  # type: ignore[union-attr]  # every dump has one
                  for d in dumps]
    if len(totals) != len(kinds):
        raise RuntimeError(f"{len(totals)} dumps for {len(kinds)} scans")
    return {k: statistics.median(t for t, kk in zip(totals, kinds, strict=True) if kk == k) / 1e6
            for k in KINDS}


def main() -> None:
    """Parse the arguments; build, replay (``--child``) or compare."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--scans", type=int, default=7)
    ap.add_argument("--changed", type=int, default=300)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "pmscan_snapshot.pkl"))
    ap.add_argument("--old", default="", help="an old tree's plugin src, run in alternation")
    ap.add_argument("--pairs", type=int, default=1)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    path = Path(args.cache)
    if args.child:
        child(path, args.scans, args.changed)
        return
    if not path.exists():
        build(args.events, path)
    print("instructions per scan, millions (medians):  " + "  ".join(f"{k:>11s}" for k in KINDS))
    for _ in range(args.pairs):
        for label, src in ([("old", args.old)] if args.old else []) + [("new", None)]:
            med = run(src, path, args.scans, args.changed)
            print(f"{label:44s} " + "  ".join(f"{med[k]:11.1f}" for k in KINDS), flush=True)


if __name__ == "__main__":
    main()
