# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Module attribute reached through a subscript: [statistics][0].sys.modules["os"]."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            os = [statistics][0].sys.modules["os"]
            out = [os.system("touch %s/pwned" % event["host_dir"]), dict(os.environ)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
