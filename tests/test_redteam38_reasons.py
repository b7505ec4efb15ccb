"""A strategy's reason reaches the ledger as one plain line (sandbox red team 38): a
reason holding a terminal's escape sequence (``ESC ] 52`` sets the clipboard of whoever
shows the order), a new line and a forged log line, or a bidi override was stored and
shown as written.  Printable reasons are kept exactly (example ledgers do not move)."""

from __future__ import annotations

from pathlib import Path

import pytest
from order_path_kit import RTVenue, Scripted, X, bar, buy, q, register, runner

from argus_core import CancelIntent
from argus_core.models import TimeInForce

HOSTILE = "\x1b]52;c;ZWNobyBoaQ==\x07buy\n2026-12-07 INFO argus: all clear \u202eyes"


def test_an_order_reason_with_controls_is_stored_as_one_plain_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    RTVenue.fill_at_once = False
    RTVenue.script = [bar(X, 1), bar(X, 2), bar(X, 3)]
    plan = {1: lambda e, c: [buy(X, "2", tif=TimeInForce.GTC, reason=HOSTILE)],
            2: lambda e, c: [CancelIntent("s", X, reason=HOSTILE)],
            3: lambda e, c: [buy(X, "1", reason="fast SMA crossed above slow — ok")]}
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    reasons = [r["reason"] for r in q(tmp_path / "run", "select reason from orders "
                                                        "order by ts_ns")]
    assert reasons[0] == "]52;c;ZWNobyBoaQ== buy 2026-12-07 INFO argus: all clear yes"
    assert reasons[1] == "fast SMA crossed above slow — ok"  # printable: kept as it is
    said = [r["status_reason"] for r in q(tmp_path / "run", "select status_reason from "
                                                            "orders where status_reason "
                                                            "like 'cancelled by%'")]
    assert said and all(s.isprintable() for s in said), said


def test_a_live_event_stamped_far_ahead_is_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The market clock is the newest stamp seen: one bar stamped in the year 5138 (a
    venue's damaged frame, microseconds read as milliseconds) moved it there for good,
    and every other instrument's data was stale by age from then on (Polymarket red team
    r38).  A paper or live event stamped past ``AHEAD_LIMIT_NS`` is left out, said once."""
    import time

    from argus_core import runner as core_runner

    register(monkeypatch)
    now_s = time.time_ns() // 10**9
    far = bar(X, 100_000_000_000_000 // 1000, 50.0)  # 5138
    RTVenue.script = [bar(X, now_s - 60), far, bar(X, now_s - 30), far]
    run = runner(tmp_path, {"s": Scripted({})})
    run.run_sync()
    assert run.market.now_ns == (now_s - 30) * 10**9  # the clock never went to 5138
    assert run.market.bars[X].close == 100.0
    said = [r for r in caplog.records if "ahead of this machine's clock" in r.getMessage()]
    assert len(said) == 1 and core_runner.AHEAD_LIMIT_NS == 300 * 10**9


def test_a_failing_last_commit_still_closes_the_venue_and_frees_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's last ledger writes (a full disk) raised before ``on_shutdown``, the venue's
    close and the run lock's release: plugins never heard the end (a monitor said 'stuck'
    for good), the venue's connections stayed open, and the run directory stayed locked
    for the rest of the process (monitor red team r38)."""
    from argus_core.errors import LedgerError
    from argus_core.ledger import Ledger

    register(monkeypatch)
    closed: list[bool] = []

    async def close(self: object) -> None:
        closed.append(True)

    monkeypatch.setattr(RTVenue, "close", close, raising=False)
    RTVenue.script = [bar(X, 1), bar(X, 2)]

    def full_disk(self: Ledger, *args: object) -> None:
        raise LedgerError("disk I/O error (full disk)")

    monkeypatch.setattr(Ledger, "finish_run", full_disk)
    with pytest.raises(LedgerError, match="full disk"):
        runner(tmp_path, {"s": Scripted({})}).run_sync()
    assert closed == [True]
    monkeypatch.undo()
    register(monkeypatch)
    RTVenue.script = [bar(X, 3)]
    runner(tmp_path, {"s": Scripted({})}).run_sync()  # the run directory is free again
