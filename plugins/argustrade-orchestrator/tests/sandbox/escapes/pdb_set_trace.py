# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""pdb.set_trace(): a debugger prompt on the protocol pipe (works with empty builtins)."""
import pdb


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [pdb.set_trace()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
