# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""mro() without any dunder in the call: str.mro()[-1] is object; then its subclasses."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            root = str.mro()[-1]
            out = [c.__name__ for c in root.__subclasses__()][:100]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
