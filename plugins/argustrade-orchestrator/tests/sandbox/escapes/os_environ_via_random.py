# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""os.environ through statistics.random._os: a secret read without importing os."""
from statistics import random


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [dict(random._os.environ)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
