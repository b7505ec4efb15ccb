"""Fifth held-out audit, the worker's limits: work hidden inside allowed calls.

Each program here is plain Python the checker *accepts* (the sizes come from the
event at run time, so no constant folding can see them): it allocates, loops or
recurses inside an allowed builtin or module member.  The worker's limits must
stop each one with a clear report (a ``timeout``, a ``crash`` or the
strategy's own exception), and the host must then run the next strategy as
usual.  numpy, ``operator`` and the rest of ``functools`` are outside the
allow-list (refused by the checker), so their broadcasting and callable-taking
functions are not reachable; the allowed equivalents are below.
"""

from __future__ import annotations

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess, validate_source

POLICY = WorkerPolicy(call_timeout_s=1.0, start_timeout_s=4.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}}}
#: The sizes arrive as data, as a hostile event or a strategy's own state would carry them.
EVENT = {"type": "bar", "instrument_id": "test:X", "close": 1.0, "n": 10**9, "k": 10**6,
         "e": 10**8}

HEAD = '''
import math
import itertools
from functools import reduce
from collections import deque


class Strategy:
    def on_event(self, event, state, portfolio):
        n, k, e = event["n"], event["k"], event["e"]
'''

#: name -> body (indented into on_event); each must be stopped by the worker.
PROGRAMS = {
    "string_repeat": "state['s'] = 'x' * n",
    "list_repeat": "state['l'] = [0] * n",
    "big_int_power": "state['p'] = pow(7, e) % 10",
    "big_int_shift": "state['p'] = (1 << (n * 8)) & 1",
    "factorial": "state['f'] = math.factorial(k * 10) % 7",
    "comb": "state['c'] = math.comb(k * 10, k * 5) % 7",
    "deep_recursion": "f = lambda g, d: g(g, d + 1)\n        f(f, 0)",
    "recursion_in_sorted_key": ("f = lambda x: sorted([x], key=f)\n        f(1)"),
    "infinite_generator": "state['g'] = sum(itertools.count())",
    "generator_list": "state['g'] = len(list(itertools.repeat(0, n)))",
    "product_repeat": "state['g'] = len(list(itertools.product(range(k), repeat=4)))",
    "permutations": "state['g'] = sum(1 for _ in itertools.permutations(range(k)))",
    "reduce_concat": "state['r'] = len(reduce(lambda a, b: a + a, range(64), 'x'))",
    "map_repeat": "state['m'] = len(list(map(lambda i: 'y' * k, range(k))))",
    "min_key_spin": "state['m'] = min(range(n), key=lambda i: -i)",
    "deque_grow": "d = deque()\n        d.extend(itertools.count())",
    "str_join_huge": "state['j'] = len(','.join(itertools.repeat('abc', n)))",
    "nested_tuple_hash": ("t = ()\n        for _ in range(k):\n            t = (t,)\n"
                          "        state['h'] = hash(t)"),
    "while_from_data": "i = 0\n        while i < n:\n            i += 1",
    "ljust_from_data": "state['s'] = 'a'.ljust(n)",
    "fstring_width_from_data": "state['s'] = f'{1:>{n}}'",
    "percent_width_from_data": "state['s'] = ('%' + str(n) + 'd') % 1",
}

STOPPED = {"timeout", "crash", "exception"}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_work_inside_allowed_calls_is_stopped_by_the_worker(name: str) -> None:
    source = HEAD + "        " + PROGRAMS[name] + "\n        return []\n"
    result = validate_source(source)
    assert result.accepted, result.reasons  # run-time work: the worker's to stop
    outcome = ""
    with WorkerProcess(source, POLICY) as worker:
        try:
            reply = worker.call({**CALL, "event": EVENT})
        except WorkerFailure as exc:
            outcome = exc.kind
            assert outcome in STOPPED, exc
            assert str(exc).strip()  # a clear report, never empty
        else:
            # The strategy's own exception (MemoryError, OverflowError, ValueError from
            # the int-digits limit...) comes back as an error reply, named.
            assert reply["ok"] is False, reply
            assert reply.get("error"), reply
            outcome = "exception"
    assert outcome in STOPPED
    # The host's loop is unharmed: the next strategy starts and answers as usual.
    with WorkerProcess(HEAD + "        state['ok'] = 1\n        return []\n",
                       POLICY) as worker:
        reply = worker.call({**CALL, "event": EVENT})
    assert reply["ok"] is True and reply["state"] == {"ok": 1}
