# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""pidfd_open on the host's pid, then pidfd_getfd to copy its descriptors (the ledger, sockets) and setns into its namespaces."""
import ctypes
import os

NR = {"x86_64": {"pidfd_open": 434, "pidfd_getfd": 438, "setns": 308, "process_vm_readv": 310},
      "aarch64": {"pidfd_open": 434, "pidfd_getfd": 438, "setns": 268,
                  "process_vm_readv": 270}}.get(os.uname().machine)


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        if NR is None:
            state["outcome"] = ["blocked: no syscall numbers for this machine"]
            return []
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        host = event["host_pid"]
        for target in (host, 1):
            pidfd = libc.syscall(NR["pidfd_open"], target, 0)
            if pidfd < 0:
                out.append(f"blocked: pidfd_open({target}) errno {ctypes.get_errno()}")
                pidfd = 3  # try the rest on a descriptor we do hold
            else:
                out.append(f"ALLOWED: pidfd_open({target}) -> {pidfd}")
            for fd in range(0, 16):
                got = libc.syscall(NR["pidfd_getfd"], pidfd, fd, 0)
                if got >= 0:
                    out.append(f"ALLOWED: pidfd_getfd({target}, {fd}) -> {got}")
            out.append(f"blocked: pidfd_getfd({target}) errno {ctypes.get_errno()}")
            ret = libc.syscall(NR["setns"], pidfd, 0)
            out.append(f"ALLOWED: setns({target})" if ret == 0 else
                       f"blocked: setns({target}) errno {ctypes.get_errno()}")
        buf = ctypes.create_string_buffer(64)
        local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
        remote = (ctypes.c_void_p * 2)(0x400000, 64)
        ret = libc.syscall(NR["process_vm_readv"], host, local, 1, remote, 1, 0)
        out.append(f"ALLOWED: process_vm_readv -> {ret}" if ret >= 0 else
                   f"blocked: process_vm_readv errno {ctypes.get_errno()}")
        state["outcome"] = out
        return []
