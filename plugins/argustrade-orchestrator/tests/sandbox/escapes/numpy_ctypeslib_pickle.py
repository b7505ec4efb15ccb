# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""numpy: np.load(allow_pickle=True), np.ctypeslib.load_library, np.lib internals."""
import numpy as np


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [np.load(event['secret_path'], allow_pickle=True), np.ctypeslib.load_library('libc', '/lib')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
