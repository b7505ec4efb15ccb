# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Rebind __builtins__ at module level so later definitions see a different builtins."""
__builtins__ = {"__import__": __import__, "open": open, "len": len}


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [__builtins__["open"](event["secret_path"]).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
