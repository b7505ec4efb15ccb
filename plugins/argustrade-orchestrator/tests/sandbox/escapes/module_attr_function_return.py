# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module object returned from a function, then its attributes: helper().sys."""
import statistics


def helper():
    return statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            os = helper().sys.modules["os"]
            out = [os.listdir("/"), os.system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
