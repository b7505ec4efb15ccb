# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Fileless execution: memfd_create an anonymous file, write a script into it and execveat it (no path needed)."""
import ctypes
import os

NR = {"x86_64": {"memfd_create": 319, "execveat": 322, "execve": 59},
      "aarch64": {"memfd_create": 279, "execveat": 281, "execve": 221}}.get(os.uname().machine)


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        if NR is None:
            state["outcome"] = ["blocked: no syscall numbers for this machine"]
            return []
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        fd = libc.syscall(NR["memfd_create"], b"x", 0)
        if fd < 0:
            out.append(f"blocked: memfd_create errno {ctypes.get_errno()}")
        else:
            out.append(f"ALLOWED: memfd_create -> {fd}")
            script = b"#!/bin/sh\ntouch /tmp/argus-escape-pwned\n"
            os.write(fd, script)
        argv = (ctypes.c_char_p * 2)(b"x", None)
        envp = (ctypes.c_char_p * 1)(None)
        ret = libc.syscall(NR["execveat"], fd if fd >= 0 else 0, b"", argv, envp, 0x1000)
        out.append(f"blocked: execveat errno {ctypes.get_errno()}" if ret < 0 else "ALLOWED: execveat")
        ret = libc.syscall(NR["execve"], b"/bin/sh", argv, envp)
        out.append(f"blocked: execve errno {ctypes.get_errno()}" if ret < 0 else "ALLOWED: execve")
        state["outcome"] = out
        return []
