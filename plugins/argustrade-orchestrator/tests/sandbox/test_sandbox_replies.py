"""SandboxedStrategy validates every reply; anything malformed kills the worker."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from argus_orchestrator.sandbox import SandboxedStrategy, WorkerFailure, WorkerPolicy
from argus_orchestrator.sandbox.worker import FrameError, decode_body, json_depth

from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio, Side

TEMPLATE = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        state["n"] = state.get("n", 0) + 1
        return {body}
'''
BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=1.0)


def _run(body: str) -> SandboxedStrategy:
    return SandboxedStrategy(TEMPLATE.format(body=body), name="slot", policy=POLICY)


def test_valid_reply_becomes_intents_and_state() -> None:
    s = _run('[{"instrument_id": event["instrument_id"], "side": "buy", "quantity": 0.5}]')
    try:
        (intent,) = s.on_event(BAR, CTX)
        assert intent.side is Side.BUY and intent.quantity == Decimal("0.5")
        assert intent.strategy == "slot" and s.get_state() == {"n": 1}
    finally:
        s.close()


def test_a_cancel_reply_becomes_a_cancel_of_the_strategys_own_orders() -> None:
    from argus_core.models import CancelIntent

    s = _run('[{"cancel": True, "instrument_id": event["instrument_id"], '
             '"reason": "requote"}, {"cancel": True}]')
    try:
        assert s.on_event(BAR, CTX) == [CancelIntent("slot", BAR.instrument_id, "requote"),
                                        CancelIntent("slot", None, "")]
    finally:
        s.close()


@pytest.mark.parametrize(("body", "kind", "needle"), [
    ('[{"cancel": True, "strategy": "other"}]', "malformed", "unknown keys"),
    ('[{"cancel": 1}]', "malformed", "cancel must be true"),
    ('[{"cancel": True, "instrument_id": "kraken:ETH/USD"}]', "malformed", "not received"),
    ('[{"instrument_id": event["instrument_id"], "side": "buy", "strategy": "other"}]',
     "malformed", "unknown keys"),
    ('[{"instrument_id": "kraken:ETH/USD", "side": "buy"}]', "malformed", "not received"),
    ('[{"instrument_id": event["instrument_id"], "side": "hold"}]', "malformed", "invalid"),
    ('[{"instrument_id": event["instrument_id"], "side": "buy", "quantity": -1}]',
     "malformed", "invalid"),
    ('[{"instrument_id": event["instrument_id"], "side": "buy"}] * 5', "malformed",
     "overtrading"),
    ('["buy"]', "malformed", "not an object"),
    ('None', "malformed", "reply"),
    ('1 / 0', "exception", "ZeroDivisionError"),
    ('[{"instrument_id": event["instrument_id"], "side": "buy", "quantity": float("nan")}]',
     "exception", "ValueError"),
])
def test_malformed_replies_kill_the_worker(body: str, kind: str, needle: str) -> None:
    s = _run(body)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == kind and needle in str(info.value)
        assert s.worker is None or not s.worker.alive
        assert s.failure is not None and s.on_event(BAR, CTX) == ()  # dead until replaced
        assert s.get_state() == {}  # the host's state did not take the bad reply
    finally:
        s.close()


def test_timeout_reports_and_calls_back() -> None:
    seen: list[WorkerFailure] = []
    s = SandboxedStrategy(TEMPLATE.format(body="[x for x in iter(int, 1)]"), name="slot",
                          policy=WorkerPolicy(call_timeout_s=0.3), on_failure=seen.append)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == "timeout" and seen == [info.value]
    finally:
        s.close()


# -- a hostile worker: frames forged straight onto the protocol pipe ------------------------
#: With the Python guards off the strategy can write anything to any descriptor it holds,
#: including the reply pipe; the host must turn every such frame into a WorkerFailure.
FORGER = '''
import os, struct

class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        body = {body}
        for fd in range(3, 12):
            try:
                os.write(fd, struct.pack(">I", {length}) + body)
            except OSError:
                pass
        return []
'''
HOSTILE = WorkerPolicy(call_timeout_s=2.0, python_guards=False)


@pytest.mark.parametrize(("body", "length", "needle"), [
    ('b"[" * 100_000 + b"]" * 100_000', "len(body)", "nested deeper than"),
    ('b\'{"a":\' * 50_000 + b"1" + b"}" * 50_000', "len(body)", "nested deeper than"),
    ('b\'{"ok": true, "intents": [], "state": {"x": 1e999}}\'', "len(body)", "out of range"),
    ('b\'{"ok": true, "intents": [], "state": {"x": NaN}}\'', "len(body)", "not allowed"),
    ('b"\\xff\\xfe{}"', "len(body)", "not valid JSON"),
    ('b"[1, 2]"', "len(body)", "must be a JSON object"),
    ('b"{}"', "0xFFFFFFF0", "bytes (limit"),
])
def test_forged_frames_are_worker_failures(body: str, length: str, needle: str) -> None:
    seen: list[WorkerFailure] = []
    s = SandboxedStrategy(FORGER.format(body=body, length=length), name="slot",
                          policy=HOSTILE, on_failure=seen.append)
    worker = s.worker
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == "malformed" and needle in str(info.value), info.value
        assert seen == [info.value]  # reported once, to whoever records risk events
        assert worker is not None and not worker.alive and worker.pid is None
    finally:
        s.close()


@pytest.mark.parametrize("body", [
    '[{"instrument_id": [1, 2], "side": "buy"}]',
    '[{"cancel": True, "instrument_id": {"a": 1}}]',
    '[{"instrument_id": event["instrument_id"], "side": ["buy"], "reason": {"a": 1}}]',
])
def test_odd_json_in_intents_is_malformed_not_a_host_crash(body: str) -> None:
    s = _run(body)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == "malformed"
        assert s.worker is None or not s.worker.alive
    finally:
        s.close()


def test_depth_is_counted_without_recursion_and_ignores_strings() -> None:
    assert json_depth(json.loads(b'{"a": [1, {"b": "[[[[{{{{"}]}')) == 3
    assert json_depth(json.loads(b'"\\"[[[" ')) == 0
    deep: list = []  # type: ignore[type-arg]
    for _ in range(99_999):
        deep = [deep, {"k": []}]
    assert json_depth(deep) == 100_001
    with pytest.raises(FrameError, match="deeper than 100"):
        decode_body(b"[" * 1_000_000 + b"]" * 1_000_000)
    with pytest.raises(FrameError, match="deeper than 100"):
        decode_body(b'{"k": ' + b"[" * 100 + b"]" * 100 + b"}")
    nested: list = []  # type: ignore[type-arg]
    for _ in range(98):
        nested = [nested]
    assert decode_body(b'{"k": ' + b"[" * 99 + b"]" * 99 + b"}") == {"k": nested}


def test_a_forged_frame_in_a_run_is_a_risk_event(tmp_path: Path) -> None:
    """The runner's loop sees the hostile worker as one strategy error: recorded as a
    ``strategy_error`` risk event (trading goes REDUCING), the run itself goes on."""
    from argus_core.backtest import run_backtest
    from argus_core.config import load_config
    from argus_core.ledger import Ledger

    bars = Path(__file__).parents[4] / "examples" / "data" / "kraken_XBTUSD_60.csv"
    (tmp_path / "c.toml").write_text(f"""
[argus]
plugins = []
mode = "replay"

[run]
venue = "replay"
strategies = ["ma_cross"]
starting_cash = "100000"

[plugins.replay]
bars_csv = "{bars}"
start = "2022-01-01"
end = "2022-01-02"
""")
    deep = FORGER.format(body='b"[" * 100_000 + b"]" * 100_000', length="len(body)")
    strategy = SandboxedStrategy(deep, name="ma_cross", policy=HOSTILE)
    try:
        run_backtest(load_config(tmp_path / "c.toml"), tmp_path / "run",
                     strategies={"ma_cross": strategy})
        assert strategy.worker is not None and not strategy.worker.alive
    finally:
        strategy.close()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        events = ledger.query("select * from risk_events where check_name = 'strategy_error'")
    (event,) = events
    assert event["action"] == "reducing"
    assert "WorkerFailure" in event["reason"] and "nested deeper than" in event["reason"]


@pytest.mark.parametrize("number", [
    b"1e999", b"1E+400", b"-1e0309", b"9" * 400 + b".0", b"1" + b"0" * 309,
    b"0." + b"0" * 200 + b"1e600",
])
def test_numbers_that_overflow_a_float_are_refused(number: bytes) -> None:
    """Frames parse with the C scanner's float conversion unless a number could overflow
    (a 150-digit run or a three-digit exponent): each way of writing one is checked."""
    body = b'{"state": {"x": ' + number + b"}}"
    if b"." not in number and b"e" not in number.lower():
        assert decode_body(body)["state"]["x"] == int(number)  # an int stays exact
        body = b'{"state": {"x": ' + number + b".0}}"
    with pytest.raises(FrameError, match="out of range"):
        decode_body(body)
    assert decode_body(b'{"x": 1e308, "y": 1.5e-300, "z": 2.5}') == \
        {"x": 1e308, "y": 1.5e-300, "z": 2.5}


STATEFUL = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        assert isinstance(state.get("pair", []), list)
        state["seen"] = state.get("seen", []) + [event["close"]]
        state["pair"] = (1, 2)  # a tuple: the host gets (and the next call sees) a list
        return []
'''


def test_the_worker_continues_from_the_state_the_host_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The state goes to a worker once (fresh, or after ``set_state``); later calls leave
    it out and the worker continues from what it last replied, read back from its JSON,
    so it is exactly the host's copy (a tuple there comes back a list, as before)."""
    s = SandboxedStrategy(STATEFUL, name="slot", policy=POLICY)
    assert s.worker is not None
    sent: list[bool] = []
    call = s.worker.call
    monkeypatch.setattr(s.worker, "call", lambda req, *a: sent.append("state" in req)
                        or call(req, *a))
    try:
        for close in (1.0, 2.0, 3.0):
            s.on_event(attrs_evolve(BAR, close), CTX)
        assert s.get_state() == {"seen": [1.0, 2.0, 3.0], "pair": [1, 2]}
        s.set_state({"seen": [9.0]})
        s.on_event(attrs_evolve(BAR, 4.0), CTX)
        assert s.get_state() == {"seen": [9.0, 4.0], "pair": [1, 2]}
        assert sent == [True, False, False, True]
    finally:
        s.close()


def attrs_evolve(bar: Bar, close: float) -> Bar:
    import attrs

    return attrs.evolve(bar, open=close, high=close, low=close, close=close)
