# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""__reduce_ex__ hands out copyreg.__newobj__, whose __globals__ hold the builtins."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            newobj = [].__reduce_ex__(2)[0]
            b = newobj.__globals__["__builtins__"]
            out = [str(b["open"] if isinstance(b, dict) else b.open)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
