# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""f-string replacement fields and nested format specs that reach attributes."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [f"{()!r:{().__class__.__base__.__name__}}",
                   f"{event.__class__.__mro__}"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
