# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Rebind a permitted module's name to another module's attribute, then use the name."""
import math
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        math = statistics.sys  # now "math.modules" looks like a permitted module access
        try:
            out = [math.modules["os"].system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
