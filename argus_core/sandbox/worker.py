"""The sandbox worker: runs one AI-written strategy in an isolated process.

This file is the security boundary, so it is deliberately self-contained: it
imports only the standard library (it is started as ``python -I -S -B
worker.py`` with an empty environment, so not even site-packages is on its
path) and the host imports it only for the framing helpers.

Start-up, in order (each layer is reported back; the host refuses to run a
strategy when a protection it requires is missing):

1. read the ``init`` frame (policy + source) from stdin;
2. pre-import the allowed modules (nothing can be imported once the file
   system is gone);
3. ``unshare`` new network, mount and IPC namespaces (as root directly,
   otherwise inside a new user namespace);
4. ``chroot`` into the empty per-worker temporary directory;
5. drop privileges (uid/gid ``nobody`` when root; every capability
   otherwise) and set ``no_new_privs``;
6. Landlock: no file-system access at all, no TCP bind/connect, no signals
   or abstract sockets outside the sandbox (where the kernel has it);
7. probe the network: connecting anywhere must fail;
8. a seccomp-BPF filter refusing sockets, exec, fork/clone, ptrace,
   namespaces, mounts, keyrings, bpf, io_uring and friends;
9. resource limits (CPU seconds, address space, open files, processes,
   file size, no core dumps);
10. Python guards (defence in depth only): an audit hook refusing file,
    process, socket, ctypes, import and introspection events, and a
    restricted ``__builtins__`` for the strategy module.

Protocol: length-prefixed JSON frames (4-byte big-endian length, UTF-8 JSON
body) over stdin/stdout.  Never pickle: a reply is data the host validates,
never code it runs.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import resource
import socket
import struct
import sys
import time
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024


class FrameError(Exception):
    """A frame was truncated, oversize or not a JSON object."""


def encode_frame(obj: dict[str, Any]) -> bytes:
    """``obj`` as one length-prefixed JSON frame."""
    body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse a frame body; ``FrameError`` unless it is a JSON object."""
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"frame must be a JSON object, got {type(obj).__name__}")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in frames")


def read_frame(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_FRAME) -> dict[str, Any] | None:
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
    return decode_body(body)


# -- Linux primitives through libc (no third-party packages in the boundary) -------------

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000
NOBODY = 65534

#: Audit arch id and the syscall numbers the seccomp filter refuses, per architecture.
_SECCOMP_TABLES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53,
        "accept4": 288, "execve": 59, "execveat": 322, "fork": 57, "vfork": 58, "clone": 56,
        "clone3": 435, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "kill": 62, "tkill": 200, "tgkill": 234, "mount": 165, "umount2": 166, "chroot": 161,
        "pivot_root": 155, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248,
        "request_key": 249, "bpf": 321, "perf_event_open": 298, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "mknod": 133, "mknodat": 259,
        "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
        "setresgid": 119, "setgroups": 116, "personality": 135, "kexec_load": 246,
        "reboot": 169, "swapon": 167, "swapoff": 168, "syslog": 103, "acct": 163,
        "quotactl": 179, "pidfd_open": 434, "pidfd_getfd": 438, "pidfd_send_signal": 424,
        "memfd_create": 319}),
    "aarch64": (0xC00000B7, {
        "socket": 198, "connect": 203, "accept": 202, "bind": 200, "listen": 201,
        "socketpair": 199, "accept4": 242, "execve": 221, "execveat": 281, "clone": 220,
        "clone3": 435, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "kill": 129, "tkill": 130, "tgkill": 131, "mount": 40, "umount2": 39, "chroot": 51,
        "pivot_root": 41, "unshare": 97, "setns": 268, "keyctl": 219, "add_key": 217,
        "request_key": 218, "bpf": 280, "perf_event_open": 241, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "mknodat": 33, "setuid": 146,
        "setgid": 144, "setreuid": 145, "setregid": 143, "setresuid": 147, "setresgid": 149,
        "setgroups": 159, "personality": 92, "kexec_load": 104, "reboot": 142, "swapon": 224,
        "swapoff": 225, "syslog": 116, "acct": 89, "quotactl": 60, "pidfd_open": 434,
        "pidfd_getfd": 438, "pidfd_send_signal": 424, "memfd_create": 279}),
}
_LANDLOCK_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CAPSET = {"x86_64": 126, "aarch64": 91}


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _unshare(libc: ctypes.CDLL, report: dict[str, Any]) -> None:
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC
    in_userns = uid != 0
    ok = libc.unshare(flags | (CLONE_NEWUSER if in_userns else 0)) == 0
    if not ok and not in_userns:
        # Root without CAP_SYS_ADMIN (a container): a user namespace may still be allowed.
        in_userns = True
        ok = libc.unshare(flags | CLONE_NEWUSER) == 0
    if not ok:
        report["namespaces_error"] = os.strerror(ctypes.get_errno())
        return
    report["user_namespace"] = in_userns
    report["net_namespace"] = True
    report["mount_namespace"] = True
    if in_userns:
        # Map ourselves to root inside the namespace so chroot is permitted there.
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


def _chroot(root: str, report: dict[str, Any]) -> None:
    try:
        os.chroot(root)
        os.chdir("/")
        report["chroot"] = True
    except OSError as exc:
        report["chroot_error"] = exc.strerror


def _drop_privileges(libc: ctypes.CDLL, arch: str, report: dict[str, Any]) -> None:
    if os.geteuid() == 0 and not report.get("user_namespace"):
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    # Clear every capability set (a no-op after leaving uid 0, needed inside a user ns).
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this pid
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words, all zero
    nr = _CAPSET.get(arch)
    capset_ok = nr is not None and libc.syscall(nr, header, data) == 0
    report["uid"] = os.geteuid()
    report["capabilities_dropped"] = capset_ok
    report["no_new_privs"] = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0


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


def _seccomp(libc: ctypes.CDLL, arch: str, report: dict[str, Any]) -> None:
    table = _SECCOMP_TABLES.get(arch)
    if table is None:
        return
    audit_arch, numbers = table
    deny = sorted(set(numbers.values()))
    errno_ret = SECCOMP_RET_ERRNO | errno.EPERM
    prog: list[tuple[int, int, int, int]] = [
        (0x20, 0, 0, 4),  # ld [arch]
        (0x15, 1, 0, audit_arch),  # jeq arch -> skip the kill
        (0x06, 0, 0, SECCOMP_RET_KILL_PROCESS),
        (0x20, 0, 0, 0),  # ld [nr]
    ]
    if arch == "x86_64":
        prog.append((0x35, len(deny) + 1, 0, 0x40000000))  # x32 ABI -> errno
    for i, nr in enumerate(deny):
        prog.append((0x15, len(deny) - i, 0, nr))  # jeq nr -> the errno return
    prog.append((0x06, 0, 0, SECCOMP_RET_ALLOW))
    prog.append((0x06, 0, 0, errno_ret))

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                    ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(prog))(*[SockFilter(*ins) for ins in prog])
    fprog = SockFprog(len(prog), filters)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        report["seccomp_error"] = os.strerror(ctypes.get_errno())
        return
    report["seccomp"] = True
    report["seccomp_denied"] = len(deny)


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
        resource.setrlimit(res, (soft, hard))
        applied[name] = soft
    report["rlimits"] = applied


_BLOCKED_EVENT_PREFIXES = (
    "open", "os.", "subprocess.", "socket.", "shutil.", "ctypes.", "sys._getframe",
    "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys._current_frames", "code.__new__",
    "marshal.", "pickle.", "gc.get_", "builtins.input", "cpython.run_", "mmap.", "resource.",
    "signal.", "fcntl.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.", "winreg.",
    "sqlite3.", "glob.", "tempfile.", "pty.", "syslog.", "time.sleep",
)


def _install_guards(allowed_modules: list[str]) -> tuple[dict[str, Any], list[bool]]:
    """Audit hook + restricted builtins; returns the builtins and the exec latch."""
    import builtins

    allowed = set(allowed_modules)
    exec_latch = [False]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in ("exec", "compile"):
            if exec_latch[0]:
                return
            raise RuntimeError(f"sandbox: {event} refused")
        if event == "import":
            if args and args[0] in allowed:
                return
            raise RuntimeError(f"sandbox: import of {args[0] if args else '?'!r} refused")
        if event.startswith(_BLOCKED_EVENT_PREFIXES):
            raise RuntimeError(f"sandbox: {event} refused")

    def guarded_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
        if level != 0 or name not in allowed:
            raise ImportError(f"sandbox: import of {name!r} refused")
        return sys.modules[name]

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


def _load_strategy(source: str, policy: dict[str, Any], report: dict[str, Any]) -> Any:
    code = compile(source, "<strategy>", "exec", dont_inherit=True)
    builtins_ns: Any
    if policy.get("python_guards", True):
        builtins_ns, latch = _install_guards(policy["allowed_modules"])
        report["audit_hook"] = True
        report["restricted_builtins"] = True
    else:
        import builtins

        builtins_ns, latch = builtins, [True]
    namespace: dict[str, Any] = {"__builtins__": builtins_ns, "__name__": "strategy"}
    latch[0] = True
    try:
        exec(code, namespace)
    finally:
        latch[0] = False
    cls = namespace.get("Strategy")
    if not isinstance(cls, type):
        raise TypeError("the module defines no class Strategy")
    instance = cls()
    events = getattr(cls, "EVENTS", ("bar",))
    if not isinstance(events, tuple | list) or not all(isinstance(e, str) for e in events):
        raise TypeError("Strategy.EVENTS must be a tuple of event type names")
    return instance, list(events)


def _isolate(policy: dict[str, Any], report: dict[str, Any]) -> None:
    arch = platform.machine()
    libc = _libc()
    # Python itself sets LC_CTYPE when started in the C locale (PEP 538): not inherited.
    inherited = sorted(set(os.environ) - {"LC_CTYPE"})
    report["env_empty"] = not inherited
    report["env_inherited"] = inherited
    os.environ.clear()
    if policy.get("namespaces", True):
        _unshare(libc, report)
    if policy.get("chroot", True) and policy.get("root"):
        _chroot(policy["root"], report)
    _drop_privileges(libc, arch, report)
    if policy.get("landlock", True):
        _landlock(libc, arch, report)
    _probe_network(report)
    if policy.get("seccomp", True):
        _seccomp(libc, arch, report)
    _rlimits(policy, report)


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
    for name in policy["allowed_modules"]:
        __import__(name)
    # Loaded now so that, once the file system is gone, failures come from the OS layer
    # (socket.create_connection needs the idna codec) rather than from a missing module.
    import encodings.idna  # noqa: F401

    report: dict[str, Any] = {}
    try:
        _isolate(policy, report)
    except Exception as exc:
        out.write(encode_frame({"op": "failed", "stage": "isolate",
                                "error": f"{type(exc).__name__}: {exc}", "report": report}))
        return 3
    try:
        strategy, events = _load_strategy(source, policy, report)
    except BaseException as exc:
        out.write(encode_frame({"op": "failed", "stage": "load",
                                "error": f"{type(exc).__name__}: {exc}"[:2000],
                                "report": report}))
        return 4
    out.write(encode_frame({"op": "ready", "report": report, "events": events}))
    while True:
        msg = read_frame(stdin, max_frame)
        if msg is None or msg.get("op") == "shutdown":
            return 0
        call_id = msg.get("id")
        if msg.get("op") == "ping":
            out.write(encode_frame({"id": call_id, "ok": True, "cpu_s": time.process_time()}))
            continue
        try:
            state = msg["state"]
            intents = strategy.on_event(msg["event"], state, msg["portfolio"])
            reply = {"id": call_id, "ok": True, "intents": intents, "state": state,
                     "cpu_s": time.process_time()}
            frame = encode_frame(reply)
        except BaseException as exc:
            frame = encode_frame({"id": call_id, "ok": False,
                                  "error": f"{type(exc).__name__}: {exc}"[:2000],
                                  "cpu_s": time.process_time()})
        out.write(frame)


if __name__ == "__main__":
    sys.exit(main())
