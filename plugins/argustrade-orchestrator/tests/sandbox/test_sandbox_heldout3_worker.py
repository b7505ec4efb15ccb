"""Third held-out audit, the worker and the frames: the host's cost of a reply, and
library calls that run in C.

* The host looked for numbers that overflow a float with the regex
  ``\\d{150}|[eE][+-]?\\d{3}`` over the whole frame, at about 30 ns a byte: an accepted
  reply (a cancel whose reason is 4 MB of ``"a"``, cut to 200 characters afterwards)
  held the host's GIL for 130-180 ms on every event.  Now every byte is translated to
  its class and the result searched (about 10 ms for 4 MB); the regex is kept here as
  the reference the new check must agree with.
* C calls the filter allows (``math.factorial``, ``pow``, ``str.ljust``, ``sum(range)``,
  ...) are contained by the worker's deadline or memory limit: a ``timeout`` or an
  ``exception`` naming the limit, and the next strategy on the same host runs.  A
  ``MemoryError`` used to say nothing (``"MemoryError: "``); it now names the limit.
"""

from __future__ import annotations

import json
import random
import re
from decimal import Decimal

import pytest
from argus_orchestrator.sandbox import (
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    validate_source,
)
from argus_orchestrator.sandbox.worker import FrameError, decode_body, maybe_huge_number

from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio

#: The check before this audit: the reference ``maybe_huge_number`` must agree with.
OLD_MAYBE_HUGE = re.compile(rb"\d{150}|[eE][+-]?\d{3}")
BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=0.5, memory_mb=256)


@pytest.mark.parametrize("body", [
    b"", b"1e308", b"1e309", b"1E+309", b"1e-300", b"-1.5e-12", b"1e30", b"e000", b"E-000",
    b"9" * 149, b"9" * 150, b"9" * 149 + b".9", b"\xd9" * 200, "\u0660".encode() * 200,
    b'{"reason": "' + b"a" * 100_000 + b'"}', b'{"x": "e+1234"}', b"ee000", b"e+-000",
])
def test_the_overflow_check_agrees_with_the_old_regex(body: bytes) -> None:
    assert maybe_huge_number(body) == bool(OLD_MAYBE_HUGE.search(body))


def test_the_overflow_check_agrees_on_random_number_text() -> None:
    rng = random.Random(3)
    alphabet = b"0123456789eE+-.,x [\"\xd9"
    for _ in range(20_000):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        body = body.replace(b"0", b"0" * rng.randint(1, 160))
        assert maybe_huge_number(body) == bool(OLD_MAYBE_HUGE.search(body)), body


@pytest.mark.parametrize("number", ["1e999", "-1e400", "9" * 400 + ".0", "9" * 309 + "e0"])
def test_numbers_that_overflow_are_still_refused(number: str) -> None:
    with pytest.raises(FrameError, match="out of range"):
        decode_body(f'{{"x": [{number}]}}'.encode())


def test_numbers_that_fit_still_parse_as_before() -> None:
    body = b'{"x": [1e308, -1e-300, 1.5, ' + b"9" * 149 + b'.0], "r": "' + b"e" * 9 + b'"}'
    assert decode_body(body) == json.loads(body)


#: Library calls the filter allows that run in C, each built from event data at run time
#: (the filter refuses the same as constants): what must contain each.
C_CALLS = {
    "factorial": ("x = math.factorial(n * 10**7)", "timeout"),
    "comb": ("x = math.comb(n * 10**7, n * 5 * 10**6)", "timeout"),
    "pow": ("x = pow(3, n * 10**8)", "timeout"),
    "sum_range": ("x = sum(range(n * 10**12))", "timeout"),
    "int_parse": ('x = int("9" * (n * 10**6))', "exception"),
    "center": ('x = "x".center(n * 10**10)', "exception"),
    "ljust": ('x = "x".ljust(n * 10**9)', "exception"),
    "list_range": ("x = list(range(n * 10**10))", "exception"),
    "repeat_list": ("x = [0] * (n * 10**9)", "exception"),
    "big_str_state": ('state["x"] = 10 ** (n * 5000)', "exception"),
}
C_TEMPLATE = '''import math


class Strategy:
    def on_event(self, event, state, portfolio):
        n = int(event["close"]) // 100
        {body}
        return []
'''


@pytest.mark.parametrize("name", sorted(C_CALLS))
def test_c_library_calls_are_contained(name: str) -> None:
    body, kind = C_CALLS[name]
    source = C_TEMPLATE.format(body=body)
    assert validate_source(source).accepted, validate_source(source).reasons
    s = SandboxedStrategy(source, name="slot", policy=POLICY)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == kind, info.value
        message = str(info.value)
        assert {"timeout": "no reply within 0.5s",
                "exception": "Error: "}[kind] in message, message
        if "MemoryError" in message:
            assert "memory limit (256 MB)" in message, message
        assert s.worker is None or not s.worker.alive
    finally:
        s.close()
    # The host is unharmed: the next strategy starts and answers.
    ok = SandboxedStrategy(C_TEMPLATE.format(body="x = n"), name="next", policy=POLICY)
    try:
        assert list(ok.on_event(BAR, CTX)) == []
    finally:
        ok.close()
