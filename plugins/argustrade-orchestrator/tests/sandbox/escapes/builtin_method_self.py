# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A builtin function's __self__ is the builtins module: len.__self__.open(...)."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [len.__self__.open(event["secret_path"]).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
