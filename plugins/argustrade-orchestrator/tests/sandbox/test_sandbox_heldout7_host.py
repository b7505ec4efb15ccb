"""Seventh held-out audit (a red team of the sandbox): what an accepted reply costs the
host, which instruments a strategy may trade, and constants the checker did not fold.

Found (each regression below failed before its fix):

* the host counted a reply's nesting on its bytes, after stripping its strings with a
  regular expression that kept a backtracking entry per escape: an accepted cancel whose
  reason is two million backslashes and 101 brackets (the brackets, inside the string,
  passed the cheap bound) cost the host ~230 MB and 0.2 s on every event, 800,000 short
  strings ~170 MB and 0.9 s.  The check is now C-speed ``replace``/``translate`` passes
  (``worker.nested_deeper``), still before decoding (counting on the decoded value was
  tried: a reply nested 100,000 deep then reached ``json.loads`` and overflowed the C
  stack of a suite worker whose recursion limit a library had raised);
* a strategy could order an instrument it never received an event for: the host noted
  every event's instrument before dropping the events the strategy does not take
  (``EVENTS``), and the contract says "an instrument this strategy has received events
  for";
* ``pow(2, 10**8, None)``, ``pow(base=2, exp=10**8)``, ``pow(*[2, 10**8])`` and a width
  spelled by a nested f-string (``f'{1:{f"{9}{99999999}"}}'``) were accepted (the worker
  stopped them with its deadline or memory limit; the contract says they are refused);
* a fullwidth attribute (``ｋeys``) inside a multi-line f-string was accepted: the check
  of how a name is spelled could not trust the tree's positions there.
"""

from __future__ import annotations

import json
import tracemalloc
from decimal import Decimal

import pytest
from argus_orchestrator.sandbox import (
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    validate_source,
)
from argus_orchestrator.sandbox.worker import FrameError, decode_body

from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio, Trade

BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=1.0, memory_mb=256)


@pytest.mark.parametrize("reason", [
    "\\" * 1_990_000 + "[" * 101,        # an escape per character
    '\\"' * 1_000_000 + "[" * 101,       # escaped quotes
    "[" * 101 + "a" * 3_000_000,         # plain text
], ids=["backslashes", "escaped-quotes", "plain"])
def test_a_reply_with_brackets_in_a_long_string_costs_the_host_little(reason: str) -> None:
    body = json.dumps({"intents": [{"cancel": True, "reason": reason}]}).encode()
    tracemalloc.start()
    try:
        assert decode_body(body)["intents"][0]["reason"] == reason
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(body), peak  # ~60x the body before (230 MB for 4 MB)


def test_many_short_strings_with_brackets_cost_the_host_little() -> None:
    body = json.dumps({"intents": [{"cancel": True, "reason": "[" * 101}],
                       "state": {"x": ["a"] * 500_000}}).encode()
    tracemalloc.start()
    try:
        assert len(decode_body(body)["state"]["x"]) == 500_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * len(body), peak  # the decoded list itself; ~60x before


@pytest.mark.parametrize(("depth", "refused"), [(100, False), (101, True), (5_000, True),
                                                 (2_000_000, True)])
def test_nesting_is_still_bounded(depth: int, refused: bool) -> None:
    body = b'{"k": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    if refused:
        with pytest.raises(FrameError, match="nested deeper than 100 levels"):
            decode_body(body)
    else:
        assert decode_body(body)["k"] is not None


NEVER_RECEIVED = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return [{"instrument_id": "kraken:ETH/USD", "side": "buy", "quantity": 1.0}]
'''


def test_an_instrument_whose_events_the_strategy_does_not_take_cannot_be_traded() -> None:
    assert validate_source(NEVER_RECEIVED).accepted
    s = SandboxedStrategy(NEVER_RECEIVED, name="slot", policy=POLICY)
    try:
        # a print of ETH reaches the host, not the strategy (it takes bars only)
        assert s.on_event(Trade("kraken:ETH/USD", 1, Decimal(2000), Decimal(1)), CTX) == ()
        with pytest.raises(WorkerFailure, match="has not received events for"):
            s.on_event(BAR, CTX)
    finally:
        s.close()


def _body(expr: str) -> str:
    return ("class Strategy:\n    def on_event(self, event, state, portfolio):\n"
            f"        x = {expr}\n        return []\n")


@pytest.mark.parametrize("expr", [
    "pow(2, 10**8, None)", "pow(base=2, exp=10**8)", "pow(2, exp=10**8)",
    "pow(*[2, 10**8])", "pow(*(2,), 10**8)", "pow(**{'base': 2, 'exp': 10**8})",
    "f'{1:{f\"{9}{99999999}\"}}'", "f'{1:{f\"{99999}\"}}'", "f'{1:{f\"{9}{9}{9}{9}\"}}'",
])
def test_constant_blow_ups_spelled_another_way_are_refused(expr: str) -> None:
    result = validate_source(_body(expr))
    assert not result.accepted, expr
    assert any("huge value" in r or "exceeds" in r for r in result.reasons), result.reasons


@pytest.mark.parametrize("expr", [
    "pow(2, 10)", "pow(2, 10**8, 7)", "pow(base=3, exp=5, mod=7)", "pow(*[2, 10])",
    "f'{1:{f\"{9}{9}\"}}'", "f'{1.5:{f\"{8}\"}.{2}f}'",
])
def test_small_constants_spelled_those_ways_stay_accepted(expr: str) -> None:
    assert validate_source(_body(expr)).accepted, expr


def test_a_fullwidth_name_inside_a_multiline_f_string_is_refused() -> None:
    source = ("class Strategy:\n    def on_event(self, event, state, portfolio):\n"
              "        state['x'] = f'''{(event\n        .\uff4beys)}'''\n        return []\n")
    result = validate_source(source)
    assert not result.accepted
    assert any("reads as 'k'" in r for r in result.reasons), result.reasons
    # text that is not read as ASCII stays allowed in an f-string
    assert validate_source(_body("f'{1} \u20ac \u00e9'")).accepted


def test_the_bytes_depth_check_agrees_with_the_decoded_depth() -> None:
    """``nested_deeper`` on the bytes (what runs before decoding: a hostile reply nested
    100,000 deep must never reach ``json.loads``, which overflowed the C stack in a
    process whose recursion limit a library had raised) against the depth of the
    decoded value, on random JSON whose strings hold brackets, quotes and backslashes."""
    import random

    from argus_orchestrator.sandbox.worker import json_depth, nested_deeper

    rng = random.Random(7)
    pieces = ["[", "]", "{", "}", '"', "\\", "a", "\\\\", '\\"']

    def value(depth: int) -> object:
        kind = rng.random()
        if depth > 0 and kind < 0.35:
            return [value(depth - 1) for _ in range(rng.randint(0, 3))]
        if depth > 0 and kind < 0.6:
            return {"".join(rng.choices(pieces, k=3)): value(depth - 1)
                    for _ in range(rng.randint(0, 3))}
        return "".join(rng.choices(pieces, k=rng.randint(0, 6)))

    for _ in range(3000):
        body = json.dumps(value(rng.randint(0, 8))).encode()
        depth = json_depth(json.loads(body))
        for limit in (max(depth - 1, 0), depth, depth + 1):
            assert nested_deeper(body, limit) == (depth > limit), (body, limit)
