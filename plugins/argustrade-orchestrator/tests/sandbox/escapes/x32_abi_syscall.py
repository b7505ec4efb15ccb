# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The x32 ABI: syscall numbers with bit 30 set name the same calls under another number (openat, execve)."""
import ctypes
import os

X32 = 0x40000000


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        if os.uname().machine != "x86_64":
            state["outcome"] = ["blocked: x32 exists on x86_64 only"]
            return []
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        path = event["secret_path"].encode()
        buf = ctypes.create_string_buffer(4096)
        # openat (x32 257) on the host's secret, then read (x32 0) from what it returned.
        fd = libc.syscall(X32 | 257, -100, path, 0, 0)
        if fd >= 0:
            n = libc.syscall(X32 | 0, fd, buf, 4096)
            out.append(f"ALLOWED: x32 openat -> {fd}, read {buf.raw[:max(n, 0)]!r}")
        else:
            out.append(f"blocked: x32 openat errno {ctypes.get_errno()}")
        # x32 getpid (39) is harmless if it runs: it shows whether x32 numbers run at all.
        ret = libc.syscall(X32 | 39)
        out.append(f"ALLOWED: x32 getpid -> {ret}" if ret >= 0 else
                   f"blocked: x32 getpid errno {ctypes.get_errno()}")
        state["outcome"] = out
        return []
