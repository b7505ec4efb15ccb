# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""dict_keys.mapping of a class __dict__: a read-only view of the class namespace."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            m = Strategy.__dict__.keys().mapping
            out = [m['on_event'].__globals__['__builtins__']]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
