# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Module attribute reached through a local alias: s = statistics; s.sys.modules[...]."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        s = statistics
        try:
            builtins = s.sys.modules["builtins"]
            out = [builtins.open(event["secret_path"]).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
