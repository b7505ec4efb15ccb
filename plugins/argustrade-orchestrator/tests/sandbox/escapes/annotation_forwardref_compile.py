# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""typing compiles a string in an annotation's brackets at import (ForwardRef)."""
from typing import List
X: List['__import__("os").system("id")'] = 1


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(X)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
