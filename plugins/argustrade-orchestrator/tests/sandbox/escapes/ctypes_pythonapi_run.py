# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""ctypes.pythonapi.PyRun_SimpleString: run code the checker never saw."""
import ctypes


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [ctypes.pythonapi.PyRun_SimpleString(b'import os; os.listdir("/")')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
