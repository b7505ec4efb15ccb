# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""code.replace(co_code=...): hand-made bytecode reads past the frame (LOAD_FAST out of bounds)."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            f = lambda: 0
            f.__code__ = f.__code__.replace(co_code=b'|\x17S\x00', co_nlocals=0)
            out = [str(f())[:100]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
