"""Held-out escapes against the host: replies that the static filter cannot see.

The strategies here are ordinary code, accepted by the filter; what they return is
the attack.  Before the host checked the values in intents:

* ``{"forecast": {"mu": 0.01, "sigma": 1e-200}}`` made the kelly sizer divide by
  ``sigma * sigma == 0.0``: ``ZeroDivisionError`` out of ``run_backtest`` (the
  running loop itself stopped, not just the strategy); a huge ``mu`` with a tiny
  ``sigma`` and ``confidence`` 0 gave ``inf * 0 = nan`` and ``decimal.InvalidOperation``;
* numbers sent as strings reached the core as Decimals: ``"1e999999"`` overflowed
  the risk checks' arithmetic and, as a limit price, wrote a risk event whose reason
  held a million digits on every event;
* a reason that was not a string (a list) skipped the host's redaction and its
  200-character cut, and went into the ledger at any size;
* ``reduce_only: "no"`` became True, and a reply's ``cpu_s`` of 400 digits raised
  ``OverflowError`` from ``WorkerProcess.call`` (not a ``WorkerFailure``, the worker
  left running).

Each is now a malformed reply: the worker is killed, the failure reported, and the
loop goes on (the strategy REDUCING, as for any other strategy error).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
from argus_orchestrator.sandbox import (
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    WorkerProcess,
    validate_source,
)

from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio

TEMPLATE = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return [dict({{"instrument_id": event["instrument_id"], "side": "buy"}}, **{body})]
'''
BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=2.0)
REPO = Path(__file__).parents[4]

#: Intent values that reached the core before, and what the host now says about each.
HOSTILE_VALUES = [
    ('{"forecast": {"mu": 0.01, "sigma": 1e-200}}', "forecast.sigma"),
    ('{"forecast": {"mu": 1e308, "sigma": 1e-150, "confidence": 0.0}}', "forecast.mu"),
    ('{"forecast": {"mu": "0.01", "sigma": 0.02}}', "must be a JSON number, not str"),
    ('{"forecast": {"mu": 0.01, "sigma": True}}', "must be a JSON number, not bool"),
    ('{"forecast": {"p_win": 0.6, "payoff": 1e300}}', "forecast.payoff"),
    ('{"forecast": [0.01, 0.02]}', "forecast must be an object"),
    ('{"quantity": "1e999999"}', "quantity must be a JSON number, not str"),
    ('{"quantity": 10 ** 4000}', "outside"),
    ('{"quantity": 1e300}', "outside"),
    ('{"quantity": 1e-300}', "outside"),
    ('{"quantity": True}', "not bool"),
    ('{"limit_price": "1e999999", "order_type": "limit", "quantity": 1}', "limit_price"),
    ('{"limit_price": 1e-300, "order_type": "limit", "quantity": 1}', "limit_price"),
    ('{"quantity": 1, "reason": ["x" * 100_000]}', "reason must be text, not list"),
    ('{"quantity": 1, "reason": 12345}', "reason must be text, not int"),
    ('{"quantity": 1, "reduce_only": "no"}', "reduce_only must be true or false"),
]


@pytest.mark.parametrize(("body", "needle"), HOSTILE_VALUES)
def test_hostile_values_in_intents_are_malformed_replies(body: str, needle: str) -> None:
    s = SandboxedStrategy(TEMPLATE.format(body=body), name="slot", policy=POLICY)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == "malformed" and needle in str(info.value), info.value
        assert s.worker is None or not s.worker.alive
        assert s.get_state() == {}
    finally:
        s.close()


#: Values at the edges of the contract that a real strategy sends: still intents.
ORDINARY_VALUES = [
    '{"forecast": {"mu": 0.003, "sigma": 0.02, "confidence": 0.5}}',
    '{"forecast": {"mu": -0.5, "sigma": 0, "confidence": 1}}',
    '{"forecast": {"mu": 0.0, "sigma": 1e-12}}',
    '{"forecast": {"p_win": 0.6, "payoff": None}}',
    '{"quantity": 2, "reduce_only": True, "reason": "exit"}',
    '{"quantity": 1e-8, "limit_price": 65000.5, "order_type": "limit"}',
    '{"quantity": 5e14, "reason": ""}',
]


@pytest.mark.parametrize("body", ORDINARY_VALUES)
def test_ordinary_values_stay_intents(body: str) -> None:
    s = SandboxedStrategy(TEMPLATE.format(body=body), name="slot", policy=POLICY)
    try:
        (intent,) = s.on_event(BAR, CTX)
        assert intent.instrument_id == BAR.instrument_id
    finally:
        s.close()


def test_a_long_reason_is_cut_and_redacted() -> None:
    key = "sk-ant-api03-" + "A" * 95
    s = SandboxedStrategy(TEMPLATE.format(body='{"reason": "' + key + ' " + "a word " * 500_000}'),
                          name="slot", policy=POLICY)
    try:
        (intent,) = s.on_event(BAR, CTX)
        assert len(intent.reason) == 200 and key not in intent.reason
        assert intent.reason.startswith("[REDACTED]")
    finally:
        s.close()


def _config(tmp_path: Path, sizer: str) -> Path:
    bars = REPO / "examples" / "data" / "kraken_XBTUSD_60.csv"
    path = tmp_path / "c.toml"
    path.write_text(f"""
[argus]
plugins = []
mode = "replay"

[run]
venue = "replay"
strategies = ["ma_cross"]
starting_cash = "100000"
sizer = "{sizer}"

[plugins.replay]
bars_csv = "{bars}"
start = "2022-01-01"
end = "2022-01-02"
""")
    return path


@pytest.mark.parametrize("forecast", [
    '{"mu": 0.01, "sigma": 1e-200}',  # sigma * sigma == 0.0: ZeroDivisionError in the sizer
    '{"mu": 1e308, "sigma": 1e-150, "confidence": 0.0}',  # inf * 0: NaN, InvalidOperation
])
def test_a_forecast_that_broke_the_sizer_is_a_strategy_error_not_a_dead_loop(
        tmp_path: Path, forecast: str) -> None:
    """An accepted strategy (the filter sees nothing wrong) whose forecast made the kelly
    sizer raise out of the runner: now one strategy_error, and the run goes on."""
    from argus_core.backtest import run_backtest
    from argus_core.config import load_config
    from argus_core.ledger import Ledger

    source = TEMPLATE.format(body='{"forecast": ' + forecast + "}")
    assert validate_source(source).accepted
    strategy = SandboxedStrategy(source, name="ma_cross", policy=POLICY)
    try:
        run_backtest(load_config(_config(tmp_path, "kelly")), tmp_path / "run",
                     strategies={"ma_cross": strategy})
    finally:
        strategy.close()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        events = ledger.query("select * from risk_events where check_name = 'strategy_error'")
        orders = ledger.query("select count(*) as n from orders")
    (event,) = events
    assert event["action"] == "reducing" and "forecast." in event["reason"]
    assert orders[0]["n"] == 0


FORGER = '''
import os, struct, time

class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        body = b'{"id": %s, "ok": true, "intents": [], "state": {}, "cpu_s": %s}'
        os.write(3, struct.pack(">I", len(body)) + body)
        time.sleep(30)  # the host reads the forged reply alone
'''


@pytest.mark.parametrize(("ident", "cpu", "needle"), [
    ("1", "1" + "0" * 400, "cpu_s"),
    ("1", "-5", "cpu_s"),
    ("1", '"fast"', "cpu_s must be a JSON number"),
    ("true", "0.1", "does not match"),
    ("1.0", "0.1", "does not match"),
])
def test_forged_reply_fields_are_worker_failures_from_call(ident: str, cpu: str,
                                                           needle: str) -> None:
    """``WorkerProcess.call`` itself (used by ``ping``) turns every odd field into a
    WorkerFailure and kills the worker."""
    source = FORGER % (ident, cpu)
    worker = WorkerProcess(source, WorkerPolicy(call_timeout_s=5.0, python_guards=False))
    try:
        with pytest.raises(WorkerFailure) as info:
            worker.call({"op": "call", "event": {"instrument_id": "x"}, "state": {},
                         "portfolio": {}})
        assert info.value.kind == "malformed" and needle in str(info.value), info.value
        assert not worker.alive
    finally:
        worker.close()


def test_a_forged_start_up_failure_is_reported_briefly() -> None:
    """Import-time code (guards off) forges a 3 MB 'failed' frame: the host's error
    message stays short."""
    source = ('import os, struct\nbody = b\'{"op": "failed", "stage": "load", "error": "\' '
              '+ b"a word " * 400_000 + b\'"}\'\nos.write(3, struct.pack(">I", len(body)) + body)\n'
              'os._exit(0)\n')
    with pytest.raises(WorkerFailure) as info:
        WorkerProcess(source, WorkerPolicy(python_guards=False))
    assert info.value.kind == "startup" and len(str(info.value)) < 2200


EXIT_AFTER_REPLY = '''
import json, os, struct, sys, time

STARTS = []


class Strategy:
    EVENTS = ("bar",)

    def __init__(self):
        time.sleep(0.5)  # every start-up costs the host this much (up to its deadline)

    def on_event(self, event, state, portfolio):
        call_id = sys._getframe(1).f_locals["call_id"]  # the worker's loop: guards are off
        body = json.dumps({"id": call_id, "ok": True, "intents": [], "state": {}}).encode()
        os.write(3, struct.pack(">I", len(body)) + body)
        os._exit(0)  # a valid reply, then gone before the next request
'''


def test_a_worker_that_exits_between_calls_is_a_crash_not_a_quiet_restart() -> None:
    """Before, the host restarted a worker it found dead on the next event, silently: a
    worker that answered and exited cost a fresh start (up to the 15 s start-up deadline)
    on every event, and no failure was ever recorded."""
    seen: list[WorkerFailure] = []
    s = SandboxedStrategy(EXIT_AFTER_REPLY, name="slot", on_failure=seen.append,
                          policy=WorkerPolicy(call_timeout_s=2.0, python_guards=False))
    first = s.worker
    try:
        assert list(s.on_event(BAR, CTX)) == []  # the forged reply is a valid one
        assert first is not None
        for _ in range(500):  # let it be gone before the next event, as between bars
            if not first.alive:
                break
            time.sleep(0.01)
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == "crash" and "exited between calls" in str(info.value)
        assert s.worker is first and not first.alive  # no second worker was started
        assert seen == [info.value] and s.on_event(BAR, CTX) == ()
    finally:
        s.close()


def test_a_worker_that_cannot_restart_fails_once_not_on_every_event(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A recycle whose new worker fails to start is recorded once: the strategy is then
    dead until replaced, instead of paying a start-up (and its deadline) per event."""
    s = SandboxedStrategy(TEMPLATE.format(body="{}"), name="slot", policy=POLICY)
    starts: list[int] = []
    try:
        assert s.worker is not None
        s.worker.cpu_s = POLICY.cpu_seconds  # due for a recycle

        def refuse(*args: object, **kwargs: object) -> None:
            starts.append(1)
            raise WorkerFailure("startup", "sandbox worker failed during load: refused")

        monkeypatch.setattr("argus_orchestrator.sandbox.host.WorkerProcess", refuse)
        with pytest.raises(WorkerFailure):
            s.on_event(BAR, CTX)
        assert s.on_event(BAR, CTX) == () and s.on_event(BAR, CTX) == ()
        assert starts == [1] and s.failure is not None
    finally:
        s.close()
