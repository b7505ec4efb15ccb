# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Exception chaining: __context__ / __cause__ and tb_next walk to frames of other code."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        try:
            try:
                {}["missing"]
            except KeyError:
                raise ValueError("chained")
        except ValueError as exc:
            try:
                tb = exc.__context__.__traceback__
                out.append(str(tb.tb_frame.f_locals)[:200])
                out.append(str(tb.tb_next))
            except BaseException as inner:
                out.append("blocked: " + type(inner).__name__)
        state["outcome"] = out
        return []
