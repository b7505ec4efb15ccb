"""``redact`` answers hostile text in linear time: each credential name in a long run of
word characters once scanned the rest of the run again (``"-secret" * 15_000``, 105 kB:
two minutes; ``"secret=" * 15_000``: 36 s), in the loop's thread, on text a strategy or a
model wrote.  A child process with a CPU-time cap separates "answers" from "never
answers" (no timed assert)."""

from __future__ import annotations

import subprocess
import sys

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
