# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A comprehension target that assigns __class_getitem__, then a subscript calls it."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            [None for Strategy.__class_getitem__ in [eval]]
            out = [Strategy['open("/etc/passwd").read()']]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
