"""``redact`` answers hostile text in linear time: each credential name in a long run of
word characters once scanned the rest of the run again (``"-secret" * 15_000``, 105 kB:
two minutes; ``"secret=" * 15_000``: 36 s), in the loop's thread, on text a strategy or a
model wrote.  A child process with a CPU-time cap separates "answers" from "never
answers" (no timed assert)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from argus_core import redact

_CHILD = """
import resource
resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
from argus_core import redact
from argus_core.secrets import find_key_shaped
for text in ["-secret" * 15_000, "secret=" * 15_000, "api_key_" * 13_000, "-token-" * 15_000,
             "authorization: " * 7_000, "-passphrase'" * 9_000, "secret" + " " * 100_000,
             "x-api-key=" + "a" * 100_000, "bot_token=" * 10_000 + "1"]:
    redact(text)
    find_key_shaped(text)
print("done")
"""


def test_hostile_runs_of_credential_names_are_answered() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-500:]


def test_the_bounds_keep_what_they_should_catch() -> None:
    assert redact("POLY_API_KEY=abc12345def") == "POLY_[REDACTED]"
    assert "abc123" not in redact('{"client_secret_for_the_production_acct": "abc12345"}')
    assert "s3cr3t" not in redact("password=" + "x" * 250 + "s3cr3t")  # digit within 255
    assert redact("signature = inspect.signature(f)") == "signature = inspect.signature(f)"


def test_a_lone_surrogate_is_written_out_not_refused() -> None:
    """JSON's "\\ud800" (a venue's payload, a strategy's reason) decodes to a lone
    surrogate, which UTF-8 (SQLite, a log handler) refuses: the ledger's write stopped the
    run.  redact, which every free text of the ledger passes through, writes it out."""
    text = redact("bad \ud800 reason, sk-ant-api03-" + "C" * 30)
    assert text == "bad \\ud800 reason, [REDACTED]"
    text.encode("utf-8")
    assert redact("plain ascii") == "plain ascii" and redact("é ✓") == "é ✓"


def test_a_strategys_reason_with_a_lone_surrogate_does_not_stop_the_run(tmp_path: Path
                                                                         ) -> None:
    from decimal import Decimal
    from typing import Any

    from argus_test_helpers import BUNDLED_BARS, demo_toml

    from argus_core import Intent, Ledger, Side
    from argus_core.config import load_config
    from argus_core.runner import Runner

    class Odd:
        name = "odd"
        n = 0

        def on_event(self, event: Any, ctx: Any) -> list[Intent]:
            self.n += 1
            if self.n != 50:
                return []
            return [Intent("odd", event.instrument_id, Side.BUY, quantity=Decimal("0.01"),
                           reason="bad \ud800 reason")]

        def get_state(self) -> dict[str, Any]:
            return {}

        def set_state(self, state: dict[str, Any]) -> None:
            pass

    (tmp_path / "c.toml").write_text(demo_toml(BUNDLED_BARS, start="2022-06-01",
                                               end="2022-06-10"))
    summary = Runner(load_config(tmp_path / "c.toml"), tmp_path / "run",
                     strategies={"odd": Odd()}).run_sync()
    assert summary.orders >= 1 and summary.trading_state == "active"
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (row,) = ledger.query("select reason from orders where strategy = 'odd'")
    assert row["reason"] == "bad \\ud800 reason"
