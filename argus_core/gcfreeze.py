"""The cyclic garbage collector during a run: what start-up built is frozen.

CPython's full (generation 2) collections walk every tracked container; in a Polymarket
run most of them are what start-up built and the run keeps: modules and plugins, tens of
thousands of instruments, events and outcomes.  A full collection over them stopped a
ranked scan for up to ~200 ms (``benchmarks/pmscan``).  ``gc.freeze()`` after start-up
moves them to the permanent generation, which collections skip; the run's own objects
are collected as before.  ``gc.unfreeze()`` when the run ends hands them back, so cyclic
garbage among them (a finished runner, say) is collected after the run, never leaked
across runs in one process (a lab sweep, the tests).  Runs nested or side by side in one
process freeze with the first and thaw with the last; a process that froze objects of
its own before (an application embedding Argus) keeps them frozen: nothing is thawed.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_holders = 0
_theirs = False  # objects were frozen before the first holder: not ours to thaw


def freeze_startup() -> None:
    """Freeze everything tracked now (the first holder in this process does)."""
    global _holders, _theirs
    with _lock:
        _holders += 1
        if _holders == 1:
            _theirs = gc.get_freeze_count() > 0
            gc.freeze()


def thaw() -> None:
    """Undo :func:`freeze_startup` (the last holder in this process unfreezes)."""
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0 and not _theirs:
            gc.unfreeze()
