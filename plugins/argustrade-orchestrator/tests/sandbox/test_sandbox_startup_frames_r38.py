"""Red team r38: start-up frames forged by the strategy's import-time code.

The worker writes ``loading`` and then runs the strategy's module; from that moment
the strategy (given a way past the static filter: the samples here run with the
Python guards off, as the escape corpus does) can write frames of its own to the
protocol pipe.  Before, the host read the protections it requires from the
``ready`` frame, which comes *after* the strategy's code, so:

* a forged ``ready`` whose ``report`` was ``[1]`` (or a string, a number, ``true``)
  raised ``AttributeError`` out of ``WorkerProcess()``: not a ``WorkerFailure``
  (the callers fence only ``SandboxError``: the improvement cycle's dynamic
  validation stopped), and the worker was left running;
* with ``require=("audit_hook",)``, the worker ran the strategy without one (it left
  that check to the host), and the strategy's forged report claimed it: the host
  accepted a worker that lacked a protection its policy required.

Now the worker checks every required protection, the audit hook included, before
the strategy's first line; the host reads the report from the first frame only
(written before that line), and any failure to read a start-up frame is a
``WorkerFailure`` with the worker killed.
"""

from __future__ import annotations

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess
from argus_orchestrator.sandbox.host import MANDATORY_PROTECTIONS

#: Import-time code that writes a 'ready' frame with ``report`` (JSON text) to the
#: protocol pipe (fd 3: the worker's dup of its stdout), then waits for the host.
FORGE_READY = '''
import os, struct, time
body = b'{"op": "ready", "events": ["bar"], "report": %s}'
os.write(3, struct.pack(">I", len(body)) + body)
time.sleep(3)
'''
GUARDS_OFF = WorkerPolicy(python_guards=False, call_timeout_s=2.0, start_timeout_s=10.0)


@pytest.mark.parametrize("report", ["[1]", '"all on"', "5", "true"])
def test_a_forged_ready_report_of_any_shape_never_escapes_the_host(report: str) -> None:
    """Whatever the forged report holds, the constructor gives a worker whose report is
    the genuine one, or a WorkerFailure; never another exception."""
    source = FORGE_READY % report.encode().decode()
    try:
        worker = WorkerProcess(source, GUARDS_OFF)
    except WorkerFailure as exc:
        assert exc.kind == "startup", exc
        return
    except Exception as exc:  # the finding: AttributeError out of the constructor
        pytest.fail(f"forged 'ready' report {report}: {type(exc).__name__} escaped "
                    f"WorkerProcess() instead of a WorkerFailure: {exc}")
    try:
        assert isinstance(worker.report, dict) and worker.report.get("seccomp") is True, \
            f"report not the worker's own: {worker.report!r}"
    finally:
        worker.close()


def test_a_forged_ready_report_cannot_claim_a_required_audit_hook() -> None:
    """Guards off but the audit hook required: the worker refuses before any strategy
    code runs, so no forged report can claim the hook."""
    claims = ", ".join(f'"{k}": true' for k in (*MANDATORY_PROTECTIONS, "audit_hook"))
    source = FORGE_READY % ("{" + claims + ', "rlimits": {"RLIMIT_AS": 1}}')
    policy = WorkerPolicy(python_guards=False, require=("audit_hook",), start_timeout_s=10.0)
    worker = None
    try:
        with pytest.raises(WorkerFailure) as info:
            worker = WorkerProcess(source, policy)
        assert info.value.kind == "startup" and "audit_hook" in str(info.value), info.value
    finally:
        if worker is not None:  # accepted on a forged report: the bug this test catches
            worker.close()


def test_the_trusted_report_is_the_one_sent_before_the_strategy_runs() -> None:
    """A forged 'ready' frame that claims extra keys changes nothing the host keeps."""
    source = FORGE_READY % '{"seccomp": true, "forged": true}'
    worker = WorkerProcess(source, GUARDS_OFF)
    try:
        assert "forged" not in worker.report, worker.report
        assert worker.report.get("pid_namespace") is True, worker.report
    finally:
        worker.close()
