# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A generator function: yield keeps a live frame whose f_back is the caller's."""


def frames():
    yield 1


class Strategy:
    def on_event(self, event, state, portfolio):
        g = frames()
        next(g)
        try:
            out = [sorted(g.gi_frame.f_globals["__builtins__"])[:20],
                   g.gi_code.co_consts]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = [str(o)[:200] for o in out]
        return []
