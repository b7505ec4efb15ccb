# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Monkey-patch a permitted module so later trusted code calls something else."""
import math


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            math.sqrt = lambda x: 0.0
            del math.log
            setattr(math, "floor", eval)
            out = ["patched"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
