"""Third held-out audit, the host: worker text the host could not write.

JSON carries ``"\\ud800"``, and ``json.loads`` turns it into a lone surrogate: a ``str``
that no UTF-8 writer accepts.  Ordinary code the filter accepts (``chr(0xD800)``) put
one into text the host keeps, and the ledger (apsw) raised ``UnicodeEncodeError`` out of
the running loop, which stopped:

* an intent's or a cancel's ``reason`` (the order and its risk events are written with it);
* a strategy's exception message (``raise ValueError(chr(0xD800))``): the failure's
  message is the ``strategy_error`` risk event's reason;
* a start-up failure's message (``__init__`` raising the same).

Now every text the host keeps from a worker has its lone surrogates escaped
(``\\ud800`` as six characters), and every ``WorkerFailure`` message is encodable
whatever built it.  State may still hold them (as data, not text the host writes):
the checkpoint's and the hand-over's JSON escape them, which is checked here too.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from argus_orchestrator.sandbox import (
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    validate_source,
)

from argus_core import CancelIntent
from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio

BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
POLICY = WorkerPolicy(call_timeout_s=2.0)
REPO = Path(__file__).parents[4]
TEMPLATE = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
{body}
'''
#: Each: a strategy body the filter accepts, that put a lone surrogate into host text.
SURROGATE_BODIES = {
    "intent_reason": '        return [{"instrument_id": event["instrument_id"], "side": "buy", '
                     '"quantity": 1, "reason": "why " + chr(0xD800)}]',
    "exception": '        raise ValueError("bad " + chr(0xDFFF) * 3000)',
}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _source(body: str) -> str:
    source = TEMPLATE.format(body=body)
    result = validate_source(source)
    assert result.accepted, result.reasons
    return source


def _config(tmp_path: Path) -> Path:
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
sizer = "kelly"

[plugins.replay]
bars_csv = "{bars}"
start = "2022-01-01"
end = "2022-01-02"
""")
    return path


def _run(tmp_path: Path, source: str) -> tuple[list[dict], int]:  # type: ignore[type-arg]
    """Backtest ``source``; its strategy_error events and how many orders it placed."""
    from argus_core.backtest import run_backtest
    from argus_core.config import load_config
    from argus_core.ledger import Ledger

    strategy = SandboxedStrategy(source, name="ma_cross", policy=POLICY)
    try:
        # Raised UnicodeEncodeError (from the ledger's insert) before the fix.
        run_backtest(load_config(_config(tmp_path)), tmp_path / "run",
                     strategies={"ma_cross": strategy})
    finally:
        strategy.close()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        errors = ledger.query("select * from risk_events where check_name = 'strategy_error'")
        orders = ledger.query("select count(*) as n from orders")[0]["n"]
    return errors, orders


def test_a_surrogate_in_an_intent_reason_does_not_stop_the_loop(tmp_path: Path) -> None:
    errors, orders = _run(tmp_path, _source(SURROGATE_BODIES["intent_reason"]))
    assert errors == [] and orders > 0


def test_a_surrogate_in_an_exception_is_one_strategy_error(tmp_path: Path) -> None:
    errors, orders = _run(tmp_path, _source(SURROGATE_BODIES["exception"]))
    (event,) = errors
    assert event["action"] == "reducing" and "ValueError: bad \\udfff" in event["reason"]
    assert orders == 0


@pytest.mark.parametrize("name", sorted(SURROGATE_BODIES))
def test_host_text_from_a_worker_is_encodable(name: str) -> None:
    s = SandboxedStrategy(_source(SURROGATE_BODIES[name]), name="slot", policy=POLICY)
    try:
        try:
            texts = [getattr(i, "reason", "") for i in s.on_event(BAR, CTX)]
        except WorkerFailure as exc:
            texts = [str(exc)]
        assert texts and all(_encodable(t) for t in texts), texts
        assert all("\\ud800" in t or "\\udfff" in t for t in texts), texts
    finally:
        s.close()


def test_a_surrogate_in_a_cancel_reason_is_escaped() -> None:
    s = SandboxedStrategy(_source('        return [{"cancel": True, "instrument_id": '
                                  'event["instrument_id"], "reason": chr(0xD800) * 500}]'),
                          name="slot", policy=POLICY)
    try:
        (cancel,) = s.on_event(BAR, CTX)
        assert isinstance(cancel, CancelIntent)
        assert _encodable(cancel.reason) and cancel.reason.startswith("\\ud800\\ud800")
        assert len(cancel.reason) == 200  # cut after escaping, as any reason
    finally:
        s.close()


def test_a_surrogate_in_a_start_up_failure_is_escaped() -> None:
    source = ('class Strategy:\n    def __init__(self):\n'
              '        raise ValueError("no " + chr(0xD800))\n\n'
              '    def on_event(self, event, state, portfolio):\n        return []\n')
    assert validate_source(source).accepted
    with pytest.raises(WorkerFailure) as info:
        SandboxedStrategy(source, name="slot", policy=POLICY)
    assert info.value.kind == "startup"
    assert _encodable(str(info.value)) and "no \\ud800" in str(info.value)


def test_failure_messages_are_encodable_whatever_builds_them() -> None:
    short = WorkerFailure("malformed", "x" + "\udc80" * 10)
    long = WorkerFailure("malformed", "\ud800" * 10_000)
    assert str(short) == "x" + "\\udc80" * 10
    assert _encodable(str(long)) and len(str(long)) < 4100


def test_state_may_hold_surrogates_and_nuls_as_data(tmp_path: Path) -> None:
    """State is data, not text the host writes: its keys and values keep what the
    strategy put there, and the checkpoint's and the hand-over's JSON escape them."""
    body = ('        state[chr(0xD800) + "k\\x00"] = [chr(0xDFFF), "\\x00"]\n'
            '        return []')
    s = SandboxedStrategy(_source(body), name="slot", policy=POLICY)
    try:
        s.on_event(BAR, CTX)
        assert s.get_state() == {"\ud800k\x00": ["\udfff", "\x00"]}
    finally:
        s.close()
    errors, _ = _run(tmp_path, _source(body))
    assert errors == []
    from argus_core.ledger import Ledger

    with Ledger.in_dir(tmp_path / "run") as ledger:
        found = ledger.load_checkpoint("runner")
    assert found is not None
    assert found[2]["strategies"]["ma_cross"] == {"\ud800k\x00": ["\udfff", "\x00"]}
