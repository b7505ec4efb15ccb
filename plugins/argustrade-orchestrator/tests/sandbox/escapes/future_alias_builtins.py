# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""from __future__ import annotations as __builtins__: rebinds the module's builtins."""
from __future__ import annotations as __builtins__


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [open(event['secret_path']).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
