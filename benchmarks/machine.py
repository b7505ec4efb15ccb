"""What every benchmark prints about the machine, and the one-core pinning they share.

The scripts run as ``python benchmarks/<name>/bench_*.py``; they put this folder on
``sys.path`` to import it.
"""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (what ``lscpu`` prints)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1/5/15-minute load averages ("n/a" where the OS has none)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_line(extra: str = "") -> str:
    """One line naming the machine, its CPUs, its load and Python: every benchmark prints
    it before its figures, so a reader sees what the ratios were measured on."""
    line = (f"machine: {cpu_model()} | {os.cpu_count()} cpus | load average "
            f"{load_average()} | python {platform.python_version()}")
    return f"{line} | {extra}" if extra else line


def versions(*distributions: str) -> str:
    """``"pandas 2.3.3 | numpy 2.4.6"`` for the installed ``distributions`` (read from
    their metadata, nothing imported).  A peer's figure moves with the libraries under
    it: backtrader's run of the loop job took 6.9 s on pandas 2.3.3 and 4.2 s on
    pandas 3.1.1 on one machine, so the figures are quoted with these."""
    found = []
    for name in distributions:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return " | ".join(found)


def pin_to_one_core() -> bool:
    """Run this process on its first allowed CPU (one-core figures); False where the OS
    cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    return True


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn`` takes with the cyclic GC off (it only adds noise here), and its result."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out
    finally:
        gc.enable()
