# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""An async generator expression's ag_frame reaches f_builtins."""
async def agen():
    yield 1


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(agen().ag_frame.f_builtins)[:100]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
