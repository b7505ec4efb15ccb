# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""TIOCSTI: push keystrokes into the controlling terminal's input queue, typed as if by its user."""
import ctypes
import os

TIOCSTI = 0x5412


class Strategy:
    def on_event(self, event, state, portfolio):
        libc = ctypes.CDLL(None, use_errno=True)
        out = []
        for fd in range(0, 8):
            for ch in b"id\n":
                c = ctypes.c_char(bytes([ch]))
                if libc.ioctl(fd, TIOCSTI, ctypes.byref(c)) == 0:
                    out.append(f"ALLOWED: ioctl({fd}, TIOCSTI)")
                    break
            else:
                out.append(f"blocked: ioctl({fd}, TIOCSTI) errno {ctypes.get_errno()}")
        try:
            fd = os.open("/dev/tty", os.O_RDWR)
            out.append(f"ALLOWED: opened /dev/tty as {fd}")
        except OSError as exc:
            out.append(f"blocked: open /dev/tty errno {exc.errno}")
        state["outcome"] = out
        return []
