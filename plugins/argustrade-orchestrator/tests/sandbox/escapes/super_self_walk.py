# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""super() objects expose __self__ / __thisclass__ and bypass overridden attribute guards."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            sup = super()
            out = [str(sup.__thisclass__.__mro__), str(super(type, Strategy).__getattribute__)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
