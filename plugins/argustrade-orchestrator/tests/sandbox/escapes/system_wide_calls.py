# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""System-wide calls, made harmless if they ever ran: set the clock, reboot, load a module, swapoff, SysV IPC."""
import ctypes
import os

NR = {"x86_64": {"settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "reboot": 169,
                 "init_module": 175, "swapoff": 168, "sethostname": 170, "shmget": 29,
                 "msgget": 68, "semget": 64, "acct": 163},
      "aarch64": {"settimeofday": 170, "clock_settime": 112, "adjtimex": 171, "reboot": 142,
                  "init_module": 105, "swapoff": 225, "sethostname": 161, "shmget": 194,
                  "msgget": 186, "semget": 190, "acct": 89}}.get(os.uname().machine)


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        if NR is None:
            state["outcome"] = ["blocked: no syscall numbers for this machine"]
            return []
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        timex = ctypes.create_string_buffer(256)  # modes 0: a read, if it ever ran
        zero = ctypes.create_string_buffer(16)
        calls = {
            # Each argument list is a no-op or invalid, so an allowed call changes nothing.
            "settimeofday": (None, None),
            "clock_settime": (0x7FFFFFFF, zero),
            "adjtimex": (timex,),
            "reboot": (0, 0, 0, None),
            "init_module": (None, 0, b""),
            "swapoff": (b"/nonexistent-argus",),
            "sethostname": (b"pwned", 5),
            "shmget": (0, 4096, 0o1000 | 0o666),
            "msgget": (0, 0o1000 | 0o666),
            "semget": (0, 1, 0o1000 | 0o666),
            "acct": (None,),
        }
        for name, args in calls.items():
            ret = libc.syscall(NR[name], *args)
            out.append(f"ALLOWED: {name} -> {ret}" if ret >= 0 else
                       f"blocked: {name} errno {ctypes.get_errno()}")
        state["outcome"] = out
        return []
