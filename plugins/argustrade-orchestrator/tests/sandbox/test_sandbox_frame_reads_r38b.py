"""Red team r38b: the audit hook let guarded strategy code read frame and code internals.

The worker's module doc says its audit hook refuses "introspection events", but the
event CPython raises for reading the internals it marks restricted,
``object.__getattr__`` (``gi_frame``, ``cr_frame``, ``gi_code``, ``tb_frame``, a
function's ``__code__``), was not on the hook's list.  With the Python guards on and
the static filter out of the way (as the escape corpus runs), a generator's
``gi_frame`` handed over ``f_back`` and ``f_globals``: the worker's own frames, with
its protocol stream, policy and the real ``os`` and ``sys``.  Now the hook refuses the
event, so every such read raises inside the strategy and the call fails as a strategy
exception, the worker intact.
"""

from __future__ import annotations

import pytest
from argus_orchestrator.sandbox import WorkerPolicy, WorkerProcess

#: Guards on (the default); the filter is never run here, as in the escape corpus.
POLICY = WorkerPolicy(call_timeout_s=2.0, start_timeout_s=6.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}},
        "event": {"type": "bar", "instrument_id": "test:X", "close": 1.0}}

SOURCE = '''
def spin():
    yield 1


class Strategy:
    def on_event(self, event, state, portfolio):
        state["got"] = repr({read})[:40]
        return []
'''
READS = {
    "generator frame": "spin().gi_frame",
    "generator code": "spin().gi_code",
    "function code": "spin.__code__",
}


@pytest.mark.parametrize("read", sorted(READS))
def test_guarded_strategy_code_cannot_read_frame_or_code_internals(read: str) -> None:
    """Each read raises in the strategy ('object.__getattr__ refused'); nothing of the
    frame comes back in the state."""
    with WorkerProcess(SOURCE.format(read=READS[read]), POLICY) as worker:
        reply = worker.call(CALL)
    assert reply["ok"] is False, f"{read} was read: state {reply.get('state')!r}"
    assert "object.__getattr__ refused" in reply["error"], reply["error"]


def test_a_caught_exception_traceback_frame_is_refused_too() -> None:
    """``tb_frame`` of a caught exception: the same event, the same refusal."""
    body = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            1 / 0
        except ZeroDivisionError as exc:
            state["got"] = repr(exc.__traceback__.tb_frame.f_back)[:40]
        return []
'''
    with WorkerProcess(body, POLICY) as worker:
        reply = worker.call(CALL)
    assert reply["ok"] is False, f"tb_frame was read: state {reply.get('state')!r}"
    assert "object.__getattr__ refused" in reply["error"], reply["error"]
