# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The kernel keyrings: keyctl(KEYCTL_READ) on the session and user keyrings, request_key and add_key."""
import ctypes
import os

NR = {"x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
      "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219}}.get(os.uname().machine)


class Strategy:
    def on_event(self, event, state, portfolio):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        out = []
        if NR is None:
            state["outcome"] = ["blocked: no syscall numbers for this machine"]
            return []
        buf = ctypes.create_string_buffer(4096)

        def attempt(name, *args):
            ret = libc.syscall(NR[name.split(":")[0]], *args)
            if ret < 0:
                out.append(f"blocked: {name} errno {ctypes.get_errno()}")
            else:
                out.append(f"ALLOWED: {name} -> {ret} {buf.raw[:ret if ret < 4096 else 4096]!r}")

        # KEYCTL_READ (11) of the thread (-1), process (-2), session (-3), user (-4) and
        # user-session (-5) keyrings; KEYCTL_DESCRIBE (6) of the session keyring.
        for ring in (-1, -2, -3, -4, -5):
            attempt(f"keyctl:read {ring}", 11, ctypes.c_long(ring), buf, 4096)
        attempt("keyctl:describe", 6, ctypes.c_long(-3), buf, 4096)
        attempt("request_key", b"user", b"argus-api-key", None, ctypes.c_long(0))
        attempt("add_key", b"user", b"argus-probe", b"x", 1, ctypes.c_long(-2))
        state["outcome"] = out
        return []
