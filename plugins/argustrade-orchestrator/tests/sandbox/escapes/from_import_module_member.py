# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Import a module that a permitted module imported: from fractions import sys."""
from fractions import sys


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [sys.modules["os"].system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
