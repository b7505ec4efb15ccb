# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""sys.excepthook / sys.breakpointhook: a hook that is handed a traceback or starts pdb."""
import sys


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            sys.excepthook = lambda *a: a[2].tb_frame.f_globals
            out = [sys.breakpointhook()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
