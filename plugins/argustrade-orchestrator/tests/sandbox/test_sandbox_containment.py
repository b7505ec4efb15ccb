"""Containment that holds without root: the host's own process is out of the worker's reach.

The static filter (``validate_source``) is never used here and the Python guards
are off, so only the OS layer stands between strategy code and the host.  Each
check runs in a disposable host process (this file, run as a script) so that a
broken sandbox damages that process, not the test runner: once as root (when
the tests run as root) and once as an ordinary user (``nobody``, via
``setpriv``; or the current user when the tests already run unprivileged).

The host script records its own nice value, scheduler, CPU affinity, I/O
priority, rlimits, process group and session before and after every sample and
reports any change; it also looks at each worker from outside (/proc): its uid
or user namespace differs from the host's, it lives in another PID namespace and
session, and its limits are in force.  Every file in ``escapes/`` runs this way
as ``nobody`` (so new samples are covered automatically); as root the same
corpus runs in-process in ``test_sandbox_escapes.py`` with the same host checks.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess
from argus_orchestrator.sandbox.host import MANDATORY_PROTECTIONS, WORKER_PATH

HERE = Path(__file__).resolve()
ESCAPES = sorted((HERE.parent / "escapes").glob("*.py"))
REPO = HERE.parents[4]
NOBODY = 65534
#: Samples run in this many host processes (each pays ~1 s to import argus), this many
#: at a time in each.
SHARDS = 2
THREADS = 3
CANARY = f"sk-ant-api03-CANARY{uuid.uuid4().hex}{uuid.uuid4().hex}"
#: Python guards off: the OS layer alone must hold.  Short deadline: a spinning sample is
#: contained by the timeout, and the corpus must stay fast.
POLICY = WorkerPolicy(python_guards=False, call_timeout_s=1.0, start_timeout_s=4.0,
                      memory_mb=256)
PROBE_POLICY = WorkerPolicy(python_guards=False, call_timeout_s=5.0, memory_mb=256)
_IOPRIO_GET = {"x86_64": 252, "aarch64": 31}

#: Every way we know for strategy code to reach another process or the outside; each must
#: fail.  Run with the guards off, aimed at the (disposable) host process.
PROBE = '''
import ctypes, os, resource, socket

IOPRIO_SET = {"x86_64": 251, "aarch64": 30}.get(os.uname().machine, -1)


class Strategy:
    def on_event(self, event, state, portfolio):
        libc = ctypes.CDLL(None, use_errno=True)
        host = event["host_pid"]

        def c(ret):
            if ret == -1:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return ret

        def fork():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            return pid

        attacks = {
            "kill_host": lambda: os.kill(host, 0),
            "kill_all": lambda: os.kill(-1, 0),
            "kill_own_group": lambda: os.kill(0, 0),
            "ptrace_host": lambda: c(libc.ptrace(16, host, 0, 0)),
            "pidfd_host": lambda: os.pidfd_open(host),
            "renice_host": lambda: os.setpriority(os.PRIO_PROCESS, host, 19),
            "renice_group": lambda: os.setpriority(os.PRIO_PGRP, 0, 19),
            "renice_user": lambda: os.setpriority(os.PRIO_USER, 0, 19),
            "affinity_host": lambda: os.sched_setaffinity(host, {min(os.sched_getaffinity(0))}),
            "scheduler_host": lambda: os.sched_setscheduler(host, os.SCHED_IDLE,
                                                            os.sched_param(0)),
            "ioprio_host": lambda: c(libc.syscall(IOPRIO_SET, 1, host, 3 << 13)),
            "ioprio_group": lambda: c(libc.syscall(IOPRIO_SET, 2, 0, 3 << 13)),
            "prlimit_host": lambda: resource.prlimit(host, resource.RLIMIT_NOFILE, (17, 17)),
            "raise_own_cpu_limit": lambda: resource.setrlimit(
                resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)),
            "raise_own_memory_limit": lambda: resource.prlimit(
                0, resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)),
            "lower_own_nofile": lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3)),
            "setsid": lambda: os.setsid(),
            "setpgid": lambda: os.setpgid(0, 0),
            "socket_inet": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
            "socket_inet6": lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
            "socket_unix": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
            "socketpair": lambda: socket.socketpair(),
            "exec": lambda: os.execv("/bin/sh", ["sh", "-c", "true"]),
            "fork": fork,
            "unshare_user": lambda: c(libc.unshare(0x10000000)),
            "setuid_root": lambda: os.setuid(0),
            "open_etc": lambda: open("/etc/hostname").read(),
            "mkdir": lambda: os.mkdir("x"),
        }
        out = {}
        for name, attack in attacks.items():
            try:
                out[name] = "succeeded: %r" % (attack(),)
            except BaseException as exc:
                out[name] = "blocked: " + type(exc).__name__
        state["attacks"] = out
        state["identity"] = {"pid": os.getpid(), "ppid": os.getppid(), "uid": os.getuid(),
                             "euid": os.geteuid(), "gid": os.getgid()}
        return []
'''


# -- the host side (runs in the disposable host process) -----------------------------------
def host_snapshot() -> dict[str, Any]:
    """Everything about this process a contained worker must not be able to change."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    nr = _IOPRIO_GET.get(platform.machine())
    return {
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "scheduler": os.sched_getscheduler(0),
        "sched_priority": os.sched_getparam(0).sched_priority,
        "affinity": sorted(os.sched_getaffinity(0)),
        "ioprio": libc.syscall(nr, 1, 0) if nr is not None else None,  # IOPRIO_WHO_PROCESS
        "rlimits": {name: list(resource.getrlimit(getattr(resource, name)))
                    for name in sorted(dir(resource)) if name.startswith("RLIMIT_")},
        "pgid": os.getpgid(0), "sid": os.getsid(0), "uid": os.getuid(), "euid": os.geteuid(),
    }


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: state ppid pgrp session ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(int(entry))[3]) == sid:
                    members.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return members


def worker_from_outside(worker: WorkerProcess) -> dict[str, Any]:
    """What /proc says about the contained child of ``worker`` (its supervisor's only child)."""
    assert worker.pid is not None
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    child = int(children[0])
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{child}/status").read_text().splitlines() if ":" in line)
    limits = {}
    for line in Path(f"/proc/{child}/limits").read_text().splitlines()[1:]:
        parts = line.split()
        # "Max processes  0  0  processes": name words, soft, hard[, units]
        idx = next(i for i, p in enumerate(parts) if p.isdigit() or p == "unlimited")
        limits[" ".join(parts[:idx])] = parts[idx:idx + 2]
    ns = {kind: (os.readlink(f"/proc/{child}/ns/{kind}"), os.readlink(f"/proc/self/ns/{kind}"))
          for kind in ("user", "pid", "net", "mnt", "ipc", "uts")}
    supervisor = _stat_fields(worker.pid)
    return {"children": len(children), "uid": int(status["Uid"].split()[0]),
            "ns_differs": {kind: a != b for kind, (a, b) in ns.items()},
            "supervisor_pgrp": int(supervisor[2]), "supervisor_sid": int(supervisor[3]),
            "child_sid": int(_stat_fields(child)[3]), "limits": limits,
            "seccomp": status.get("Seccomp", "").strip(),
            "no_new_privs": status.get("NoNewPrivs", "").strip(),
            "cap_eff": status.get("CapEff", "").strip()}


def _event(tmp: Path, canary: str, tcp: socket.socket, udp: socket.socket) -> dict[str, Any]:
    secret = tmp / "secret.txt"
    secret.write_text(canary)
    (tmp / "sentinel.txt").write_text("intact")
    return {"type": "bar", "instrument_id": "test:X", "close": 1.0,
            "secret_path": str(secret), "host_dir": str(tmp),
            "sentinel_path": str(tmp / "sentinel.txt"), "host_pid": os.getpid(),
            "host_uid": os.getuid(), "port": tcp.getsockname()[1],
            "udp_port": udp.getsockname()[1], "unix_path": str(tmp / "host.sock"),
            "abstract_name": f"argus-test-{uuid.uuid4().hex}"}


def run_sample(source: str, policy: WorkerPolicy, tmp: Path) -> dict[str, Any]:
    """Run ``source`` once against this host; what went wrong (``problems``) and evidence.

    The host's environment must hold ``CANARY`` (see :func:`run_corpus`).
    """
    canary = CANARY
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    event = _event(tmp, canary, tcp, udp)
    files_before = sorted(p.name for p in tmp.iterdir())
    before = host_snapshot()
    problems: list[str] = []
    result: dict[str, Any] = {"problems": problems}
    try:
        worker = WorkerProcess(source, policy)
    except WorkerFailure as exc:
        # Refused or killed while loading (import-time attacks): contained.
        text, worker = str(exc), None
        result["failure"] = exc.kind
        if exc.kind not in {"startup", "timeout", "crash", "malformed"}:
            problems.append(f"start failed as {exc.kind}: {exc}")
    if worker is not None:
        sid = worker.pid
        try:
            result["outside"] = worker_from_outside(worker)
            result["report"] = worker.report
            reply = worker.call({"op": "call", "event": event, "state": {},
                                 "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}}})
            result["state"] = reply.get("state")
            text = json.dumps(reply)
        except WorkerFailure as exc:
            text = str(exc)
            result["failure"] = exc.kind
            if exc.kind not in {"timeout", "crash", "malformed"}:
                problems.append(f"unexpected failure kind {exc.kind}: {exc}")
        text += worker.stderr_tail(100_000)
        worker.close()
        # The supervisor reaps its child: nothing outlives the worker, not even a zombie.
        deadline = time.monotonic() + 2.0
        while sid is not None and _session_members(sid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if sid is not None and _session_members(sid):
            problems.append(f"processes outlived the worker: {_session_members(sid)}")
    after = host_snapshot()
    for key in before:
        if before[key] != after[key]:
            problems.append(f"host {key} changed: {before[key]} -> {after[key]}")
    if canary in text:
        problems.append("the canary secret left the host")
    if (tmp / "sentinel.txt").read_text() != "intact":
        problems.append("a host file was changed")
    if sorted(p.name for p in tmp.iterdir()) != files_before:
        problems.append("files appeared in the host's directory")
    for name, sock, read in (("tcp", tcp, lambda s: s.accept()), ("udp", udp,
                                                                   lambda s: s.recvfrom(10))):
        try:
            read(sock)
            problems.append(f"a {name} packet reached the host")
        except BlockingIOError:
            pass
        sock.close()
    return result


def run_corpus(paths: list[Path], policy: WorkerPolicy, tmp: Path) -> dict[str, Any]:
    """:func:`run_sample` for each of ``paths``, a few at a time (most of a run is waiting:
    process start-up, deadlines), each in its own directory under ``tmp``."""
    os.environ["ANTHROPIC_API_KEY"] = CANARY

    def one(path: Path) -> dict[str, Any]:
        sample = tmp / path.stem
        sample.mkdir()
        return run_sample(path.read_text(), policy, sample)

    with ThreadPoolExecutor(THREADS) as pool:
        return dict(zip([p.stem for p in paths], pool.map(one, paths), strict=True))


def main(argv: list[str]) -> int:
    """Host script: ``probe`` or ``corpus I N`` (shard I of N); JSON results on stdout."""
    with tempfile.TemporaryDirectory(prefix="argus-host-") as tmp_dir:
        tmp = Path(tmp_dir)
        out: dict[str, Any] = {"host": host_snapshot()}
        if argv[0] == "probe":
            os.environ["ANTHROPIC_API_KEY"] = CANARY
            out["probe"] = run_sample(PROBE, PROBE_POLICY, tmp)
        else:
            index, shards = int(argv[1]), int(argv[2])
            out["corpus"] = run_corpus(ESCAPES[index::shards], POLICY, tmp)
    json.dump(out, sys.stdout)
    return 0


# -- starting the host script as root or as an ordinary user ---------------------------------
def _needed_paths() -> list[str]:
    """Directories the host script (and its worker) must reach: interpreter, libraries, repo."""
    import pyseccomp

    paths = {os.path.realpath(p) for p in (
        sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
        str(REPO), str(WORKER_PATH.parent), os.path.dirname(pyseccomp.__file__),
        *[p for p in sys.path if p and os.path.isdir(p)])}
    ordered = sorted(paths)
    return [p for p in ordered if not any(p != q and p.startswith(q + "/") for q in ordered)]


def _first_closed_ancestor(path: str) -> str | None:
    """The topmost directory on ``path`` that others may not traverse (``/root`` often)."""
    current = "/"
    for part in Path(path).parts[1:]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


def _as_nobody(argv: list[str], scratch: Path) -> list[str]:
    """``argv`` run as uid/gid nobody; where the interpreter or checkout sits below a
    directory nobody cannot enter (pyenv under /root), a private mount namespace lays a
    tmpfs over that directory and binds just the needed paths back (root only; nothing
    outside that process's namespace changes)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop to nobody")
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
            "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent",
            "LANG=C.UTF-8", *argv]
    closed: dict[str, list[str]] = {}
    for path in _needed_paths():
        top = _first_closed_ancestor(path)
        if top is not None:
            if top == path:
                pytest.skip(f"{path} itself is closed to other users")
            closed.setdefault(top, []).append(path)
    if not closed:
        return drop
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"],
            capture_output=True).returncode != 0:
        pytest.skip(f"the interpreter or checkout is below {', '.join(closed)}, which nobody "
                    f"cannot enter, and no private mount namespace can expose it here")
    lines = ["set -e"]
    for i, (top, paths) in enumerate(sorted(closed.items())):
        keep = scratch / f"keep{i}"
        lines += [f"mkdir -p {shlex.quote(str(keep))}",
                  f"mount --bind {shlex.quote(top)} {shlex.quote(str(keep))}",
                  f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(top)}"]
        for path in paths:
            rel = os.path.relpath(path, top)
            lines += [f"mkdir -p {shlex.quote(path)}",
                      f"mount --bind {shlex.quote(str(keep / rel))} {shlex.quote(path)}"]
    lines.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines),
            "sh", *drop]


def _run_host(mode: str, args: list[str], scratch: Path) -> dict[str, Any]:
    argv = [os.path.realpath(sys.executable), "-I", "-B", str(HERE), *args]
    if mode == "root":
        if os.geteuid() != 0:
            pytest.skip("the tests do not run as root")
        command = argv
    elif os.geteuid() == 0:
        command = _as_nobody(argv, scratch)
    else:
        command = argv  # already an ordinary user
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    if mode == "unprivileged":
        assert result["host"]["euid"] != 0 and result["host"]["uid"] != 0
    return result


@pytest.mark.parametrize("mode", ["root", "unprivileged"])
def test_worker_cannot_touch_its_host(mode: str, tmp_path: Path) -> None:
    """Identity from outside, and every process-level attack from inside, fail."""
    result = _run_host(mode, ["probe"], tmp_path)
    host, probe = result["host"], result["probe"]
    assert probe["problems"] == [], probe["problems"]
    outside, report = probe["outside"], probe["report"]
    # A different uid (root host: nobody) or, for an ordinary host, its own user namespace.
    assert outside["uid"] != host["uid"] or outside["ns_differs"]["user"]
    if host["uid"] == 0:
        assert outside["uid"] != 0
    assert all(outside["ns_differs"][k] for k in ("pid", "net", "mnt", "ipc", "uts"))
    # Not in the host's session or process group, and alone under its supervisor.
    assert outside["supervisor_sid"] != host["sid"] and outside["child_sid"] != host["sid"]
    assert outside["supervisor_pgrp"] != host["pgid"]
    assert outside["children"] == 1
    assert outside["seccomp"] == "2" and outside["no_new_privs"] == "1"
    assert int(outside["cap_eff"], 16) == 0
    limits = outside["limits"]
    assert limits["Max processes"] == ["0", "0"] and limits["Max core file size"] == ["0", "0"]
    assert limits["Max address space"] == [str(256 * 1024 * 1024)] * 2
    assert limits["Max open files"][0] == limits["Max open files"][1]
    assert all(report[name] for name in ("pid_namespace", "uid_separated", "own_session"))
    # From inside: PID 1 of its own namespace, and every attack refused.
    identity, attacks = probe["state"]["identity"], probe["state"]["attacks"]
    assert identity["pid"] == 1 and identity["ppid"] == 0
    succeeded = {k: v for k, v in attacks.items() if not v.startswith("blocked: ")}
    assert succeeded == {}


@pytest.mark.parametrize("shard", range(SHARDS))
def test_unprivileged_host_contains_every_escape(shard: int, tmp_path: Path) -> None:
    """Every sample in escapes/, validator and guards off, against an ordinary-user host."""
    result = _run_host("unprivileged", ["corpus", str(shard), str(SHARDS)], tmp_path)
    assert sorted(result["corpus"]) == [p.stem for p in ESCAPES[shard::SHARDS]]
    problems = {name: r["problems"] for name, r in result["corpus"].items() if r["problems"]}
    assert problems == {}


def test_every_mandatory_protection_is_enforced() -> None:
    """Switching a containment layer off does not run the strategy less contained."""
    source = "class Strategy:\n    def on_event(self, e, s, p):\n        return []\n"
    for policy, missing in ((WorkerPolicy(namespaces=False), "pid_namespace"),
                            (WorkerPolicy(seccomp=False), "seccomp"),
                            (WorkerPolicy(chroot=False), "chroot")):
        with pytest.raises(WorkerFailure) as info:
            WorkerProcess(source, policy)
        assert info.value.kind == "startup" and missing in str(info.value)
        assert "refusing" in str(info.value)
    assert set(MANDATORY_PROTECTIONS) >= {"pid_namespace", "uid_separated", "seccomp",
                                          "own_session", "rlimits", "network_blocked"}


def test_worker_without_libseccomp_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_orchestrator.sandbox import host

    monkeypatch.setattr(host, "_pyseccomp_path", lambda: None)
    with pytest.raises(WorkerFailure) as info:
        WorkerProcess("class Strategy:\n    pass\n")
    assert info.value.kind == "startup" and "pyseccomp" in str(info.value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
