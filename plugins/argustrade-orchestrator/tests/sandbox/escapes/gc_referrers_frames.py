# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""gc.get_referrers(event) finds the worker's frames and dicts that hold the event."""
import gc


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(type(r))[:50] for r in gc.get_referrers(event)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
