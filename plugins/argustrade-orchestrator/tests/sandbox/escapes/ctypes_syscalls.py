# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Use ctypes for raw syscalls: system(), ptrace the host, unshare, chroot escape, bpf."""
import ctypes
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        libc = ctypes.CDLL(None, use_errno=True)
        out = []
        out.append(libc.system(("touch %s/pwned" % event["host_dir"]).encode()))
        out.append(libc.ptrace(16, event["host_pid"], 0, 0))  # PTRACE_ATTACH
        out.append(libc.unshare(0x10000000))  # CLONE_NEWUSER
        out.append(libc.syscall(321, 0, 0, 0))  # bpf
        out.append(libc.syscall(425, 1, 0))  # io_uring_setup
        try:
            os.mkdir("x")
            os.chroot("x")
            for _ in range(30):
                os.chdir("..")
            os.chroot(".")
            out.append(os.listdir("/"))
        except BaseException as exc:
            out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
