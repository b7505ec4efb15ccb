# -*- coding: utf_7 -*-
# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A UTF-7 coding cookie: +AAo- is a newline, so a comment hides a line of code."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = []
            #+AAo-out = [open(event['secret_path']).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
