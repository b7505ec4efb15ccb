"""Held-out escapes against the worker's OS layer: what each attempt got, from the inside.

``test_sandbox_escapes.py`` (as root) and ``test_sandbox_containment.py`` (as an
ordinary user) run every sample in ``escapes/`` and check the host from the
outside.  The samples below are of shapes the corpus lacked (kernel keyrings,
terminal injection, the x32 system-call ABI, pidfds aimed at the host, fileless
exec, system-wide calls, leaked descriptors, a stderr flood, self-stopping); here
each one's own report is checked too, so that "contained" means "refused by the
seccomp allowlist" (``EPERM``, or the process killed for a foreign ABI), not "it
happened to find nothing".  All of them held: no change to the worker was needed.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess, validate_source

ESCAPES = Path(__file__).parent / "escapes"
#: Python guards off: the OS layer alone must hold.
POLICY = WorkerPolicy(python_guards=False, call_timeout_s=2.0, start_timeout_s=10.0,
                      memory_mb=256)
EVENT = {"type": "bar", "instrument_id": "test:X", "close": 1.0, "host_pid": os.getpid(),
         "host_dir": "/tmp", "secret_path": "/etc/passwd"}

#: Samples whose every attempt must come back refused by seccomp (errno 1, EPERM).
REFUSED_BY_SECCOMP = ["kernel_keyring_read", "tiocsti_terminal_inject", "pidfd_steal_host_fds",
                      "memfd_execveat", "system_wide_calls"]

needs_known_arch = pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"),
                                      reason="the samples name x86_64 and aarch64 calls")


def _call(name: str) -> tuple[dict[str, Any] | None, WorkerFailure | None, str]:
    """Run sample ``name`` once: its reply or its failure, and its stderr."""
    worker = WorkerProcess((ESCAPES / f"{name}.py").read_text(), POLICY)
    try:
        try:
            reply = worker.call({"op": "call", "event": EVENT, "state": {}, "portfolio": {}})
        except WorkerFailure as exc:
            return None, exc, worker.stderr_tail(10 ** 8)
        return reply, None, worker.stderr_tail(10 ** 8)
    finally:
        worker.close()


@needs_known_arch
@pytest.mark.parametrize("name", REFUSED_BY_SECCOMP)
def test_every_attempt_is_refused_by_the_allowlist(name: str) -> None:
    reply, failure, _ = _call(name)
    assert failure is None and reply is not None and reply["ok"] is True, failure
    outcome = reply["state"]["outcome"]
    assert outcome and all(line.startswith("blocked: ") for line in outcome), outcome
    assert all(line.endswith("errno 1") for line in outcome), outcome  # EPERM: seccomp


@needs_known_arch
def test_x32_system_calls_kill_the_worker_or_are_refused() -> None:
    """x32 numbers are a foreign ABI to the filter: the process is killed (SIGSYS)."""
    reply, failure, _ = _call("x32_abi_syscall")
    if failure is not None:
        assert failure.kind == "crash" and "SIGSYS" in str(failure), failure
    else:
        assert reply is not None
        assert all(line.startswith("blocked: ") for line in reply["state"]["outcome"])


def test_the_worker_holds_only_its_protocol_pipes_and_stderr() -> None:
    """No host descriptor leaks into the worker: stdin and the reply pipe, and its stderr
    (a host file it may only append to, never read)."""
    reply, failure, _ = _call("descriptor_inventory")
    assert failure is None and reply is not None, failure
    found = reply["state"]["outcome"]
    assert [d["fd"] for d in found] == [0, 1, 2, 3], found
    assert [d["kind"] for d in found] == ["pipe", "file", "file", "pipe"], found
    assert all(d["read"].startswith("blocked: ") for d in found if "read" in d), found


def test_a_stderr_flood_stops_at_the_file_size_limit() -> None:
    reply, failure, stderr = _call("stderr_flood")
    assert failure is None and reply is not None, failure
    state = reply["state"]
    assert state["written"] <= POLICY.max_file_bytes
    assert state["stopped"].startswith("errno 27")  # EFBIG: RLIMIT_FSIZE
    assert len(stderr.encode()) <= POLICY.max_file_bytes


def test_a_worker_that_stops_itself_is_still_answered_or_killed() -> None:
    """As PID 1 of its namespace the worker cannot even stop itself (the kernel ignores
    those signals for a namespace's init without a handler); either way the host gets a
    reply or kills it on time."""
    reply, failure, _ = _call("sigstop_self")
    if failure is not None:
        assert failure.kind == "timeout"
    else:
        assert reply is not None and reply["ok"] is True


#: The filter refuses each of these before a line runs; the reason names the way in.
FILTER_REASONS = {
    "kernel_keyring_read": "import of 'ctypes'",
    "tiocsti_terminal_inject": "import of 'ctypes'",
    "x32_abi_syscall": "import of 'ctypes'",
    "pidfd_steal_host_fds": "import of 'ctypes'",
    "memfd_execveat": "import of 'ctypes'",
    "system_wide_calls": "import of 'ctypes'",
    "descriptor_inventory": "import of 'os'",
    "stderr_flood": "import of 'os'",
    "sigstop_self": "import of 'os'",
}


@pytest.mark.parametrize(("name", "needle"), sorted(FILTER_REASONS.items()))
def test_the_filter_refuses_each_sample_first(name: str, needle: str) -> None:
    result = validate_source((ESCAPES / f"{name}.py").read_text())
    assert not result.accepted
    assert any(needle in r and r.startswith("line ") for r in result.reasons), result.reasons
