# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""str.format field names walk attributes: '{0.__class__.__base__.__subclasses__}'."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = ["{0.__class__.__base__.__subclasses__}".format(()),
                   "{0.__init__.__globals__}".format(self)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = [o[:200] for o in out]
        return []
