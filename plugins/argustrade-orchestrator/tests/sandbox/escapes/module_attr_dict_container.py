# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module stored in a dict and a tuple unpacking, then walked to sys.modules."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        box = {"m": statistics}
        first, second = box["m"], 0
        try:
            out = [first.sys.modules["posix"].system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
