# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""An executable anonymous mmap filled with machine code and called through ctypes."""
import ctypes
import mmap


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            m = mmap.mmap(-1, 4096, prot=7)
            m.write(b'\xc3')
            out = [ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
