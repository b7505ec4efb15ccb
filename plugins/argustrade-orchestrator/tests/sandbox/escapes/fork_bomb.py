# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Fork until the machine falls over."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for _ in range(64):
            try:
                if os.fork() == 0:
                    while True:
                        pass
                out.append("forked")
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
                break
        state["outcome"] = out
        return []
