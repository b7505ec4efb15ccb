"""Red team r38: terminal and log injection through the text the host keeps.

A strategy's reasons and exception messages go into intents, the ledger's risk
events, the log and every terminal or chat that shows them.  Before, the host cut,
redacted and made them encodable, but kept control characters: a reason holding
``ESC ] 52 ; c ; ... BEL`` (a terminal's set-clipboard sequence), ``ESC [ 2 J``, a
newline followed by a forged log line, or a bidi override (``U+202E``) reached them
as written.  The strategies here are plain code the static filter accepts (the
attack is data), so both the filter's and the worker's verdicts are checked.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest
from argus_orchestrator.sandbox import (
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    validate_source,
)

from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio

#: Text a hostile strategy hands the host: a clipboard write, a screen clear, a forged log
#: line, a bidi override, a zero-width joiner, a C1 CSI and a line separator.
HOSTILE = ('chr(27) + "]52;c;cm0gLXJmIH4=" + chr(7) + chr(27) + "[2J" + chr(10) + '
           '"INFO kill switch cleared" + chr(0x202E) + chr(0x200D) + chr(0x9B) + chr(0x2028)')
RETURNS = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return [dict(%s, instrument_id=event["instrument_id"], reason="x" + %s)]
'''
RAISES = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        raise ValueError("x" + %s)
'''
BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=2.0)


def _live_characters(text: str) -> list[str]:
    """Characters a terminal or log reader may act on, as their code points."""
    return [f"U+{ord(c):04X}" for c in text
            if unicodedata.category(c)[0] == "C" or c in "\u2028\u2029"]


def _run(source: str) -> tuple[list[object], WorkerFailure | None]:
    assert validate_source(source).accepted, validate_source(source).reasons
    s = SandboxedStrategy(source, name="slot", policy=POLICY)
    try:
        return list(s.on_event(BAR, CTX)), None
    except WorkerFailure as exc:
        return [], exc
    finally:
        s.close()


@pytest.mark.parametrize("kind", ['{"side": "buy", "quantity": 1.0}', '{"cancel": True}'],
                         ids=["intent", "cancel"])
def test_a_reason_reaches_the_core_without_control_characters(kind: str) -> None:
    intents, failure = _run(RETURNS % (kind, HOSTILE))
    assert failure is None, failure
    assert len(intents) == 1
    reason = str(getattr(intents[0], "reason", ""))
    assert "INFO kill switch cleared" in reason, reason
    assert not _live_characters(reason), f"reason kept {_live_characters(reason)}: {reason!r}"


def test_an_exception_message_reaches_the_log_on_one_inert_line() -> None:
    intents, failure = _run(RAISES % HOSTILE)
    assert failure is not None and failure.kind == "exception", (intents, failure)
    message = str(failure)
    assert "INFO kill switch cleared" in message, message
    assert not _live_characters(message), f"message kept {_live_characters(message)}"
