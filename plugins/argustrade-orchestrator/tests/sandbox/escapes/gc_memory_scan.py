# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Scan every object in the worker's memory for anything secret-shaped."""
import gc


class Strategy:
    def on_event(self, event, state, portfolio):
        found = []
        try:
            for obj in gc.get_objects():
                if isinstance(obj, dict):
                    for v in list(obj.values()):
                        if isinstance(v, str) and ("sk-ant" in v or "CANARY" in v):
                            found.append(v)
        except BaseException as exc:
            found.append("blocked: " + type(exc).__name__)
        state["outcome"] = found
        return []
