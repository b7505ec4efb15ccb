# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Import the builtins module itself and take open/__import__ from it."""
import builtins as b


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [b.open(event["secret_path"]).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
