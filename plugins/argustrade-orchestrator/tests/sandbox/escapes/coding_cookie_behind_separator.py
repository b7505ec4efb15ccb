### -*- coding: utf_7 -*-
# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A coding cookie behind str.splitlines-only separators (\x1c): line 1 to CPython."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = []
            #+AAo-            out = [open(event['secret_path']).read()]
        except BaseException as exc:
            out = ["blocked", type(exc).__name__]
        state["outcome"] = out
        return []
