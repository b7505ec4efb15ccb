"""Second held-out audit, the host: worker text that reached ``redact`` whole.

The core's ``redact`` takes time quadratic in some texts: every ``-secret`` in a run of
word characters starts a credential-name match that scans the rest of the run, so
``'-secret' * 8000`` (56 KB) took 20 s and a few megabytes would take hours.  The host
handed it worker-controlled text uncut in three places:

* a cancel intent's ``reason`` (an intent's was cut to 1,000 characters first, a
  cancel's was not): ordinary code, accepted by the filter, answered
  ``{"cancel": true, "reason": "-secret" * 500_000}`` and the running loop stopped
  for hours on the host's ``redact`` (it holds the GIL: every thread of the host);
* a reply's unknown keys went whole into the failure's message (``unknown keys [...]``),
  which the runner logs and writes as a risk event, each redacting it;
* a forged ``{"ok": false, "error": ...}`` frame (the worker cuts its own errors to
  2,000 characters, a forged frame need not) was redacted before it was cut.

Now text is cut before it is redacted and every ``WorkerFailure`` message is bounded.
``redact`` is counted here (lengths recorded), not timed; the core's own fix is a strict
xfail at the end (run in a child process with a generous CPU bound).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from argus_orchestrator.sandbox import (
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    host,
    validate_source,
)

from argus_core import CancelIntent
from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio

BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=5.0)
#: '-secret' * 500_000 (3.5 MB, inside the 4 MiB frame), built at run time: the filter
#: refuses the constant, not the loop's data.
HUGE = '"-secret" * (int(event["close"]) * 5000)'
#: What the host may hand ``redact`` at once, and a failure's message length (the host's
#: MAX_REDACTED and MAX_MESSAGE, with room for the cut's note).
REDACT_BOUND = 1000
MESSAGE_BOUND = 4100
TEMPLATE = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return [{body}]
'''


@pytest.fixture
def redacted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The length of every text the host hands ``redact`` (texts past 20,000 characters
    are passed through unredacted, so a regression fails here instead of hanging)."""
    lengths: list[int] = []
    real: Callable[[str], str] = host.redact

    def counting(text: str) -> str:
        lengths.append(len(text))
        return real(text) if len(text) <= 20_000 else text

    monkeypatch.setattr(host, "redact", counting)
    yield lengths


def _strategy(body: str, policy: WorkerPolicy = POLICY) -> SandboxedStrategy:
    source = TEMPLATE.format(body=body)
    if policy.python_guards:
        assert validate_source(source).accepted, validate_source(source).reasons
    return SandboxedStrategy(source, name="slot", policy=policy)


def test_a_huge_cancel_reason_is_cut_before_it_is_redacted(redacted: list[int]) -> None:
    s = _strategy('{"cancel": True, "reason": "sk-ant-api03-" + "A" * 95 + " " + ' + HUGE + '}')
    try:
        (intent,) = s.on_event(BAR, CTX)
        assert isinstance(intent, CancelIntent)
        assert len(intent.reason) <= 200 and intent.reason.startswith("[REDACTED]")
        assert redacted and max(redacted) <= REDACT_BOUND, max(redacted)
        assert s.worker is not None and s.worker.alive  # a valid reply: it goes on
    finally:
        s.close()


@pytest.mark.parametrize("body", [
    '{"instrument_id": event["instrument_id"], "side": "buy", ' + HUGE + ': 1}',
    '{"cancel": True, ' + HUGE + ': 1}',
], ids=["intent", "cancel"])
def test_huge_unknown_keys_give_a_bounded_failure(body: str, redacted: list[int]) -> None:
    s = _strategy(body)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        message = str(info.value)
        assert info.value.kind == "malformed" and "unknown keys" in message, message[:300]
        # The runner logs it and writes it as a risk event: both redact it whole.
        assert len(message) <= MESSAGE_BOUND, len(message)
    finally:
        s.close()


#: With the filter and the Python guards off: a frame forged on the reply pipe (fd 3), an
#: error of 3.5 MB, then exit before the worker's own reply.
FORGED = '''
import os
import struct


class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        body = ('{"id": 1, "ok": false, "error": "' + "-secret" * 500_000 + '"}').encode()
        os.write(3, struct.pack(">I", len(body)) + body)
        os._exit(0)
'''


def test_a_forged_huge_error_is_cut_before_it_is_redacted(redacted: list[int]) -> None:
    policy = WorkerPolicy(call_timeout_s=5.0, python_guards=False)
    s = SandboxedStrategy(FORGED, name="slot", policy=policy)
    try:
        with pytest.raises(WorkerFailure) as info:
            s.on_event(BAR, CTX)
        assert info.value.kind == "exception", info.value
        assert redacted and max(redacted) <= REDACT_BOUND, max(redacted)
        assert len(str(info.value)) <= 600
    finally:
        s.close()


def test_failure_messages_are_bounded_whatever_builds_them() -> None:
    failure = WorkerFailure("malformed", "x" * 10_000_000)
    assert len(str(failure)) <= MESSAGE_BOUND
    assert str(failure).endswith("more characters]")
    assert str(WorkerFailure("crash", "short")) == "short"


_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (5, 5))
from argus_core import redact
redact("-secret" * 15_000)
print("done")
"""


def test_core_redact_answers_a_hostile_text_in_linear_time() -> None:
    """105 KB: about 70 s quadratic, milliseconds linear; a 5-CPU-second child separates
    'answers' from 'never answers' (not a timing assert)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-500:]
