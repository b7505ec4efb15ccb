# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module bound by an assignment expression: (m := statistics).sys."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            if (m := statistics) is not None:
                out = [m.sys.modules["os"].system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
