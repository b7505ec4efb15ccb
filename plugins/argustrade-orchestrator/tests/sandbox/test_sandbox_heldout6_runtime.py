"""Sixth held-out audit, run time: accepted programs that aim at the worker's own code.

Nothing here got past the boundary; these are the attempts that held, kept so they
stay held.  Each program is accepted by the checker and runs in a real worker:

* strategy code run *by the worker's trusted code*: ``Counter`` is a pure-Python
  ``dict`` subclass, so a strategy may replace ``Counter.items``, which the worker's
  ``json.dumps`` of the state then calls (the reply is still plain JSON the host
  validates; the code runs with the strategy's own builtins), and ``__init__`` may
  rebind ``self.on_event`` to a builtin;
* values that break the worker's own error path: an exception whose ``str()`` raises
  (a 30,000-digit integer argument, a 100,000-deep list in a ``KeyError``), deep
  containers freed or compared (the deep-tuple hash segfault is known: still a
  ``crash``, nothing more);
* replies shaped against the host: duplicate state keys after ``json.dumps`` (``1`` and
  ``"1"``), an integer of 4,200 digits in the state, ``EVENTS`` rebound at start-up
  to a frame larger than the host reads, a forged ``loading`` frame (guards off).
"""

from __future__ import annotations

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess, validate_source

POLICY = WorkerPolicy(call_timeout_s=2.0, start_timeout_s=6.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}},
        "event": {"type": "bar", "instrument_id": "test:X", "close": 1.0, "k": 100_000}}

HEAD = '''
from collections import Counter, deque


class Strategy:
    def __init__(self):
        self.ready = 1
{init}

    def on_event(self, event, state, portfolio):
        k = event["k"]
{body}
        return []
'''


def _source(body: str, init: str = "") -> str:
    return HEAD.format(body=body, init=init or "        self.ready = 2")


def _outcome(source: str, policy: WorkerPolicy = POLICY) -> tuple[str, object]:
    """('ok', state), ('exception', error) or (failure kind, message)."""
    try:
        with WorkerProcess(source, policy) as worker:
            reply = worker.call(CALL)
    except WorkerFailure as exc:
        assert str(exc).strip()
        return exc.kind, str(exc)
    if reply["ok"] is True:
        return "ok", reply["state"]
    return "exception", reply["error"]


def _host_still_serves() -> None:
    assert _outcome(_source("        state['n'] = 1")) == ("ok", {"n": 1})


#: name -> (on_event body, __init__ body, outcomes that count as held)
PROGRAMS: dict[str, tuple[str, str, set[str]]] = {
    "counter_items_runs_inside_the_workers_json": (
        "        Counter.items = lambda c: [('forged', len(c))]\n"
        "        state['c'] = Counter('ab')", "", {"ok"}),
    "on_event_rebound_to_a_builtin": ("", "        self.on_event = max", {"exception"}),
    # the strategy's exception, named, not a crash of the worker's error path
    "exception_str_of_a_huge_int": (
        "        raise ValueError(pow(7, k // 3 * 1))", "", {"exception"}),
    "exception_repr_of_a_deep_list": (
        "        x = []\n        for _ in range(k):\n            x = [x]\n"
        "        raise KeyError(x)", "", {"exception"}),
    "deep_deque_chain_freed": (
        "        d = deque()\n        for _ in range(k * 10):\n            d = deque([d])\n"
        "        d = None", "", {"ok", "crash"}),
    "deep_lists_compared": (
        "        a, b = [], []\n        for _ in range(k):\n            a, b = [a], [b]\n"
        "        state['eq'] = a == b", "", {"crash", "exception"}),
    "deep_tuple_hash_known_segfault": (
        "        t = ()\n        for _ in range(k * 10):\n            t = (t,)\n"
        "        state['h'] = hash(t)", "", {"crash", "exception"}),
    "state_keys_that_collide_in_json": (
        "        state[1] = 'int key'\n        state['1'] = 'str key'", "", {"ok"}),
    "state_int_of_4200_digits": ("        state['big'] = pow(7, k // 20)", "", {"ok"}),
    "events_rebound_past_the_frame_limit": (
        "", "        n = 5000\n        Strategy.EVENTS = ['x' * 1000] * n", {"malformed"}),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_accepted_programs_aimed_at_the_worker_are_held(name: str) -> None:
    body, init, held = PROGRAMS[name]
    source = _source(body or "        pass", init)
    result = validate_source(source)
    assert result.accepted, result.reasons
    kind, detail = _outcome(source)
    assert kind in held, (kind, str(detail)[:300])
    if name == "counter_items_runs_inside_the_workers_json":
        # The override ran, as strategy code, and its output is still only JSON data.
        assert detail == {"c": {"forged": 2}}
    if name == "state_keys_that_collide_in_json":
        assert detail == {"1": "str key"}
    if name.startswith("exception_"):
        assert "its message could not be made" in str(detail), str(detail)[:300]
    if name == "state_int_of_4200_digits":
        assert len(str(detail["big"])) > 4000  # type: ignore[index]
    _host_still_serves()


def test_a_forged_loading_frame_is_a_start_up_failure() -> None:
    """Guards off, import-time code writes the new 'loading' frame itself: the host takes
    one 'loading' only, so the forged one is where 'ready' should be."""
    source = ('import os, struct\nbody = b\'{"op": "loading"}\'\n'
              'os.write(3, struct.pack(">I", len(body)) + body)\n\n'
              'class Strategy:\n    def on_event(self, event, state, portfolio):\n'
              '        return []\n')
    with pytest.raises(WorkerFailure) as info:
        WorkerProcess(source, WorkerPolicy(python_guards=False, start_timeout_s=6.0))
    assert info.value.kind == "startup"
    _host_still_serves()
