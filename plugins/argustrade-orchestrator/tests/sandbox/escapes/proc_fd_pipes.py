# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Open the worker's own protocol pipes through /proc/self/fd and write to the host."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for fd in range(0, 8):
            try:
                with open("/proc/self/fd/%d" % fd, "wb") as f:
                    f.write(b"\x00\x00\x00\x02{}")
                out.append("wrote %d" % fd)
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
