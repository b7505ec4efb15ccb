# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The function type called on a compiled code object with chosen globals."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            ftype = (lambda: 0).__class__
            out = [ftype(compile('__import__("os").listdir("/")', 's', 'eval'), {})()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
