"""What every benchmark prints about the machine, and the one-core pinning they share.

The scripts run as ``python benchmarks/<name>/bench_*.py``; they put this folder on
``sys.path`` to import it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (what ``lscpu`` prints)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pin_to_one_core() -> bool:
    """Run this process on its first allowed CPU (one-core figures); False where the OS
    cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    return True
