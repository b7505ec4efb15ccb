# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Union of one string is a typing ForwardRef; its _evaluate evals the string at import."""
from typing import Union

try:
    GOT = [Union["__import__('sys').modules['os'].getpid()"]._evaluate({}, {}, frozenset())]
except Exception as exc:
    GOT = ["blocked: " + repr(exc)[:80]]


class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = [str(x) for x in GOT]
        return []
