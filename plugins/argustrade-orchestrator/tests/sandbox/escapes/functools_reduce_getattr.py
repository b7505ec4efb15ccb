# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""reduce(getattr, path, obj): an attribute walk with no attribute syntax at all."""
from functools import reduce


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            walk = reduce(getattr, ["__class__", "__base__", "__subclasses__"], ())
            out = [str(walk())[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
