# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""gen.send / gen.throw resume a suspended frame with values or exceptions we choose."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            g = (x for x in [1, 2])
            next(g)
            out = [g.send(None), str(g.throw(StopIteration))]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
