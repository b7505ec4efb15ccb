# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Dunder names smuggled as keyword arguments and dict keys into builtin constructors."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            d = dict(__class__=1, __builtins__=2)
            out = [sorted(d), str(dict(**{"__import__": 1}))]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
