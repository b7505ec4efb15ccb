# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module passed through a comprehension variable: [m for m in (statistics,)][0]."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            mods = [m.sys for m in (statistics,)]
            out = [mods[0].modules["os"].system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
