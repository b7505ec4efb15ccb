# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""math.sqrt.__self__ is the math module; its __loader__ loads posix."""
import math


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [math.sqrt.__self__.__loader__.load_module('posix').listdir('/')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
