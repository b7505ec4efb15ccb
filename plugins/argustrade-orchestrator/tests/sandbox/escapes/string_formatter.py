# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""string.Formatter().get_field walks attribute paths from a format field name."""
import string


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            value, _ = string.Formatter().get_field("0.__class__.__base__", [()], {})
            out = [str(value.__subclasses__())[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
