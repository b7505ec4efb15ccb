"""Peak memory of whole `argus run` / `argus backtest` processes against the number of bars.

Writes seeded one-minute OHLCV CSVs of 70,000 and 700,000 bars (Kraken's download
format), runs the demo's strategy on each as a separate process under
``/usr/bin/time -v`` (its "Maximum resident set size"; ``getrusage`` of the child
where GNU time is missing), and prints each peak and the 700k/70k ratio, measured in one
run.  The replay streams its bars, so the loop's peak should not grow with the bar
count (ratio near 1); the report reads the equity series into arrays (8 bytes per bar
per column), so `argus backtest` grows a little.

    python benchmarks/loop/bench_memory.py            # ~2 minutes on one core
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cpu_model  # benchmarks/ is not a package: on sys.path above

ROOT = Path(__file__).resolve().parents[2]
GNU_TIME = shutil.which("time") if Path("/usr/bin/time").exists() else None


def write_bars(path: Path, n: int, seed: int) -> None:
    """``n`` one-minute bars of a seeded random walk around 30,000."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    opens = np.concatenate(([close[0]], close[:-1]))
    high, low = np.maximum(opens, close) * 1.001, np.minimum(opens, close) * 0.999
    vol = rng.random(n) * 5
    ts = 1_400_000_000 + 60 * np.arange(n)
    with path.open("w") as fh:
        for row in zip(ts, opens, high, low, close, vol, strict=True):
            fh.write("{},{:.1f},{:.1f},{:.1f},{:.1f},{:.8f},10\n".format(*row))


def config_for(bars: Path, out: Path) -> Path:
    """The demo's config on ``bars`` (one-minute bars, the whole file)."""
    text = (ROOT / "examples" / "demo.toml").read_text()
    text = re.sub(r'bars_csv = ".*"', f'bars_csv = "{bars}"', text)
    text = re.sub(r"(?m)^bar_seconds = .*$", "bar_seconds = 60", text)
    text = re.sub(r'(?m)^start = ".*"$', "", text)
    out.write_text(text)
    return out


def peak_mib(argv: list[str]) -> float:
    """Peak resident memory of one process running ``argv``, in MiB."""
    if GNU_TIME:
        # Not check=True: a losing random walk may end HALTED (its own exit code).
        done = subprocess.run([GNU_TIME, "-v", *argv], capture_output=True, text=True,
                              check=False)
        kib = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        assert kib is not None, done.stderr[-500:]
        return int(kib.group(1)) / 1024
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(argv, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024  # ru_maxrss is the largest child so far (KiB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(70_000, 700_000))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    argus = shutil.which("argus") or sys.exit("argus is not installed (pip install -e .)")
    print(f"machine: {cpu_model()} | CPython {sys.version.split()[0]} | "
          f"peak RSS by {'/usr/bin/time -v' if GNU_TIME else 'getrusage'}")
    peaks: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="argus-bench-memory-") as tmp:
        for n in args.sizes:
            bars = Path(tmp) / f"bars{n}.csv"
            write_bars(bars, n, args.seed)
            config = config_for(bars, Path(tmp) / f"run{n}.toml")
            for command in ("run", "backtest"):
                run_dir = Path(tmp) / f"{command}{n}"
                peaks[command, n] = peak_mib([argus, command, "--config", str(config),
                                              "--run-dir", str(run_dir)])
    small, large = args.sizes
    print(f"\n{'':<16} {small:>12,} bars {large:>12,} bars {'ratio':>8}")
    for command in ("run", "backtest"):
        a, b = peaks[command, small], peaks[command, large]
        print(f"argus {command:<10} {a:>13.1f} MiB {b:>13.1f} MiB {b / a:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
