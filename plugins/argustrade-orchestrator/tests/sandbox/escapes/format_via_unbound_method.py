# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Reach str.format without '.format' on a literal: map(str.format, ...) and a class alias."""


class Strategy:
    def on_event(self, event, state, portfolio):
        fmt = str.format
        try:
            out = list(map(fmt, ["{0.__class__.__mro__}"], [()])) + [fmt("{0.gi_frame}", self)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = [str(o)[:200] for o in out]
        return []
