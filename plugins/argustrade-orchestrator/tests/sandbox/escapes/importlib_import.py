# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""importlib.import_module and __import__ for modules outside the allow-list."""
import importlib


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: importlib.import_module("os").getcwd(),
                        lambda: __import__("os").getcwd(),
                        lambda: __loader__.load_module("os")):
            try:
                out.append(str(attempt()))
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
