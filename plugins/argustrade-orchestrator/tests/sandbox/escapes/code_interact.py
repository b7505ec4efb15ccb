# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""code.interact(): an interactive console inside the worker."""
import code


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [code.interact(local={})]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
