"""Red team r38b: the audit hook let guarded strategy code read frame and code internals.

The worker's module doc says its audit hook refuses "introspection events", but the
event CPython raises for reading the internals it marks restricted,
``object.__getattr__`` (``gi_frame``, ``cr_frame``, ``gi_code``, ``tb_frame``, a
function's ``__code__``), was not on the hook's list.  With the Python guards on and
the static filter out of the way (as the escape corpus runs), a generator's
``gi_frame`` handed over ``f_back`` and ``f_globals``: the worker's own frames, with
its protocol stream, policy and the real ``os`` and ``sys``.  Now the hook refuses the
event, so every such read raises inside the strategy and the call fails as a strategy
exception, the worker intact.  A read spelt with a dunder (``spin.__code__``,
``exc.__traceback__``) goes no further than the load: the worker refuses compiled
strategy code that names one (r38d).
"""

from __future__ import annotations

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess

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
}


def _load_refusal(source: str) -> str:
    """The start-up failure of ``source``; fails the test if it loads."""
    with pytest.raises(WorkerFailure) as failure:
        WorkerProcess(source, POLICY).close()
    assert failure.value.kind == "startup", failure.value
    return str(failure.value)


@pytest.mark.parametrize("read", sorted(READS))
def test_guarded_strategy_code_cannot_read_frame_or_code_internals(read: str) -> None:
    """Each read raises in the strategy ('object.__getattr__ refused'); nothing of the
    frame comes back in the state."""
    with WorkerProcess(SOURCE.format(read=READS[read]), POLICY) as worker:
        reply = worker.call(CALL)
    assert reply["ok"] is False, f"{read} was read: state {reply.get('state')!r}"
    assert "object.__getattr__ refused" in reply["error"], reply["error"]


def test_a_function_code_read_never_runs() -> None:
    """``spin.__code__``: refused with the strategy's load, before any line of it runs."""
    message = _load_refusal(SOURCE.format(read="spin.__code__"))
    assert "StrategyRefused" in message and "'__code__'" in message, message


def test_a_caught_exception_traceback_frame_is_refused_too() -> None:
    """``tb_frame`` of a caught exception: reached through ``__traceback__``, so refused
    with the load (the hook still refuses the ``tb_frame`` event behind it)."""
    body = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            1 / 0
        except ZeroDivisionError as exc:
            state["got"] = repr(exc.__traceback__.tb_frame.f_back)[:40]
        return []
'''
    message = _load_refusal(body)
    assert "StrategyRefused" in message and "'__traceback__'" in message, message
