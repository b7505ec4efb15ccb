# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""__getattribute__ called with a dunder name as a string, past attribute checks."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            cls = ''.__getattribute__('__class__')
            out = [str(cls.__getattribute__(cls, '__subclasses__'))[:100]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
