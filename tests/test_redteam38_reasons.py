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
