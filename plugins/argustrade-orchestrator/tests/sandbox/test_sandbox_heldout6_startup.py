"""Sixth held-out audit, start-up: the strategy's own code before its first call.

Found (the regression below failed before the fix):

* ``Strategy.__init__`` is accepted with any body, and the worker runs it when it
  loads the strategy, under the start-up deadline (15 s by default), not a call's
  (250 ms): ``while i >= 0: i += 1`` there held every start of the strategy for
  15 s.  Workers start inside the running loop (a candidate's shadow, a recycle
  after ``recycle_cpu_fraction`` of the CPU limit), so an accepted strategy could
  stall live trading for 15 s each time, or, finishing in 14 s, on every restart
  without ever failing.  The worker now says when it is contained and about to
  load the strategy, and from then on the host allows ``load_timeout_s`` (1 s).
"""

from __future__ import annotations

import time

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess, validate_source

CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}},
        "event": {"type": "bar", "instrument_id": "test:X", "close": 1.0}}

INIT = '''
class Strategy:
    def __init__(self):
{body}

    def on_event(self, event, state, portfolio):
        state["n"] = state.get("n", 0) + 1
        return []
'''

#: Start-up work an accepted strategy can do; each must end at the load deadline.
SLOW_INITS = {
    "endless_loop": "        i = 0\n        while i >= 0:\n            i += 1",
    "long_loop": "        i = 0\n        while i < 10**9:\n            i += 1",
    "big_power_in_c": "        e = 10**7\n        self.x = pow(7, e) % 10",
    "sort_a_huge_range": "        self.x = sorted(range(10**8), key=lambda v: -v)[0]",
}


@pytest.mark.parametrize("name", sorted(SLOW_INITS))
def test_slow_start_up_code_is_stopped_at_the_load_deadline(name: str) -> None:
    source = INIT.format(body=SLOW_INITS[name])
    assert validate_source(source).accepted  # run-time work: the worker's to stop
    start = time.monotonic()
    with pytest.raises(WorkerFailure) as info:
        WorkerProcess(source, WorkerPolicy(start_timeout_s=12.0, load_timeout_s=1.0))
    elapsed = time.monotonic() - start
    assert info.value.kind in {"timeout", "crash", "startup"}, info.value
    assert elapsed < 5.0, elapsed  # 12 s (the start-up deadline) before
    if info.value.kind == "timeout":
        assert "loading the strategy" in str(info.value) and "1.0s" in str(info.value)


def test_ordinary_start_up_code_runs_and_the_worker_answers() -> None:
    source = INIT.format(body="        self.window = [0.0] * 1000\n"
                              "        self.k = sum(range(10**5))")
    assert validate_source(source).accepted
    with WorkerProcess(source, WorkerPolicy(load_timeout_s=1.0)) as worker:
        reply = worker.call(CALL)
    assert reply["ok"] is True and reply["state"] == {"n": 1}


def test_the_largest_accepted_module_loads_well_inside_the_load_deadline() -> None:
    """Compiling 64 KiB of source is part of loading: it takes a few tens of ms."""
    methods = "".join(f"    def m{i}(self, a, b):\n        x = [a * b + {i} for _ in range(3)]\n"
                      f"        return sum(x) if x else a - b\n\n" for i in range(360))
    source = INIT.format(body="        self.k = 1").replace("    def on_event", methods +
                                                            "    def on_event", 1)
    result = validate_source(source)
    assert result.accepted and result.n_lines > 1400, (result.n_lines, result.reasons[:3])
    start = time.monotonic()
    with WorkerProcess(source, WorkerPolicy(load_timeout_s=1.0)) as worker:
        assert worker.call(CALL)["ok"] is True
    assert time.monotonic() - start < 3.0


def test_the_load_deadline_cannot_be_longer_than_the_start_up_deadline() -> None:
    """The start-up deadline still bounds the whole start, loading included."""
    source = INIT.format(body=SLOW_INITS["endless_loop"])
    start = time.monotonic()
    with pytest.raises(WorkerFailure) as info:
        WorkerProcess(source, WorkerPolicy(start_timeout_s=1.5, load_timeout_s=60.0))
    assert info.value.kind == "timeout" and time.monotonic() - start < 5.0
