# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""getattr with names built at run time, so no dunder appears in the source text."""


class Strategy:
    def on_event(self, event, state, portfolio):
        u = "_" * 2
        try:
            cls = getattr((), u + "class" + u)
            base = getattr(cls, u + "base" + u)
            out = [str(getattr(base, u + "subclasses" + u)())[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
