# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module bound as a function default, then used inside: def f(m=statistics)."""
import statistics


def grab(m=statistics):
    return m.sys.modules["os"]


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [grab().system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
