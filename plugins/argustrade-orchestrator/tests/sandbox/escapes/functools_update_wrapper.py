# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""functools.update_wrapper copies arbitrary attributes: assigned=("__globals__",)."""
from functools import update_wrapper


def victim():
    return 1


class Box:
    pass


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            box = update_wrapper(Box(), victim, assigned=("__globals__",), updated=())
            out = [sorted(box.__globals__["__builtins__"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
