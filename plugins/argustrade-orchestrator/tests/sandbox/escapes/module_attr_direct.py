# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A permitted module's unlisted attribute, used directly: statistics.sys / .random."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [statistics.random._os.system("touch %s/pwned" % event["host_dir"]),
                   statistics.sys.modules["os"].getcwd()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
