"""The sandbox worker: runs one AI-written strategy in an isolated process.

This file is the security boundary, so it is deliberately small: it imports
only the standard library plus ``pyseccomp`` (a thin ctypes binding to the
system's libseccomp, loaded from the file the host names, since the worker is
started as ``python -I -S -B worker.py`` with an empty environment and has no
site-packages on its path).  The host imports it only for the framing helpers.

Containment does not depend on the host running as root.  Start-up, in order
(each layer is reported back; a required step that fails makes the worker
refuse to run, and the host refuses any worker whose report lacks a mandatory
protection):

1. read the ``init`` frame (policy + source) from stdin;
2. pre-import the allowed modules and libseccomp (nothing can be loaded once
   the file system is gone);
3. ``unshare`` new PID, network, mount, IPC and UTS namespaces: directly when
   the host is root, otherwise inside a new user namespace (unprivileged user
   namespaces: the same mechanism bubblewrap uses, without the extra binary);
4. fork: the child is PID 1 of the new PID namespace and cannot name, signal
   or trace any process outside it; the parent only supervises (it reaps the
   child and, on the host's SIGTERM, SIGKILLs it) and runs no strategy code;
5. in the child: ``chroot`` into the empty per-worker directory, then drop
   privileges (uid/gid ``nobody`` when the host is root, so the worker never
   shares the host's uid; inside a user namespace, which is the uid
   separation an unprivileged host can have, every capability is dropped)
   and set ``no_new_privs``;
6. Landlock: no file-system access, no TCP bind/connect, no signals or
   abstract sockets outside the sandbox (where the kernel has it);
7. probe the network: connecting anywhere must fail;
8. resource limits (CPU seconds, address space, open files, processes,
   file size, no core dumps);
9. a default-deny seccomp allowlist built by libseccomp: only the system
   calls a running interpreter needs; calls that take a pid (kill, tgkill,
   prlimit64, sched_getaffinity) only for the worker itself, prlimit64 only
   to read; no sockets, exec, fork, ptrace, renice, scheduler, affinity,
   I/O priority or rlimit changes;
10. Python guards (defence in depth only): an audit hook refusing file,
    process, socket, ctypes, import and introspection events and every compile and
    exec but the worker's own one of each (of the checked source), a restricted
    ``__builtins__`` for the strategy module, imports that give a read-only view
    of a module's allowed members (the host's ``allowed_imports``), never the module,
    and a check of the compiled module before it runs: no dunder name beyond those
    the compiler emits (CPython audits no read of ``__globals__`` or ``__self__``).

Protocol: length-prefixed JSON frames (4-byte big-endian length, UTF-8 JSON
body) over stdin/stdout, bounded in size and nesting depth.  Never pickle: a
reply is data the host validates, never code it runs.
"""

from __future__ import annotations
import __future__

import contextlib
import ctypes
import dis
import errno
import json
import math
import os
import resource
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from types import CodeType
from typing import Any, BinaryIO, NoReturn

HEADER = struct.Struct(">I")
#: How a strategy module is compiled (the checker compiles it so too): its annotations are
#: kept as text and never evaluated (PEP 563), so none can run or fail at import (a name
#: bound to "a b" subscripting List failed typing's compile of it as a forward reference).
COMPILE_FLAGS = __future__.annotations.compiler_flag
DEFAULT_MAX_FRAME = 4 * 1024 * 1024
DEFAULT_MAX_DEPTH = 100


class FrameError(Exception):
    """A frame was truncated, oversize, too deeply nested or not a JSON object."""


def encode_frame(obj: dict[str, Any]) -> bytes:
    """``obj`` as one length-prefixed JSON frame."""
    body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return HEADER.pack(len(body)) + body


# Every byte but a quote or a bracket, deleted; "[" and "{" read as "(", "]" and "}" as ")".
_KEEP_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_AS_PARENS = bytes.maketrans(b"[]{}", b"()()")


def nested_deeper(body: bytes, max_depth: int) -> bool:
    """Whether ``body`` nests arrays/objects deeper than ``max_depth`` (brackets inside
    strings not counted; an unbalanced body counts as too deep), without recursion and
    at C speed: escaped backslashes and quotes are blanked (JSON pairs backslashes from
    the left, as ``replace`` scans), so every quote left opens or closes a string; the
    strings' contents are dropped; then each pass of ``replace(b"()", b"")`` takes away
    the innermost level, so a body within the limit is empty after ``max_depth`` passes.

    Checked before decoding: ``json.loads`` recurses once per level, and in a process
    whose recursion limit a library raised, a hostile reply nested 100,000 deep
    overflowed the C stack (a segmentation fault, where RecursionError was meant).  The
    regex this replaced kept a backtracking entry per escape: an *accepted* cancel whose
    reason was two million backslashes and 101 brackets cost the host ~230 MB and 0.2 s
    a call."""
    plain = body.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    structure = plain.translate(_AS_PARENS, _KEEP_STRUCTURE).replace(b'""', b"")
    outside = b"".join(structure.split(b'"')[::2])  # (strings of brackets only: few)
    for _ in range(max_depth):
        shorter = outside.replace(b"()", b"")
        if not shorter or len(shorter) == len(outside):
            outside = shorter
            break
        outside = shorter
    return bool(outside)


def json_depth(value: Any) -> int:
    """The deepest array/object nesting of a decoded JSON value (0 for a scalar),
    counted without recursion."""
    if type(value) is not list and type(value) is not dict:
        return 0
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        items = node.values() if type(node) is dict else node
        stack.extend([(child, level + 1) for child in items
                      if type(child) is list or type(child) is dict])
    return deepest


# What a JSON number needs to overflow a float: mantissa digits + exponent > 308, so a
# run of 150 digits or a three-digit exponent.  Bodies without either parse with the C
# scanner's own float conversion (no Python call per number); the rest are checked.
# Looked for by translating every byte to its class (digit "0", exponent "e", sign "s",
# other " ") and searching the result: the regex r"\d{150}|[eE][+-]?\d{3}" did the same
# at about 30 ns a byte, so an *accepted* reply (a cancel whose reason is 4 MB of "a")
# held the host's GIL for 130-180 ms on every event.
_NUMBER_CLASSES = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("e") if b in b"eE"
    else ord("s") if b in b"+-" else ord(" ") for b in range(256))
_HUGE_SHAPES = (b"0" * 150, b"e000", b"es000")


def maybe_huge_number(body: bytes) -> bool:
    """Whether ``body`` holds a run of 150 digits or a three-digit exponent anywhere
    (strings included: a cheap over-approximation), i.e. a number that may overflow."""
    classes = body.translate(_NUMBER_CLASSES)
    return any(shape in classes for shape in _HUGE_SHAPES)


def decode_body(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """Parse a frame body; ``FrameError`` unless it is a JSON object within the limits."""
    # Cheap bound first: nesting can never exceed the number of opening brackets.
    if body.count(b"[") + body.count(b"{") > max_depth and nested_deeper(body, max_depth):
        raise FrameError(f"frame is nested deeper than {max_depth} levels")
    try:
        checked = _finite_float if maybe_huge_number(body) else float
        obj = json.loads(body.decode("utf-8"), parse_constant=_no_constants,
                         parse_float=checked)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"frame is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"frame must be a JSON object, got {type(obj).__name__}")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in frames")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which JSON cannot carry back
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def read_frame(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_FRAME,
               max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any] | None:
    """Blocking read of one frame; ``None`` on a clean end of stream."""
    head = stream.read(HEADER.size)
    if not head:
        return None
    if len(head) != HEADER.size:
        raise FrameError("truncated frame header")
    (length,) = HEADER.unpack(head)
    if length > max_bytes:
        raise FrameError(f"frame of {length} bytes exceeds {max_bytes}")
    body = stream.read(length)
    if len(body) != length:
        raise FrameError("truncated frame body")
    return decode_body(body, max_depth)


# -- Linux primitives --------------------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534

_LANDLOCK_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CAPSET = {"x86_64": 126, "aarch64": 91}

#: System calls the worker may make once the filter is loaded (default: EPERM).  This is
#: what a running interpreter needs to compute and talk over the descriptors it holds;
#: names a given architecture lacks (``time`` on aarch64, say) are skipped.
ALLOWED_SYSCALLS = (
    # I/O on descriptors already open (stdin, stdout, stderr); nothing can open more.
    "read", "readv", "pread64", "write", "writev", "lseek", "close", "fstat", "newfstatat",
    # Memory.
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    # The process's own signal state and threads' runtime bookkeeping.
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "futex",
    "set_robust_list", "rseq", "restart_syscall", "sched_yield",
    # Read-only identity, clocks and randomness.
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
    "getresgid", "getgroups", "getrlimit", "getrusage", "times", "uname", "getrandom",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "clock_nanosleep", "nanosleep",
    "exit", "exit_group",
)
#: Calls that take a pid: allowed only aimed at the worker itself (argument filters).
#: Everything that could re-prioritise, re-affine, re-limit, signal or trace another
#: process (setpriority, sched_set*, ioprio_set, prlimit64 with a new limit, ptrace,
#: process_vm_*, pidfd_*) is simply absent, hence refused.
SELF_ONLY_SYSCALLS = ("kill", "tkill", "tgkill")


#: Each protection a worker can report, and the report key that shows it active.
PROTECTION_KEYS = {
    "env_empty": "env_empty", "rlimits": "rlimits", "network_blocked": "network_blocked",
    "net_namespace": "net_namespace", "chroot": "chroot",
    "capabilities_dropped": "capabilities_dropped", "no_new_privs": "no_new_privs",
    "landlock": "landlock_abi", "seccomp": "seccomp", "audit_hook": "audit_hook",
    "pid_namespace": "pid_namespace", "uid_separated": "uid_separated",
    "own_session": "own_session",
}


def active_protections(report: dict[str, Any]) -> dict[str, bool]:
    """Which protections a start-up report shows as active."""
    return {name: bool(report.get(key)) for name, key in PROTECTION_KEYS.items()}


class SandboxSetupError(Exception):
    """A containment step the worker cannot run without failed: it refuses to start."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _errno_text() -> str:
    code = ctypes.get_errno()
    return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"


def _load_libseccomp(path: str | None, libraries: dict[str, str | None]) -> Any:
    """Import pyseccomp from the file the host named (no site-packages here).

    ``libraries`` are the host's answers to ``ctypes.util.find_library`` for the
    libraries pyseccomp loads, so the worker need not run ldconfig on every start.
    """
    import ctypes.util
    import importlib.util

    if not path:
        raise SandboxSetupError("the seccomp allowlist needs pyseccomp and the system "
                                "libseccomp (pip install pyseccomp; apt-get install "
                                "libseccomp2): refusing to run uncontained")
    spec = importlib.util.spec_from_file_location("pyseccomp", path)
    if spec is None or spec.loader is None:
        raise SandboxSetupError(f"cannot load pyseccomp from {path}")
    module = importlib.util.module_from_spec(spec)
    find_library = ctypes.util.find_library
    ctypes.util.find_library = lambda name: libraries.get(name) or find_library(name)
    try:
        spec.loader.exec_module(module)
    except (OSError, RuntimeError, AttributeError) as exc:
        raise SandboxSetupError(f"libseccomp is not usable ({exc}): apt-get install "
                                f"libseccomp2; refusing to run uncontained") from None
    finally:
        ctypes.util.find_library = find_library
    return module


def _unshare(libc: ctypes.CDLL, report: dict[str, Any]) -> None:
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
    in_userns = uid != 0
    ok = libc.unshare(flags | (CLONE_NEWUSER if in_userns else 0)) == 0
    if not ok and not in_userns:
        # Root without CAP_SYS_ADMIN (a container): a user namespace may still be allowed.
        in_userns = True
        ok = libc.unshare(flags | CLONE_NEWUSER) == 0
    if not ok:
        raise SandboxSetupError(
            f"cannot create PID/network/mount namespaces{' in a user namespace' * in_userns}"
            f": unshare failed with {_errno_text()}; unprivileged user namespaces may be "
            f"disabled (sysctls user.max_user_namespaces, kernel.unprivileged_userns_clone, "
            f"kernel.apparmor_restrict_unprivileged_userns): refusing to run uncontained")
    report["user_namespace"] = in_userns
    report["net_namespace"] = True
    report["mount_namespace"] = True
    if in_userns:
        # Root inside the namespace (only there) so chroot and sethostname are permitted;
        # every capability is dropped again before any strategy code runs.
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    try:
        with open("/proc/self/net/dev") as f:
            lines = f.read().splitlines()[2:]
        report["interfaces"] = sorted(line.split(":")[0].strip() for line in lines)
    except OSError:
        report["interfaces"] = None


def _fork_into_pid_namespace(libc: ctypes.CDLL, keep: int, report: dict[str, Any]) -> None:
    """Fork; return in the child (PID 1 of the new namespace), supervise in the parent."""
    # SIGTERM (the host's "kill it now") stays blocked until the parent knows the child.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        # If the supervisor dies (killed, or the host with it), so does the worker.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        report["pid"] = os.getpid()
        report["pid_namespace"] = os.getpid() == 1
        if not report["pid_namespace"]:
            raise SandboxSetupError(f"worker is pid {os.getpid()}, not 1, after unshare")
        return
    _supervise(libc, child, keep, old_mask)


def _supervise(libc: ctypes.CDLL, child: int, keep: int, old_mask: Any) -> NoReturn:
    """The parent's whole life: hold no pipe, reap the child, exit the way it did."""
    status = 1
    try:
        # The protocol pipes belong to the child alone: the host sees EOF when it dies.
        for fd in (0, keep):
            os.close(fd)

        def on_term(signum: int, frame: Any) -> None:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)  # waitpid below then reaps it: no orphan

        # It keeps its privileges (it must be able to SIGKILL the child at any stage) but
        # runs no strategy code, and the child can neither see nor name it.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        signal.signal(signal.SIGTERM, on_term)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        _, wait_status = os.waitpid(child, 0)
        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
            os.kill(os.getpid(), sig)  # the host's exit note names the signal
            status = 128 + sig
        else:
            status = os.waitstatus_to_exitcode(wait_status)
    finally:
        os._exit(status)


def _chroot(root: str, report: dict[str, Any]) -> None:
    try:
        os.chroot(root)
        os.chdir("/")
    except OSError as exc:
        report["chroot_error"] = exc.strerror  # "chroot" is mandatory: the worker refuses
        return
    report["chroot"] = True


def _drop_privileges(libc: ctypes.CDLL, arch: str, host_uid: int,
                     report: dict[str, Any]) -> None:
    if not report.get("user_namespace") and os.geteuid() == 0:
        # Root host, no user namespace: become nobody, so the kernel's uid checks (kill,
        # ptrace, /proc) already separate the worker from the host.
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    # Clear every capability set (a no-op after leaving uid 0, needed inside a user ns).
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this pid
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words, all zero
    nr = _CAPSET.get(arch)
    capset_ok = nr is not None and libc.syscall(nr, header, data) == 0
    report["uid"] = os.geteuid()
    report["host_uid"] = host_uid
    # The worker's uid differs from the host's, or it lives in its own user namespace
    # (the only separation an unprivileged host can set up).
    report["uid_separated"] = bool(report.get("user_namespace")) or (
        os.getuid() != host_uid and os.geteuid() != host_uid)
    report["capabilities_dropped"] = capset_ok
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxSetupError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}")
    report["no_new_privs"] = True


def _landlock(libc: ctypes.CDLL, arch: str, report: dict[str, Any]) -> None:
    numbers = _LANDLOCK_SYSCALLS.get(arch)
    if numbers is None:
        return
    create, _add_rule, restrict = numbers
    abi = libc.syscall(create, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return
    fs_bits = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}.get(abi, 16)
    handled_fs = (1 << fs_bits) - 1
    handled_net = 0b11 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP
    scoped = 0b11 if abi >= 6 else 0  # ABSTRACT_UNIX_SOCKET | SIGNAL
    attr = (ctypes.c_uint64 * 3)(handled_fs, handled_net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = libc.syscall(create, attr, size, 0)
    if fd < 0:
        report["landlock_error"] = os.strerror(ctypes.get_errno())
        return
    try:
        # No rules added: every handled access is denied everywhere.
        if libc.syscall(restrict, fd, 0) != 0:
            report["landlock_error"] = os.strerror(ctypes.get_errno())
            return
    finally:
        os.close(fd)
    report["landlock_abi"] = int(abi)


def _probe_network(report: dict[str, Any]) -> None:
    """Try to reach loopback and an outside address; every attempt must fail."""
    blocked = True
    attempts: list[str] = []
    for host, port in (("127.0.0.1", 9), ("192.0.2.1", 80), ("::1", 9)):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            attempts.append(f"socket({host}): {errno.errorcode.get(exc.errno or 0, exc)}")
            continue
        try:
            s.setblocking(False)
            code = s.connect_ex((host, port))
            name = errno.errorcode.get(code, str(code))
            attempts.append(f"connect({host}:{port}): {name}")
            # Refused or in progress means a route exists: the network is reachable.
            if code in (0, errno.EINPROGRESS, errno.ECONNREFUSED, errno.EWOULDBLOCK):
                blocked = False
        finally:
            s.close()
    report["network_blocked"] = blocked
    report["network_probe"] = attempts


def _rlimits(policy: dict[str, Any], report: dict[str, Any]) -> None:
    mem = int(policy["memory_mb"]) * 1024 * 1024
    limits = {
        "RLIMIT_CPU": (int(policy["cpu_seconds"]), int(policy["cpu_seconds"]) + 1),
        "RLIMIT_AS": (mem, mem),
        "RLIMIT_NOFILE": (int(policy["max_open_files"]), int(policy["max_open_files"])),
        "RLIMIT_NPROC": (0, 0),
        "RLIMIT_FSIZE": (int(policy["max_file_bytes"]), int(policy["max_file_bytes"])),
        "RLIMIT_CORE": (0, 0),
    }
    applied = {}
    for name, (soft, hard) in limits.items():
        res = getattr(resource, name)
        _, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        # Soft and hard alike: without CAP_SYS_RESOURCE (and with prlimit64 read-only
        # under seccomp) the worker can never raise them again.
        resource.setrlimit(res, (soft, hard))
        applied[name] = soft
    report["rlimits"] = applied


def _seccomp(sc: Any, report: dict[str, Any]) -> None:
    """Load the default-deny allowlist (libseccomp generates and loads the BPF)."""
    try:
        flt = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
        # A foreign ABI (i386 int 0x80, x32) is not in the filter's arch list: kill.
        flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        allowed = []
        for name in ALLOWED_SYSCALLS:
            if sc.resolve_syscall(sc.Arch.NATIVE, name) < 0:
                continue  # not a system call on this architecture
            flt.add_rule(sc.ALLOW, name)
            allowed.append(name)
        me = os.getpid()  # 1: the PID namespace's init, nobody else
        for name in SELF_ONLY_SYSCALLS:
            flt.add_rule(sc.ALLOW, name, sc.Arg(0, sc.EQ, me))
        # getrlimit/prlimit64(0, res, NULL, &old): read own limits, never set anyone's.
        flt.add_rule(sc.ALLOW, "prlimit64", sc.Arg(0, sc.EQ, 0), sc.Arg(2, sc.EQ, 0))
        flt.add_rule(sc.ALLOW, "sched_getaffinity", sc.Arg(0, sc.EQ, 0))
        flt.load()
    except OSError as exc:
        raise SandboxSetupError(f"loading the seccomp allowlist failed: {exc}") from None
    report["seccomp"] = True
    report["seccomp_allowed"] = len(allowed) + len(SELF_ONLY_SYSCALLS) + 2


#: Audit events the hook refuses.  ``object.__getattr__`` is CPython's event for reading
#: the frame and code internals it marks as restricted (``gi_frame``, ``cr_frame``,
#: ``ag_frame``, ``gi_code``, ``tb_frame``, a function's ``__code__``): the door to
#: ``f_back``/``f_globals`` walks into the worker's own frames.  Nothing the worker or
#: the allowed modules run reads them (setting attributes, ``object.__setattr__``, is
#: how a strategy sets a class constant, so it stays allowed).
_BLOCKED_EVENT_PREFIXES = (
    "object.__getattr__", "open", "os.", "subprocess.", "socket.", "shutil.", "ctypes.",
    "sys._getframe", "sys.settrace", "sys.setprofile", "sys.addaudithook",
    "sys._current_frames", "code.__new__",
    "marshal.", "pickle.", "gc.get_", "builtins.input", "cpython.run_", "mmap.", "resource.",
    "signal.", "fcntl.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.", "winreg.",
    "sqlite3.", "glob.", "tempfile.", "pty.", "syslog.", "time.sleep",
)

#: The audit hook's refusal of code made at run time (``compile`` or ``exec``).
REFUSED_CODE = ("sandbox: {event} refused: strategy code may not compile or run code "
                "made from a string (a typing forward reference such as Union['...'] "
                "is one)")
_REFUSED_CODE_MESSAGES = frozenset(REFUSED_CODE.format(event=e) for e in ("compile", "exec"))
#: The exec latch's value while the worker compiles the strategy's source.
_COMPILE_ONCE = object()


def allowed_imports(policy: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The policy's ``allowed_imports`` (module -> the member names a strategy may have of
    it), checked; ``SandboxSetupError`` when it is missing or malformed (fail closed: a
    worker that cannot tell which members are allowed hands out none)."""
    table = policy.get("allowed_imports")
    if type(table) is not dict:
        raise SandboxSetupError(f"the policy's allowed_imports must map each module to its "
                                f"allowed members, got {type(table).__name__}: refusing to "
                                f"run the strategy")
    checked: dict[str, frozenset[str]] = {}
    for module, members in table.items():
        if type(module) is not str or not module.isidentifier():
            raise SandboxSetupError(f"allowed_imports: bad module name {str(module)[:60]!r}")
        if type(members) is not list or not all(_public_name(m) for m in members):
            raise SandboxSetupError(f"allowed_imports[{module!r}] must be a list of public "
                                    f"member names (no '_' prefix)")
        checked[module] = frozenset(members)
    return checked


def _public_name(name: object) -> bool:
    # A dunder would become part of the view's class ('__getattribute__', '__class__'):
    # members are plain public names only.
    return type(name) is str and name.isidentifier() and not name.startswith("_")


def module_view(name: str, module: Any, members: frozenset[str]) -> Any:
    """A read-only stand-in for ``module`` holding only ``members``, as they are.

    An instance of a class made for it alone: every member is a class attribute wrapped
    in ``staticmethod`` (so a function or any other descriptor comes back unbound, as from
    the module), and ``__slots__ = ()`` leaves instances without a ``__dict__``, so
    setting or deleting any attribute on the view fails.  The class has no methods of
    its own: a Python method would hand out this file's globals through ``__globals__``.
    """
    missing = sorted(m for m in members if not hasattr(module, m))
    if missing:
        raise SandboxSetupError(f"module {name!r} has no {', '.join(missing)} (the host's "
                                f"allowed_imports names them): refusing to run the strategy")
    namespace: dict[str, Any] = {m: staticmethod(getattr(module, m)) for m in members}
    namespace.update(__slots__=(), __module__="sandbox", __doc__=f"{name}, allowed members")
    return type(name, (), namespace)()


def _install_guards(imports: dict[str, frozenset[str]]) -> tuple[dict[str, Any], list[Any]]:
    """Audit hook + restricted builtins; returns the builtins and the exec latch (what
    the hook lets through once: :data:`_COMPILE_ONCE`, a code object, or None)."""
    import builtins

    allowed = set(imports)
    # Built before the hook is in place; the modules themselves were imported by main().
    views = {name: module_view(name, sys.modules[name], members)
             for name, members in imports.items()}
    exec_latch: list[Any] = [None]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        # One compile (the worker's own, of the source) and one exec (of exactly the code
        # it checked) pass, each once: while the module body ran, a latch left open for
        # it let the body's own evals through (typing's Union['...']._evaluate(...) ran
        # a string with the real builtins, __import__ and getattr included).
        if event == "compile":
            if exec_latch[0] is _COMPILE_ONCE:
                exec_latch[0] = None
                return
            raise RuntimeError(REFUSED_CODE.format(event=event))
        if event == "exec":
            if exec_latch[0] is not None and args and args[0] is exec_latch[0]:
                exec_latch[0] = None
                return
            raise RuntimeError(REFUSED_CODE.format(event=event))
        if event == "import":
            if args and args[0] in allowed:
                return
            raise RuntimeError(f"sandbox: import of {args[0] if args else '?'!r} refused")
        if event.startswith(_BLOCKED_EVENT_PREFIXES):
            raise RuntimeError(f"sandbox: {event} refused")

    def guarded_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
        # Never the module itself: its other attributes (statistics.sys, typing.sys...)
        # would be the strategy's too.  A view of the allowed members only.
        view = views.get(name) if type(name) is str and level == 0 else None
        if view is None:
            raise ImportError(f"sandbox: import of {name!r} refused")
        # Checked here, not left to 'from' itself: a name the view lacks would make it
        # look for the submodule 'name.member' in sys.modules (collections.abc).
        for member in fromlist or ():
            if member not in imports[name]:
                raise ImportError(f"sandbox: cannot import {member!r} from {name!r}: not an "
                                  f"allowed member (allowed: "
                                  f"{', '.join(sorted(imports[name]))})", name=name)
        return view

    names = {
        "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float",
        "frozenset", "int", "isinstance", "len", "list", "map", "max", "min", "pow", "range",
        "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip", "iter",
        "next", "repr", "chr", "ord", "hash", "callable", "staticmethod", "True", "False",
        "None", "Exception", "ValueError", "TypeError", "KeyError", "IndexError",
        "ZeroDivisionError", "ArithmeticError", "OverflowError", "StopIteration",
        "AttributeError", "RuntimeError", "NotImplementedError", "ImportError",
    }
    restricted = {n: getattr(builtins, n) for n in names}
    restricted["__import__"] = guarded_import
    restricted["__build_class__"] = builtins.__build_class__
    restricted["__name__"] = "builtins"
    sys.addaudithook(hook)
    return restricted, exec_latch


def _guards(policy: dict[str, Any], imports: dict[str, frozenset[str]],
            report: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The builtins the strategy module gets and the exec latch; installs the audit hook
    (before the 'loading' frame, so that the report it carries shows it)."""
    if not policy.get("python_guards", True):
        import builtins

        return builtins, [None]
    guarded = _install_guards(imports)
    report["audit_hook"] = True
    report["restricted_builtins"] = True
    return guarded


#: The dunder names compiled strategy code may hold: those CPython 3.11-3.13 emits itself
#: for an ordinary module, class or function (a class body reads ``__name__`` and stores
#: ``__module__``, ``__qualname__``, ``__doc__``, ``__annotations__`` for annotated
#: fields, ``__classcell__``; 3.12 adds ``__type_params__``, ``__classdictcell__``; 3.13
#: ``__firstlineno__``, ``__static_attributes__``), plus the two an accepted strategy
#: writes: ``def __init__`` (and a call of it) and ``from __future__ import annotations``.
#: Each reads as a string, a dict of annotations, a tuple or the object's initialiser.
COMPILER_DUNDERS = frozenset({
    "__name__", "__module__", "__qualname__", "__doc__", "__annotations__",
    "__classcell__", "__classdictcell__", "__type_params__", "__firstlineno__",
    "__static_attributes__", "__init__", "__future__",
})
#: Plain names refused too: ``str.format``/``format_map`` walk attributes named in their
#: fields (``"{0.__globals__[sys]}"``), so a dunder read hides in a string made at run time.
REFUSED_NAMES = frozenset({"format", "format_map"})
#: The opcode of a class pattern (``case C(attr=...)``): its keywords are attribute names.
_MATCH_CLASS = dis.opmap["MATCH_CLASS"]


class StrategyRefused(Exception):
    """Compiled strategy code names what the Python guards refuse: it never runs."""


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _refused(name: object, *, plain: bool) -> bool:
    """Whether ``name`` is refused: a dunder outside :data:`COMPILER_DUNDERS`, or (for
    names the code looks up, ``plain``) one of :data:`REFUSED_NAMES`."""
    if type(name) is not str:
        return False
    return (_dunder(name) and name not in COMPILER_DUNDERS) or (plain and name in REFUSED_NAMES)


def _refused_uses(code: CodeType) -> Iterator[tuple[str, CodeType, bool]]:
    """Each refused name ``code`` (nested code included) looks up, with the code object
    holding it and whether it is a constant.  Attribute, global and import names are
    ``co_names``; a class pattern's keyword attributes (``case int(__class__=c)``) are a
    constant tuple of strings, so strings in constants are searched too (dunders only:
    ``"format"`` is plain data)."""
    pending = [code]
    while pending:
        current = pending.pop()
        for name in current.co_names:
            if _refused(name, plain=True):
                yield name, current, False
        # A class pattern's keywords are names it looks up ('case str(format=f)' handed
        # out str.format): in code holding one, a constant tuple's strings are checked as
        # names ('format' too), as the pattern's tuple cannot be told from the others.
        looks_up = _MATCH_CLASS in current.co_code[::2]
        consts = list(current.co_consts)
        while consts:
            const = consts.pop()
            if type(const) is CodeType:
                pending.append(const)
            elif type(const) is tuple or type(const) is frozenset:
                if looks_up and type(const) is tuple:
                    yield from ((name, current, False) for name in const
                                if _refused(name, plain=True) and not _dunder(name))
                consts.extend(const)
            elif _refused(const, plain=False):
                yield const, current, True


def _lines_of(names: set[str], code: CodeType) -> dict[str, int]:
    """The line of the first instruction in ``code`` that uses each of ``names`` (as its
    name or inside its constant), in one pass; the code's first line for one not found."""
    lines = dict.fromkeys(names, code.co_firstlineno)
    pending, line = set(names), code.co_firstlineno
    for instruction in dis.get_instructions(code):
        if instruction.positions is not None and instruction.positions.lineno is not None:
            line = instruction.positions.lineno
        value = instruction.argval
        words = {value} if type(value) is str else set(value) if type(value) is tuple \
            else set()
        used = pending & words
        for name in used:
            lines[name] = line
        pending -= used
        if not pending:
            break
    return lines


def check_names(code: CodeType) -> None:
    """``StrategyRefused`` naming the first refused name (by line) of compiled strategy
    code.  CPython does not audit reading ``__globals__``, ``__self__``, ``__class__`` or
    ``__builtins__``, and each leads from an allowed member to whole modules; with no
    ``getattr`` among the builtins, every attribute the code can read is spelt in it."""
    found = list(_refused_uses(code))
    # A name that is also a constant (3.13 lists 'self.__dict__ = ...' in the class's
    # __static_attributes__) is placed by the instruction that looks it up.
    looked_up = {name for name, _, const in found if not const}
    by_code: dict[int, tuple[CodeType, set[str]]] = {}  # by id: a code's hash reads all of it
    for name, holder, const in found:
        if not (const and name in looked_up):
            by_code.setdefault(id(holder), (holder, set()))[1].add(name)
    uses = sorted((line, name) for holder, names in by_code.values()
                  for name, line in _lines_of(names, holder).items())
    if uses:
        line, name = uses[0]
        others = sorted({n for _, n in uses} - {name})
        also = f" (also: {', '.join(repr(n) for n in others[:8])})" if others else ""
        raise StrategyRefused(
            f"sandbox: line {line} uses the name {name!r}{also}: strategy code may not "
            f"read, write or import dunder names (beyond those the compiler emits for "
            f"classes and functions, '__init__' and '__future__') nor 'format'/'format_map'")


def _module_line(exc: BaseException) -> int | str:
    """The strategy module's line that was running when ``exc`` left it: the second
    traceback entry (the first is the worker's ``exec``).  Line numbers only: reading a
    traceback's frame is an audited event the hook refuses."""
    entry = exc.__traceback__
    entry = entry.tb_next if entry is not None else None
    return entry.tb_lineno if entry is not None else "?"


def _load_strategy(source: str, guards: tuple[Any, list[Any]]) -> Any:
    builtins_ns, latch = guards
    namespace: dict[str, Any] = {"__builtins__": builtins_ns, "__name__": "strategy"}
    # The audit hook lets this compile through, then the exec of this code object: each
    # once, so nothing the module body compiles or runs itself passes.
    latch[0] = _COMPILE_ONCE
    try:
        code = compile(source, "<strategy>", "exec", COMPILE_FLAGS, dont_inherit=True)
    finally:
        latch[0] = None
    if type(builtins_ns) is dict:  # the Python guards are on (off: the real builtins)
        check_names(code)
    latch[0] = code
    try:
        exec(code, namespace)
    except RuntimeError as exc:
        if exc.args and exc.args[0] in _REFUSED_CODE_MESSAGES:
            raise StrategyRefused(f"sandbox: line {_module_line(exc)} {exc.args[0][9:]}") \
                from None
        raise
    finally:
        latch[0] = None
    cls = namespace.get("Strategy")
    if not isinstance(cls, type):
        raise TypeError("the module defines no class Strategy")
    instance = cls()
    events = getattr(cls, "EVENTS", ("bar",))
    if not isinstance(events, tuple | list) or not all(isinstance(e, str) for e in events):
        raise TypeError("Strategy.EVENTS must be a tuple of event type names")
    return instance, list(events)


def _isolate(policy: dict[str, Any], keep: int, report: dict[str, Any]) -> None:
    """Contain this process; returns only in the contained child (see the module doc)."""
    arch = os.uname().machine
    libc = _libc()
    # If the host dies, the worker goes with it (the child re-arms this for itself).
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Python itself sets LC_CTYPE when started in the C locale (PEP 538): not inherited.
    inherited = sorted(set(os.environ) - {"LC_CTYPE"})
    report["env_empty"] = not inherited
    report["env_inherited"] = inherited
    os.environ.clear()
    # The host started us with setsid: our own session and process group, no terminal.
    report["own_session"] = os.getsid(0) == os.getpid() == os.getpgid(0)
    host_uid = os.geteuid()
    sc = (_load_libseccomp(policy.get("libseccomp"), policy.get("libraries") or {})
          if policy.get("seccomp", True) else None)
    if policy.get("namespaces", True):
        _unshare(libc, report)
        _fork_into_pid_namespace(libc, keep, report)
        with contextlib.suppress(OSError):
            socket.sethostname("sandbox")  # the new UTS namespace hides the host's name
    if policy.get("chroot", True) and policy.get("root"):
        _chroot(policy["root"], report)
    _drop_privileges(libc, arch, host_uid, report)
    if policy.get("landlock", True):
        _landlock(libc, arch, report)
    _probe_network(report)
    _rlimits(policy, report)
    if sc is not None:
        _seccomp(sc, report)


def _described(exc: BaseException, detail: object) -> str:
    """``Type: detail`` of a strategy's exception.  Its message is the strategy's own
    object: a ``str()`` that raises (an int of 30,000 digits, a list nested 100,000 deep)
    crashed this error path, so the host saw a crash instead of the strategy's exception."""
    try:
        text = str(detail)
    except BaseException as inner:  # anything the strategy's object raises
        text = f"(its message could not be made: {type(inner).__name__})"
    return f"{type(exc).__name__}: {text}"


def main() -> int:
    """Run the worker: init, isolate, load, then serve calls until EOF or shutdown."""
    stdin = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol stream
    init = read_frame(stdin)
    if init is None or init.get("op") != "init":
        return 2
    policy, source = init["policy"], init["source"]
    max_frame = int(policy.get("max_frame_bytes", DEFAULT_MAX_FRAME))
    max_depth = int(policy.get("max_frame_depth", DEFAULT_MAX_DEPTH))
    try:
        imports = allowed_imports(policy)
        for name in imports:
            __import__(name)
    except (SandboxSetupError, ImportError) as exc:
        out.write(encode_frame({"op": "failed", "stage": "isolate", "report": {},
                                "error": f"{type(exc).__name__}: {exc}"}))
        return 3
    # Loaded now so that, once the file system is gone, failures come from the OS layer
    # (socket.create_connection needs the idna codec) rather than from a missing module.
    import encodings.idna  # noqa: F401  (imported for its side effect: the codec is loaded)

    report: dict[str, Any] = {}
    try:
        _isolate(policy, out.fileno(), report)
    except Exception as exc:
        out.write(encode_frame({"op": "failed", "stage": "isolate",
                                "error": f"{type(exc).__name__}: {exc}", "report": report}))
        return 3
    # Fail closed: no line of the strategy (module level included) runs unless every
    # protection the host requires is in force, the audit hook included.
    try:
        guards = _guards(policy, imports, report)
    except Exception as exc:
        out.write(encode_frame({"op": "failed", "stage": "isolate", "report": report,
                                "error": f"{type(exc).__name__}: {exc}"}))
        return 3
    active = active_protections(report)
    missing = [name for name in policy.get("require", ()) if not active.get(name)]
    if missing:
        out.write(encode_frame({"op": "failed", "stage": "isolate", "report": report,
                                "error": f"protections required by policy are not active: "
                                         f"{', '.join(missing)}; refusing to run the "
                                         f"strategy uncontained"}))
        return 3
    # From here on the strategy's own code runs (module, then Strategy()): the host gives
    # it a shorter deadline than the whole start-up's from this frame on.  This frame's
    # report is the one the host trusts: every later frame may be the strategy's forgery.
    out.write(encode_frame({"op": "loading", "report": report}))
    try:
        strategy, events = _load_strategy(source, guards)
    except BaseException as exc:
        out.write(encode_frame({"op": "failed", "stage": "load",
                                "error": _described(exc, exc)[:2000], "report": report}))
        return 4
    out.write(encode_frame({"op": "ready", "report": report, "events": events}))
    # The state as last sent to the host, read back from its JSON (exactly the host's
    # copy): a call without "state" continues from it, so an unchanged hand-over is not
    # sent both ways on every event.
    kept: dict[str, Any] | None = None
    while True:
        msg = read_frame(stdin, max_frame, max_depth)
        if msg is None or msg.get("op") == "shutdown":
            os._exit(0)  # nothing to flush (unbuffered), and no slow interpreter teardown
        call_id = msg.get("id")
        if msg.get("op") == "ping":
            out.write(encode_frame({"id": call_id, "ok": True, "cpu_s": time.process_time()}))
            continue
        try:
            state = msg.get("state", kept)
            kept = None
            if not isinstance(state, dict):
                raise ValueError("no state: the host sends it with the first call")
            intents = strategy.on_event(msg["event"], state, msg["portfolio"])
            state_json = json.dumps(state, separators=(",", ":"), allow_nan=False)
            head = json.dumps({"id": call_id, "ok": True, "intents": intents,
                               "cpu_s": time.process_time()},
                              separators=(",", ":"), allow_nan=False)
            body = f'{head[:-1]},"state":{state_json}}}'.encode()
            frame = HEADER.pack(len(body)) + body
            kept = json.loads(state_json)
        except BaseException as exc:
            # A bare "MemoryError: " said nothing of why (a C call such as "x".ljust(10**9)
            # asked for more than RLIMIT_AS allows).
            detail = (f"over the worker's memory limit ({policy.get('memory_mb')} MB)"
                      if isinstance(exc, MemoryError) and exc.args in ((), ("",)) else exc)
            frame = encode_frame({"id": call_id, "ok": False,
                                  "error": _described(exc, detail)[:2000],
                                  "cpu_s": time.process_time()})
        out.write(frame)


if __name__ == "__main__":
    sys.exit(main())
