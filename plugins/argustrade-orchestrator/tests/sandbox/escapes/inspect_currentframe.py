# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""inspect.currentframe() / sys._getframe(): the caller's frames without a generator."""
import inspect
import sys


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: inspect.currentframe().f_back.f_globals,
                        lambda: sys._getframe(1).f_globals):
            try:
                out.append(sorted(attempt())[:30])
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
