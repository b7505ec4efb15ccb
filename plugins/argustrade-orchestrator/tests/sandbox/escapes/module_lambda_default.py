# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module captured as a lambda default inside on_event: (lambda m=math: m...)()."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            os = (lambda m=statistics: m.sys.modules["os"])()
            out = [os.system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
